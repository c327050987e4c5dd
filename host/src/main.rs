//! The `osiris` command: a thin binary over the library modules below.
#![allow(dead_code)] // scaffolding: removed once every module is wired

#[macro_use]
mod out;

mod cli;
mod compiler;
mod config;
mod diag;
mod discovery;
mod exit;
mod oml;
mod plugins;
mod registry;
mod runner;
mod secrets;
mod yaml;

fn main() -> std::process::ExitCode {
    cli::main()
}
