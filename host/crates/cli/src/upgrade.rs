//! `osiris upgrade FILE [--write]`: rewrite older OML forms in place, printing a diff. Idempotent.

use super::Global;
use osiris_core::codes::Code;
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_oml::upgrade;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct UpgradeArgs {
    /// Pipeline file (OML).
    pub file: PathBuf,
    /// Write the result back to FILE (without it, only the diff is printed).
    #[arg(long)]
    pub write: bool,
}

pub fn run(_g: &Global, a: UpgradeArgs) -> CmdResult {
    let label = a.file.display().to_string();
    let text = std::fs::read_to_string(&a.file).map_err(|e| {
        Fail::new(Exit::Validation, format!("error[{}]: cannot read `{label}`: {e}\n   = help: check the path and the file's permissions", Code::OML_E001))
    })?;
    let up = upgrade::upgrade(&label, &text)
        .map_err(|d| Fail::new(Exit::Validation, d.render(Some(&text))))?;
    for s in &up.skipped {
        errln!("note: {label}:{}: {}", s.line, s.what);
    }
    if up.changes.is_empty() {
        errln!("{label}: nothing to upgrade");
        return Ok(Exit::Ok);
    }
    out!("{}", upgrade::diff(&label, &text, &up.text));
    for c in &up.changes {
        errln!("{label}:{}: {}", c.line, c.what);
    }
    if a.write {
        std::fs::write(&a.file, &up.text).map_err(|e| {
            Fail::new(Exit::Compile, format!("error[{}]: cannot write `{label}`: {e}\n   = help: check the file's permissions", Code::OML_E060))
        })?;
        errln!("{label}: {} change(s) written", up.changes.len());
    } else {
        errln!(
            "{label}: {} change(s); run again with --write to apply",
            up.changes.len()
        );
    }
    Ok(Exit::Ok)
}
