//! `osiris-oml`: OML, the pipeline language: parsing with source positions, the validator shared by
//! `osiris oml validate`, `osiris compile` and every other front end, parameters, wiring (the DAG) and the
//! `osiris upgrade` rewrites. See docs/oml.md.
//!
//! Depends on `osiris-core` and `osiris-registry` (a [`catalog::Catalog`] is what the validator asks about
//! components). May not: read files, osiris.yaml or the environment (callers pass text and [`Options`]),
//! compile, run, or print: it returns a [`Report`] of diagnostics and, when valid, a [`Plan`].

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod catalog;
pub mod check;
pub mod dag;
pub mod params;
pub mod schema;
pub mod secrets;
pub mod sql;

pub use check::{Mode, Options, Plan, PlannedStep, Report, check};
pub mod upgrade;
