//! `osiris quickstart [DIR]`: create a project (if DIR has none) and run its quickstart pipeline
//! (CSV -> DuckDB -> CSV). Needs no database and no network.

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct QuickstartArgs {
    /// Project directory; created and initialised when it has no osiris.yaml.
    #[arg(default_value = "osiris-quickstart")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

const PIPELINE: &str = "pipelines/quickstart.yaml";
const OUTPUT: &str = "output/summary.csv";
const PREVIEW_LINES: usize = 6;

pub fn run(g: &Global, a: QuickstartArgs) -> CmdResult {
    let dir = a.dir.clone();
    if !dir.join("osiris.yaml").is_file() {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Fail::new(Exit::Config, format!("error: cannot create `{}`: {e}\n  = help: choose another directory: `osiris quickstart DIR`", dir.display()))
        })?;
        let written = super::init::write_project(&dir, false)?;
        if a.format == Format::Text {
            errln!(
                "created project `{}` ({} files)",
                dir.display(),
                written.len()
            );
        }
    }
    if !dir.join(PIPELINE).is_file() {
        return Err(Fail::new(
            Exit::Config,
            format!(
                "error: `{}` has an osiris.yaml but no `{PIPELINE}`\n  = help: run `osiris init --force {}` to restore the quickstart files, or choose an empty directory",
                dir.display(),
                dir.display()
            ),
        ));
    }
    // Relative paths in the pipeline (and in the project's files) are relative to the project.
    std::env::set_current_dir(&dir).map_err(|e| {
        Fail::new(
            Exit::Config,
            format!("error: cannot enter `{}`: {e}", dir.display()),
        )
    })?;
    let project = std::env::current_dir().unwrap_or_else(|_| dir.clone());
    let mut global = g.clone();
    global.resolved.config = PathBuf::from("osiris.yaml");
    let args = super::run::RunArgs {
        file: Some(PathBuf::from(PIPELINE)),
        last_compile: false,
        check: crate::front::CheckArgs {
            mode: None,
            profile: None,
            params: Vec::new(),
        },
        out: None,
        secrets_file: None,
        connections: None,
        max_parallel: None,
        retries: 0,
        dry_run: false,
        full_refresh: false,
        resume: None,
        format: a.format,
    };
    let Some(outcome) = super::run::execute(&global, &args)? else {
        return Ok(Exit::Ok);
    };
    if a.format == Format::Json || outcome.exit != Exit::Ok {
        return Ok(super::run::report(&outcome, a.format, &project, &dir));
    }
    let exit = super::run::report(&outcome, a.format, &project, &dir);
    let output = dir.join(OUTPUT);
    outln!("output: {}", output.display());
    if let Ok(text) = std::fs::read_to_string(OUTPUT) {
        for line in text.lines().take(PREVIEW_LINES) {
            outln!("  {line}");
        }
        let total = text.lines().count();
        if total > PREVIEW_LINES {
            outln!("  ... ({} more lines)", total - PREVIEW_LINES);
        }
    }
    outln!(
        "next: edit {}/{PIPELINE} and run `osiris run {PIPELINE}` in {}",
        dir.display(),
        dir.display()
    );
    Ok(exit)
}
