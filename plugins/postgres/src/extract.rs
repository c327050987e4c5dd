//! `postgres.extractor` / `supabase.extractor`: `COPY (query) TO STDOUT (FORMAT binary)` decoded into Arrow
//! record batches of `batch_size` rows.
//!
//! The database work happens on a thread of its own (driving the plugin's I/O runtime); batches reach the host
//! through a channel holding at most one batch, so rows are fetched as the host pulls and memory stays bounded
//! by about two batches. The session comes from the pool; it goes back once the COPY has finished, before the
//! last batch is handed on (so a step after this one finds it idle). Dropping the stream early, or any error,
//! closes the session instead.

use crate::conn::{self, Flavor, ident, qualified, str_field};
use crate::decode::{Col, Dec, decoder_for};
use crate::pool::{self, Pooled};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{Field, Schema, SchemaRef};
use futures_util::StreamExt;
use osiris_plugin_sdk::{
    BatchSender, Context, Driver, ErrorKind, PluginError, Streams, batch_from_arrays, spawn_reader,
};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Extractor {
    pub flavor: Flavor,
}

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The SQL to run: `query`, or a SELECT built from table/columns/limit/offset.
pub fn source_sql(m: &Map<String, Value>, schema: &str) -> Result<String, PluginError> {
    if let Some(q) = str_field(m, "query") {
        let q = q.trim().trim_end_matches(';').trim_end();
        if q.is_empty() {
            return Err(PluginError::config("`query` is empty"));
        }
        return Ok(q.to_string());
    }
    let Some(table) = str_field(m, "table") else {
        return Err(
            PluginError::config("set either `table` or `query` to extract data")
                .with_help("e.g. `table: customers` or `query: SELECT id, name FROM customers`"),
        );
    };
    let cols = match m.get("columns").and_then(Value::as_array) {
        Some(cols) if !cols.is_empty() => cols
            .iter()
            .map(|c| {
                c.as_str()
                    .map(ident)
                    .ok_or_else(|| PluginError::config("`columns` must be a list of names"))
            })
            .collect::<Result<Vec<_>, _>>()?
            .join(", "),
        _ => "*".to_string(),
    };
    let mut sql = format!("SELECT {cols} FROM {}", qualified(schema, table));
    if let Some(limit) = m.get("limit").and_then(Value::as_u64) {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    if let Some(offset) = m.get("offset").and_then(Value::as_u64).filter(|o| *o > 0) {
        sql.push_str(&format!(" OFFSET {offset}"));
    }
    Ok(sql)
}

fn batch_size(m: &Map<String, Value>) -> usize {
    m.get("batch_size")
        .and_then(Value::as_u64)
        .map(|b| b.clamp(1, 1_000_000) as usize)
        .unwrap_or(10_000)
}

impl Driver for Extractor {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        _inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let m = conn::merged(config, ctx);
        let settings = conn::settings(self.flavor, &m)?;
        let sql = osiris_plugin_dbcommon::window::apply(
            &source_sql(&m, &settings.schema)?,
            &m,
            osiris_plugin_dbcommon::window::Dialect::Postgres,
            crate::conn::ident,
        )?;
        let batch_size = batch_size(&m);
        let ctx2 = ctx.clone();
        let reader = spawn_reader(format!("pg-extract-{step_id}"), 1, move |mut out| {
            let rt = match pool::POOLS.runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    out.fail(e);
                    return;
                }
            };
            let job = Job {
                settings,
                sql,
                batch_size,
                ctx: ctx2,
            };
            rt.block_on(job.run(&mut out));
        })?;
        let mut out = Streams::new();
        out.insert(
            "df".to_string(),
            Box::new(reader) as Box<dyn RecordBatchReader + Send>,
        );
        Ok(out)
    }

    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::discover(self.flavor, config, ctx)
    }

    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::doctor(self.flavor, config, ctx)
    }
}

struct Job {
    settings: conn::Settings,
    sql: String,
    batch_size: usize,
    ctx: Context,
}

impl Job {
    /// Bounds a wait for the server by `read_timeout` (a stalled network fails the step instead of hanging
    /// it); on a timeout the caller drops its session, which closes it.
    async fn within<T>(
        &self,
        doing: &str,
        fut: impl std::future::Future<Output = Result<T, PluginError>>,
    ) -> Result<T, PluginError> {
        osiris_plugin_dbcommon::within(self.settings.read_timeout, &self.settings.label, doing, fut)
            .await
    }

