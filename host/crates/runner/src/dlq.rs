//! The dead-letter queue of a project: `.osiris/dlq/<topic>/<envelope-id>.json`, one redacted envelope
//! ([`crate::envelope`]) per failed compile (topic `compile`, type `compile_error`) or failed run (topic `run`,
//! the run's final `run_end` envelope). An item holds what is needed to do the work again: `osiris runs replay`
//! re-runs the manifest (or re-compiles the pipeline) it names. Nothing here reads a secret.

use osiris_core::codes::Code;
use osiris_core::exit::{Exit, Fail};
use osiris_core::secrets::Redactor;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The topic of failed runs.
pub const RUN: &str = "run";
/// The topic of pipelines that did not compile.
pub const COMPILE: &str = "compile";

/// `<project>/.osiris/dlq`.
pub fn dir(project: &Path) -> PathBuf {
    project.join(".osiris").join("dlq")
}

/// Writes `envelope` (redacted again on the way) to `<dlq>/<topic>/<id>.json`; returns the file.
pub fn write(
    project: &Path,
    topic: &str,
    envelope: &Value,
    redactor: &Redactor,
) -> std::io::Result<PathBuf> {
    let id = envelope["id"].as_str().unwrap_or("unknown");
    let d = dir(project).join(topic);
    std::fs::create_dir_all(&d)?;
    let masked = redactor.json(envelope, &[]);
    let text = redactor.text(&serde_json::to_string_pretty(&masked).unwrap_or_default());
    let file = d.join(format!("{id}.json"));
    let tmp = d.join(format!(".{id}.json.tmp"));
    std::fs::write(&tmp, format!("{text}\n"))?;
    std::fs::rename(&tmp, &file)?;
    Ok(file)
}

/// One item of the queue.
#[derive(Debug, Clone)]
pub struct Item {
    pub topic: String,
    /// The file, relative to the project.
    pub path: String,
    pub envelope: Value,
}

impl Item {
    /// What `runs dlq list --format json` prints for it.
    pub fn to_json(&self) -> Value {
        let e = &self.envelope;
        let p = &e["payload"];
        json!({
            "id": e["id"], "topic": self.topic, "type": e["type"], "correlation_id": e["correlation_id"],
            "timestamp": e["timestamp"], "path": self.path,
            "pipeline": p["pipeline"], "failed_step": p["failed_step"],
            "error": p["error"].as_str().and_then(|t| t.lines().next()),
        })
    }
}

/// Every item, oldest first. A file that is not an envelope is skipped.
pub fn list(project: &Path) -> Vec<Item> {
    let mut items = Vec::new();
    let Ok(topics) = std::fs::read_dir(dir(project)) else {
        return items;
    };
    for t in topics.flatten() {
        let Ok(files) = std::fs::read_dir(t.path()) else {
            continue;
        };
        let topic = t.file_name().to_string_lossy().into_owned();
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            if let Some(envelope) = read_envelope(&p) {
                items.push(Item {
                    topic: topic.clone(),
                    path: p.strip_prefix(project).unwrap_or(&p).display().to_string(),
                    envelope,
                });
            }
        }
    }
    items.sort_by(|a, b| {
        let k = |i: &Item| {
            (
                i.envelope["timestamp"].as_str().unwrap_or("").to_string(),
                i.path.clone(),
            )
        };
        k(a).cmp(&k(b))
    });
    items
}

fn read_envelope(p: &Path) -> Option<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
    (v["id"].is_string() && v["type"].is_string() && v["payload"].is_object()).then_some(v)
}

fn dlq_error(what: &str, help: &str) -> Fail {
    Fail::new(
        Exit::Validation,
        format!("error[{}]: {what}\n  = help: {help}", Code::RUN_E010),
    )
}

/// The item `reference` names: a file (an envelope anywhere), the id of an item of the queue (a unique prefix
/// is enough), or `last`, the newest item.
pub fn find(project: &Path, reference: &str) -> Result<Value, Fail> {
    let as_path = Path::new(reference);
    if as_path.is_file() {
        return read_envelope(as_path).ok_or_else(|| {
            dlq_error(
                &format!("`{reference}` is not an osiris envelope (id, type and payload)"),
                "pass a file from `osiris runs dlq list` or its id",
            )
        });
    }
    let items = list(project);
    if reference == "last"
        && let Some(newest) = items.last()
    {
        return Ok(newest.envelope.clone());
    }
    let hits: Vec<&Item> = items
        .iter()
        .filter(|i| {
            i.envelope["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(reference))
        })
        .collect();
    match hits.as_slice() {
        [one] => Ok(one.envelope.clone()),
        [] => Err(dlq_error(
            &format!(
                "no dead-letter item `{reference}` in `{}`",
                dir(project).display()
            ),
            "`osiris runs dlq list` shows the items",
        )),
        _ => Err(dlq_error(
            &format!("`{reference}` is the start of several dead-letter item ids"),
            "give more of the id",
        )),
    }
}

/// The command line (without the program name) that does the item's work again, with paths resolved against
/// `project`: `run <manifest dir>` for a failed run (its compile directory, else the run directory, which holds
/// the manifest and configs it ran), `compile|run <pipeline>` for a pipeline that did not compile.
pub fn replay_args(project: &Path, envelope: &Value) -> Result<Vec<String>, Fail> {
    let p = &envelope["payload"];
    let abs = |s: &str| {
        let path = Path::new(s);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            project.join(path)
        }
    };
    match envelope["type"].as_str() {
        Some("run_end") => {
            let dir = ["manifest_dir", "run_dir"]
                .iter()
                .filter_map(|k| p[*k].as_str())
                .map(abs)
                .find(|d| d.join("manifest.yaml").is_file())
                .ok_or_else(|| {
                    dlq_error(
                        "the failed run's manifest is gone: neither its compile directory nor its run directory holds a manifest.yaml",
                        "compile the pipeline again and run it: `osiris run <pipeline.yaml>`",
                    )
                })?;
            Ok(vec!["run".into(), dir.display().to_string()])
        }
        Some("compile_error") => {
            let file = abs(p["pipeline"].as_str().unwrap_or_default());
            let command = match p["command"].as_str() {
                Some("run") => "run",
                _ => "compile",
            };
            Ok(vec![command.into(), file.display().to_string()])
        }
        other => Err(dlq_error(
            &format!(
                "an envelope of type `{}` cannot be replayed",
                other.unwrap_or("?")
            ),
            "only `run_end` (a failed run) and `compile_error` items are replayed",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_written_listed_and_found_by_id_prefix() {
        let p = tempfile::tempdir().unwrap();
        let r = Redactor::new(osiris_core::secrets::Strategy::Mask, "***");
        r.add_secrets(["hunter2-secret-value"]);
        let mut payload = serde_json::Map::new();
        payload.insert("status".into(), json!("failed"));
        payload.insert("error".into(), json!("login hunter2-secret-value refused"));
        let e = crate::envelope::make(
            "run-aaaaaaaaaaaa",
            9,
            crate::envelope::Source::Runner,
            "run_end",
            "2026-01-01T00:00:00Z",
            payload,
        );
        let f = write(p.path(), RUN, &e, &r).unwrap();
        assert!(f.ends_with(".osiris/dlq/run/run-aaaaaaaaaaaa-e00009.json"));
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        let items = list(p.path());
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].topic, "run");
        assert_eq!(find(p.path(), "run-aaaa").unwrap()["id"], e["id"]);
        assert!(find(p.path(), "run-b").is_err());
        assert!(replay_args(p.path(), &e).is_err(), "no manifest to replay");
    }
}
