//! `duckdb.processor`: one SQL query in an in-memory DuckDB over the step's Arrow inputs.
//!
//! Inputs are exposed to SQL as views `df_<id>` (and `df` with one input) over a table function that scans the
//! input's record batches directly (no per-value conversion in Rust: columns are copied vector by vector by
//! DuckDB's Arrow bridge). An input stream is collected into batches first, because a view can be scanned more
//! than once. The result streams out: a worker thread owns the DuckDB connection, executes the query in
//! streaming mode and hands each chunk over a bounded channel, so the host pulls batches as DuckDB produces them.

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use duckdb::Connection;
use duckdb::core::DataChunkHandle;
use duckdb::vtab::{
    BindInfo, InitInfo, TableFunctionInfo, VTab, record_batch_to_duckdb_data_chunk,
    to_duckdb_logical_type_for_field,
};
use osiris_plugin_sdk::{BatchStream, Context, Driver, ErrorKind, PluginError, Streams};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

pub const NAME: &str = "duckdb.processor";

/// Batches buffered between DuckDB and the consumer.
const CHANNEL_DEPTH: usize = 4;

/// One input table, shared with DuckDB through the table function's extra info.
#[derive(Clone)]
struct InputTable {
    schema: SchemaRef,
    source: Arc<Mutex<Source>>,
    query: Arc<QueryState>,
}

/// What the scans of one query know about it.
struct QueryState {
    /// The query's planning is over (set by the worker after `prepare`): a scan that begins before is one DuckDB
    /// runs while binding (a PIVOT without an explicit IN list, for instance), and another scan follows.
    planned: AtomicBool,
    /// The query mentions RECURSIVE: a recursive CTE runs the scans of its recursive part again on every
    /// iteration, from one bind.
    recursive: bool,
}

/// An input stream as the query's scans read it. The stream is read as DuckDB scans it, not before: with a
/// single scan (the usual case: the input is named once), no batch is kept once DuckDB has copied it, so the
/// step's memory does not grow with its input. When the plan may scan the input more than once, the batches
/// read are kept so that every scan sees all of them (each scan has its own position; later scans read what
/// earlier ones kept, then pull further batches from the stream).
struct Source {
    name: String,
    stream: Option<BatchStream>,
    /// Batches kept for further scans (only in [`Mode::Keep`]); batch `i` of the stream is `kept[i]`.
    kept: Vec<RecordBatch>,
    /// Batches pulled from the stream so far.
    pulled: usize,
    rows_read: u64,
    mode: Mode,
    /// Binds of the table function since the query's planning began (each names one scan in the plan).
    binds: usize,
    /// Scans begun (DuckDB's init of the table function).
    scans: usize,
    /// The upstream error that ended a scan, reported as the step's error (not as an SQL error).
    failed: Option<PluginError>,
    ctx: Context,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Not decided: the first scan decides (see [`Source::begin_scan`]).
    Undecided,
    /// One scan: batches are handed to DuckDB and dropped.
    Stream,
    /// Several scans (or not known to be one): batches are kept.
    Keep,
}

impl Source {
    fn new(name: String, stream: BatchStream, ctx: Context) -> Source {
        Source {
            name,
            stream: Some(stream),
            kept: Vec::new(),
            pulled: 0,
            rows_read: 0,
            mode: Mode::Undecided,
            binds: 0,
            scans: 0,
            failed: None,
            ctx,
        }
    }

    /// A scan begins. The first decides the mode: streaming only when planning is over, the plan bound the
    /// input exactly once and the query is not recursive (a recursive CTE runs its scans again on every
    /// iteration). A later scan of a streamed input is fine as long as nothing was pulled yet.
    fn begin_scan(&mut self, planned: bool, recursive: bool) -> Result<(), String> {
        self.scans += 1;
        if self.mode == Mode::Undecided {
            self.mode = if planned && self.binds == 1 && !recursive {
                Mode::Stream
            } else {
                Mode::Keep
            };
        } else if self.mode == Mode::Stream && self.scans > 1 {
            if self.pulled > 0 {
                return Err(format!(
                    "input `{}` is scanned more than once by this query, and its first scan has already \
                     consumed the stream",
                    self.name
                ));
            }
            self.mode = Mode::Keep;
        }
        Ok(())
    }

