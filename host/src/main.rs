//! The `osiris` command: a thin binary over `osiris-cli` (host/crates/cli), which parses the command line and
//! calls the library crates under host/crates/ (docs/ARCHITECTURE.md draws their graph).

// The integration tests' dev-dependencies are linked into this binary's own (empty) test target too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

fn main() -> std::process::ExitCode {
    osiris_cli::main()
}
