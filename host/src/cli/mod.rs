//! Command-line front end: clap derive, one file per subcommand. stdout carries results, stderr logs and
//! diagnostics. Every command returns an [`Exit`] so codes stay documented in one place.

use crate::exit::{CmdResult, Exit};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

mod compile;
mod component;
mod components;
mod connections;
mod discovery;
mod init;
mod oml;
mod plugins;
mod quickstart;
mod run;
mod runs;
mod upgrade;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    validation error, or a usage error
  3    compile error
  4    run error (a step failed)
  5    configuration or secrets missing
  130  cancelled (Ctrl-C)";

#[derive(Parser, Debug)]
#[command(
    name = "osiris",
    version,
    about = "Compile and run data pipelines described in OML, with components shipped as signed plugins",
    after_help = EXIT_CODES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand accepts.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Project configuration file [default: the nearest `osiris.yaml` in the working directory or one of its
    /// parents; its directory is the project root].
    #[arg(long = "config", global = true, value_name = "FILE")]
    pub config_flag: Option<PathBuf>,
    /// The project's osiris.yaml: `--config`, else the one found by walking up from the working directory
    /// (`osiris.yaml` in the working directory when there is none). Its directory is the project root, against
    /// which every relative path of the project resolves. Set by [`Global::resolve_project`].
    #[arg(skip)]
    pub config: PathBuf,
    /// More log output on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Extra plugin directory, searched first (repeatable).
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Use built-in components only; load no plugin.
    #[arg(long, global = true)]
    pub disable_plugins: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new osiris project (osiris.yaml, connections, a quickstart pipeline).
    Init(init::InitArgs),
    /// Browse and validate the component catalogue.
    #[command(subcommand)]
    Components(components::ComponentsCmd),
    /// Author a component: `component new` creates a plugin crate from the built-in template.
    #[command(subcommand)]
    Component(component::ComponentCmd),
    /// Discover, check, sign and load plugins (OCPs).
    #[command(subcommand)]
    Plugins(plugins::PluginsCmd),
    /// Validate OML pipelines.
    #[command(subcommand)]
    Oml(oml::OmlCmd),
    /// Compile a pipeline into a deterministic, secret-free run manifest.
    Compile(compile::CompileArgs),
    /// Run a pipeline (OML or a compiled manifest).
    Run(run::RunArgs),
    /// Rewrite older OML (e.g. `depends_on` -> `needs`, `input_df` -> `df_<step>`), printing a diff.
    Upgrade(upgrade::UpgradeArgs),
    /// Create a project (if needed) and run its quickstart pipeline: CSV -> DuckDB -> CSV.
    Quickstart(quickstart::QuickstartArgs),
    /// Past runs: list them, show one (status, steps, rows, files).
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Inspect connections (osiris_connections.yaml, secrets file, OSIRIS_CONN__* variables).
    #[command(subcommand)]
    Connections(connections::ConnectionsCmd),
    /// Discover what a connection holds: tables, columns and types, primary keys, sample rows (cached).
    #[command(subcommand)]
    Discovery(discovery::DiscoveryCmd),
}

impl Global {
    /// Sets [`Global::config`]: `--config` wins; otherwise the project is found the way cargo and git find
    /// theirs, by walking up from the working directory to the first directory holding an `osiris.yaml`.
    pub fn resolve_project(&mut self) {
        self.config = match &self.config_flag {
            Some(c) => c.clone(),
            None => std::env::current_dir()
                .ok()
                .and_then(|cwd| crate::config::find_project_config(&cwd))
                .unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE)),
        };
    }
}

/// Output format for commands that print data.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    Exit::Ok
                }
                _ => Exit::Validation,
            };
            let _ = e.print();
            return code.into();
        }
    };
    let mut cli = cli;
    cli.global.resolve_project();
    init_logging(&cli.global);
    let result: CmdResult = match cli.command {
        Command::Init(a) => init::run(&cli.global, a),
        Command::Components(c) => components::run(&cli.global, c),
        Command::Component(c) => component::run(c),
        Command::Plugins(c) => plugins::run(&cli.global, c),
        Command::Oml(c) => oml::run(&cli.global, c),
        Command::Compile(a) => compile::run(&cli.global, a),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Upgrade(a) => upgrade::run(&cli.global, a),
        Command::Quickstart(a) => quickstart::run(&cli.global, a),
        Command::Connections(c) => connections::run(&cli.global, c),
        Command::Runs(c) => runs::run(&cli.global, c),
        Command::Discovery(c) => discovery::run(&cli.global, c),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(fail) => {
            eprintln!("{}", fail.message.trim_end());
            fail.exit.into()
        }
    }
}

fn init_logging(g: &Global) {
    use tracing_subscriber::EnvFilter;
    let level = if g.quiet {
        "error".to_string()
    } else if g.verbose > 0 {
        if g.verbose == 1 { "debug" } else { "trace" }.to_string()
    } else {
        std::env::var("OSIRIS_LOG_LEVEL")
            .map(|s| s.to_lowercase())
            .unwrap_or_else(|_| "warn".to_string())
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