    /// Batch `i` of the input for a scan, pulling it from the stream when no scan has yet.
    fn batch(&mut self, i: usize) -> Result<Option<RecordBatch>, String> {
        if i < self.pulled {
            return match self.kept.get(i) {
                Some(b) => Ok(Some(b.clone())),
                None => Err(format!(
                    "input `{}` was streamed to an earlier scan and is not kept",
                    self.name
                )),
            };
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        if let Err(e) = self.ctx.check_cancelled() {
            let msg = e.to_string();
            self.failed = Some(e);
            return Err(msg);
        }
        match stream.next() {
            None => {
                self.stream = None;
                Ok(None)
            }
            Some(Err(e)) => {
                self.stream = None;
                let e = PluginError::new(
                    ErrorKind::Data,
                    "UPSTREAM",
                    format!("input `{}` failed: {e}", self.name),
                );
                let msg = e.to_string();
                self.failed = Some(e);
                Err(msg)
            }
            Some(Ok(b)) => {
                self.pulled += 1;
                self.rows_read += b.num_rows() as u64;
                if self.mode != Mode::Stream {
                    self.kept.push(b.clone());
                }
                Ok(Some(b))
            }
        }
    }
}

struct InputBind {
    table: InputTable,
}

/// Scan position: the current batch (its index in the input and the batch) and the row offset in it.
struct InputInit {
    cursor: Mutex<(usize, Option<RecordBatch>, usize)>,
    vector_size: usize,
}

/// Scans an [`InputTable`] in slices of at most one DuckDB vector.
struct InputScan;

impl VTab for InputScan {
    type BindData = InputBind;
    type InitData = InputInit;

    fn bind(bind: &BindInfo) -> Result<Self::BindData, Box<dyn std::error::Error>> {
        // SAFETY: registered with `register_table_function_with_extra_info::<InputScan, InputTable>`; DuckDB
        // keeps the extra info alive as long as the function exists.
        let table = unsafe { &*bind.get_extra_info::<InputTable>() }.clone();
        for f in table.schema.fields() {
            bind.add_result_column(f.name(), to_duckdb_logical_type_for_field(f)?);
        }
        table
            .source
            .lock()
            .map_err(|_| "input state poisoned")?
            .binds += 1;
        Ok(InputBind { table })
    }

    fn init(init: &InitInfo) -> Result<Self::InitData, Box<dyn std::error::Error>> {
        // SAFETY: registered with `register_table_function_with_extra_info::<InputScan, InputTable>`; DuckDB
        // keeps the extra info alive as long as the function exists.
        let table = unsafe { &*init.get_extra_info::<InputTable>() };
        let planned = table.query.planned.load(Ordering::Acquire);
        table
            .source
            .lock()
            .map_err(|_| "input state poisoned")?
            .begin_scan(planned, table.query.recursive)?;
        // SAFETY: `duckdb_vector_size` takes nothing and reads a compile-time constant of the linked DuckDB.
        let vector_size = unsafe { duckdb::ffi::duckdb_vector_size() } as usize;
        Ok(InputInit {
            cursor: Mutex::new((0, None, 0)),
            vector_size: vector_size.max(1),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let init = func.get_init_data();
        let bind = func.get_bind_data();
        let mut cursor = init
            .cursor
            .lock()
            .map_err(|_| "input scan state poisoned")?;
        loop {
            let (bi, batch, off) = &mut *cursor;
            let Some(b) = batch else {
                let next = bind
                    .table
                    .source
                    .lock()
                    .map_err(|_| "input state poisoned")?
                    .batch(*bi)?;
                match next {
                    Some(b) => {
                        *batch = Some(b);
                        *off = 0;
                        continue;
                    }
                    None => {
                        output.set_len(0);
                        return Ok(());
                    }
                }
            };
            if *off >= b.num_rows() {
                *bi += 1;
                *batch = None;
                continue;
            }
            let len = (b.num_rows() - *off).min(init.vector_size);
            let slice = b.slice(*off, len);
            *off += len;
            record_batch_to_duckdb_data_chunk(&slice, output)?;
            return Ok(());
        }
    }
}

#[derive(serde::Deserialize)]
struct Config {
    query: String,
}

pub struct DuckdbProcessor;

/// Quotes an identifier for DuckDB SQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn sql_error(e: duckdb::Error) -> PluginError {
    // DuckDB's text carries the error class and, for parser/binder errors, `LINE n:` with a caret: keep it whole.
    PluginError::new(ErrorKind::Data, "DUCKDB-SQL", format!("query failed: {e}")).with_help(
        "the tables are df_<step id> (hyphens become underscores) and df when there is one input",
    )
}

/// Registering an input failed, or the cancellation interrupted it (the registration binds the input's scan).
fn register_error(name: &str, e: duckdb::Error, ctx: &Context) -> PluginError {
    if ctx.is_cancelled() {
        return query_error(e, ctx);
    }
    PluginError::internal(format!("cannot register input `{name}` in DuckDB: {e}"))
}

/// A query error, or the cancellation that caused it.
fn query_error(e: duckdb::Error, ctx: &Context) -> PluginError {
    if ctx.is_cancelled() {
        PluginError::new(
            ErrorKind::Cancelled,
            "CANCELLED",
            "the run was cancelled; the query was interrupted",
        )
    } else {
        sql_error(e)
    }
}

impl Driver for DuckdbProcessor {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let cfg: Config = serde_json::from_value(config.clone())
            .map_err(|e| PluginError::config(format!("{NAME}: invalid config: {e}")))?;
        // The inputs are read as DuckDB scans them (see [`Source`]).
        let query = Arc::new(QueryState {
            planned: AtomicBool::new(false),
            recursive: cfg.query.to_ascii_lowercase().contains("recursive"),
        });
        let tables: Vec<(String, InputTable)> = inputs
            .into_iter()
            .map(|(name, stream)| {
                let table = InputTable {
                    schema: stream.schema(),
                    source: Arc::new(Mutex::new(Source::new(name.clone(), stream, ctx.clone()))),
                    query: query.clone(),
                };
                (name, table)
            })
            .collect();
        ctx.debug(&format!(
            "step `{step_id}`: {} input table(s), read as the query scans them",
            tables.len()
        ));

