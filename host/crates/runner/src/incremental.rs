//! Incremental and chunked loads in a run (ADR 0018, docs/incremental.md).
//!
//! - An extractor with `incremental:` reads a window: after its high-water mark ([`crate::state`]), or from
//!   `initial_value`. The host passes the window as the reserved config key `_window` and watches the
//!   extractor's output for the greatest cursor value. The mark moves only when the extractor and every writer
//!   it feeds (directly or through processors) succeeded.
//! - A writer with `commit: per_chunk` whose input comes straight from an extractor with `chunk_by` is called
//!   once per chunk of `chunk_rows` rows, each call its own transaction; after each commit the run records a
//!   `chunk_committed` event with the chunk's last key, which `osiris run --resume RUN_ID` continues after.
//! - `--full-refresh` ignores the marks (reads from `initial_value`, or everything) and turns writers fed by an
//!   incremental extractor from `append` into `replace`, so their tables are rebuilt.

use crate::manifest::Compiled;
use crate::rundir::{RunLog, now_rfc3339};
use crate::state::{self, Cond, CursorMax, Incremental, State};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use osiris_plugin_sdk::BatchStream;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Rows per chunk when `chunk_rows` is not set.
pub const DEFAULT_CHUNK_ROWS: usize = 100_000;

/// An incremental extractor of this run.
pub struct IncrStep {
    pub inc: Incremental,
    pub path: PathBuf,
    pub prior: Option<State>,
    pub window: Option<Cond>,
    pub max: Arc<Mutex<CursorMax>>,
}

/// A writer that commits per chunk.
#[derive(Clone)]
pub struct ChunkPlan {
    /// The extractor it reads.
    pub extractor: String,
    /// `chunk_by` of that extractor.
    pub key: String,
    pub rows: usize,
    /// Resumed: chunks the earlier run committed, and the key of the last one.
    pub resumed: Option<(u64, Value)>,
}

/// What a run being resumed had committed: writer step -> (chunks, last key).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub run_id: String,
    pub through: BTreeMap<String, (u64, Value)>,
}

impl Resume {
    /// The chunks each writer of the run in `run_dir` committed, read from its `events.jsonl`.
    pub fn read(run_id: &str, run_dir: &Path) -> std::io::Result<Resume> {
        // The file must be there; lines a kill cut short are skipped by `read_events`.
        std::fs::metadata(run_dir.join("events.jsonl"))?;
        let mut through = BTreeMap::new();
        for e in crate::history::read_events(run_dir) {
            if e.get("event").and_then(Value::as_str) != Some("chunk_committed") {
                continue;
            }
            if let (Some(step), Some(n), Some(key)) = (
                e.get("step").and_then(Value::as_str),
                e.get("chunk").and_then(Value::as_u64),
                e.get("through"),
            ) {
                through.insert(step.to_string(), (n, key.clone()));
            }
        }
        Ok(Resume {
            run_id: run_id.to_string(),
            through,
        })
    }
}

/// The incremental and chunked steps of one run.
#[derive(Default)]
pub struct Plan {
    pub incr: BTreeMap<String, IncrStep>,
    pub chunked: BTreeMap<String, ChunkPlan>,
    /// Writers whose `append` a full refresh turns into `replace`.
    pub refresh: BTreeSet<String>,
    pub full_refresh: bool,
}

/// Steps downstream of `from` (not `from` itself), through any number of steps.
pub fn downstream(compiled: &Compiled, from: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(u) = todo.pop() {
        for s in &compiled.manifest.steps {
            if compiled.upstreams(s).iter().any(|(x, _)| *x == u) && out.insert(s.id.clone()) {
                todo.push(s.id.clone());
            }
        }
    }
    out
}

/// The config key holding a writer's mode (`write_mode`, or mysql.writer's `mode`).
fn mode_key(config: &Value) -> Option<&'static str> {
    ["write_mode", "mode"]
        .into_iter()
        .find(|k| config.get(*k).is_some_and(Value::is_string))
}

