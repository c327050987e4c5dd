//! `osiris-runner`: executes a compiled manifest directory (never OML), and discovers what a connection holds
//! ([`discovery`]). It links the first-party plugins ([`modules`]) and asks `osiris-plugins` for third-party
//! ones; depends on `osiris-core`, `osiris-registry`, `osiris-plugins` and the SDK. May not: parse OML,
//! compile, or print: progress goes to the writer the caller passes, results are returned.
//!
//!
//! - Steps start in dependency order; independent branches run concurrently (driver calls on tokio's blocking
//!   pool, at most `max_parallel` at once).
//! - Data flows as Arrow streams: a step starts as soon as its upstream steps have *returned* their output
//!   streams, and pulls them while they are produced, so a linear chain streams end to end without the host
//!   collecting anything. An output read by several steps goes through a bounded tee: pulled once, each reader
//!   fed through a bounded channel, all readers started together (see docs/adr/0006-runner-streaming.md).
//! - A step failure stops scheduling and cancels the running steps (they see `ctx.is_cancelled()`); the run
//!   ends with exit 4 naming step, component, plugin and the (masked) driver error.
//! - SIGINT (Ctrl-C) and SIGTERM cancel the run the same way; a step that has not returned [`cancel::GRACE`]
//!   later (blocked inside its driver) is abandoned, so the run always ends, with status `cancelled`, exit 130
//!   and the rows counted so far.
//! - `--retries N` re-runs a failed step with exponential backoff when its component declares it safe
//!   (extractors; writers with `capabilities.transactions`), re-reading the connection's secrets first.
//! - Everything written or printed passes through one [`Redactor`] holding every secret value of this run.
//!
//! Invariant: the run directory holds no secret value: cfg files are secret-free by construction (the compiler
//! keeps `@family.alias` references) and every other byte goes through the redactor.

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod cancel;
pub mod discovery;
pub mod dlq;
pub mod envelope;
pub mod history;
pub mod incremental;
pub mod index;
pub mod manifest;
pub mod modules;
pub mod progress;
pub mod report;
pub mod rundir;
pub mod state;
pub mod tee;

use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use manifest::{Compiled, Step};
use modules::{ModuleSet, Provider};
use osiris_core::codes::Code;
use osiris_core::exit::{Exit, Fail};
use osiris_core::secrets::{Connections, Redactor, Strategy};
use osiris_plugin_sdk::{BatchStream, ContextBackend, ErrorKind, Level, PluginError, Streams};
use rundir::{RunLog, json_number, now_rfc3339};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// Re-reads the connections (secrets file, environment, connections file) before a retried attempt.
pub type ReloadConnections = Arc<dyn Fn() -> Result<Connections, Fail> + Send + Sync>;

/// Everything a run needs besides the manifest.
pub struct RunOptions {
    pub compiled: Compiled,
    /// Where `.osiris/index/runs.jsonl` lives and relative `logs_dir` resolves.
    pub project_dir: PathBuf,
    pub logs_dir: PathBuf,
    /// `--out DIR`: the run directory itself.
    pub out: Option<PathBuf>,
    pub profile: Option<String>,
    pub connections: Connections,
    pub max_parallel: usize,
    pub modules: ModuleSet,
    /// component -> JSON Pointers of its secret config fields (from the registry's secret map).
    pub secret_pointers: BTreeMap<String, Vec<String>>,
    /// connection family -> every field a component of that family reads (config properties and
    /// `x-connection-fields`); a connection field outside it is refused before any step runs (RUN-E008).
    pub connection_fields: BTreeMap<String, BTreeSet<String>>,
    /// Set by SIGINT (Ctrl-C), SIGTERM or a failed step; seen by drivers through `ctx.is_cancelled()`.
    pub cancel: Arc<AtomicBool>,
    /// `--retries N`: attempts after the first, for retry-safe steps.
    pub retries: u32,
    /// Components whose spec declares `capabilities.transactions: true` (their writes may be retried).
    pub transactional: BTreeSet<String>,
    /// How to re-read secrets before a retry; `None` reuses `connections`.
    pub reload: Option<ReloadConnections>,
    /// Where per-step progress is shown while the run goes on, if anywhere (the CLI passes stderr when it is a
    /// terminal); the runner itself never prints.
    pub progress: Option<Box<dyn std::io::Write + Send>>,
    /// `--full-refresh`: incremental extractors ignore their state; writers they feed rebuild their tables.
    pub full_refresh: bool,
    /// `--resume RUN_ID`: what that run's per-chunk writers had committed.
    pub resume: Option<incremental::Resume>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// What a run produced, for the CLI to print.
pub struct Outcome {
    pub status: RunStatus,
    pub exit: Exit,
    pub run_id: String,
    pub run_dir: PathBuf,
    /// The content of status.json.
    pub summary: Value,
    /// The (masked) error message for a failed run.
    pub error: Option<String>,
}

/// Per-step numbers: the driver's metrics, the host's live row count, timing and attempts.
#[derive(Default)]
pub struct StepStats {
    rows_read: Mutex<Option<f64>>,
    rows_written: Mutex<Option<f64>>,
    /// Rows of this step's outputs seen by the host so far (for progress).
    pub live_rows: AtomicU64,
    /// When the step's first attempt got its slot.
    pub started: Mutex<Option<Instant>>,
    /// Set when the step reached a final state.
    pub finished: AtomicBool,
    pub attempts: AtomicU32,
    /// Final duration, set with `finished`.
    pub duration_ms: AtomicU64,
    /// `succeeded`, `failed`, `cancelled`, `not_started`, once final.
    pub outcome: Mutex<Option<&'static str>>,
}

impl StepStats {
    fn get(slot: &Mutex<Option<f64>>) -> Option<f64> {
        *slot.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn elapsed_ms(&self) -> u64 {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The host side of a step's `Context`.
struct StepCtx {
    step: String,
    log: Arc<RunLog>,
    cancel: Arc<AtomicBool>,
    connection: Option<Value>,
    stats: Arc<StepStats>,
}

impl ContextBackend for StepCtx {
    fn log(&self, level: Level, message: &str) {
        let l = match level {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        self.log.log(l, Some(&self.step), message);
    }
    fn metric(&self, name: &str, value: f64, unit: Option<&str>) {
        self.log.metric(Some(&self.step), name, value, unit);
        let slot = match name {
            "rows_read" => &self.stats.rows_read,
            "rows_written" => &self.stats.rows_written,
            _ => return,
        };
        let mut s = slot.lock().unwrap_or_else(|e| e.into_inner());
        *s = Some(s.unwrap_or(0.0) + value);
    }
    fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
    fn connection(&self) -> Option<Value> {
        self.connection.clone()
    }
}

enum Ev {
    RunReturned {
        step: String,
        result: Result<Streams, PluginError>,
        /// Why a failure was not retried although `--retries` asked for it.
        not_retried: Option<String>,
    },
    /// Re-reading the connection before a retry failed (exit 5).
    ConnectionFailed {
        step: String,
        message: String,
    },
    StreamEnded {
        step: String,
        rows: u64,
        error: Option<String>,
        early: bool,
    },
    Collected {
        step: String,
        result: Result<(SchemaRef, Arc<Vec<RecordBatch>>), String>,
    },
    Drained,
    /// The extractor `step` runs again for its retrying reader: its next stream replaces the one that failed.
    Rerun {
        step: String,
    },
}

/// Runs an extractor again for the writer that reads it (see [`Job::rerun_inputs`]): a new stream, tracked
/// as the extractor's output.
type Rerun = Arc<dyn Fn() -> Result<BatchStream, PluginError> + Send + Sync>;

/// A driver's error from its output stream as the run reports it: `[CODE] message` and, on its own line, the
/// driver's help (as for an error `run` returns); an error that is not a driver's keeps arrow's text.
fn stream_error_text(e: &ArrowError) -> String {
    let pe = PluginError::from_arrow(e);
    if pe.code == "ARROW" {
        return e.to_string();
    }
    let mut text = format!("[{}] {}", pe.code, pe.message);
    if let Some(h) = &pe.help {
        text.push_str(&format!("\n  = help: {h}"));
    }
    text
}

/// Wraps a step's output stream: counts rows and tells the scheduler when (and how) it ended.
struct Tracked {
    inner: BatchStream,
    step: String,
    rows: u64,
    live: Arc<StepStats>,
    tx: UnboundedSender<Ev>,
    ended: bool,
}

impl Tracked {
    /// Tracks `inner`, an output stream of `step` whose rows count in `live`.
    fn new(
        inner: BatchStream,
        step: &str,
        live: Arc<StepStats>,
        tx: UnboundedSender<Ev>,
    ) -> Tracked {
        Tracked {
            inner,
            step: step.to_string(),
            rows: 0,
            live,
            tx,
            ended: false,
        }
    }
}

impl Iterator for Tracked {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let item = self.inner.next();
        match &item {
            Some(Ok(b)) => {
                self.rows += b.num_rows() as u64;
                self.live
                    .live_rows
                    .fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            }
            Some(Err(e)) => {
                self.ended = true;
                let _ = self.tx.send(Ev::StreamEnded {
                    step: self.step.clone(),
                    rows: self.rows,
                    error: Some(stream_error_text(e)),
                    early: false,
                });
            }
            None => {
                self.ended = true;
                let _ = self.tx.send(Ev::StreamEnded {
                    step: self.step.clone(),
                    rows: self.rows,
                    error: None,
                    early: false,
                });
            }
        }
        item
    }
}

impl RecordBatchReader for Tracked {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.tx.send(Ev::StreamEnded {
                step: self.step.clone(),
                rows: self.rows,
                error: None,
                early: true,
            });
        }
    }
}

enum Available {
    /// One reader.
    Stream(Option<BatchStream>),
    /// Several readers, all started together through a bounded tee.
    Fanout(Option<BatchStream>),
    /// Several readers that cannot all start together: collected once, replayed to each.
    Shared(SchemaRef, Arc<Vec<RecordBatch>>),
    /// Being collected for several readers.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Running,
    Produced,
    Done,
    Failed,
    /// Stopped because the run stopped (another step failed, or Ctrl-C).
    Cancelled,
    Skipped,
}

impl St {
    fn as_str(self) -> &'static str {
        match self {
            St::Done => "succeeded",
            St::Failed => "failed",
            St::Cancelled => "cancelled",
            St::Pending | St::Skipped => "not_started",
            St::Running | St::Produced => "incomplete",
        }
    }
}

/// Backoff before attempt `attempt + 1`: 0.5 s, 1 s, 2 s, 4 s, then 8 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 500u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(4));
    Duration::from_millis(ms.min(8_000))
}

