//! Past runs read back: the run index ([`crate::index`]: failed, cancelled, crashed and running runs included)
//! and each run's `status.json`. What `osiris runs list|show` prints and the MCP server's
//! `runs_list`/`runs_show` return; the runner wrote every byte of it through its redactor.

use osiris_core::codes::Code;
use osiris_core::diag::did_you_mean;
use osiris_core::exit::{Exit, Fail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// `<project>/.osiris/index/runs.jsonl`.
pub fn index_path(project: &Path) -> PathBuf {
    crate::index::path(project)
}

/// Every run of the project, oldest first (running ones last; a run whose process died is recorded as crashed
/// on the way, see [`crate::index`]).
pub fn read_index(project: &Path) -> Result<Vec<Value>, Fail> {
    crate::index::read(project).map_err(|m| Fail::new(Exit::Config, m))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Which runs [`list`] returns.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    /// Only runs of this pipeline (its id: the OML `name` slug).
    pub pipeline: Option<&'a str>,
    /// Only runs with this status (`succeeded`, `failed`, `cancelled`, `crashed`, `running`).
    pub status: Option<&'a str>,
    /// At most this many runs.
    pub limit: Option<usize>,
}

/// The indexed runs that match, newest first.
pub fn list(project: &Path, f: &Filter) -> Result<Vec<Value>, Fail> {
    let mut runs: Vec<Value> = read_index(project)?
        .into_iter()
        .filter(|r| f.pipeline.is_none_or(|p| s(r, "pipeline") == p))
        .filter(|r| f.status.is_none_or(|st| s(r, "status") == st))
        .collect();
    runs.reverse();
    if let Some(n) = f.limit {
        runs.truncate(n);
    }
    Ok(runs)
}

/// One run as `runs show` tells it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// `status.json` (with its steps), or the index line when the run directory is gone.
    pub status: Value,
    /// The run directory as the index records it (relative to the project when it is inside it).
    pub run_dir: String,
    pub dir_exists: bool,
    /// The run's own files that exist (`status.json`, `events.jsonl`, ...), under `run_dir`.
    pub files: Vec<String>,
    /// `artifacts/<step>/<file>` under `run_dir`, sorted.
    pub artifacts: Vec<String>,
    /// The run directory itself (absolute, or as the index has it).
    pub dir: PathBuf,
}

impl Shown {
    /// `status` with `run_dir`, `files` and `artifacts` added (`runs show --format json`).
    pub fn to_json(&self) -> Value {
        let mut v = self.status.clone();
        v["run_dir"] = json!(self.run_dir);
        v["files"] = json!(self.files);
        v["artifacts"] = json!(self.artifacts);
        v
    }
}

