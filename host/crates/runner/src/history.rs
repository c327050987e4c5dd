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

/// The run `run_id` names (a unique prefix is enough). RUN-E007 when none or several match.
pub fn show(project: &Path, run_id: &str) -> Result<Shown, Fail> {
    let runs = read_index(project)?;
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
    })
}