/// Failures another attempt may cure: unreachable service, refused credentials, I/O, unknown.
fn retryable_kind(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Connection | ErrorKind::Auth | ErrorKind::Io | ErrorKind::Internal
    )
}
/// Runs the manifest. Never returns early: every outcome is recorded in the run directory.
/// Resolves the connection `reference` of a step (`(id, component)`) and checks its fields, as the run's preflight
/// and `run --dry-run` both do before any step starts: RUN-E005 when it cannot be resolved, RUN-E008 when it sets
/// a field no component of its family reads. Its secret values reach `redactor` (when given) before the check.
pub fn resolve_step_connection(
    connections: &Connections,
    known: &BTreeMap<String, BTreeSet<String>>,
    redactor: Option<&Redactor>,
    (step, component): (&str, &str),
    reference: &str,
) -> Result<osiris_core::secrets::Resolved, Fail> {
    let fail = |code: Code, msg: &str| {
        Fail::new(Exit::Config, connection_error(code, (step, component), msg))
    };
    let res = connections
        .resolve(reference)
        .map_err(|f| fail(Code::RUN_E005, f.message.trim_start_matches("error: ")))?;
    if let Some(r) = redactor {
        r.add_secrets(&res.secret_values);
    }
    match unknown_connection_fields(&res, known) {
        Some(msg) => Err(fail(Code::RUN_E008, &msg)),
        None => Ok(res),
    }
}

/// The text of a step's connection failure (RUN-E005, RUN-E008): `error[CODE]: step `id` (`component`): why`.
fn connection_error(code: Code, (step, component): (&str, &str), why: &str) -> String {
    format!("error[{code}]: step `{step}` (`{component}`): {why}")
}

/// The text of a failed step (RUN-E004): which step, component and plugin, then the driver's error.
fn step_failed(step: &str, component: &str, plugin: &str, error: impl std::fmt::Display) -> String {
    format!(
        "error[{}]: step `{step}` failed (component `{component}`, plugin `{plugin}`)\n  {error}",
        Code::RUN_E004
    )
}