/// Why a run cannot start: its step, what is wrong and how to fix it (RUN-E011).
pub struct Refused {
    pub step: String,
    pub why: String,
    pub help: String,
}

impl Plan {
    /// The plan of a run; an error is a state that cannot be used, or a per-chunk writer wired wrongly.
    pub fn new(
        compiled: &Compiled,
        project_dir: &Path,
        profile: &str,
        full_refresh: bool,
        resume: Option<&Resume>,
    ) -> Result<Plan, Refused> {
        let mut plan = Plan {
            full_refresh,
            ..Plan::default()
        };
        let pipeline = &compiled.manifest.pipeline.id;
        let state_refused = |step: &str, why: String| Refused {
            step: step.to_string(),
            why,
            help: format!(
                "`osiris state show {pipeline}` shows the state; `osiris state reset {pipeline} --step {step}` or `osiris run --full-refresh` starts over"
            ),
        };
        let chunk_refused = |step: &str, why: String| {
            Refused {
            step: step.to_string(),
            why,
            help: "set `chunk_by` on the extractor that feeds this writer directly, or drop `commit: per_chunk` (docs/incremental.md)".into(),
        }
        };
        for s in &compiled.manifest.steps {
            let cfg = compiled.driver_config(&s.id);
            if s.mode == "extract"
                && let Some(inc) = Incremental::of(&cfg)
            {
                let path = state::path(project_dir, profile, pipeline, &s.id);
                let prior = state::load(&path).map_err(|e| state_refused(&s.id, e))?;
                let window = state::window(&inc, prior.as_ref(), full_refresh).map_err(|e| {
                    state_refused(&s.id, format!("its incremental state cannot be used: {e}"))
                })?;
                if full_refresh {
                    for d in downstream(compiled, &s.id) {
                        let dc = compiled.driver_config(&d);
                        if compiled.step(&d).is_some_and(|x| x.mode == "write")
                            && mode_key(&dc).is_some_and(|k| dc[k] == "append")
                        {
                            plan.refresh.insert(d);
                        }
                    }
                }
                let max = Arc::new(Mutex::new(CursorMax::new(inc.cursor.clone())));
                plan.incr.insert(
                    s.id.clone(),
                    IncrStep {
                        inc,
                        path,
                        prior,
                        window,
                        max,
                    },
                );
            }
            if s.mode == "write" && cfg.get("commit").and_then(Value::as_str) == Some("per_chunk") {
                let ups = compiled.upstreams(s);
                let ex = match ups.as_slice() {
                    [(u, _)] => compiled.step(u).filter(|x| x.mode == "extract"),
                    _ => None,
                };
                let Some(ex) = ex else {
                    return Err(chunk_refused(
                        &s.id,
                        "`commit: per_chunk` needs one input, straight from an extractor that sets `chunk_by`".into(),
                    ));
                };
                let ec = compiled.driver_config(&ex.id);
                let Some(key) = ec.get("chunk_by").and_then(Value::as_str) else {
                    return Err(chunk_refused(
                        &s.id,
                        format!(
                            "`commit: per_chunk` needs `chunk_by` on its extractor `{}`",
                            ex.id
                        ),
                    ));
                };
                let rows = ec
                    .get("chunk_rows")
                    .and_then(Value::as_u64)
                    .map(|n| n.max(1) as usize)
                    .unwrap_or(DEFAULT_CHUNK_ROWS);
                plan.chunked.insert(
                    s.id.clone(),
                    ChunkPlan {
                        extractor: ex.id.clone(),
                        key: key.to_string(),
                        rows,
                        resumed: resume.and_then(|r| r.through.get(&s.id).cloned()),
                    },
                );
            }
        }
        Ok(plan)
    }

