//! `osiris-core`: what every other osiris crate shares, and nothing that knows about components, pipelines,
//! plugins or runs.
//!
//! It owns the table of every stable code ([`codes`]), diagnostics ([`diag`]: code, file:line:col, help), exit codes and the error that carries one
//! ([`exit`]), YAML with source positions ([`yaml`]), the project configuration types ([`config`], including
//! `plugins:` and the machine policy as written), connections and secrets with their redactor ([`secrets`]),
//! warnings about files others can write ([`perms`]), the settings every command passes down ([`Global`]) and
//! the notice channel library code reports warnings through ([`notice`]), and one safe part of a file name
//! ([`file_name_part`]).
//!
//! It may not: depend on another osiris crate, on clap, or print (warnings go through [`notice`]).

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod codes;
pub mod config;
pub mod diag;
pub mod exit;
pub mod notice;
pub mod perms;
pub mod secrets;
pub mod yaml;

use std::path::{Path, PathBuf};

/// `name` as one safe part of a file name: ASCII letters, digits, `-` and `_` kept, anything else `_` (no
/// separator, no `..`, nothing a shell or another platform reads specially).
pub fn file_name_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The options every command shares, resolved by the command-line front end: where the project is and how
/// plugins are found. Library crates take this instead of command-line types.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// The project's osiris.yaml (`--config`, else the nearest one walking up from the working directory, else
    /// `osiris.yaml` in the working directory). Its directory is the project root.
    pub config: PathBuf,
    /// More log output (`-v`, repeatable).
    pub verbose: u8,
    /// Only errors on stderr (`-q`).
    pub quiet: bool,
    /// Extra plugin directories, searched first (`--plugin-dir`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Built-in components only; no plugin is loaded (`--disable-plugins`).
    pub disable_plugins: bool,
}

impl Global {
    /// The project root as a path to join with: the directory of [`Global::config`] (empty: the working
    /// directory).
    pub fn project_root(&self) -> PathBuf {
        self.config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}