/// A connection field that no component of its family reads is a typo (`sslmod: require`) that would silently
/// fall back to a default: the message names the connection and the field (never a value), with a did-you-mean.
/// Fields named like secrets are not refused (see below).
fn unknown_connection_fields(
    res: &osiris_core::secrets::Resolved,
    known: &BTreeMap<String, BTreeSet<String>>,
) -> Option<String> {
    let known = known.get(&res.family)?;
    let fields = res.fields.as_object()?;
    // A field named like a secret is masked wherever it appears and, unread, changes nothing: it is not refused
    // (a connection may keep a token for another tool beside its login).
    let unknown: Vec<&String> = fields
        .keys()
        .filter(|k| !known.contains(k.as_str()) && !osiris_core::secrets::is_secret_key(k))
        .collect();
    let first = unknown.first()?;
    let list = unknown
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match osiris_core::diag::did_you_mean(first, known.iter().map(String::as_str)) {
        Some(m) => format!("did you mean `{m}`? "),
        None => String::new(),
    };
    Some(format!(
        "connection `@{}.{}` sets {list}, which no `{}` component reads (a misspelt field would silently use its default)\n  = help: {hint}fix or remove it in the connections file; the fields a `{}` connection may set: {}",
        res.family,
        res.alias,
        res.family,
        res.family,
        known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

pub fn execute(mut opts: RunOptions) -> Result<Outcome, Fail> {
    let progress_out = opts.progress.take();
    let compiled = &opts.compiled;
    let m = &compiled.manifest;
    let profile = opts
        .profile
        .clone()
        .or_else(|| m.meta.profile.clone())
        .unwrap_or_else(|| "default".to_string());
    let run_id = rundir::new_run_id();
    let started_at = now_rfc3339();
    let t0 = Instant::now();

    let redactor = run_redactor(&opts.connections);
    let run_dir = run_dir_for(&opts, &profile, &run_id);
    let log = Arc::new(
        RunLog::create(&run_dir, &run_id, redactor.clone()).map_err(|e| {
            Fail::new(
                Exit::Run,
                format!(
                    "error[{}]: cannot create the run directory `{}`: {e}",
                    Code::RUN_E003,
                    run_dir.display()
                ),
            )
        })?,
    );
    let _ = log.write_text("manifest.yaml", &compiled.text);
    for s in &m.steps {
        if let Some((text, _)) = compiled.configs.get(&s.id) {
            let _ = log.write_text(&s.cfg_path, text);
        }
    }
    log.event(
        "run_start",
        None,
        json!({
            "pipeline": m.pipeline.id, "profile": profile, "manifest_hash": m.meta.manifest_hash,
            "steps_total": m.steps.len(), "run_dir": run_dir.display().to_string(),
            "osiris_version": env!("CARGO_PKG_VERSION"),
        }),
    );
    log.log(
        "INFO",
        None,
        &format!(
            "run {run_id} of `{}` started ({} steps)",
            m.pipeline.id,
            m.steps.len()
        ),
    );
    // Listed as running until it ends; a killed process leaves a record others see as crashed.
    let active = index::Active::begin(
        &opts.project_dir,
        &run_id,
        &index_line(
            &opts.project_dir,
            &json!({
                "run_id": run_id, "status": "running", "pipeline": m.pipeline.id, "profile": profile,
                "manifest_hash": m.meta.manifest_hash, "steps_total": m.steps.len(), "started_at": started_at,
                "pid": std::process::id(),
            }),
            &run_dir,
            &redactor,
        ),
    );

    // Preflight: every step has a driver and its connection resolves.
    let (plans, mut preflight) = preflight(&opts, &log, &redactor);
    // Incremental marks and chunked writers: a state that cannot be used stops the run before any step.
    let incr = match incremental::Plan::new(
        compiled,
        &opts.project_dir,
        &profile,
        opts.full_refresh,
        opts.resume.as_ref(),
    ) {
        Ok(p) => p,
        Err(incremental::Refused { step, why, help }) => {
            if preflight.is_none() {
                preflight = Some((
                    Exit::Validation,
                    step.clone(),
                    format!(
                        "error[{}]: step `{step}`: {why}\n  = help: {help}",
                        Code::RUN_E011
                    ),
                ));
            }
            incremental::Plan::default()
        }
    };
    if let Some(r) = &opts.resume {
        log.event(
            "run_resumed",
            None,
            json!({
                "from_run_id": r.run_id,
                "chunks": r.through.iter().map(|(k, (n, key))| (k.clone(), json!({"chunks": n, "through": key}))).collect::<serde_json::Map<String, Value>>(),
            }),
        );
        log.log(
            "INFO",
            None,
            &format!(
                "resuming run {}: per-chunk writers continue after their last committed chunk",
                r.run_id
            ),
        );
    }
    if preflight.is_none() {
        incr.announce(&log);
    }

    let mut sched = Scheduler::new(&opts, log.clone(), plans, incr);
    let (status, failure) = match preflight {
        Some((exit, step, msg)) => {
            log.event("step_error", Some(&step), json!({ "error": msg }));
            (RunStatus::Failed, Some((exit, Some(step), msg)))
        }
        None => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(opts.max_parallel.max(1) * 2 + 8)
                .enable_all()
                .build()
                .map_err(|e| {
                    Fail::new(
                        Exit::Internal,
                        format!("error: cannot start the runtime: {e}"),
                    )
                })?;
            let progress =
                progress_out.map(|out| progress::Progress::start(sched.progress_rows(), out));
            let result = rt.block_on(sched.run());
            if let Some(p) = progress {
                p.stop();
            }
            if sched.abandoned {
                // Dropping the runtime would wait for the abandoned driver calls.
                rt.shutdown_background();
            }
            result
        }
    };
    // Marks move only for extractors whose writers all committed.
    sched.incr.settle(compiled, &log, &run_id, &profile, &|s| {
        sched.state.get(s) == Some(&St::Done)
    });
    // Retried steps' input journals went with their inputs; their directory goes when empty.
    let _ = std::fs::remove_dir(log.dir.join(".journal"));

    let duration_ms = t0.elapsed().as_millis() as u64;
    let exit = match (status, &failure) {
        (RunStatus::Succeeded, _) => Exit::Ok,
        (RunStatus::Cancelled, _) => Exit::Cancelled,
        (RunStatus::Failed, Some((e, _, _))) => *e,
        (RunStatus::Failed, None) => Exit::Run,
    };
    let error = failure.as_ref().map(|(_, _, msg)| redactor.text(msg));
    let summary = run_summary(
        &sched,
        &opts,
        (&run_id, &profile, &started_at),
        (status, exit, duration_ms),
        &failure,
        error.as_deref(),
    );
    let mut end =
        json!({ "status": status.as_str(), "exit_code": exit.code(), "duration_ms": duration_ms });
    if status == RunStatus::Failed {
        // The failed run's envelope is its dead-letter item: it says what failed and what to run again.
        let rel = |d: &Path| {
            d.strip_prefix(&opts.project_dir)
                .unwrap_or(d)
                .display()
                .to_string()
        };
        end["pipeline"] = json!(m.pipeline.id);
        end["manifest_dir"] = json!(rel(&compiled.dir));
        end["run_dir"] = json!(rel(&run_dir));
        if let Some((_, Some(step), _)) = &failure {
            end["failed_step"] = json!(step);
        }
        if let Some(e) = &error {
            end["error"] = json!(e);
        }
    }
    let end = log.event("run_end", None, end);
    if status == RunStatus::Failed
        && let Err(e) = dlq::write(&opts.project_dir, dlq::RUN, &end, &redactor)
    {
        log.log(
            "WARN",
            None,
            &format!("cannot write the dead-letter item of the run: {e}"),
        );
    }
    log.log(
        "INFO",
        None,
        &format!("run {run_id} {} in {duration_ms} ms", status.as_str()),
    );
    let _ = log.write_json("status.json", &summary);
    append_index(&opts.project_dir, &summary, &run_dir, &redactor);
    if let Some(a) = active {
        a.finish();
    }

    Ok(Outcome {
        status,
        exit,
        run_id,
        run_dir,
        summary: redactor.json(&summary, &[]),
        error,
    })
}

/// A redactor holding every secret value known to this run, from every connection that resolves.
fn run_redactor(connections: &Connections) -> Arc<Redactor> {
    let redactor = Arc::new(Redactor::new(Strategy::Mask, "***"));
    redactor.add_secrets(connections.literal_secrets());
    for (family, aliases) in &connections.families {
        for alias in aliases.keys() {
            if let Ok(r) = connections.resolve(&format!("@{family}.{alias}")) {
                redactor.add_secrets(&r.secret_values);
            }
        }
    }
    redactor
}

/// `--out DIR`, else `<logs>/<profile>/<pipeline>/<ts>_<run_id>-<manifest_short>`.
fn run_dir_for(opts: &RunOptions, profile: &str, run_id: &str) -> PathBuf {
    let compiled = &opts.compiled;
    let m = &compiled.manifest;
    if let Some(d) = &opts.out {
        return d.clone();
    }
    let short = if m.meta.manifest_short.is_empty() {
        osiris_registry::fingerprint(&json!(compiled.text)).trim_start_matches("sha256:")[..7]
            .to_string()
    } else {
        m.meta.manifest_short.clone()
    };
    let logs = if opts.logs_dir.is_absolute() {
        opts.logs_dir.clone()
    } else {
        opts.project_dir.join(&opts.logs_dir)
    };
    let ts = chrono::Utc::now().format("%Y%m%dt%H%M%Sz");
    logs.join(profile)
        .join(&m.pipeline.id)
        .join(format!("{ts}_{run_id}-{short}"))
}

/// Each step's provider and resolved connection fields, and the first step that has no driver or whose
/// connection does not resolve: (exit, step, message). Writes each step's cleaned config artifact.
type Preflight = (
    BTreeMap<String, (Provider, Option<Value>)>,
    Option<(Exit, String, String)>,
);

fn preflight(opts: &RunOptions, log: &RunLog, redactor: &Arc<Redactor>) -> Preflight {
    let compiled = &opts.compiled;
    let mut plans: BTreeMap<String, (Provider, Option<Value>)> = BTreeMap::new();
    let mut failed: Option<(Exit, String, String)> = None;
    for s in &compiled.manifest.steps {
        let provider = match opts.modules.provider(&s.id, &s.component) {
            Ok(p) => p,
            Err(f) => {
                failed = Some((f.exit, s.id.clone(), f.message));
                break;
            }
        };
        let cfg = compiled.driver_config(&s.id);
        let connection = match cfg.get("connection").and_then(Value::as_str) {
            Some(r) if r.starts_with('@') => {
                let checked = resolve_step_connection(
                    &opts.connections,
                    &opts.connection_fields,
                    Some(redactor),
                    (&s.id, &s.component),
                    r,
                );
                match checked {
                    Ok(res) => Some(res.fields),
                    Err(f) => {
                        failed = Some((f.exit, s.id.clone(), f.message));
                        break;
                    }
                }
            }
            _ => None,
        };
        let pointers = opts
            .secret_pointers
            .get(&s.component)
            .cloned()
            .unwrap_or_default();
        let _ = log.write_json(
            &format!("artifacts/{}/cleaned_config.json", s.id),
            &redactor.json(&cfg, &pointers),
        );
        plans.insert(s.id.clone(), (provider, connection));
    }
    (plans, failed)
}

/// `status.json`: the run's outcome, totals and per-step summaries.
fn run_summary(
    sched: &Scheduler<'_>,
    opts: &RunOptions,
    (run_id, profile, started_at): (&str, &str, &str),
    (status, exit, duration_ms): (RunStatus, Exit, u64),
    failure: &Option<(Exit, Option<String>, String)>,
    error: Option<&str>,
) -> Value {
    let m = &opts.compiled.manifest;
    let (rows_read, rows_written) = sched.totals();
    let mut summary = json!({
        "run_id": run_id,
        "status": status.as_str(),
        "exit_code": exit.code(),
        "pipeline": m.pipeline.id,
        "profile": profile,
        "manifest_hash": m.meta.manifest_hash,
        "steps_total": m.steps.len(),
        "steps_completed": sched.completed(),
        "started_at": started_at,
        "ended_at": now_rfc3339(),
        "duration_ms": duration_ms,
        "rows_read": rows_read,
        "rows_written": rows_written,
    });
    summary["steps"] = sched.step_summaries();
    summary["environment"] = environment(sched);
    if let Some((_, step, _)) = failure {
        if let Some(step) = step {
            summary["failed_step"] = json!(step);
        }
        summary["error"] = json!(error.unwrap_or_default());
    }
    summary
}

/// What ran the run: the osiris version and each plugin that provided a step, with how it was trusted.
fn environment(sched: &Scheduler<'_>) -> Value {
    let mut plugins: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for s in &sched.compiled.manifest.steps {
        if let Some((p, _)) = sched.plans.get(&s.id) {
            plugins
                .entry(p.label.clone())
                .or_insert_with(|| (p.signature.clone(), BTreeSet::new()))
                .1
                .insert(s.component.clone());
        }
    }
    json!({
        "osiris_version": env!("CARGO_PKG_VERSION"),
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "plugins": plugins
            .into_iter()
            .map(|(label, (signature, components))| json!({
                "plugin": label, "signature": signature, "components": components,
            }))
            .collect::<Vec<_>>(),
    })
}

/// The run's line in the project's index (see [`index`]): the summary without steps, the run directory
/// relative to the project.
fn index_line(project_dir: &Path, summary: &Value, run_dir: &Path, redactor: &Redactor) -> Value {
    let mut line = summary.clone();
    if let Value::Object(m) = &mut line {
        // The index stays one short line per run: `osiris runs show` reads the steps from status.json.
        m.remove("steps");
    }
    let shown = run_dir.strip_prefix(project_dir).unwrap_or(run_dir);
    line["run_dir"] = json!(shown.display().to_string());
    redactor.json(&line, &[])
}

fn append_index(project_dir: &Path, summary: &Value, run_dir: &Path, redactor: &Redactor) {
    let line = index_line(project_dir, summary, run_dir, redactor);
    let _ = index::append(project_dir, &redactor.text(&line.to_string()));
}

/// A step to start: everything its task needs, owned.
struct Job {
    step: String,
    component: String,
    provider: Provider,
    config: Value,
    connection: Option<Value>,
    inputs: Streams,
    stats: Arc<StepStats>,
    log: Arc<RunLog>,
    cancel: Arc<AtomicBool>,
    tx: UnboundedSender<Ev>,
    /// Attempts after the first; 0 when the step is not retry-safe.
    retries: u32,
    /// Why a failed attempt is not retried (when `--retries` was given but the step is not retry-safe).
    unsafe_reason: Option<String>,
    reload: Option<(ReloadConnections, String)>,
    /// input alias -> how to read it again when its extractor's stream failed mid-way.
    reruns: BTreeMap<String, Rerun>,
    /// A writer that commits per chunk.
    chunk: Option<incremental::ChunkPlan>,
}

impl Job {
    /// Runs the step's attempts; holds `permit` (its share of `--max-parallel`) throughout.
    async fn run(self, permit: Arc<tokio::sync::OwnedSemaphorePermit>) {
        let Job {
            step,
            component,
            provider,
            config,
            mut connection,
            inputs,
            stats,
            log,
            cancel,
            tx,
            retries,
            unsafe_reason,
            reload,
            reruns,
            chunk,
        } = self;
        if cancel.load(Ordering::Relaxed) {
            let _ = tx.send(Ev::RunReturned {
                step,
                result: Err(PluginError::new(
                    ErrorKind::Cancelled,
                    "CANCELLED",
                    "the run stopped before this step started",
                )),
                not_retried: None,
            });
            drop(permit);
            return;
        }
        *stats.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        log.event(
            "step_start",
            Some(&step),
            json!({ "component": component, "plugin": provider.label, "inputs": inputs.keys().collect::<Vec<_>>() }),
        );
        log.log(
            "INFO",
            Some(&step),
            &format!("started ({component}, {})", provider.label),
        );
        if let Some(plan) = chunk {
            let result = run_chunks(
                ChunkJob {
                    step: step.clone(),
                    component,
                    provider,
                    config,
                    connection,
                    stats,
                    log,
                    cancel,
                },
                plan,
                inputs,
            )
            .await;
            let _ = tx.send(Ev::RunReturned {
                step,
                result,
                not_retried: None,
            });
            drop(permit);
            return;
        }
        // With retries, inputs are lent and journaled: the next attempt reads each again from its start, the
        // batches the failed attempt had read replayed from the journal (in the run directory, removed when
        // the step ends), so a writer whose session was lost mid-load loads every row exactly once.
        let (lendable, mut inputs_once) = if retries > 0 {
            let l: BTreeMap<String, tee::Lendable> = inputs
                .into_iter()
                .enumerate()
                .map(|(i, (k, s))| {
                    let path = journal_path(&log.dir, &step, i);
                    (k, tee::Lendable::journaled(s, path))
                })
                .collect();
            (Some(l), None)
        } else {
            (None, Some(inputs))
        };
        let mut attempt: u32 = 1;
        loop {
            stats.attempts.store(attempt, Ordering::Relaxed);
            let attempt_inputs: Streams = match &lendable {
                Some(l) => l
                    .iter()
                    .map(|(k, v)| (k.clone(), Box::new(v.lend()) as BatchStream))
                    .collect(),
                None => inputs_once.take().unwrap_or_default(),
            };
            let ctx: Arc<dyn ContextBackend> = Arc::new(StepCtx {
                step: step.clone(),
                log: log.clone(),
                cancel: cancel.clone(),
                connection: connection.clone(),
                stats: stats.clone(),
            });
            let module = provider.module.clone();
            let (c, s, cfg) = (component.clone(), step.clone(), config.clone());
            let result =
                tokio::task::spawn_blocking(move || module.run(&c, &s, &cfg, ctx, attempt_inputs))
                    .await
                    .unwrap_or_else(|e| {
                        Err(PluginError::internal(format!(
                            "the step's task ended abnormally: {e}"
                        )))
                    });
            let error = match result {
                Ok(outputs) => {
                    let _ = tx.send(Ev::RunReturned {
                        step,
                        result: Ok(outputs),
                        not_retried: None,
                    });
                    break;
                }
                Err(e) => e,
            };
            let stop = |why: Option<String>| Ev::RunReturned {
                step: step.clone(),
                result: Err(error.clone()),
                not_retried: why,
            };
            if cancel.load(Ordering::Relaxed) || error.kind == ErrorKind::Cancelled {
                let _ = tx.send(stop(None));
                break;
            }
            if retries == 0 {
                let _ = tx.send(stop(unsafe_reason.clone()));
                break;
            }
            if attempt > retries {
                let _ = tx.send(stop(Some(format!(
                    "gave up after {attempt} attempts (--retries {retries})"
                ))));
                break;
            }
            if !retryable_kind(error.kind) {
                let _ = tx.send(stop(Some(format!(
                    "a `{}` error does not go away by trying again",
                    error.kind.as_str()
                ))));
                break;
            }
            // An input whose extractor failed mid-stream is read again from a new run of that extractor.
            let rerunnable = |k: &String, v: &tee::Lendable| v.failed() && reruns.contains_key(k);
            if let Some(l) = &lendable
                && let Some((name, why)) = l
                    .iter()
                    .filter(|(k, v)| !rerunnable(k, v))
                    .find_map(|(k, v)| Some((k, v.why_not_again()?)))
            {
                let _ = tx.send(stop(Some(format!(
                    "the failed attempt had already read part of input `{name}`, and {why}"
                ))));
                break;
            }
            let delay = backoff(attempt);
            let text = format!("[{}] {}", error.code, error.message);
            log.event(
                "step_retry",
                Some(&step),
                json!({ "attempt": attempt + 1, "max_attempts": retries + 1, "delay_ms": delay.as_millis() as u64, "error": text }),
            );
            log.log(
                "WARN",
                Some(&step),
                &format!(
                    "attempt {attempt} failed: {text}; retrying in {} ms",
                    delay.as_millis()
                ),
            );
            let until = Instant::now() + delay;
            while Instant::now() < until && !cancel.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(20).min(until - Instant::now())).await;
            }
            if cancel.load(Ordering::Relaxed) {
                let _ = tx.send(stop(None));
                break;
            }
            // Secrets may have been rotated since the run started: read them again.
            if let Some((reload, reference)) = &reload {
                let resolved = reload().and_then(|c| c.resolve(reference));
                match resolved {
                    Ok(r) => {
                        log.redactor().add_secrets(&r.secret_values);
                        connection = Some(r.fields);
                    }
                    Err(f) => {
                        let _ = tx.send(Ev::ConnectionFailed {
                            step: step.clone(),
                            message: connection_error(
                                Code::RUN_E005,
                                (&step, &component),
                                &format!(
                                    "before attempt {}: {}",
                                    attempt + 1,
                                    f.message.trim_start_matches("error: ")
                                ),
                            ),
                        });
                        break;
                    }
                }
            }
            if let Some(l) = &lendable {
                let failed: Vec<(&String, &tee::Lendable)> =
                    l.iter().filter(|(k, v)| rerunnable(k, v)).collect();
                let mut rerun_failed = None;
                for (name, input) in failed {
                    let rerun = reruns[name].clone();
                    log.log(
                        "WARN",
                        Some(&step),
                        &format!("input `{name}` failed mid-stream: its extractor reads it again from the start"),
                    );
                    match tokio::task::spawn_blocking(move || rerun()).await {
                        Ok(Ok(stream)) => input.restart(stream),
                        Ok(Err(e)) => {
                            rerun_failed = Some(format!(
                                "reading input `{name}` again failed: [{}] {}",
                                e.code, e.message
                            ));
                            break;
                        }
                        Err(e) => {
                            rerun_failed = Some(format!(
                                "reading input `{name}` again ended abnormally: {e}"
                            ));
                            break;
                        }
                    }
                }
                if let Some(why) = rerun_failed {
                    let _ = tx.send(stop(Some(why)));
                    break;
                }
            }
            attempt += 1;
        }
        drop(permit);
    }
}