    /// The config an extractor runs with: its own, plus the read window (incremental mark, chunk order and the
    /// key a resumed run continues after).
    pub fn extractor_config(&self, step: &str, mut config: Value) -> Value {
        let mut conds: Vec<Value> = Vec::new();
        let mut order: Vec<Value> = Vec::new();
        if let Some(Some(w)) = self.incr.get(step).map(|i| &i.window) {
            conds.push(w.to_json());
        }
        if let Some(key) = config.get("chunk_by").and_then(Value::as_str) {
            order.push(json!(key));
            let resumed = self
                .chunked
                .values()
                .find(|c| c.extractor == step)
                .and_then(|c| c.resumed.as_ref());
            if let Some((_, after)) = resumed {
                conds.push(json!({ "columns": [key], "op": ">", "values": [after] }));
            }
        }
        if (!conds.is_empty() || !order.is_empty())
            && let Value::Object(m) = &mut config
        {
            m.insert(
                "_window".into(),
                json!({ "where": conds, "order_by": order }),
            );
        }
        config
    }

    /// The config a writer runs with: `append` becomes `replace` on a full refresh.
    pub fn writer_config(&self, step: &str, mut config: Value) -> Value {
        if let Some(k) = mode_key(&config)
            && self.refresh.contains(step)
            && config[k] == "append"
        {
            config[k] = json!("replace");
        }
        config
    }
}

/// The `state_kept` event and its log line: the mark of `step` stays, and why.
fn kept(log: &RunLog, level: &str, step: &str, mark: &Option<Vec<Value>>, reason: &str) {
    log.event(
        "state_kept",
        Some(step),
        json!({ "mark": mark, "reason": reason }),
    );
    log.log(
        level,
        Some(step),
        &format!("incremental state kept: {reason}"),
    );
}

/// A writer's config with `replace` turned into `append`: for every chunk after the first.
pub fn append_only(mut config: Value) -> Value {
    if let Some(k) = mode_key(&config)
        && config[k] == "replace"
    {
        config[k] = json!("append");
    }
    config
}

impl Plan {
    /// Events at the start of the run: each incremental step's window.
    pub fn announce(&self, log: &RunLog) {
        for (step, i) in &self.incr {
            log.event(
                "incremental_window",
                Some(step),
                json!({
                    "cursor": i.inc.cursor,
                    "op": i.window.as_ref().map(|w| w.op),
                    "from": i.window.as_ref().map(|w| w.values.clone()),
                    "mark": i.prior.as_ref().map(|p| p.value.clone()),
                    "full_refresh": self.full_refresh,
                    "replaced": self.refresh.iter().collect::<Vec<_>>(),
                }),
            );
            let from = match &i.window {
                Some(w) => format!(
                    "rows with ({}) {} {}",
                    i.inc.cursor.join(", "),
                    w.op,
                    Value::from(w.values.clone())
                ),
                None => "every row (no state yet)".to_string(),
            };
            let how = if self.full_refresh {
                " (full refresh)"
            } else {
                ""
            };
            log.log(
                "INFO",
                Some(step),
                &format!("incremental{how}: reading {from}"),
            );
        }
    }

