//! `osiris state list|show|reset`: the incremental marks under `.osiris/state/<profile>/<pipeline>/<step>.json`
//! (ADR 0018).

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit};
use osiris_runner::state::{self, State};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum StateCmd {
    /// Every incremental mark of the project: pipeline, profile, step, cursor, value, the run that set it.
    List(ListArgs),
    /// One pipeline's marks (all its steps, or `--step ID`).
    Show(PipelineArgs),
    /// Forget one pipeline's marks (all its steps, or `--step ID`): its next run reads from `initial_value`, or
    /// everything.
    Reset(PipelineArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// The pipeline's id (its `pipeline.id`), or its OML file.
    pub pipeline: String,
    /// Only this step.
    #[arg(long, value_name = "ID")]
    pub step: Option<String>,
    /// Only this profile [default: every profile].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: StateCmd) -> CmdResult {
    let project = super::run::project_dir(g);
    match c {
        StateCmd::List(a) => list(&project, a.format, |_| true),
        StateCmd::Show(a) => {
            let id = pipeline_id(&a.pipeline);
            list(&project, a.format, |s| selected(s, &id, &a))
        }
        StateCmd::Reset(a) => reset(&project, &a),
    }
}

/// A pipeline named by its id, or by its OML file (whose `pipeline.id` or `name` is read).
fn pipeline_id(arg: &str) -> String {
    let p = Path::new(arg);
    if p.is_file()
        && let Ok(text) = std::fs::read_to_string(p)
        && let Ok(v) = serde_yaml::from_str::<Value>(&text)
    {
        for ptr in ["/pipeline/id", "/id", "/name"] {
            if let Some(id) = v.pointer(ptr).and_then(Value::as_str) {
                return id.to_string();
            }
        }
    }
    arg.to_string()
}

fn selected(s: &State, pipeline: &str, a: &PipelineArgs) -> bool {
    s.pipeline == pipeline
        && a.step.as_ref().is_none_or(|x| *x == s.step)
        && a.profile.as_ref().is_none_or(|x| *x == s.profile)
}

fn shown(project: &Path, p: &Path) -> String {
    p.strip_prefix(project).unwrap_or(p).display().to_string()
}

fn list(project: &Path, format: Format, keep: impl Fn(&State) -> bool) -> CmdResult {
    let all = state::list(project);
    let mut rows: Vec<Value> = Vec::new();
    let mut broken: Vec<(PathBuf, String)> = Vec::new();
    for (path, s) in all {
        match s {
            Ok(s) if keep(&s) => {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                v["path"] = json!(shown(project, &path));
                rows.push(v);
            }
            Ok(_) => {}
            Err(e) => broken.push((path, e)),
        }
    }
    if format == Format::Json {
        let broken: Vec<Value> = broken
            .iter()
            .map(|(p, e)| json!({ "path": shown(project, p), "error": e }))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "states": rows, "unreadable": broken }))
                .unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    if rows.is_empty() && broken.is_empty() {
        outln!(
            "no incremental state (it is kept in {} once an incremental run succeeds)",
            shown(project, &project.join(".osiris/state"))
        );
        return Ok(Exit::Ok);
    }
    if !rows.is_empty() {
        outln!(
            "{:<24} {:<10} {:<16} {:<20} {:<32} {:<17} {:>10}",
            "PIPELINE",
            "PROFILE",
            "STEP",
            "CURSOR",
            "MARK",
            "RUN",
            "ROWS"
        );
    }
    for r in &rows {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let join = |k: &str| {
            r[k].as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            v => v.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        outln!(
            "{:<24} {:<10} {:<16} {:<20} {:<32} {:<17} {:>10}",
            text("pipeline"),
            text("profile"),
            text("step"),
            join("cursor"),
            join("value"),
            text("run_id"),
            r["rows"]
        );
    }
    for (p, e) in &broken {
        errln!(
            "warning: {} cannot be used: {e} (`osiris state reset` removes it)",
            shown(project, p)
        );
    }
    Ok(Exit::Ok)
}

fn reset(project: &Path, a: &PipelineArgs) -> CmdResult {
    let id = pipeline_id(&a.pipeline);
    let mut removed: Vec<String> = Vec::new();
    for (path, s) in state::list(project) {
        // An unreadable file is removed too when its place says it is this pipeline's (and step's).
        let mine = match &s {
            Ok(s) => selected(s, &id, a),
            Err(_) => {
                let parts: Vec<String> = path
                    .strip_prefix(project.join(".osiris/state"))
                    .unwrap_or(&path)
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                parts.len() == 3
                    && parts[1] == osiris_core::file_name_part(&id)
                    && a.profile
                        .as_ref()
                        .is_none_or(|p| parts[0] == osiris_core::file_name_part(p))
                    && a.step.as_ref().is_none_or(|st| {
                        parts[2] == format!("{}.json", osiris_core::file_name_part(st))
                    })
            }
        };
        if mine {
            std::fs::remove_file(&path).map_err(|e| {
                osiris_core::exit::Fail::new(
                    Exit::Validation,
                    format!("error: cannot remove {}: {e}", shown(project, &path)),
                )
            })?;
            removed.push(shown(project, &path));
        }
    }
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "removed": removed })).unwrap_or_default()
        );
    } else if removed.is_empty() {
        outln!("no incremental state of `{id}` to reset");
    } else {
        for r in &removed {
            outln!("removed {r}");
        }
        outln!("the next run of `{id}` reads from `initial_value`, or every row");
    }
    Ok(Exit::Ok)
}
