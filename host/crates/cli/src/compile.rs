//! `osiris compile FILE`: validate, then write the run manifest, cfg files, plan and fingerprints.

use super::{Format, Global};
use crate::front::{self, CheckArgs};
use osiris_core::exit::{CmdResult, Exit};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// Pipeline file (OML).
    pub file: PathBuf,
    /// Write into DIR instead of `<build_dir>/pipelines/<profile>/<slug>/<hash[:7]>-<hash>/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub check: CheckArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Serialize)]
struct Out<'a> {
    // `ok` comes from the flattened report (it was written twice).
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest_hash: Option<String>,
    #[serde(flatten)]
    report: front::FileJson<'a>,
}

pub fn run(g: &Global, a: CompileArgs) -> CmdResult {
    let config = osiris_core::config::ProjectConfig::load(&g.config)?;
    let settings = a.check.settings(g, &config)?;
    let registry = osiris_runner::modules::build_registry(g);
    let report = front::check_file(&a.file, &registry, &settings);
    let json = front::format_is_json(a.format);
    let Some(plan) = report.plan.as_ref().filter(|_| report.errors() == 0) else {
        if json {
            front::print_json(&Out {
                dir: None,
                manifest_hash: None,
                report: front::file_json(&report),
            });
        } else {
            front::eprint_report(&report);
        }
        front::dead_letter(g, "compile", &a.file, &report);
        return Ok(Exit::Validation);
    };
    let output = osiris_compiler::build(plan);
    let dir = a
        .out
        .clone()
        .unwrap_or_else(|| output.default_dir(&settings.build_dir));
    let shown = dir.display().to_string();
    osiris_compiler::write(&output, &dir, &shown)?;
    osiris_compiler::write_latest(
        &settings.build_dir,
        &settings.latest_entry(&dir, a.out.is_none()),
    )?;
    if json {
        front::print_json(&Out {
            dir: Some(shown),
            manifest_hash: Some(output.manifest_hash.clone()),
            report: front::file_json(&report),
        });
    } else {
        front::eprint_report(&report);
        errln!(
            "compiled `{}` ({} steps, manifest {})",
            plan.name,
            plan.steps.len(),
            &output.manifest_hash[..7]
        );
        outln!("{shown}");
    }
    Ok(Exit::Ok)
}
