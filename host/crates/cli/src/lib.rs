//! `osiris-cli`: the command-line front end of osiris. clap derive, one file per subcommand; stdout carries
//! results, stderr logs and diagnostics. Every command returns an [`Exit`] so codes stay documented in one place.
//!
//! It owns: parsing arguments (the only crate that depends on clap), resolving flags, environment variables and
//! `osiris.yaml` into the plain settings the library crates take ([`osiris_core::Global`], the validator's
//! options), everything printed (stdout through [`outln!`], stderr through [`errln!`] and the notice sink it
//! installs), and mapping results to exit codes.
//!
//! It may not: hold logic another front end (the MCP server, a test) would need; that belongs in the library
//! crates below it (`osiris-core`, `-registry`, `-oml`, `-compiler`, `-plugins`, `-runner`).

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

#[macro_use]
mod out;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use osiris_core::codes::Code;
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::path::PathBuf;

mod chat;
mod compile;
mod component;
mod components;
mod connections;
mod discovery;
mod docs;
mod front;
mod init;
mod mcp;
mod oml;
mod plugins;
mod prompts;
mod quickstart;
mod run;
mod runs;
mod state;
mod upgrade;

const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    internal error (a bug: please report it)
  2    validation error, or a usage error
  3    compile error
  4    run error (a step failed)
  5    configuration or secrets missing
  130  cancelled (Ctrl-C or SIGTERM)";

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
    /// The resolved settings the library crates take (project file, plugin directories ...), set by
    /// [`Global::resolve_project`]; a `&Global` passes for a `&osiris_core::Global` (`Deref`).
    #[arg(skip)]
    pub resolved: osiris_core::Global,
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
    /// The documentation site's generated reference: `docs generate [--check]`.
    #[command(subcommand)]
    Docs(docs::DocsCmd),
    /// Past runs: list them, show or view one, report one as HTML, the dead-letter queue and its replay.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Incremental state: the high-water mark of each incremental extractor (`list`, `show`, `reset`).
    #[command(subcommand)]
    State(state::StateCmd),
    /// Inspect connections (osiris_connections.yaml, secrets file, OSIRIS_CONN__* variables).
    #[command(subcommand)]
    Connections(connections::ConnectionsCmd),
    /// Discover what a connection holds: tables, columns and types, primary keys, sample rows (cached).
    #[command(subcommand)]
    Discovery(discovery::DiscoveryCmd),
    /// Serve the Model Context Protocol on stdio (or `--http` on loopback) for LLM clients: components,
    /// validation, compile, run, runs, connections (names only), discovery. It never holds a secret.
    Mcp(mcp::McpArgs),
    /// Describe a pipeline in words; a model writes it, osiris validates it and asks for fixes until it is valid.
    #[command(after_help = chat::AFTER_HELP)]
    Chat(chat::ChatArgs),
    /// What a language model is given to write pipelines: `prompts build-context`.
    #[command(subcommand)]
    Prompts(prompts::PromptsCmd),
}

impl Global {
    /// Sets [`Global::resolved`]: `--config` wins; otherwise the project is found the way cargo and git find
    /// theirs, by walking up from the working directory to the first directory holding an `osiris.yaml`.
    /// The project's osiris.yaml is `--config`, else the one found by walking up from the working directory
    /// (`osiris.yaml` in the working directory when there is none). Its directory is the project root, against
    /// which every relative path of the project resolves.
    pub fn resolve_project(&mut self) {
        let config = match &self.config_flag {
            Some(c) => c.clone(),
            None => std::env::current_dir()
                .ok()
                .and_then(|cwd| osiris_core::config::find_project_config(&cwd))
                .unwrap_or_else(|| PathBuf::from(osiris_core::config::CONFIG_FILE)),
        };
        self.resolved = osiris_core::Global {
            config,
            verbose: self.verbose,
            quiet: self.quiet,
            plugin_dirs: self.plugin_dirs.clone(),
            disable_plugins: self.disable_plugins,
        };
    }
}

impl std::ops::Deref for Global {
    type Target = osiris_core::Global;
    fn deref(&self) -> &osiris_core::Global {
        &self.resolved
    }
}

/// `--mode` of the validator (see [`osiris_oml::Mode`]).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    /// Config-schema violations are errors; findings that cannot change what runs are warnings.
    Warn,
    /// Every warning is an error too.
    Strict,
    /// Config schemas and connection-field rules are not checked (structure, wiring, parameters and inline
    /// secrets still are).
    Off,
}