/// The run `run_id` names (a unique prefix is enough; `last` is the newest run). RUN-E007 when none or several
/// match.
pub fn show(project: &Path, run_id: &str) -> Result<Shown, Fail> {
    let runs = read_index(project)?;
    let newest;
    let run_id = match (
        run_id,
        runs.iter()
            .max_by(|a, b| s(a, "started_at").cmp(s(b, "started_at"))),
    ) {
        ("last", Some(r)) => {
            newest = s(r, "run_id").to_string();
            newest.as_str()
        }
        _ => run_id,
    };
    let matches: Vec<&Value> = runs
        .iter()
        .filter(|r| s(r, "run_id") == run_id)
        .chain(
            runs.iter()
                .filter(|r| s(r, "run_id") != run_id && s(r, "run_id").starts_with(run_id)),
        )
        .collect();
    let entry = match matches.as_slice() {
        [] => {
            let ids: Vec<&str> = runs.iter().map(|r| s(r, "run_id")).collect();
            let hint = match did_you_mean(run_id, ids.iter().copied()) {
                Some(m) => format!("did you mean `{m}`? "),
                None => String::new(),
            };
            return Err(Fail::new(
                Exit::Validation,
                format!(
                    "error[{}]: no run `{run_id}` in {}\n  = help: {hint}`osiris runs list` shows the recorded runs",
                    Code::RUN_E007,
                    index_path(project).display()
                ),
            ));
        }
        [one, ..] if s(one, "run_id") == run_id || matches.len() == 1 => *one,
        several => {
            return Err(Fail::new(
                Exit::Validation,
                format!(
                    "error[{}]: `{run_id}` is the start of several run ids: {}\n  = help: give more of the id",
                    Code::RUN_E007,
                    several
                        .iter()
                        .map(|r| format!("`{}`", s(r, "run_id")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let run_dir = s(entry, "run_dir").to_string();
    let dir = if Path::new(&run_dir).is_absolute() {
        PathBuf::from(&run_dir)
    } else {
        project.join(&run_dir)
    };
    // status.json is the full record (with steps); the index line is the fallback when the directory is gone.
    let (status, dir_exists) = match std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    {
        Some(v) => (v, true),
        None => (entry.clone(), dir.is_dir()),
    };
    let files: Vec<String> = [
        "status.json",
        "events.jsonl",
        "metrics.jsonl",
        "osiris.log",
        "manifest.yaml",
    ]
    .iter()
    .filter(|f| dir.join(f).is_file())
    .map(|f| format!("{run_dir}/{f}"))
    .collect();
    let mut artifacts: Vec<String> = Vec::new();
    if let Ok(steps) = std::fs::read_dir(dir.join("artifacts")) {
        for st in steps.flatten() {
            if let Ok(fs) = std::fs::read_dir(st.path()) {
                for f in fs.flatten() {
                    artifacts.push(format!(
                        "{run_dir}/artifacts/{}/{}",
                        st.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    ));
                }
            }
        }
    }
    artifacts.sort();
    Ok(Shown {
        status,
        run_dir,
        dir_exists,
        files,
        artifacts,
        dir,
    })
}

/// The events of a run directory's `events.jsonl`, oldest first, each as one flat object: `event` (the
/// envelope's `type`), `ts`, and the payload's fields (`step`, ...). Damaged lines are skipped.
pub fn read_events(dir: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(dir.join("events.jsonl")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| flat_event(&v))
        .collect()
}

/// An event line as a flat object (see [`read_events`]): an envelope's payload with `event` and `ts` added.
pub fn flat_event(v: &Value) -> Option<Value> {
    if let (Some(t), Some(Value::Object(p))) =
        (v.get("type").and_then(Value::as_str), v.get("payload"))
    {
        let mut m = p.clone();
        m.insert("event".into(), json!(t));
        m.insert(
            "ts".into(),
            v.get("timestamp").cloned().unwrap_or(Value::Null),
        );
        return Some(Value::Object(m));
    }
    v.get("event").and_then(Value::as_str).map(|_| v.clone())
}

/// A run as `runs view` tells it: where it is in its state machine (NEW -> COMPILED -> RUNNING -> SUCCEEDED |
/// FAILED | CANCELLED, or CRASHED when its process died) and the paths of its artifacts.
pub fn view(project: &Path, run_id: &str) -> Result<Value, Fail> {
    let shown = show(project, run_id)?;
    Ok(view_of(&shown, &read_events(&shown.dir)))
}

/// [`view`] of a run already found.
pub fn view_of(shown: &Shown, events: &[Value]) -> Value {
    let st = &shown.status;
    let first = |name: &str| {
        events
            .iter()
            .find(|e| e["event"] == name)
            .and_then(|e| e.get("ts").cloned())
    };
    let status = s(st, "status");
    let terminal = match status {
        "succeeded" => Some("SUCCEEDED"),
        "failed" => Some("FAILED"),
        "cancelled" => Some("CANCELLED"),
        "crashed" => Some("CRASHED"),
        _ => None,
    };
    let compiled_at = first("run_start");
    let running_at = first("step_start");
    let mut states = vec![json!({ "state": "NEW", "at": st.get("started_at") })];
    // The run directory holds the manifest it ran: the run got as far as a compiled manifest.
    if compiled_at.is_some() || shown.dir.join("manifest.yaml").is_file() {
        states.push(json!({ "state": "COMPILED", "at": compiled_at }));
    }
    if running_at.is_some() || status == "running" {
        states.push(json!({ "state": "RUNNING", "at": running_at }));
    }
    if let Some(t) = terminal {
        states.push(json!({ "state": t, "at": st.get("ended_at") }));
    }
    let state = states
        .last()
        .and_then(|v| v["state"].as_str())
        .unwrap_or("NEW")
        .to_string();
    let mut artifacts = serde_json::Map::new();
    for f in &shown.files {
        let name = f.rsplit('/').next().unwrap_or(f);
        artifacts.insert(name.to_string(), json!(f));
    }
    if shown.dir.join("report.html").is_file() {
        artifacts.insert(
            "report.html".into(),
            json!(format!("{}/report.html", shown.run_dir)),
        );
    }
    json!({
        "run_id": st.get("run_id"),
        "pipeline": st.get("pipeline"),
        "profile": st.get("profile"),
        "state": state,
        "states": states,
        "exit_code": st.get("exit_code"),
        "failed_step": st.get("failed_step"),
        "error": st.get("error"),
        "run_dir": shown.run_dir,
        "run_dir_exists": shown.dir_exists,
        "files": artifacts,
        "artifacts": shown.artifacts,
    })
}