        let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
        let worker_ctx = ctx.clone();
        std::thread::Builder::new()
            .name(format!("duckdb-{step_id}"))
            .spawn(move || worker(cfg.query, query, tables, tx, worker_ctx))
            .map_err(|e| PluginError::internal(format!("cannot start the DuckDB worker: {e}")))?;
        let schema = match rx.recv() {
            Ok(Msg::Schema(s)) => s,
            Ok(Msg::Failed(e)) => return Err(e),
            Ok(Msg::Batch(_)) | Err(_) => {
                return Err(PluginError::internal(
                    "the DuckDB worker stopped before reporting a schema",
                ));
            }
        };
        let mut out = Streams::new();
        out.insert(
            "df".to_string(),
            Box::new(ResultStream {
                schema,
                rx,
                rows: 0,
                ctx: ctx.clone(),
                done: false,
            }),
        );
        Ok(out)
    }
}

/// Sets the flag when dropped (the worker ended, whichever way).
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

enum Msg {
    Schema(SchemaRef),
    Batch(Result<RecordBatch, ArrowError>),
    Failed(PluginError),
}

fn worker(
    query: String,
    state: Arc<QueryState>,
    tables: Vec<(String, InputTable)>,
    tx: SyncSender<Msg>,
    ctx: Context,
) {
    let fail = |e: PluginError| {
        let _ = tx.send(Msg::Failed(e));
    };
    // Rows read from every input, once the query is done with them (whichever way it ended).
    let _rows_read = RowsRead(&tables, &ctx);
    let conn = match Connection::open_in_memory() {
        Ok(c) => c,
        Err(e) => {
            return fail(PluginError::internal(format!(
                "cannot open an in-memory DuckDB: {e}"
            )));
        }
    };
    // Cancellation: DuckDB checks its interrupt flag while executing, so a long query stops promptly.
    let finished = Arc::new(AtomicBool::new(false));
    let _stop_watch = SetOnDrop(finished.clone());
    {
        let handle = conn.interrupt_handle();
        let ctx = ctx.clone();
        let finished = finished.clone();
        let _ = std::thread::Builder::new()
            .name("duckdb-cancel".into())
            .spawn(move || {
                while !finished.load(Ordering::Relaxed) {
                    if ctx.is_cancelled() {
                        handle.interrupt();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
    }
    for (i, (name, table)) in tables.iter().enumerate() {
        let func = format!("osiris_input_{i}");
        let setup = conn
            .register_table_function_with_extra_info::<InputScan, InputTable>(&func, table)
            .and_then(|_| {
                conn.execute_batch(&format!(
                    "CREATE TEMP VIEW {} AS SELECT * FROM {func}()",
                    ident(name)
                ))
            });
        if let Err(e) = setup {
            return fail(register_error(name, e, &ctx));
        }
    }
    // With exactly one input, it is also `df` (whatever alias the host passed it under).
    if let [(name, _)] = tables.as_slice()
        && name != "df"
        && let Err(e) = conn.execute_batch(&format!(
            "CREATE TEMP VIEW df AS SELECT * FROM {}",
            ident(name)
        ))
    {
        return fail(register_error("df", e, &ctx));
    }
    // Only the binds of the query itself count (the views above bound each input once already).
    for (_, table) in &tables {
        if let Ok(mut src) = table.source.lock() {
            src.binds = 0;
        }
    }
    let mut stmt = match conn.prepare(&query) {
        Ok(s) => s,
        Err(e) => return fail(step_error(e, &tables, &ctx)),
    };
    state.planned.store(true, Ordering::Release);
    let schema = match stmt.stream_arrow([]) {
        Ok(arrow) => arrow.get_schema(),
        Err(e) => return fail(step_error(e, &tables, &ctx)),
    };
    if tx.send(Msg::Schema(schema.clone())).is_err() {
        return;
    }
    loop {
        if ctx.is_cancelled() {
            let _ = tx.send(Msg::Batch(Err(PluginError::cancelled().into_arrow())));
            return;
        }
        let msg = match stmt.step() {
            Ok(Some(array)) => Msg::Batch(Ok(RecordBatch::from(&array))),
            Ok(None) => return,
            Err(e) => Msg::Batch(Err(step_error(e, &tables, &ctx).into_arrow())),
        };
        let stop = matches!(msg, Msg::Batch(Err(_)));
        // The consumer dropped the stream: stop executing.
        if tx.send(msg).is_err() || stop {
            return;
        }
    }
}

/// A failed query's error: the upstream failure (or cancellation) that stopped an input's scan when there was
/// one, as the step's own error rather than as DuckDB's wrapping of it; else the query's error.
fn step_error(e: duckdb::Error, tables: &[(String, InputTable)], ctx: &Context) -> PluginError {
    for (_, table) in tables {
        if let Some(failed) = table.source.lock().ok().and_then(|mut s| s.failed.take()) {
            return failed;
        }
    }
    query_error(e, ctx)
}

/// Reports the `rows_read` metric when dropped.
struct RowsRead<'a>(&'a [(String, InputTable)], &'a Context);

impl Drop for RowsRead<'_> {
    fn drop(&mut self) {
        let rows: u64 = self
            .0
            .iter()
            .map(|(_, t)| t.source.lock().map(|s| s.rows_read).unwrap_or(0))
            .sum();
        self.1.metric("rows_read", rows as f64, Some("rows"));
    }
}

/// The output stream; ends when the worker finishes.
struct ResultStream {
    schema: SchemaRef,
    rx: Receiver<Msg>,
    rows: u64,
    ctx: Context,
    done: bool,
}

impl Iterator for ResultStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // Batches the worker produced before the host cancelled may still wait in the channel: once cancelled,
        // none is handed out (dropping the receiver then stops the worker at its next send).
        if self.ctx.is_cancelled() {
            self.done = true;
            return Some(Err(PluginError::cancelled().into_arrow()));
        }
        match self.rx.recv() {
            Ok(Msg::Batch(Ok(b))) => {
                self.rows += b.num_rows() as u64;
                // DuckDB may name a column differently in the streamed chunk: keep the announced schema.
                match RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()) {
                    Ok(b) => Some(Ok(b)),
                    Err(_) => Some(Ok(b)),
                }
            }
            Ok(Msg::Batch(Err(e))) => {
                self.done = true;
                Some(Err(e))
            }
            Ok(Msg::Failed(e)) => {
                self.done = true;
                Some(Err(e.into_arrow()))
            }
            Ok(Msg::Schema(_)) | Err(_) => {
                self.done = true;
                self.ctx
                    .metric("rows_written", self.rows as f64, Some("rows"));
                None
            }
        }
    }
}

impl RecordBatchReader for ResultStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_duckdb,
    name: "osiris-duckdb",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "duckdb.processor",
            spec_yaml: include_str!("../../../components/duckdb.processor/spec.yaml"),
            driver: || Box::new(DuckdbProcessor),
        },
    ],
}

#[cfg(test)]
mod tests;