/// What a per-chunk writer runs with.
struct ChunkJob {
    step: String,
    component: String,
    provider: Provider,
    config: Value,
    connection: Option<Value>,
    stats: Arc<StepStats>,
    log: Arc<RunLog>,
    cancel: Arc<AtomicBool>,
}

/// Calls a per-chunk writer once per chunk of its input, each call its own transaction, and records each
/// committed chunk (`chunk_committed`, with its last key) for `--resume`. The first chunk of a fresh run
/// keeps the writer's mode; every later one (and every chunk of a resumed run) appends.
async fn run_chunks(
    job: ChunkJob,
    plan: incremental::ChunkPlan,
    inputs: Streams,
) -> Result<Streams, PluginError> {
    let Some((alias, input)) = inputs.into_iter().next() else {
        return Err(PluginError::internal("a per-chunk writer got no input"));
    };
    let schema = input.schema();
    let input = Arc::new(Mutex::new(input));
    let (mut n, resumed) = match &plan.resumed {
        Some((n, _)) => (*n, true),
        None => (0, false),
    };
    loop {
        if job.cancel.load(Ordering::Relaxed) {
            return Err(PluginError::new(
                ErrorKind::Cancelled,
                "CANCELLED",
                "the run stopped between two chunks",
            ));
        }
        // The next chunk's first batch, or the end of the input.
        let first = {
            let shared = input.clone();
            tokio::task::spawn_blocking(move || {
                shared.lock().unwrap_or_else(|e| e.into_inner()).next()
            })
            .await
            .map_err(|e| {
                PluginError::internal(format!("reading the next chunk ended abnormally: {e}"))
            })?
        };
        let first = match first {
            None => break,
            Some(Err(e)) => return Err(PluginError::from_arrow(&e)),
            Some(Ok(b)) => b,
        };
        n += 1;
        let last = Arc::new(Mutex::new(None));
        let chunk = incremental::Chunk {
            input: input.clone(),
            schema: schema.clone(),
            first: Some(first),
            key: plan.key.clone(),
            rows: plan.rows,
            seen: 0,
            last: last.clone(),
        };
        let rows_before = StepStats::get(&job.stats.rows_written).unwrap_or(0.0);
        let config = if n > 1 || resumed {
            incremental::append_only(job.config.clone())
        } else {
            job.config.clone()
        };
        let ctx: Arc<dyn ContextBackend> = Arc::new(StepCtx {
            step: job.step.clone(),
            log: job.log.clone(),
            cancel: job.cancel.clone(),
            connection: job.connection.clone(),
            stats: job.stats.clone(),
        });
        let module = job.provider.module.clone();
        let (c, s) = (job.component.clone(), job.step.clone());
        let mut streams = Streams::new();
        streams.insert(alias.clone(), Box::new(chunk) as BatchStream);
        tokio::task::spawn_blocking(move || module.run(&c, &s, &config, ctx, streams))
            .await
            .unwrap_or_else(|e| {
                Err(PluginError::internal(format!(
                    "the step's task ended abnormally: {e}"
                )))
            })?;
        let through = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let rows = StepStats::get(&job.stats.rows_written).unwrap_or(0.0) - rows_before;
        job.log.event(
            "chunk_committed",
            Some(&job.step),
            json!({ "chunk": n, "rows": json_number(rows), "key": plan.key, "through": through }),
        );
    }
    Ok(Streams::new())
}

