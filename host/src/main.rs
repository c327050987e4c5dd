//! The `osiris` command: a thin binary over `osiris-cli` (host/crates/cli), which parses the command line and
//! calls the library crates under host/crates/ (docs/ARCHITECTURE.md draws their graph).

fn main() -> std::process::ExitCode {
    osiris_cli::main()
}
