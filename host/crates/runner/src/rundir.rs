//! The run directory and everything written into it. Every line passes through the [`Redactor`] first.
//!
//! ```text
//! run_logs/<profile>/<pipeline>/<ts>_<run_id>-<manifest_short>/
//!   manifest.yaml  cfg/<step>.json       copies of what ran
//!   events.jsonl   one envelope a line: {id, correlation_id, timestamp, source, type, schema_ref, payload}
//!   metrics.jsonl  {ts, run_id, metric, value, unit?, step?}
//!   osiris.log     human-readable log (host and plugins)
//!   status.json    final status, also for failed and cancelled runs
//!   artifacts/<step>/cleaned_config.json
//! ```

use osiris_core::secrets::Redactor;
use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// `run-` + 12 random hex digits.
pub fn new_run_id() -> String {
    let mut b = [0u8; 6];
    if getrandom::fill(&mut b).is_err() {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&n.to_le_bytes()[..6]);
    }
    format!("run-{}", hex::encode(b))
}

/// Writes the run directory's files; cheap to share between threads.
pub struct RunLog {
    pub dir: PathBuf,
    pub run_id: String,
    redactor: Arc<Redactor>,
    events: Mutex<File>,
    metrics: Mutex<File>,
    log: Mutex<File>,
    /// The number of the last envelope emitted.
    seq: AtomicU64,
}

fn open_append(p: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

impl RunLog {
    pub fn create(dir: &Path, run_id: &str, redactor: Arc<Redactor>) -> std::io::Result<RunLog> {
        std::fs::create_dir_all(dir.join("cfg"))?;
        std::fs::create_dir_all(dir.join("artifacts"))?;
        Ok(RunLog {
            dir: dir.to_path_buf(),
            run_id: run_id.to_string(),
            events: Mutex::new(open_append(&dir.join("events.jsonl"))?),
            metrics: Mutex::new(open_append(&dir.join("metrics.jsonl"))?),
            log: Mutex::new(open_append(&dir.join("osiris.log"))?),
            redactor,
            seq: AtomicU64::new(0),
        })
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn line(&self, file: &Mutex<File>, v: &Value) {
        let masked = self.redactor.json(v, &[]);
        let text = self.redactor.text(&masked.to_string());
        let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{text}");
    }

    /// One event, as an envelope (ADR 0015) of type `event` whose payload is `step` and `fields` (an object);
    /// returns the envelope as written (redacted).
    pub fn event(&self, event: &str, step: Option<&str>, fields: Value) -> Value {
        let mut m = Map::new();
        if let Some(s) = step {
            m.insert("step".into(), s.into());
        }
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let envelope = crate::envelope::make(
            &self.run_id,
            seq,
            crate::envelope::Source::Runner,
            event,
            &now_rfc3339(),
            m,
        );
        let masked = self.redactor.json(&envelope, &[]);
        let text = self.redactor.text(&masked.to_string());
        let mut f = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{text}");
        serde_json::from_str(&text).unwrap_or(masked)
    }

    pub fn metric(&self, step: Option<&str>, name: &str, value: f64, unit: Option<&str>) {
        let mut m = Map::new();
        m.insert("ts".into(), now_rfc3339().into());
        m.insert("run_id".into(), self.run_id.clone().into());
        m.insert("metric".into(), name.into());
        m.insert("value".into(), json_number(value));
        if let Some(u) = unit {
            m.insert("unit".into(), u.into());
        }
        if let Some(s) = step {
            m.insert("step".into(), s.into());
        }
        self.line(&self.metrics, &Value::Object(m));
    }

    /// A log line in osiris.log (redacted), also sent to tracing.
    pub fn log(&self, level: &str, step: Option<&str>, message: &str) {
        self.log_to(level, step, message, true)
    }

    /// A log line in osiris.log only (for what the command prints itself at the end, e.g. the run's error).
    pub fn log_file_only(&self, level: &str, step: Option<&str>, message: &str) {
        self.log_to(level, step, message, false)
    }

    fn log_to(&self, level: &str, step: Option<&str>, message: &str, trace: bool) {
        let message = self.redactor.text(message);
        if trace {
            self.trace(level, step, &message);
        }
        let step = step.map(|s| format!(" [{s}]")).unwrap_or_default();
        let mut f = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(f, "{} {level:<5}{step} {message}", now_rfc3339());
    }

    /// A line about the run as a whole has no `step` field (not an empty one).
    fn trace(&self, level: &str, step: Option<&str>, message: &str) {
        match (level, step) {
            ("ERROR", Some(step)) => tracing::error!(step, "{message}"),
            ("ERROR", None) => tracing::error!("{message}"),
            ("WARN", Some(step)) => tracing::warn!(step, "{message}"),
            ("WARN", None) => tracing::warn!("{message}"),
            ("INFO", Some(step)) => tracing::info!(step, "{message}"),
            ("INFO", None) => tracing::info!("{message}"),
            ("DEBUG", Some(step)) => tracing::debug!(step, "{message}"),
            ("DEBUG", None) => tracing::debug!("{message}"),
            (_, Some(step)) => tracing::trace!(step, "{message}"),
            (_, None) => tracing::trace!("{message}"),
        }
    }

    /// Writes a file under the run directory, redacting its text.
    pub fn write_text(&self, rel: &str, text: &str) -> std::io::Result<()> {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, self.redactor.text(text))
    }

    pub fn write_json(&self, rel: &str, v: &Value) -> std::io::Result<()> {
        let masked = self.redactor.json(v, &[]);
        let mut text = serde_json::to_string_pretty(&masked).unwrap_or_default();
        text.push('\n');
        self.write_text(rel, &text)
    }
}

/// Integral values as JSON integers (`3`, not `3.0`).
pub fn json_number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        json!(v)
    }
}