/// Where a retried step journals its input number `i`: `<run dir>/.journal/<step>.<i>.arrows`.
fn journal_path(run_dir: &Path, step: &str, i: usize) -> PathBuf {
    let dir = run_dir.join(".journal");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{}.{i}.arrows", osiris_core::file_name_part(step)))
}

struct Scheduler<'a> {
    compiled: &'a Compiled,
    log: Arc<RunLog>,
    plans: BTreeMap<String, (Provider, Option<Value>)>,
    cancel: Arc<AtomicBool>,
    sem: Arc<tokio::sync::Semaphore>,
    max_parallel: usize,
    retries: u32,
    transactional: BTreeSet<String>,
    reload: Option<ReloadConnections>,
    state: BTreeMap<String, St>,
    stats: BTreeMap<String, Arc<StepStats>>,
    /// Rows counted by the host on each step's inputs and outputs.
    rows_in: BTreeMap<String, u64>,
    rows_out: BTreeMap<String, u64>,
    available: BTreeMap<String, Available>,
    /// step -> the steps reading its output, in manifest order.
    consumers: BTreeMap<String, Vec<String>>,
    /// Outputs with several readers that cannot all start together: collected instead of teed.
    collect: BTreeSet<String>,
    outstanding: BTreeMap<String, usize>,
    returned: BTreeSet<String>,
    /// Producers whose output a reader dropped before its end while that reader was still running: complete
    /// only if the reader then succeeds (it needed no more), cancelled if the run stops (issue 21).
    cut_short: BTreeSet<String>,
    in_flight: usize,
    stopping: bool,
    /// The signal that cancelled the run.
    cancelled: Option<cancel::Signal>,
    /// Steps still running when the run stopped waiting for them (see [`cancel::GRACE`]).
    abandoned: bool,
    first_failure: Option<(Exit, Option<String>, String)>,
    /// extractor -> the retrying writer that reads it and may run it again when its stream fails mid-way.
    rerun_by: BTreeMap<String, String>,
    /// Stream errors of such extractors, held until their writer returns (a rerun may cure them).
    stream_errors: BTreeMap<String, String>,
    /// Incremental extractors and per-chunk writers.
    incr: incremental::Plan,
    tx: UnboundedSender<Ev>,
    rx: UnboundedReceiver<Ev>,
}

impl<'a> Scheduler<'a> {
    fn new(
        opts: &'a RunOptions,
        log: Arc<RunLog>,
        plans: BTreeMap<String, (Provider, Option<Value>)>,
        incr: incremental::Plan,
    ) -> Self {
        let compiled = &opts.compiled;
        let mut consumers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &compiled.manifest.steps {
            for (up, _) in compiled.upstreams(s) {
                consumers.entry(up).or_default().push(s.id.clone());
            }
        }
        let collect = collect_outputs(compiled, &consumers);
        let (tx, rx) = unbounded_channel();
        Scheduler {
            compiled,
            log,
            plans,
            cancel: opts.cancel.clone(),
            sem: Arc::new(tokio::sync::Semaphore::new(opts.max_parallel.max(1))),
            max_parallel: opts.max_parallel.max(1),
            retries: opts.retries,
            transactional: opts.transactional.clone(),
            reload: opts.reload.clone(),
            state: compiled
                .manifest
                .steps
                .iter()
                .map(|s| (s.id.clone(), St::Pending))
                .collect(),
            stats: compiled
                .manifest
                .steps
                .iter()
                .map(|s| (s.id.clone(), Arc::new(StepStats::default())))
                .collect(),
            rows_in: BTreeMap::new(),
            rows_out: BTreeMap::new(),
            available: BTreeMap::new(),
            consumers,
            collect,
            outstanding: BTreeMap::new(),
            returned: BTreeSet::new(),
            cut_short: BTreeSet::new(),
            in_flight: 0,
            stopping: false,
            cancelled: None,
            abandoned: false,
            first_failure: None,
            rerun_by: BTreeMap::new(),
            stream_errors: BTreeMap::new(),
            incr,
            tx,
            rx,
        }
    }

    fn completed(&self) -> usize {
        self.state.values().filter(|s| **s == St::Done).count()
    }

    fn n_consumers(&self, step: &str) -> usize {
        self.consumers.get(step).map(Vec::len).unwrap_or(0)
    }

    /// rows_read of source steps (no inputs), rows_written of sink steps (no consumers). A source's rows are
    /// those of its status entry (`rows_read` below): a source that failed mid-stream counts the rows
    /// it handed on.
    fn totals(&self) -> (Value, Value) {
        let mut read = 0.0;
        let mut written = 0.0;
        for s in &self.compiled.manifest.steps {
            let st = &self.stats[&s.id];
            if self.compiled.upstreams(s).is_empty() {
                read += self.rows_read(s).unwrap_or(0.0);
            }
            if self.n_consumers(&s.id) == 0 {
                written += StepStats::get(&st.rows_written).unwrap_or(0.0);
            }
        }
        (json_number(read), json_number(written))
    }

    /// One object per step for status.json: state, rows, duration, attempts.
    fn step_summaries(&self) -> Value {
        let steps: Vec<Value> = self
            .compiled
            .manifest
            .steps
            .iter()
            .map(|s| {
                let st = &self.stats[&s.id];
                let started = st
                    .started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some();
                json!({
                    "id": s.id,
                    "component": s.component,
                    "plugin": self.plans.get(&s.id).map(|p| p.0.label.clone()),
                    "status": self.state[&s.id].as_str(),
                    "attempts": st.attempts.load(Ordering::Relaxed),
                    "rows_read": self.rows_read(s).map(json_number),
                    "rows_written": StepStats::get(&st.rows_written).map(json_number),
                    "duration_ms": started.then(|| st.duration_ms.load(Ordering::Relaxed)),
                })
            })
            .collect();
        Value::Array(steps)
    }

    /// What the progress display watches.
    fn progress_rows(&self) -> Vec<progress::Row> {
        self.compiled
            .manifest
            .steps
            .iter()
            .map(|s| progress::Row {
                id: s.id.clone(),
                stats: self.stats[&s.id].clone(),
                upstream: self
                    .compiled
                    .upstreams(s)
                    .iter()
                    .map(|(u, _)| self.stats[u].clone())
                    .collect(),
            })
            .collect()
    }

