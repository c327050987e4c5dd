//! What `osiris oml validate`, `osiris compile` and `osiris upgrade` share: options, reading files, running
//! the validator and printing its report.

use crate::Format;
use osiris_core::codes::Code;
use osiris_core::diag::Diagnostic;
use osiris_core::exit::{Exit, Fail};
use osiris_oml::{self as oml, Mode, Report};
use serde::Serialize;
use std::path::Path;

/// Options of every command that runs the OML validator.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// How strictly component configs are checked [default: `OSIRIS_VALIDATION`, then `validation.mode` in
    /// osiris.yaml, then warn]. Inline secrets are an error in every mode.
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<crate::ModeArg>,
    /// Profile whose `profiles.<P>.params` apply.
    #[arg(long, value_name = "P")]
    pub profile: Option<String>,
    /// Parameter value, highest precedence (repeatable): --param start_date=2024-01-01.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

/// Everything resolved from the flags, the environment and osiris.yaml.
pub struct Settings {
    pub mode: Mode,
    pub profile: String,
    pub profile_explicit: bool,
    pub params: Vec<(String, String)>,
    /// The project directory: where osiris.yaml is (`--config`), relative to the working directory.
    pub project: std::path::PathBuf,
    /// `compile.build_dir`, resolved against the project directory.
    pub build_dir: std::path::PathBuf,
}

impl Settings {
    /// What `<build_dir>/pipelines/LATEST` records for `dir` (a path as given on the command line, relative to
    /// the working directory): the path relative to the project directory, as `osiris run --last-compile`
    /// reads it.
    pub fn latest_entry(&self, dir: &Path, default_layout: bool) -> String {
        if dir.is_absolute()
            || self.project.as_os_str().is_empty()
            || self.project == Path::new(".")
        {
            return dir.display().to_string();
        }
        if default_layout && let Ok(rel) = dir.strip_prefix(&self.project) {
            return rel.display().to_string();
        }
        std::env::current_dir()
            .map(|c| c.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
            .display()
            .to_string()
    }
}

impl CheckArgs {
    pub fn settings(
        &self,
        global: &crate::Global,
        config: &osiris_core::config::ProjectConfig,
    ) -> Result<Settings, Fail> {
        let mode = match self.mode {
            Some(m) => m.into(),
            None => match std::env::var("OSIRIS_VALIDATION") {
                Ok(v) if !v.trim().is_empty() => Mode::parse(&v).ok_or_else(|| {
                    Fail::new(
                        Exit::Validation,
                        format!("error: invalid OSIRIS_VALIDATION `{v}`\n   = help: use warn, strict or off (or unset it)"),
                    )
                })?,
                _ => match config.validation.mode {
                    osiris_core::config::ValidationMode::Warn => Mode::Warn,
                    osiris_core::config::ValidationMode::Strict => Mode::Strict,
                    osiris_core::config::ValidationMode::Off => Mode::Off,
                },
            },
        };
        let profile = self
            .profile
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let profile_ok = !profile.is_empty()
            && !profile.starts_with('.')
            && profile
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !profile_ok {
            return Err(Fail::new(
                Exit::Validation,
                format!(
                    "error: invalid profile name `{profile}`\n   = help: use letters, digits, `_`, `-` and `.` (e.g. --profile prod)"
                ),
            ));
        }
        let project = global
            .config
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut params = Vec::new();
        for p in &self.params {
            params.push(
                oml::params::parse_cli(p)
                    .map_err(|m| Fail::new(Exit::Validation, format!("error: {m}")))?,
            );
        }
        Ok(Settings {
            mode,
            profile,
            profile_explicit: self.profile.is_some(),
            params,
            project: project.clone(),
            build_dir: if config.compile.build_dir.is_absolute() {
                config.compile.build_dir.clone()
            } else {
                project.join(&config.compile.build_dir)
            },
        })
    }
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads and checks one file. A file that cannot be read gives a report with one `OML-E001`.
pub fn check_file(path: &Path, catalog: &dyn oml::catalog::Catalog, s: &Settings) -> Report {
    let label = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::error(Code::OML_E001, format!("cannot read `{label}`: {e}"))
                .file(&label)
                .help("check the path (it is relative to the current directory) and the file's permissions");
            return Report {
                file: label,
                diagnostics: vec![d],
                display_source: String::new(),
                plan: None,
            };
        }
    };
    let opts = oml::Options {
        mode: s.mode,
        profile: &s.profile,
        profile_explicit: s.profile_explicit,
        params: &s.params,
        env: &env_lookup,
    };
    oml::check(&label, &text, catalog, &opts)
}

#[derive(Serialize)]
pub struct FileJson<'a> {
    pub file: &'a str,
    pub ok: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: &'a [Diagnostic],
}

pub fn file_json(r: &Report) -> FileJson<'_> {
    FileJson {
        file: &r.file,
        ok: r.errors() == 0,
        errors: r.errors(),
        warnings: r.warnings(),
        diagnostics: &r.diagnostics,
    }
}

/// Prints a report's diagnostics on stderr (text format), followed by a one-line summary.
pub fn eprint_report(r: &Report) {
    if r.diagnostics.is_empty() {
        return;
    }
    errln!("{}", r.render().trim_end());
    errln!("{}", summary(r));
}

pub fn summary(r: &Report) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (r.errors(), r.warnings()) {
        (0, 0) => format!("{}: ok", r.file),
        (0, w) => format!("{}: ok, {}", r.file, plural(w, "warning")),
        (e, 0) => format!("{}: {}", r.file, plural(e, "error")),
        (e, w) => format!(
            "{}: {}, {}",
            r.file,
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

pub fn print_json<T: Serialize>(v: &T) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).expect("report serializes")
    );
}

pub fn format_is_json(f: Format) -> bool {
    f == Format::Json
}

/// A pipeline that did not compile goes to the project's dead-letter queue (topic `compile`) as a
/// `compile_error` envelope, which `osiris runs replay` re-runs as `osiris <command> <file>`. Only inside a
/// project (an `osiris.yaml` exists): a pipeline checked anywhere else leaves nothing behind.
pub fn dead_letter(g: &crate::Global, command: &str, file: &Path, r: &Report) {
    use osiris_runner::envelope::{self, Source};
    if !g.config.is_file() {
        return;
    }
    let project = crate::run::project_dir(g);
    let cwd = std::env::current_dir().unwrap_or_default();
    let abs = cwd.join(file);
    let shown = abs
        .strip_prefix(&project)
        .unwrap_or(&abs)
        .display()
        .to_string();
    let id = osiris_runner::rundir::new_run_id().replacen("run-", "compile-", 1);
    let mut payload = serde_json::Map::new();
    payload.insert("pipeline".into(), shown.clone().into());
    payload.insert("command".into(), command.into());
    payload.insert("args".into(), serde_json::json!([command, shown]));
    payload.insert("error".into(), summary(r).into());
    payload.insert(
        "diagnostics".into(),
        serde_json::to_value(&r.diagnostics).unwrap_or_default(),
    );
    let e = envelope::make(
        &id,
        1,
        Source::Compiler,
        "compile_error",
        &osiris_runner::rundir::now_rfc3339(),
        payload,
    );
    let redactor = crate::runs::project_redactor(&project);
    if let Err(err) =
        osiris_runner::dlq::write(&project, osiris_runner::dlq::COMPILE, &e, &redactor)
    {
        osiris_core::notice::warn(&format!(
            "cannot write the dead-letter item of the failed compile: {err}"
        ));
    }
}