    /// After the run: moves each mark whose extractor and writers all succeeded (`done`), and says why the
    /// others stayed.
    pub fn settle(
        &self,
        compiled: &Compiled,
        log: &RunLog,
        run_id: &str,
        profile: &str,
        done: &dyn Fn(&str) -> bool,
    ) {
        for (step, i) in &self.incr {
            let writers: Vec<String> = downstream(compiled, step)
                .into_iter()
                .filter(|d| compiled.step(d).is_some_and(|x| x.mode == "write"))
                .collect();
            let pending: Vec<&String> = std::iter::once(step)
                .chain(writers.iter())
                .filter(|s| !done(s))
                .collect();
            let from = i.prior.as_ref().map(|p| p.value.clone());
            if !pending.is_empty() {
                let names: Vec<String> = pending.iter().map(|s| format!("`{s}`")).collect();
                let reason = format!(
                    "{} did not succeed; the next run reads the same rows again",
                    names.join(", ")
                );
                kept(log, "INFO", step, &from, &reason);
                continue;
            }
            let max = i.max.lock().unwrap_or_else(|e| e.into_inner());
            if !max.ended {
                // A reader stopped early (a LIMIT downstream): unread rows may hold smaller cursor values.
                kept(
                    log,
                    "INFO",
                    step,
                    &from,
                    "its output was not read to the end, so rows after the mark may not have been read",
                );
                continue;
            }
            let rows = max.rows;
            let (value, kinds) = match (max.value(), &i.prior) {
                (Some(v), _) => (v, max.kinds.clone()),
                // Nothing new: the mark stays where it was.
                (None, Some(p)) if !self.full_refresh => (p.value.clone(), p.kinds.clone()),
                (None, _) => {
                    // A full refresh of an empty source (or a first run that read nothing): no mark.
                    let _ = std::fs::remove_file(&i.path);
                    kept(log, "INFO", step, &None, "no row had a cursor value");
                    continue;
                }
            };
            let new = State {
                version: state::VERSION,
                pipeline: compiled.manifest.pipeline.id.clone(),
                profile: profile.to_string(),
                step: step.clone(),
                cursor: i.inc.cursor.clone(),
                kinds,
                value: value.clone(),
                primary_key: i.inc.primary_key.clone(),
                run_id: run_id.to_string(),
                updated_at: now_rfc3339(),
                rows,
            };
            match state::save(&i.path, &new) {
                Ok(()) => {
                    log.event(
                        "state_advanced",
                        Some(step),
                        json!({ "from": from, "to": value, "rows": rows }),
                    );
                    log.log(
                        "INFO",
                        Some(step),
                        &format!(
                            "incremental state: mark {} after {rows} rows",
                            Value::from(value)
                        ),
                    );
                }
                Err(e) => {
                    let reason = format!("cannot write {}: {e}", i.path.display());
                    kept(log, "WARN", step, &from, &reason);
                }
            }
        }
    }
}

/// An incremental extractor's output, watched for its greatest cursor value.
pub struct Cursored {
    pub inner: BatchStream,
    pub max: Arc<Mutex<CursorMax>>,
}

impl Iterator for Cursored {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let Some(item) = self.inner.next() else {
            self.max.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
            return None;
        };
        Some(item.and_then(|b| {
            self.max.lock().unwrap_or_else(|e| e.into_inner()).see(&b)?;
            Ok(b)
        }))
    }
}

impl RecordBatchReader for Cursored {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// One chunk of a shared input: batches until `rows` rows were handed on; the key of its last row is kept.
pub struct Chunk {
    pub input: Arc<Mutex<BatchStream>>,
    pub schema: SchemaRef,
    pub first: Option<RecordBatch>,
    pub key: String,
    pub rows: usize,
    pub seen: usize,
    pub last: Arc<Mutex<Option<Value>>>,
}

impl Chunk {
    fn note(&mut self, b: &RecordBatch) -> Result<(), ArrowError> {
        self.seen += b.num_rows();
        if b.num_rows() == 0 {
            return Ok(());
        }
        let col = b.column_by_name(&self.key).ok_or_else(|| {
            ArrowError::InvalidArgumentError(format!(
                "chunk_by column `{}` is not in the input",
                self.key
            ))
        })?;
        let v = state::value_at(col, b.num_rows() - 1).ok_or_else(|| {
            ArrowError::InvalidArgumentError(format!(
                "chunk_by column `{}` is NULL or of a type that cannot order chunks ({})",
                self.key,
                col.data_type()
            ))
        })?;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        Ok(())
    }
}

impl Iterator for Chunk {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.first.take() {
            Some(b) => Ok(b),
            None => {
                if self.seen >= self.rows {
                    return None;
                }
                self.input
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .next()?
            }
        };
        Some(item.and_then(|b| {
            self.note(&b)?;
            Ok(b)
        }))
    }
}

impl RecordBatchReader for Chunk {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