    async fn run(&mut self) -> (RunStatus, Option<(Exit, Option<String>, String)>) {
        let mut signals = cancel::Signals::new().ok();
        // When the run stops waiting for steps that ignore the cancellation.
        let mut give_up: Option<tokio::time::Instant> = None;
        loop {
            if !self.stopping {
                self.launch_ready();
            }
            if self.in_flight == 0 {
                // Nothing is running: handle what is queued, or stop.
                if let Ok(ev) = self.rx.try_recv() {
                    self.handle(ev);
                    continue;
                }
                let all_terminal = self
                    .state
                    .values()
                    .all(|s| matches!(s, St::Done | St::Failed | St::Cancelled | St::Skipped));
                if !self.stopping && !all_terminal && self.first_failure.is_none() {
                    let waiting: Vec<String> = self
                        .state
                        .iter()
                        .filter(|(_, s)| {
                            !matches!(s, St::Done | St::Failed | St::Cancelled | St::Skipped)
                        })
                        .map(|(id, _)| format!("`{id}`"))
                        .collect();
                    self.first_failure = Some((
                        Exit::Internal,
                        None,
                        format!(
                            "error[{}]: the run cannot make progress: steps {} wait on each other's output (this is a bug: please report it with the manifest)",
                            Code::RUN_E006,
                            waiting.join(", ")
                        ),
                    ));
                }
                break;
            }
            tokio::select! {
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.handle(ev),
                    None => break,
                },
                sig = cancel::next(&mut signals) => {
                    if self.cancelled.is_some() {
                        self.log.log("WARN", None, &format!("{} again: not waiting for running steps", sig.label()));
                        self.abandon();
                        break;
                    }
                    self.cancelled = Some(sig);
                    self.stopping = true;
                    self.cancel.store(true, Ordering::Relaxed);
                    self.log.log("WARN", None, &format!("cancelled ({}): stopping running steps", sig.label()));
                    self.log.event("run_cancel", None, json!({ "signal": sig.name() }));
                    give_up = Some(tokio::time::Instant::now() + cancel::GRACE);
                }
                _ = tokio::time::sleep_until(give_up.unwrap_or_else(tokio::time::Instant::now)), if give_up.is_some() => {
                    self.abandon();
                    break;
                }
            }
        }
        if self.abandoned {
            // Streams of abandoned steps: releasing them would call into drivers that may be blocked.
            for (_, a) in std::mem::take(&mut self.available) {
                std::mem::forget(a);
            }
        } else {
            // Streams nobody will read: release them (their producers are not complete).
            self.available.clear();
        }
        while let Ok(ev) = self.rx.try_recv() {
            match ev {
                Ev::RunReturned {
                    step,
                    result: Ok(outputs),
                    ..
                } if self.abandoned => {
                    self.in_flight -= 1;
                    self.returned.insert(step.clone());
                    std::mem::forget(outputs);
                    self.cancelled_step(&step);
                }
                ev => self.handle(ev),
            }
        }
        let ids: Vec<String> = self.state.keys().cloned().collect();
        for id in ids {
            match self.state[&id] {
                St::Pending => {
                    self.state.insert(id.clone(), St::Skipped);
                    self.log.log("INFO", Some(&id), "not started");
                }
                St::Running | St::Produced => {
                    self.state.insert(id.clone(), St::Cancelled);
                    self.log.log("INFO", Some(&id), "not completed");
                }
                _ => {}
            }
            if self.state[&id] == St::Cancelled {
                self.rows_so_far(&id);
            }
            self.finish_stats(&id);
        }
        let status = if self.cancelled.is_some() {
            RunStatus::Cancelled
        } else if self.first_failure.is_some() || self.state.values().any(|s| *s != St::Done) {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        };
        let failure = match (status, self.first_failure.take(), self.cancelled) {
            (RunStatus::Cancelled, _, Some(sig)) => Some((
                Exit::Cancelled,
                None,
                format!("error: the run was cancelled ({})", sig.label()),
            )),
            (_, f, _) => f,
        };
        (status, failure)
    }

    fn step(&self, id: &str) -> &'a Step {
        self.compiled
            .step(id)
            .expect("step ids come from the manifest")
    }

    /// Every dependency of `s` is satisfied: data inputs returned their streams, order-only deps are done.
    fn ready(&self, s: &Step) -> bool {
        let ups = self.compiled.upstreams(s);
        let data: BTreeSet<&str> = ups.iter().map(|(u, _)| u.as_str()).collect();
        self.compiled.all_deps(s).iter().all(|d| {
            if data.contains(d.as_str()) {
                matches!(self.state.get(d), Some(St::Produced | St::Done))
                    && matches!(
                        self.available.get(d),
                        Some(
                            Available::Stream(Some(_))
                                | Available::Fanout(Some(_))
                                | Available::Shared(..)
                        )
                    )
            } else {
                self.state.get(d) == Some(&St::Done)
            }
        })
    }

    /// `id` and every step that must start with it: the readers of each teed output it reads, transitively.
    fn group(&self, id: &str) -> Vec<String> {
        let mut members = vec![id.to_string()];
        let mut i = 0;
        while i < members.len() {
            let s = self.step(&members[i]);
            for (up, _) in self.compiled.upstreams(s) {
                if self.n_consumers(&up) > 1 && !self.collect.contains(&up) {
                    for c in &self.consumers[&up] {
                        if !members.contains(c) {
                            members.push(c.clone());
                        }
                    }
                }
            }
            i += 1;
        }
        members
    }

    fn launch_ready(&mut self) {
        let steps: Vec<&'a Step> = self.compiled.manifest.steps.iter().collect();
        for s in steps {
            if self.state[&s.id] != St::Pending || !self.ready(s) {
                continue;
            }
            let group = self.group(&s.id);
            let all_ready = group
                .iter()
                .all(|g| self.state.get(g) == Some(&St::Pending) && self.ready(self.step(g)));
            if all_ready {
                self.start_group(group);
            }
        }
    }

    /// Starts `members` together: the readers of a teed output must read concurrently (see [`tee::tee`]).
    fn start_group(&mut self, members: Vec<String>) {
        let mut tee_readers: BTreeMap<(String, String), tee::TeeReader> = BTreeMap::new();
        let mut jobs = Vec::with_capacity(members.len());
        for m in &members {
            let s = self.step(m);
            let mut inputs = Streams::new();
            for (up, alias) in self.compiled.upstreams(s) {
                let stream: BatchStream = match self.available.get_mut(&up) {
                    Some(Available::Stream(slot)) => slot.take().expect("checked by ready()"),
                    Some(Available::Shared(schema, batches)) => Box::new(RecordBatchIterator::new(
                        batches.iter().cloned().map(Ok).collect::<Vec<_>>(),
                        schema.clone(),
                    )),
                    Some(Available::Fanout(slot)) => {
                        if let Some(source) = slot.take() {
                            let readers = self.consumers[&up].clone();
                            let (tees, pump) = tee::tee(source, &up, readers.len());
                            for (r, t) in readers.into_iter().zip(tees) {
                                tee_readers.insert((up.clone(), r), t);
                            }
                            self.spawn_blocking_task(move || {
                                pump();
                                Ev::Drained
                            });
                        }
                        Box::new(
                            tee_readers
                                .remove(&(up.clone(), m.clone()))
                                .expect("every reader of a teed output is in its group"),
                        )
                    }
                    _ => unreachable!("checked by ready()"),
                };
                inputs.insert(alias, stream);
            }
            jobs.push(self.job(s, inputs));
        }
        let n = jobs.len();
        // A group larger than --max-parallel still starts whole: its readers cannot wait for each other.
        let permits = n.min(self.max_parallel) as u32;
        self.in_flight += n;
        let sem = self.sem.clone();
        tokio::spawn(async move {
            let permit = match sem.acquire_many_owned(permits).await {
                Ok(p) => Arc::new(p),
                Err(_) => return,
            };
            for job in jobs {
                tokio::spawn(job.run(permit.clone()));
            }
        });
    }

    /// A step's config as its driver gets it: an extractor's read window, a writer's mode for a full refresh.
    fn step_config(&self, id: &str) -> Value {
        let config = self.compiled.driver_config(id);
        match self.step(id).mode.as_str() {
            "extract" => self.incr.extractor_config(id, config),
            "write" => self.incr.writer_config(id, config),
            _ => config,
        }
    }

    fn job(&mut self, s: &'a Step, inputs: Streams) -> Job {
        let (provider, connection) = self.plans[&s.id].clone();
        self.state.insert(s.id.clone(), St::Running);
        let safe =
            s.mode == "extract" || (s.mode == "write" && self.transactional.contains(&s.component));
        let unsafe_reason = (!safe && self.retries > 0).then(|| {
            format!(
                "`{}` steps in mode `{}` are not retried (only extractors, and writers whose component declares `capabilities.transactions: true`)",
                s.component, s.mode
            )
        });
        let reruns = if safe && self.retries > 0 && s.mode == "write" {
            self.rerun_inputs(s)
        } else {
            BTreeMap::new()
        };
        let config = self.step_config(&s.id);
        let chunk = self.incr.chunked.get(&s.id).cloned();
        let reference = config
            .get("connection")
            .and_then(Value::as_str)
            .filter(|r| r.starts_with('@'))
            .map(str::to_string);
        Job {
            step: s.id.clone(),
            component: s.component.clone(),
            provider,
            config,
            connection,
            inputs,
            stats: self.stats[&s.id].clone(),
            log: self.log.clone(),
            cancel: self.cancel.clone(),
            tx: self.tx.clone(),
            // A per-chunk writer is not retried: each chunk is its own transaction, and `--resume` continues.
            retries: if safe && chunk.is_none() {
                self.retries
            } else {
                0
            },
            unsafe_reason,
            chunk,
            reload: match (&self.reload, reference) {
                (Some(r), Some(reference)) => Some((r.clone(), reference)),
                _ => None,
            },
            reruns,
        }
    }

    /// The inputs of the retrying writer `s` that come straight from an extractor read by `s` alone: when such
    /// an extractor's stream fails mid-way (its connection killed), the writer's next attempt runs the
    /// extractor again and reads the new stream from its start. The writer's failed attempt committed nothing
    /// and no other step saw the rows, so nothing is duplicated downstream.
    fn rerun_inputs(&mut self, s: &Step) -> BTreeMap<String, Rerun> {
        let mut out = BTreeMap::new();
        for (up, alias) in self.compiled.upstreams(s) {
            let u = self.step(&up);
            if u.mode != "extract"
                || !self.compiled.upstreams(u).is_empty()
                || self.n_consumers(&up) != 1
            {
                continue;
            }
            let (provider, connection) = self.plans[&up].clone();
            let config = self.step_config(&up);
            let cursor = self.incr.incr.get(&up).map(|i| i.max.clone());
            let component = u.component.clone();
            let stats = self.stats[&up].clone();
            let (log, cancel, tx) = (self.log.clone(), self.cancel.clone(), self.tx.clone());
            let step = up.clone();
            let rerun: Rerun = Arc::new(move || {
                let ctx: Arc<dyn ContextBackend> = Arc::new(StepCtx {
                    step: step.clone(),
                    log: log.clone(),
                    cancel: cancel.clone(),
                    connection: connection.clone(),
                    stats: stats.clone(),
                });
                let mut outputs =
                    provider
                        .module
                        .run(&component, &step, &config, ctx, Streams::new())?;
                let main = match outputs.remove("df") {
                    Some(m) => m,
                    None => outputs.pop_first().map(|(_, m)| m).ok_or_else(|| {
                        PluginError::internal("the extractor returned no stream when run again")
                    })?,
                };
                stats.attempts.fetch_add(1, Ordering::Relaxed);
                stats.live_rows.store(0, Ordering::Relaxed);
                let _ = tx.send(Ev::Rerun { step: step.clone() });
                let main: BatchStream = match &cursor {
                    Some(max) => Box::new(incremental::Cursored {
                        inner: main,
                        max: max.clone(),
                    }),
                    None => main,
                };
                Ok(Box::new(Tracked::new(main, &step, stats.clone(), tx.clone())) as BatchStream)
            });
            self.rerun_by.insert(up.clone(), s.id.clone());
            out.insert(alias, rerun);
        }
        out
    }

    fn spawn_blocking_task(&mut self, f: impl FnOnce() -> Ev + Send + 'static) {
        self.in_flight += 1;
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let _ = tx.send(f());
        });
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::RunReturned {
                step,
                result,
                not_retried,
            } => {
                self.in_flight -= 1;
                self.returned.insert(step.clone());
                match result {
                    Ok(outputs) => self.produced(&step, outputs),
                    Err(e) => {
                        // An extractor whose failed stream this writer could not cure fails first: it is
                        // the cause.
                        let deferred: Vec<String> = self
                            .rerun_by
                            .iter()
                            .filter(|(u, w)| **w == step && self.stream_errors.contains_key(*u))
                            .map(|(u, _)| u.clone())
                            .collect();
                        for u in deferred {
                            let err = self.stream_errors.remove(&u).unwrap_or_default();
                            self.stream_failed(&u, err);
                        }
                        let bad_up = self
                            .compiled
                            .upstreams(self.step(&step))
                            .into_iter()
                            .map(|(u, _)| u)
                            .find(|u| {
                                matches!(self.state.get(u), Some(St::Failed | St::Cancelled))
                            });
                        let mut text = self.error_text(&step, &e);
                        if let Some(why) = not_retried {
                            text.push_str(&format!("\n  = note: not retried: {why}"));
                        }
                        match bad_up {
                            Some(u) if self.state.get(&u) == Some(&St::Failed) => {
                                self.state.insert(step.clone(), St::Failed);
                                self.log.event(
                                    "step_error",
                                    Some(&step),
                                    json!({ "error": text, "upstream": u }),
                                );
                                self.log.log_file_only(
                                    "ERROR",
                                    Some(&step),
                                    &format!("stopped: upstream step `{u}` failed"),
                                );
                                self.finish_stats(&step);
                            }
                            _ if self.stopping
                                && (e.kind == ErrorKind::Cancelled || bad_up.is_some()) =>
                            {
                                self.cancelled_step(&step);
                            }
                            _ => self.fail(&step, text, Exit::Run),
                        }
                    }
                }
                self.settle_cut_short();
            }
            Ev::ConnectionFailed { step, message } => {
                self.in_flight -= 1;
                self.returned.insert(step.clone());
                self.fail(&step, message, Exit::Config);
                self.settle_cut_short();
            }
            Ev::StreamEnded {
                step,
                rows,
                error,
                early,
            } => {
                *self.rows_out.entry(step.clone()).or_default() += rows;
                if let Some(n) = self.outstanding.get_mut(&step) {
                    *n = n.saturating_sub(1);
                }
                let st = self.state.get(&step).copied();
                // A retrying writer that may run this extractor again is still reading it.
                let rerun_pending = self
                    .rerun_by
                    .get(&step)
                    .is_some_and(|w| !self.returned.contains(w));
                match error {
                    Some(_) if matches!(st, Some(St::Failed | St::Cancelled)) => {}
                    Some(_) if self.stopping => self.cancelled_step(&step),
                    Some(err) if rerun_pending => {
                        // Its retrying writer decides: it may run this extractor again.
                        self.log.log(
                            "WARN",
                            Some(&step),
                            &format!(
                                "its stream failed: {}",
                                err.lines().next().unwrap_or_default()
                            ),
                        );
                        self.stream_errors.insert(step.clone(), err);
                    }
                    Some(err) => self.stream_failed(&step, err),
                    None if early && self.stopping => {
                        // Its reader stopped before the end because the run is stopping: not complete.
                    }
                    None if early && self.readers_running(&step) => {
                        // A reader that is about to fail drops its input first: wait for its outcome.
                        self.cut_short.insert(step);
                    }
                    None => self.maybe_complete(&step),
                }
            }
            Ev::Collected { step, result } => {
                self.in_flight -= 1;
                match result {
                    Ok((schema, batches)) => {
                        self.available
                            .insert(step.clone(), Available::Shared(schema, batches));
                    }
                    Err(_) => {
                        // The stream error was reported through StreamEnded.
                        self.available.remove(&step);
                    }
                }
            }
            Ev::Drained => {
                self.in_flight -= 1;
            }
            Ev::Rerun { step } => {
                self.stream_errors.remove(&step);
                self.rows_out.insert(step.clone(), 0);
                *self.outstanding.entry(step.clone()).or_default() += 1;
                self.log.event(
                    "step_rerun",
                    Some(&step),
                    json!({ "reader": self.rerun_by.get(&step) }),
                );
            }
        }
    }

    fn produced(&mut self, step: &str, outputs: Streams) {
        if matches!(self.state.get(step), Some(St::Failed | St::Cancelled)) {
            return;
        }
        self.state.insert(step.to_string(), St::Produced);
        self.outstanding.insert(step.to_string(), outputs.len());
        if outputs.is_empty() {
            self.maybe_complete(step);
            return;
        }
        let consumers = self.n_consumers(step);
        let mut outputs = outputs;
        let main_name = if outputs.contains_key("df") {
            Some("df".to_string())
        } else {
            outputs.keys().next().cloned()
        };
        let main = main_name.and_then(|n| outputs.remove(&n));
        let stats = self.stats[step].clone();
        let track = |s: BatchStream, tx: &UnboundedSender<Ev>| {
            Tracked::new(s, step, stats.clone(), tx.clone())
        };
        // Extra outputs nobody reads: drain them so their producer completes.
        for (_, s) in std::mem::take(&mut outputs) {
            let mut t = track(s, &self.tx);
            self.spawn_blocking_task(move || {
                for b in t.by_ref() {
                    if b.is_err() {
                        break;
                    }
                }
                Ev::Drained
            });
        }
        let Some(main) = main else { return };
        let main: BatchStream = match self.incr.incr.get(step) {
            Some(i) => Box::new(incremental::Cursored {
                inner: main,
                max: i.max.clone(),
            }),
            None => main,
        };
        let mut t = track(main, &self.tx);
        match consumers {
            0 => self.spawn_blocking_task(move || {
                for b in t.by_ref() {
                    if b.is_err() {
                        break;
                    }
                }
                Ev::Drained
            }),
            1 => {
                self.available
                    .insert(step.to_string(), Available::Stream(Some(Box::new(t))));
            }
            _ if !self.collect.contains(step) => {
                self.available
                    .insert(step.to_string(), Available::Fanout(Some(Box::new(t))));
            }
            _ => {
                self.log.log(
                    "WARN",
                    Some(step),
                    "its output is collected in memory: some of its readers depend on each other, so they cannot read it at the same time",
                );
                self.available.insert(step.to_string(), Available::Pending);
                let name = step.to_string();
                self.spawn_blocking_task(move || {
                    let schema = t.schema();
                    let result = t
                        .by_ref()
                        .collect::<Result<Vec<_>, _>>()
                        .map(|b| (schema, Arc::new(b)))
                        .map_err(|e| e.to_string());
                    Ev::Collected { step: name, result }
                });
            }
        }
    }

    /// Some reader of `step`'s output has started and not returned yet.
    fn readers_running(&self, step: &str) -> bool {
        self.consumers.get(step).is_some_and(|cs| {
            cs.iter().any(|c| {
                matches!(self.state.get(c), Some(St::Running)) && !self.returned.contains(c)
            })
        })
    }

    /// Producers cut short by a reader that has returned since: complete when the run goes on (the reader
    /// needed no more), left incomplete when it is stopping (recorded as `cancelled` at the end).
    fn settle_cut_short(&mut self) {
        let settled: Vec<String> = self
            .cut_short
            .iter()
            .filter(|p| !self.readers_running(p))
            .cloned()
            .collect();
        for p in settled {
            self.cut_short.remove(&p);
            if !self.stopping {
                self.maybe_complete(&p);
            }
        }
    }

    /// Rows a step read: its driver's `rows_read` metric, else what the host saw it read (a source: the rows it
    /// handed on; any other step: the rows its inputs handed on). `None` for a step that never started.
    fn rows_read(&self, s: &Step) -> Option<f64> {
        let st = &self.stats[&s.id];
        if let Some(n) = StepStats::get(&st.rows_read) {
            return Some(n);
        }
        st.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()?;
        let ups = self.compiled.upstreams(s);
        let seen = if ups.is_empty() {
            st.live_rows.load(Ordering::Relaxed)
        } else {
            ups.iter()
                .map(|(u, _)| self.stats[u].live_rows.load(Ordering::Relaxed))
                .sum()
        };
        Some(seen as f64)
    }

    /// Records a step's final duration and state for progress and status.json.
    fn finish_stats(&self, step: &str) {
        let st = &self.stats[step];
        if !st.finished.swap(true, Ordering::Relaxed) {
            st.duration_ms.store(st.elapsed_ms(), Ordering::Relaxed);
        }
        *st.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.state[step].as_str());
    }

    fn maybe_complete(&mut self, step: &str) {
        if !self.returned.contains(step) || self.outstanding.get(step).copied().unwrap_or(0) > 0 {
            return;
        }
        if !matches!(self.state.get(step), Some(St::Produced)) {
            return;
        }
        self.state.insert(step.to_string(), St::Done);
        self.finish_stats(step);
        let stats = self.stats[step].clone();
        let duration_ms = stats.duration_ms.load(Ordering::Relaxed);
        let s = self.step(step);
        let ups = self.compiled.upstreams(s);
        let host_in: u64 = ups
            .iter()
            .map(|(u, _)| self.rows_out.get(u).copied().unwrap_or(0))
            .sum();
        self.rows_in.insert(step.to_string(), host_in);
        let host_out = self.rows_out.get(step).copied().unwrap_or(0);
        let rows_read = StepStats::get(&stats.rows_read).unwrap_or(host_in as f64);
        let rows_written = StepStats::get(&stats.rows_written).unwrap_or(host_out as f64);
        let attempts = stats.attempts.load(Ordering::Relaxed);
        self.log.event(
            "step_complete",
            Some(step),
            json!({ "rows_read": json_number(rows_read), "rows_written": json_number(rows_written), "duration_ms": duration_ms, "attempts": attempts }),
        );
        self.log
            .metric(Some(step), "duration_ms", duration_ms as f64, Some("ms"));
        self.log.log(
            "INFO",
            Some(step),
            &format!(
                "completed in {duration_ms} ms ({rows_read} rows read, {rows_written} rows written)"
            ),
        );
    }

    /// `step` failed because its output stream ended with `err` (the driver's `[CODE] message`).
    fn stream_failed(&mut self, step: &str, err: String) {
        let s = self.step(step);
        let label = self
            .plans
            .get(step)
            .map(|p| p.0.label.clone())
            .unwrap_or_default();
        let text = step_failed(step, &s.component, &label, err);
        self.fail(step, text, Exit::Run);
    }

    fn error_text(&self, step: &str, e: &PluginError) -> String {
        let s = self.step(step);
        let label = self
            .plans
            .get(step)
            .map(|p| p.0.label.clone())
            .unwrap_or_default();
        let mut text = step_failed(
            step,
            &s.component,
            &label,
            format_args!("[{}] {}", e.code, e.message),
        );
        if let Some(h) = &e.help {
            text.push_str(&format!("\n  = help: {h}"));
        }
        text
    }

    /// Stops waiting for the steps still running: they did not return within [`cancel::GRACE`] of the
    /// cancellation (or a second signal came), so they are blocked where the cancel flag does not reach.
    fn abandon(&mut self) {
        self.abandoned = true;
        let running: Vec<String> = self
            .state
            .iter()
            .filter(|(_, s)| matches!(s, St::Running | St::Produced))
            .map(|(id, _)| format!("`{id}`"))
            .collect();
        if !running.is_empty() {
            self.log.log(
                "WARN",
                None,
                &format!(
                    "not waiting for step(s) {} any longer: they did not stop within {} ms of the cancellation",
                    running.join(", "),
                    cancel::GRACE.as_millis()
                ),
            );
        }
        self.log
            .event("run_abandon", None, json!({ "steps": running }));
    }

    /// A cancelled source step whose driver did not report `rows_read` (it reports when its stream ends):
    /// the rows the host received from it so far are what it read, recorded in the stats and `metrics.jsonl`.
    fn rows_so_far(&self, step: &str) {
        let s = self.step(step);
        let st = &self.stats[step];
        if !self.compiled.upstreams(s).is_empty()
            || StepStats::get(&st.rows_read).is_some()
            || st
                .started
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
        {
            return;
        }
        let rows = st.live_rows.load(Ordering::Relaxed) as f64;
        *st.rows_read.lock().unwrap_or_else(|e| e.into_inner()) = Some(rows);
        self.log.metric(Some(step), "rows_read", rows, Some("rows"));
    }

    /// A step stopped because the run is stopping (another step failed, or Ctrl-C): not a failure of its own.
    fn cancelled_step(&mut self, step: &str) {
        self.state.insert(step.to_string(), St::Cancelled);
        self.finish_stats(step);
        self.log.event("step_cancelled", Some(step), json!({}));
        self.log
            .log("WARN", Some(step), "cancelled: the run is stopping");
    }

    fn fail(&mut self, step: &str, text: String, exit: Exit) {
        self.state.insert(step.to_string(), St::Failed);
        self.finish_stats(step);
        let masked = self.log.redactor().text(&text);
        let s = self.step(step);
        let label = self
            .plans
            .get(step)
            .map(|p| p.0.label.clone())
            .unwrap_or_default();
        self.log.event(
            "step_error",
            Some(step),
            json!({ "error": masked, "component": s.component, "plugin": label }),
        );
        self.log.log_file_only("ERROR", Some(step), &masked);
        if self.first_failure.is_none() {
            self.first_failure = Some((exit, Some(step.to_string()), masked));
        }
        if !self.stopping {
            self.stopping = true;
            // Running steps see the cancellation and stop; writers roll back.
            self.cancel.store(true, Ordering::Relaxed);
            self.log.log(
                "WARN",
                Some(step),
                &format!("step `{step}` failed: no new step starts, running steps are cancelled"),
            );
        }
    }
}

