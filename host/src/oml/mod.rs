//! OML, the pipeline language: parsing with source positions, the validator shared by `osiris oml validate`
//! and `osiris compile`, parameters, wiring and `osiris upgrade` rewrites. See docs/oml.md.

pub mod catalog;
pub mod check;
pub mod dag;
pub mod params;
pub mod secrets;
pub mod sql;

pub use check::{Mode, Options, Plan, PlannedStep, Report, check};
pub mod upgrade;