    async fn run(self, out: &mut BatchSender) {
        let prepared = self.prepare().await;
        let (pooled, copy_sql, schema, decs) = match prepared {
            Ok(p) => p,
            Err(e) => {
                out.fail(e);
                return;
            }
        };
        if !out.describe(schema.clone()) {
            pooled.release().await;
            return;
        }
        let rows = match self.stream(pooled, &copy_sql, schema, &decs, out).await {
            Ok(rows) => rows,
            Err(e) => {
                out.fail(e);
                return;
            }
        };
        self.ctx.metric("rows_read", rows as f64, Some("rows"));
        self.ctx
            .debug(&format!("read {rows} rows from {}", self.settings.label));
    }

    async fn prepare(&self) -> Result<(Pooled, String, SchemaRef, Vec<Dec>), PluginError> {
        let flavor = self.settings.flavor;
        let pooled = pool::POOLS.checkout(&self.settings, &self.ctx).await?;
        let stmt = self
            .within("preparing the query", async {
                pooled.client().prepare(&self.sql).await.map_err(|e| {
                    let mut err = conn::db_error(flavor, &e, "the query was refused");
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                        err = err.with_help(format!(
                            "check `table`/`schema` (schema `{}`); `osiris discover` lists the tables",
                            self.settings.schema
                        ));
                    }
                    err
                })
            })
            .await?;
        let mut fields = Vec::new();
        let mut decs = Vec::new();
        let mut select = Vec::new();
        let mut wrap = false;
        for col in stmt.columns() {
            let name = col.name().to_string();
            match decoder_for(col.type_(), col.type_modifier()) {
                Some(dec) => {
                    select.push(format!("q.{}", ident(&name)));
                    let mut field = Field::new(&name, dec.data_type(), true);
                    if let Some(ext) = crate::decode::extension_for(col.type_()) {
                        field = field.with_metadata(
                            [(crate::encode::EXTENSION_KEY.to_string(), ext.to_string())].into(),
                        );
                    }
                    fields.push(field);
                    decs.push(dec);
                }
                None => {
                    wrap = true;
                    select.push(format!("q.{}::text", ident(&name)));
                    fields.push(Field::new(&name, Dec::Text.data_type(), true));
                    decs.push(Dec::Text);
                }
            }
        }
        let inner = if wrap {
            let mut seen = std::collections::BTreeSet::new();
            for f in &fields {
                if !seen.insert(f.name().clone()) {
                    return Err(PluginError::config(format!(
                        "the query returns two columns named `{}`, and one of its columns needs a conversion to text",
                        f.name()
                    ))
                    .with_help("give the columns distinct names (`AS ...`)"));
                }
            }
            format!("SELECT {} FROM ({}) AS q", select.join(", "), self.sql)
        } else {
            self.sql.clone()
        };
        let copy_sql = format!("COPY ({inner}) TO STDOUT (FORMAT binary)");
        drop(stmt);
        Ok((pooled, copy_sql, Arc::new(Schema::new(fields)), decs))
    }

    /// Streams the COPY; `pooled` goes back to the pool when the COPY finished, and is closed on any other way out.
    async fn stream(
        &self,
        pooled: Pooled,
        copy_sql: &str,
        schema: SchemaRef,
        decs: &[Dec],
        out: &BatchSender,
    ) -> Result<u64, PluginError> {
        let flavor = self.settings.flavor;
        let stream = self
            .within("running the query", async {
                pooled
                    .client()
                    .copy_out(copy_sql)
                    .await
                    .map_err(|e| conn::db_error(flavor, &e, "reading the rows failed"))
            })
            .await?;
        let mut stream = Box::pin(stream);
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut pos = 0usize;
        let mut header = false;
        let mut cols: Vec<Col> = decs.iter().map(|d| Col::new(d, self.batch_size)).collect();
        let mut in_batch = 0usize;
        let mut total = 0u64;
        let mut ended = false;
        loop {
            // Parse whatever complete tuples the buffer holds.
            if !header && buf.len() - pos >= SIGNATURE.len() + 8 {
                if &buf[pos..pos + SIGNATURE.len()] != SIGNATURE {
                    return Err(PluginError::internal(
                        "the server sent COPY data without the binary signature",
                    ));
                }
                let ext = u32::from_be_bytes(buf[pos + 15..pos + 19].try_into().expect("4 bytes"))
                    as usize;
                if buf.len() - pos >= 19 + ext {
                    pos += 19 + ext;
                    header = true;
                }
            }
            while header && !ended {
                match tuple_len(&buf[pos..], decs.len())? {
                    Tuple::Incomplete => break,
                    Tuple::Trailer => {
                        ended = true;
                    }
                    Tuple::Complete(len) => {
                        decode_tuple(&buf[pos..pos + len], decs, &mut cols, &schema, total)?;
                        pos += len;
                        in_batch += 1;
                        total += 1;
                        if in_batch == self.batch_size {
                            let batch = finish_batch(&schema, &mut cols, in_batch)?;
                            in_batch = 0;
                            if !out.send_checked(&self.ctx, batch)? {
                                return Ok(total); // the host stopped reading
                            }
                        }
                    }
                }
            }
            if pos > 0 && pos == buf.len() {
                buf.clear();
                pos = 0;
            } else if pos > (1 << 20) {
                buf.drain(..pos);
                pos = 0;
            }
            let next = self
                .within("reading the rows", async {
                    match stream.next().await {
                        Some(Ok(chunk)) => Ok(Some(chunk)),
                        Some(Err(e)) => Err(conn::db_error(flavor, &e, "reading the rows failed")),
                        None => Ok(None),
                    }
                })
                .await?;
            match next {
                Some(chunk) => buf.extend_from_slice(&chunk),
                None => break,
            }
        }
        // The COPY is complete: the session is idle again.
        drop(stream);
        pooled.release().await;
        if !ended && header {
            // Data after the last chunk was incomplete.
            if buf.len() > pos {
                return Err(PluginError::internal(
                    "the COPY data ended in the middle of a row",
                ));
            }
        }
        if in_batch > 0 || total == 0 {
            let batch = finish_batch(&schema, &mut cols, in_batch)?;
            out.send_checked(&self.ctx, batch)?;
        }
        Ok(total)
    }
}