impl From<ModeArg> for osiris_oml::Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Warn => osiris_oml::Mode::Warn,
            ModeArg::Strict => osiris_oml::Mode::Strict,
            ModeArg::Off => osiris_oml::Mode::Off,
        }
    }
}

/// `--level` of the spec checker (see [`osiris_registry::Level`]).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelArg {
    /// YAML syntax, the spec schema, and `configSchema` as a JSON Schema.
    Basic,
    /// + semantic rules: pointers, connection fields, examples, versions.
    Enhanced,
    /// + documentation: examples, llmHints, a description on every configuration property.
    Strict,
}

impl From<LevelArg> for osiris_registry::Level {
    fn from(l: LevelArg) -> Self {
        match l {
            LevelArg::Basic => osiris_registry::Level::Basic,
            LevelArg::Enhanced => osiris_registry::Level::Enhanced,
            LevelArg::Strict => osiris_registry::Level::Strict,
        }
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
    let exit = run_from(std::env::args_os().collect());
    crate::out::flush();
    if let Some(e) = crate::out::failure() {
        crate::out::eline(&format!("error: cannot write to stdout: {e}"));
        if exit == Exit::Ok {
            return Exit::Internal.into();
        }
    }
    exit.into()
}

/// Runs one command line (`args[0]` is the program name) in this process, as `osiris` would, and returns its
/// exit code; the soak benchmark (`examples/soak.rs`) runs many in one process this way.
pub fn run_from(args: Vec<std::ffi::OsString>) -> Exit {
    let json = wants_json(&args);
    let matches = match Cli::command().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return usage_error(e, json),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e, json),
    };
    let mut cli = cli;
    cli.global.resolve_project();
    // Library crates report warnings as notices; here they go to stderr.
    osiris_core::notice::set_sink(crate::out::eline);
    init_logging(&cli.global);
    // A panic is a bug: exit 1 (documented) rather than Rust's 101; the panic hook has printed where it was.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli)))
        .unwrap_or_else(|_| {
            Err(Fail::new(
                Exit::Internal,
                "error: internal error: osiris panicked (the message is above)\n  = help: this is a bug: please report it with the command line and the message",
            ))
        });
    match result {
        Ok(exit) => exit,
        Err(fail) => {
            crate::out::eline(fail.message.trim_end());
            // `--format json`: the failure as data on stdout too, unless the command already printed its result.
            if json && !crate::out::wrote() {
                outln!("{}", error_json(&fail));
            }
            fail.exit
        }
    }
}

fn dispatch(cli: Cli) -> CmdResult {
    match cli.command {
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
        Command::State(c) => state::run(&cli.global, c),
        Command::Docs(c) => docs::run(c),
        Command::Discovery(c) => discovery::run(&cli.global, c),
        Command::Mcp(a) => mcp::run(&cli.global, a),
        Command::Prompts(c) => prompts::run(&cli.global, c),
        Command::Chat(a) => chat::run(&cli.global, a),
    }
}

/// `--format json` (or `--format=json`) is on the command line. Read from the raw arguments so that a usage
/// error, found before the arguments are parsed, is reported as JSON too.
fn wants_json(args: &[std::ffi::OsString]) -> bool {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let until = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    args[..until].iter().enumerate().any(|(i, a)| {
        *a == "--format=json" || (*a == "--format" && args.get(i + 1) == Some(&"json"))
    })
}

fn usage_error(e: clap::Error, json: bool) -> Exit {
    use clap::error::ErrorKind;
    let code = match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
        _ => Exit::Validation,
    };
    // clap writes help to stdout and errors to stderr; a closed pipe is ignored there too.
    let _ = e.print();
    if json && code != Exit::Ok {
        let text = e.render().to_string();
        let message = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        outln!(
            "{}",
            serde_json::json!({
                "ok": false,
                "exit_code": code.code(),
                "error": { "code": Code::CLI_E005, "message": message, "help": "see `osiris help` (or `--help` after the command)", "text": text.trim_end() },
            })
        );
    }
    code
}

/// A failure as a JSON object (see [`Fail::to_json`]).
pub fn error_json(fail: &Fail) -> serde_json::Value {
    fail.to_json()
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
