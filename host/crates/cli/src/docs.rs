//! `osiris docs generate [--check]`: the generated part of the documentation site (`docs/reference/`): one page
//! per built-in component from its spec, the error-code pages from the code table and docs/errors.md, and the
//! reference section of `SUMMARY.md` (between its `generated` markers). `--check` writes nothing and fails
//! (CLI-E008) when a page is stale, missing or left over, so CI catches a spec changed without its page.

use super::Format;
use osiris_core::codes::Code;
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::path::{Path, PathBuf};

/// docs/errors.md as built into this binary, for a docs directory without one.
const ERRORS_MD: &str = include_str!("../../../../docs/errors.md");
const BEGIN: &str = "<!-- generated: reference (osiris docs generate) -->";
const END: &str = "<!-- end generated -->";

#[derive(clap::Subcommand, Debug)]
pub enum DocsCmd {
    /// Write the component and error-code reference pages from the specs (or check that they are current).
    Generate(GenerateArgs),
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The documentation directory (the one holding `SUMMARY.md` and `errors.md`).
    #[arg(long, value_name = "DIR", default_value = "docs")]
    pub dir: PathBuf,
    /// Write nothing; exit 2 (CLI-E008) when a generated page is stale, missing or left over.
    #[arg(long)]
    pub check: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(c: DocsCmd) -> CmdResult {
    match c {
        DocsCmd::Generate(a) => generate(a),
    }
}

/// The reference section of SUMMARY.md.
fn summary_section(pages: &[(String, String)]) -> String {
    let mut s = format!("{BEGIN}\n- [Components](reference/components/index.md)\n");
    for (p, _) in pages {
        if let Some(name) = p
            .strip_prefix("components/")
            .and_then(|n| n.strip_suffix(".md"))
            .filter(|n| *n != "index")
        {
            s.push_str(&format!("  - [{name}](reference/{p})\n"));
        }
    }
    s.push_str("- [Error codes](reference/errors/index.md)\n");
    for (p, _) in pages {
        if let Some(name) = p
            .strip_prefix("errors/")
            .and_then(|n| n.strip_suffix(".md"))
            .filter(|n| *n != "index")
        {
            s.push_str(&format!(
                "  - [{}](reference/{p})\n",
                name.to_ascii_uppercase()
            ));
        }
    }
    s.push_str(END);
    s
}

fn with_summary(text: &str, section: &str) -> Option<String> {
    let a = text.find(BEGIN)?;
    let b = text[a..].find(END)? + a + END.len();
    Some(format!("{}{section}{}", &text[..a], &text[b..]))
}

/// Generated files under `dir/reference/{components,errors}` that no page produces.
fn left_over(dir: &Path, pages: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["components", "errors"] {
        let Ok(entries) = std::fs::read_dir(dir.join("reference").join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = format!("{sub}/{}", e.file_name().to_string_lossy());
            let generated = std::fs::read_to_string(e.path())
                .is_ok_and(|t| t.starts_with(osiris_registry::docs::GENERATED));
            if generated && !pages.iter().any(|(p, _)| *p == rel) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn generate(a: GenerateArgs) -> CmdResult {
    let registry = osiris_registry::Registry::builtin();
    let specs: Vec<&osiris_registry::ComponentSpec> = registry.iter().collect();
    let errors_md =
        std::fs::read_to_string(a.dir.join("errors.md")).unwrap_or_else(|_| ERRORS_MD.to_string());
    let pages = osiris_registry::docs::pages(&specs, &errors_md);
    let reference = a.dir.join("reference");
    let summary_path = a.dir.join("SUMMARY.md");
    let summary = std::fs::read_to_string(&summary_path)
        .ok()
        .and_then(|t| with_summary(&t, &summary_section(&pages)).map(|new| (t, new)));

    let mut stale: Vec<String> = Vec::new();
    for (p, text) in &pages {
        if std::fs::read_to_string(reference.join(p)).ok().as_deref() != Some(text.as_str()) {
            stale.push(format!("reference/{p}"));
        }
    }
    let extra = left_over(&a.dir, &pages);
    if let Some((old, new)) = &summary
        && old != new
    {
        stale.push("SUMMARY.md".to_string());
    }
    if a.check {
        let all: Vec<String> = stale
            .iter()
            .cloned()
            .chain(extra.iter().map(|p| format!("reference/{p} (left over)")))
            .collect();
        if all.is_empty() {
            // A failure is the error object `--format json` prints for every command.
            if a.format == Format::Json {
                outln!(
                    "{}",
                    serde_json::json!({ "ok": true, "pages": pages.len(), "stale": all })
                );
            } else {
                outln!(
                    "{} generated pages under {} are current",
                    pages.len(),
                    reference.display()
                );
            }
            return Ok(Exit::Ok);
        }
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: {} generated page(s) under `{}` are stale: {}\n  = help: run `osiris docs generate --dir {}` and commit the result",
                Code::CLI_E008,
                all.len(),
                a.dir.display(),
                all.join(", "),
                a.dir.display()
            ),
        ));
    }
    let write = |p: &Path, text: &str| {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, text)
    };
    for (p, text) in &pages {
        write(&reference.join(p), text).map_err(|e| {
            Fail::new(
                Exit::Validation,
                format!(
                    "error: cannot write `{}`: {e}\n  = help: check that the directory is writable",
                    reference.join(p).display()
                ),
            )
        })?;
    }
    for p in &extra {
        let _ = std::fs::remove_file(reference.join(p));
    }
    if let Some((old, new)) = &summary
        && old != new
    {
        let _ = std::fs::write(&summary_path, new);
    }
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::json!({ "ok": true, "pages": pages.len(), "written": stale, "removed": extra })
        );
    } else {
        outln!(
            "{} pages under {} ({} changed, {} removed)",
            pages.len(),
            reference.display(),
            stale.len(),
            extra.len()
        );
    }
    Ok(Exit::Ok)
}
