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
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
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
    batches: Arc<Vec<RecordBatch>>,
}

struct InputBind {
    table: InputTable,
}

/// Scan position: (batch index, row offset in that batch).
struct InputInit {
    cursor: Mutex<(usize, usize)>,
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
        Ok(InputBind { table })
    }

    fn init(_: &InitInfo) -> Result<Self::InitData, Box<dyn std::error::Error>> {
        // SAFETY: `duckdb_vector_size` takes nothing and reads a compile-time constant of the linked DuckDB.
        let vector_size = unsafe { duckdb::ffi::duckdb_vector_size() } as usize;
        Ok(InputInit {
            cursor: Mutex::new((0, 0)),
            vector_size: vector_size.max(1),
        })
    }

    fn func(
        func: &TableFunctionInfo<Self>,
        output: &mut DataChunkHandle,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let init = func.get_init_data();
        let bind = func.get_bind_data();
        let batches = &bind.table.batches;
        let mut cursor = init
            .cursor
            .lock()
            .map_err(|_| "input scan state poisoned")?;
        loop {
            let (bi, off) = *cursor;
            let Some(batch) = batches.get(bi) else {
                output.set_len(0);
                return Ok(());
            };
            if off >= batch.num_rows() {
                *cursor = (bi + 1, 0);
                continue;
            }
            let len = (batch.num_rows() - off).min(init.vector_size);
            *cursor = (bi, off + len);
            record_batch_to_duckdb_data_chunk(&batch.slice(off, len), output)?;
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
        // Collect inputs (a view may be scanned more than once).
        let mut tables = Vec::with_capacity(inputs.len());
        let mut rows_read: u64 = 0;
        for (name, stream) in inputs {
            let schema = stream.schema();
            let mut batches = Vec::new();
            for b in stream {
                ctx.check_cancelled()?;
                let b = b.map_err(|e| {
                    PluginError::new(
                        ErrorKind::Data,
                        "UPSTREAM",
                        format!("input `{name}` failed: {e}"),
                    )
                })?;
                rows_read += b.num_rows() as u64;
                batches.push(b);
            }
            tables.push((
                name,
                InputTable {
                    schema,
                    batches: Arc::new(batches),
                },
            ));
        }
        ctx.metric("rows_read", rows_read as f64, Some("rows"));
        ctx.debug(&format!(
            "step `{step_id}`: {} input table(s), {rows_read} rows",
            tables.len()
        ));

        let (tx, rx) = sync_channel::<Msg>(CHANNEL_DEPTH);
        let query = cfg.query;
        let worker_ctx = ctx.clone();
        std::thread::Builder::new()
            .name(format!("duckdb-{step_id}"))
            .spawn(move || worker(query, tables, tx, worker_ctx))
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

fn worker(query: String, tables: Vec<(String, InputTable)>, tx: SyncSender<Msg>, ctx: Context) {
    let fail = |e: PluginError| {
        let _ = tx.send(Msg::Failed(e));
    };
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
            return fail(PluginError::internal(format!(
                "cannot register input `{name}` in DuckDB: {e}"
            )));
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
        return fail(PluginError::internal(format!(
            "cannot register input `df` in DuckDB: {e}"
        )));
    }
    let mut stmt = match conn.prepare(&query) {
        Ok(s) => s,
        Err(e) => return fail(query_error(e, &ctx)),
    };
    let schema = match stmt.stream_arrow([]) {
        Ok(arrow) => arrow.get_schema(),
        Err(e) => return fail(query_error(e, &ctx)),
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
            Err(e) => Msg::Batch(Err(query_error(e, &ctx).into_arrow())),
        };
        let stop = matches!(msg, Msg::Batch(Err(_)));
        // The consumer dropped the stream: stop executing.
        if tx.send(msg).is_err() || stop {
            return;
        }
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
