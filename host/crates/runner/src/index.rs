//! The run index of a project: `.osiris/index/runs.jsonl`, one line per finished run, and
//! `.osiris/index/active/<run_id>.json` for each run still going.
//!
//! A run writes its active record when it starts and holds an exclusive lock on it until it ends; then it
//! appends its final line to `runs.jsonl` and removes the active record. A process killed outright (SIGKILL, a
//! power cut) cannot remove it, but the kernel drops its lock, so the next reader ([`read`]) knows the run is
//! not going any more: it records the run as `crashed` (final index line, and `status.json` in the run
//! directory when the run wrote none), then removes the active record. Lines are appended under an exclusive
//! lock of the index file, so runs that end together never interleave a line.
//!
//! Invariant: every run that started appears in [`read`] exactly once: `running` while its process lives,
//! then with its final status (`succeeded`, `failed`, `cancelled` or `crashed`).

use serde_json::{Value, json};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `.osiris/index` of the project.
pub fn dir(project: &Path) -> PathBuf {
    project.join(".osiris").join("index")
}

/// `.osiris/index/runs.jsonl` of the project.
pub fn path(project: &Path) -> PathBuf {
    dir(project).join("runs.jsonl")
}

fn active_dir(project: &Path) -> PathBuf {
    dir(project).join("active")
}

/// Appends one line to `runs.jsonl` under an exclusive lock of the file.
pub fn append(project: &Path, line: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir(project))?;
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path(project))?;
    f.lock()?;
    let r = f.write_all(format!("{line}\n").as_bytes());
    let _ = f.unlock();
    r
}

/// The active record of a running run; dropping it (or the process ending) releases its lock.
pub struct Active {
    path: PathBuf,
    _file: File,
}

impl Active {
    /// Writes `record` (already redacted) as the run's active record and locks it for the life of the run.
    /// `None` when the index directory cannot be written: the run goes on, unindexed until it ends.
    pub fn begin(project: &Path, run_id: &str, record: &Value) -> Option<Active> {
        let dir = active_dir(project);
        std::fs::create_dir_all(&dir).ok()?;
        let path = dir.join(format!("{run_id}.json"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .ok()?;
        file.lock().ok()?;
        file.write_all(record.to_string().as_bytes()).ok()?;
        file.sync_all().ok()?;
        Some(Active { path, _file: file })
    }

    /// The run has appended its final line: its active record goes.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Every run of the project, oldest first: the lines of `runs.jsonl` and the active records (`running`, or
/// `crashed` when no process holds them any more, which this call then records for good). A damaged line is
/// skipped with a warning in the log. Errors are rendered messages.
pub fn read(project: &Path) -> Result<Vec<Value>, String> {
    let mut runs = read_lines(project)?;
    let Ok(entries) = std::fs::read_dir(active_dir(project)) else {
        return Ok(runs);
    };
    let mut active: Vec<(String, Value)> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(file) = File::open(&p) else {
            continue;
        };
        let record = std::fs::read_to_string(&p)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        match file.try_lock() {
            Err(TryLockError::WouldBlock) => {
                if let Some(mut r) = record {
                    r["status"] = json!("running");
                    active.push((started(&r), r));
                }
            }
            Ok(()) => {
                // No process holds it: the run ended without finishing, unless it finished just before this
                // reader looked (it removes its record before it lets go of the lock).
                if !p.exists() {
                    continue;
                }
                let Some(r) = record else {
                    let _ = std::fs::remove_file(&p);
                    continue;
                };
                let id = r.get("run_id").and_then(Value::as_str).unwrap_or_default();
                let finished = read_lines(project)
                    .unwrap_or_default()
                    .iter()
                    .any(|x| x["run_id"] == id);
                if finished {
                    let _ = std::fs::remove_file(&p);
                    continue;
                }
                let crashed = crash_record(project, &r);
                // Recorded for good when the index can be written; listed as crashed either way.
                if append(project, &crashed.to_string()).is_ok() {
                    let _ = std::fs::remove_file(&p);
                }
                runs.push(crashed);
            }
            Err(TryLockError::Error(_)) => {}
        }
    }
    active.sort_by(|a, b| a.0.cmp(&b.0));
    runs.extend(active.into_iter().map(|(_, r)| r));
    Ok(runs)
}

fn started(r: &Value) -> String {
    r.get("started_at")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The final record of a run whose process died: what its active record knew, status `crashed`; also its
/// `status.json` when the run directory has none.
fn crash_record(project: &Path, active: &Value) -> Value {
    let mut r = active.clone();
    r["status"] = json!("crashed");
    r["exit_code"] = Value::Null;
    r["ended_at"] = Value::Null;
    r["error"] = json!(
        "the osiris process running this run ended without finishing it (killed, or the machine stopped); \
         targets of transactional writers are as they were before the run"
    );
    if let Some(d) = r.get("run_dir").and_then(Value::as_str) {
        let dir = if Path::new(d).is_absolute() {
            PathBuf::from(d)
        } else {
            project.join(d)
        };
        let status = dir.join("status.json");
        if dir.is_dir() && !status.exists() {
            let tmp = dir.join(".status.json.tmp");
            if std::fs::write(&tmp, format!("{r:#}\n")).is_ok() {
                let _ = std::fs::rename(&tmp, &status);
            }
        }
    }
    r
}

fn read_lines(project: &Path) -> Result<Vec<Value>, String> {
    let path = path(project);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "error: cannot read the run index `{}`: {e}",
                path.display()
            ));
        }
    };
    let mut runs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("run_id").is_some_and(Value::is_string) => runs.push(v),
            _ => tracing::warn!("{}:{}: not a run record, skipped", path.display(), i + 1),
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_running_while_its_record_is_locked_and_crashed_once_it_is_not() {
        let p = tempfile::tempdir().unwrap();
        let run_dir = p.path().join("run_logs/x");
        std::fs::create_dir_all(&run_dir).unwrap();
        let rec = json!({"run_id": "r1", "status": "running", "started_at": "2026-01-01T00:00:00Z",
                         "run_dir": "run_logs/x", "pipeline": "p"});
        let active = Active::begin(p.path(), "r1", &rec).unwrap();
        let runs = read(p.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["status"], "running");
        assert!(
            !path(p.path()).exists(),
            "a running run writes no index line"
        );
        // Dropping the handle releases the lock as the kernel does for a killed process.
        drop(active);
        let runs = read(p.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["status"], "crashed");
        let status: Value =
            serde_json::from_str(&std::fs::read_to_string(run_dir.join("status.json")).unwrap())
                .unwrap();
        assert_eq!(status["status"], "crashed");
        // Recorded for good: the index holds one line and no active record is left.
        assert_eq!(read_lines(p.path()).unwrap().len(), 1);
        assert_eq!(std::fs::read_dir(active_dir(p.path())).unwrap().count(), 0);
        assert_eq!(read(p.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_finished_run_is_listed_once() {
        let p = tempfile::tempdir().unwrap();
        let rec =
            json!({"run_id": "r2", "status": "running", "started_at": "2026-01-01T00:00:00Z"});
        let active = Active::begin(p.path(), "r2", &rec).unwrap();
        append(
            p.path(),
            &json!({"run_id": "r2", "status": "succeeded"}).to_string(),
        )
        .unwrap();
        active.finish();
        let runs = read(p.path()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0]["status"], "succeeded");
    }
}
