//! `osiris oml validate FILE...`: the same checks as `osiris compile`, without writing anything.

use super::{Format, Global};
use crate::front::{self, CheckArgs};
use osiris_core::exit::{CmdResult, Exit};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum OmlCmd {
    /// Check pipelines: structure, components, modes, configs, wiring, parameters and inline secrets.
    /// Exit code 2 when any file has an error.
    Validate(ValidateArgs),
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// OML files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub check: CheckArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Serialize)]
struct Out<'a> {
    ok: bool,
    mode: &'static str,
    files: Vec<front::FileJson<'a>>,
}

pub fn run(g: &Global, c: OmlCmd) -> CmdResult {
    let OmlCmd::Validate(a) = c;
    let config = osiris_core::config::ProjectConfig::load(&g.config)?;
    let settings = a.check.settings(g, &config)?;
    let registry = osiris_runner::modules::build_registry(g);
    let reports: Vec<_> = a
        .files
        .iter()
        .map(|f| front::check_file(f, &registry, &settings))
        .collect();
    let ok = reports.iter().all(|r| r.errors() == 0);
    if front::format_is_json(a.format) {
        front::print_json(&Out {
            ok,
            mode: settings.mode.as_str(),
            files: reports.iter().map(front::file_json).collect(),
        });
    } else {
        for r in &reports {
            if !r.diagnostics.is_empty() {
                errln!("{}", r.render().trim_end());
            }
            outln!("{}", front::summary(r));
        }
    }
    Ok(if ok { Exit::Ok } else { Exit::Validation })
}
