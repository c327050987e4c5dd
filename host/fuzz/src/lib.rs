//! The `osiris` binary's modules, compiled as a library so that the fuzz targets call the real parsers (the host
//! is a binary crate; nothing here is a copy). The list mirrors `host/src/main.rs`: add a module there, add it
//! here.
#![allow(dead_code, unused_imports, unexpected_cfgs, clippy::all)]

#[path = "../../src/cli/mod.rs"]
pub mod cli;
#[path = "../../src/compiler/mod.rs"]
pub mod compiler;
#[path = "../../src/config.rs"]
pub mod config;
#[path = "../../src/diag.rs"]
pub mod diag;
#[path = "../../src/discovery/mod.rs"]
pub mod discovery;
#[path = "../../src/exit.rs"]
pub mod exit;
#[path = "../../src/oml/mod.rs"]
pub mod oml;
#[path = "../../src/plugins/mod.rs"]
pub mod plugins;
#[path = "../../src/registry/mod.rs"]
pub mod registry;
#[path = "../../src/runner/mod.rs"]
pub mod runner;
#[path = "../../src/secrets/mod.rs"]
pub mod secrets;
#[path = "../../src/yaml.rs"]
pub mod yaml;

/// A scratch package directory reused by every run of a target (one per process).
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}