enum Tuple {
    Incomplete,
    Trailer,
    Complete(usize),
}

fn tuple_len(b: &[u8], ncols: usize) -> Result<Tuple, PluginError> {
    if b.len() < 2 {
        return Ok(Tuple::Incomplete);
    }
    let n = i16::from_be_bytes([b[0], b[1]]);
    if n == -1 {
        return Ok(Tuple::Trailer);
    }
    if n as usize != ncols {
        return Err(PluginError::internal(format!(
            "the server sent a row of {n} fields for {ncols} columns"
        )));
    }
    let mut p = 2usize;
    for _ in 0..ncols {
        if b.len() < p + 4 {
            return Ok(Tuple::Incomplete);
        }
        let len = i32::from_be_bytes(b[p..p + 4].try_into().expect("4 bytes"));
        p += 4;
        if len > 0 {
            p += len as usize;
        }
    }
    if b.len() < p {
        return Ok(Tuple::Incomplete);
    }
    Ok(Tuple::Complete(p))
}

fn decode_tuple(
    b: &[u8],
    decs: &[Dec],
    cols: &mut [Col],
    schema: &Schema,
    row: u64,
) -> Result<(), PluginError> {
    let mut p = 2usize;
    for (i, dec) in decs.iter().enumerate() {
        let len = i32::from_be_bytes(b[p..p + 4].try_into().expect("4 bytes"));
        p += 4;
        if len < 0 {
            cols[i].null();
            continue;
        }
        let v = &b[p..p + len as usize];
        p += len as usize;
        cols[i].push(dec, v).map_err(|why| {
            PluginError::new(
                ErrorKind::Data,
                "POSTGRES-VALUE",
                format!(
                    "column `{}`, row {}: {why}",
                    schema.field(i).name(),
                    row + 1
                ),
            )
            .with_help("cast or filter the value in `query`")
        })?;
    }
    Ok(())
}

fn finish_batch(
    schema: &SchemaRef,
    cols: &mut [Col],
    rows: usize,
) -> Result<RecordBatch, PluginError> {
    batch_from_arrays(schema, cols.iter_mut().map(|c| c.finish()).collect(), rows)
}