/// Outputs read by several steps that cannot all be started together, so they are collected instead of teed:
/// a reader that (transitively) depends on another reader of the same output, or on anything downstream of
/// it, would wait for a step that waits for the tee.
fn collect_outputs(
    compiled: &Compiled,
    consumers: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    // Ancestors of each step (the manifest is in topological order).
    let mut anc: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for s in &compiled.manifest.steps {
        let mut a = BTreeSet::new();
        for d in compiled.all_deps(s) {
            if let Some(x) = anc.get(d.as_str()) {
                a.extend(x.iter().cloned());
            }
            a.insert(d);
        }
        anc.insert(s.id.as_str(), a);
    }
    let shared: Vec<&String> = consumers
        .iter()
        .filter(|(_, c)| c.len() > 1)
        .map(|(u, _)| u)
        .collect();
    let mut collect = BTreeSet::new();
    for up in shared {
        let readers = &consumers[up];
        let unsafe_group = readers.iter().any(|r| {
            let Some(s) = compiled.step(r) else {
                return true;
            };
            compiled.all_deps(s).iter().filter(|d| *d != up).any(|d| {
                readers.contains(d)
                    || anc
                        .get(d.as_str())
                        .is_some_and(|a| a.contains(up) || readers.iter().any(|r2| a.contains(r2)))
            })
        });
        if unsafe_group {
            collect.insert(up.clone());
        }
    }
    collect
}
