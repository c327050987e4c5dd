//! `postgres.writer` / `supabase.writer`: the input stream is copied (binary COPY) straight into the target
//! for append and replace when every column's binary format matches the target column's, and otherwise into
//! a temporary staging table moved into the target with one `INSERT ... SELECT` (with `ON CONFLICT ... DO
//! UPDATE` for upsert), all inside one transaction.
//!
//! Invariant: the target table is either fully written or exactly as before. Everything (creating a missing
//! table, adding the input's new columns for `schema_evolution: add_columns`, removing old rows for `replace`,
//! the insert) happens in one transaction that is committed only after the whole input was read without
//! error; any error, including one raised by an upstream step while its stream is pulled, rolls it back.
//!
//! The session comes from the pool and goes back only after the commit; after any error it is rolled back and
//! closed, never reused.

use crate::conn::{self, Flavor, ident, qualified, str_field};
use crate::encode::{self, Plan};
use crate::pool;
use arrow_array::{RecordBatch, RecordBatchReader};
use bytes::Bytes;
use futures_util::SinkExt;
use osiris_plugin_dbcommon::evolution::Evolution;
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tokio_postgres::Client;

pub struct Writer {
    pub flavor: Flavor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Append,
    Replace,
    Upsert,
}

/// The single input stream of a writer step.
pub fn single_input(
    step_id: &str,
    mut inputs: Streams,
) -> Result<Box<dyn RecordBatchReader + Send>, PluginError> {
    match inputs.len() {
        0 => Err(
            PluginError::config(format!("step `{step_id}` has no input to write"))
                .with_help("list the step that produces the data in `needs`"),
        ),
        1 => Ok(inputs.pop_first().map(|(_, s)| s).expect("one input")),
        _ => {
            if let Some(s) = inputs.remove("df") {
                return Ok(s);
            }
            let names: Vec<String> = inputs.keys().map(|k| format!("`{k}`")).collect();
            Err(PluginError::config(format!(
                "step `{step_id}` has {} inputs ({}); a database writer writes exactly one",
                names.len(),
                names.join(", ")
            ))
            .with_help("join the inputs in a duckdb.processor step first"))
        }
    }
}

fn primary_key(m: &Map<String, Value>) -> Vec<String> {
    match m.get("primary_key") {
        Some(Value::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl Driver for Writer {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let m = conn::merged(config, ctx);
        let settings = conn::settings(self.flavor, &m)?;
        let table = str_field(&m, "table")
            .ok_or_else(|| PluginError::config("`table` is required: the table to write to"))?
            .to_string();
        let mode = match str_field(&m, "write_mode").unwrap_or("append") {
            "append" => Mode::Append,
            "replace" => Mode::Replace,
            "upsert" | "merge" => Mode::Upsert,
            other => {
                return Err(
                    PluginError::config(format!("`write_mode`: unknown value `{other}`"))
                        .with_help("use append, replace, upsert or merge"),
                );
            }
        };
        let pk = primary_key(&m);
        if mode == Mode::Upsert && pk.is_empty() {
            return Err(PluginError::config(
                "`write_mode: upsert` needs `primary_key`: the column(s) identifying a row",
            )
            .with_help("e.g. `primary_key: id` or `primary_key: [day, customer_id]`"));
        }
        let create = m
            .get("create_if_missing")
            .and_then(Value::as_bool)
            .unwrap_or(self.flavor == Flavor::Supabase);
        let chunk_rows = m
            .get("batch_size")
            .and_then(Value::as_u64)
            .map(|b| b.clamp(1, 100_000) as usize)
            .unwrap_or(1000);
        let evolution = Evolution::from_fields(&m, &format!("{}-CONFIG", self.flavor.prefix()))?;
        let input = single_input(step_id, inputs)?;
        let job = Job {
            settings,
            table,
            mode,
            pk,
            create,
            evolution,
            chunk_rows,
            ctx: ctx.clone(),
        };
        // The database work runs on a thread of its own, driving the plugin's I/O runtime.
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name(format!("pg-write-{step_id}"))
                .spawn_scoped(scope, move || job.run(input))
                .map_err(|e| PluginError::internal(format!("cannot start a writer thread: {e}")))?
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })?;
        Ok(Streams::new())
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
    table: String,
    mode: Mode,
    pk: Vec<String>,
    create: bool,
    evolution: Evolution,
    chunk_rows: usize,
    ctx: Context,
}

/// A target column: name and its type as `format_type` spells it.
struct TargetCol {
    name: String,
    pg_type: String,
    /// `GENERATED ALWAYS AS IDENTITY`: an INSERT refuses values for it, COPY would store them.
    identity_always: bool,
}

impl Job {
    fn code(&self, c: &str) -> String {
        format!("{}-{c}", self.settings.flavor.prefix())
    }

    fn run(self, mut input: Box<dyn RecordBatchReader + Send>) -> Result<(), PluginError> {
        let rt = pool::POOLS.runtime()?;
        let started = std::time::Instant::now();
        let pooled = rt.block_on(pool::POOLS.checkout(&self.settings, &self.ctx))?;
        let client = pooled.client();
        rt.block_on(client.batch_execute("BEGIN"))
            .map_err(|e| self.err(&e, "starting the transaction"))?;
        match self.write(rt, client, &mut input) {
            Ok(rows) => {
                rt.block_on(client.batch_execute("COMMIT"))
                    .map_err(|e| self.err(&e, "committing the transaction"))?;
                rt.block_on(pooled.release());
                self.ctx.metric("rows_written", rows as f64, Some("rows"));
                self.ctx.metric(
                    "duration_ms",
                    started.elapsed().as_millis() as f64,
                    Some("ms"),
                );
                self.ctx.debug(&format!(
                    "wrote {rows} rows into {} ({:?})",
                    qualified(&self.settings.schema, &self.table),
                    self.mode
                ));
                Ok(())
            }
            Err(e) => {
                // The target stays as it was; a failed ROLLBACK (lost connection) rolls back on the server too.
                // The session is closed (dropped), not returned to the pool.
                let _ = rt.block_on(client.batch_execute("ROLLBACK"));
                Err(e)
            }
        }
    }

    fn err(&self, e: &tokio_postgres::Error, doing: &str) -> PluginError {
        conn::db_error(self.settings.flavor, e, doing)
    }

    fn write(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        input: &mut Box<dyn RecordBatchReader + Send>,
    ) -> Result<u64, PluginError> {
        let schema = input.schema();
        let target = qualified(&self.settings.schema, &self.table);
        let (names, plans) = self.plans(&schema)?;
        let cols = self.target_table(rt, client, &target, &names, &plans)?;
        let (cols, keep) = self.evolve(rt, client, &target, &schema, &plans, cols)?;
        let names: Vec<String> = keep.iter().map(|&i| names[i].clone()).collect();
        let by_name: BTreeMap<&str, &TargetCol> =
            cols.iter().map(|c| (c.name.as_str(), c)).collect();
        let mut targets: Vec<&TargetCol> = Vec::new();
        for n in &names {
            targets.push(by_name.get(n.as_str()).copied().ok_or_else(|| {
                PluginError::internal(format!("column `{n}` of {target} is not visible"))
            })?);
        }
        // A 16-byte binary input staged as uuid goes into an existing bytea column as its bytes.
        let plans: Vec<Plan> = keep
            .iter()
            .zip(&targets)
            .map(|(&i, t)| {
                if plans[i].pg_type == "uuid" && base_type(&t.pg_type) == "bytea" {
                    encode::as_bytea(&plans[i])
                } else {
                    plans[i].clone()
                }
            })
            .collect();

        let col_list = names
            .iter()
            .map(|n| ident(n))
            .collect::<Vec<_>>()
            .join(", ");

        // Append and replace COPY straight into the target when every column's binary format is the target
        // column's (the transaction still makes it all or nothing); upsert, and any column that needs a cast,
        // go through a staging table.
        let direct = self.mode != Mode::Upsert
            && plans
                .iter()
                .zip(&targets)
                .all(|(p, t)| copy_compatible(&p.pg_type, &t.pg_type) && !t.identity_always)
            && rt.block_on(self.copy_behaves_like_insert(client))?;
        if direct {
            if self.mode == Mode::Replace {
                rt.block_on(client.batch_execute(&replace_sql(&target)))
                    .map_err(|e| self.err(&e, &format!("removing the rows of {target}")))?;
            }
            return self
                .copy(rt, client, &target, (&col_list, &keep), &plans, input)
                .map_err(|e| {
                    if e.code.ends_with("-CONSTRAINT") || e.code.ends_with("-DATA") {
                        e.with_help(format!("nothing was written: {target} is unchanged"))
                    } else {
                        e
                    }
                });
        }

        // Staging table, dropped with the transaction.
        let stage = ident(&format!("osiris_stage_{}", std::process::id()));
        let stage_defs: Vec<String> = names
            .iter()
            .zip(&plans)
            .map(|(n, p)| format!("{} {}", ident(n), p.pg_type))
            .collect();
        rt.block_on(client.batch_execute(&format!(
            "CREATE TEMP TABLE {stage} ({}) ON COMMIT DROP",
            stage_defs.join(", ")
        )))
        .map_err(|e| self.err(&e, "creating the staging table"))?;

        let rows = self.copy(rt, client, &stage, (&col_list, &keep), &plans, input)?;

        if self.mode == Mode::Replace {
            rt.block_on(client.batch_execute(&replace_sql(&target)))
                .map_err(|e| self.err(&e, &format!("removing the rows of {target}")))?;
        }
        let select = names
            .iter()
            .zip(&targets)
            .map(|(n, t)| format!("s.{}::{}", ident(n), cast_type(&t.pg_type)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql =
            format!("INSERT INTO {target} ({col_list}) SELECT {select} FROM {stage} AS s");
        if self.mode == Mode::Upsert {
            let keys = self
                .pk
                .iter()
                .map(|k| ident(k))
                .collect::<Vec<_>>()
                .join(", ");
            let updates: Vec<String> = names
                .iter()
                .filter(|n| !self.pk.contains(n))
                .map(|n| format!("{} = EXCLUDED.{}", ident(n), ident(n)))
                .collect();
            if updates.is_empty() {
                sql.push_str(&format!(" ON CONFLICT ({keys}) DO NOTHING"));
            } else {
                sql.push_str(&format!(
                    " ON CONFLICT ({keys}) DO UPDATE SET {}",
                    updates.join(", ")
                ));
            }
        }
        rt.block_on(client.execute(sql.as_str(), &[]))
            .map_err(|e| {
                let mut err = self.err(&e, &format!("writing into {target}"));
                let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
                if code == "42P10" {
                    err = err.with_help(format!(
                        "upsert needs a primary key or unique index on exactly ({}) in {target}",
                        self.pk.join(", ")
                    ));
                } else if code == "21000" {
                    err = err.with_help(
                        "the input holds the same primary_key twice; deduplicate it upstream",
                    );
                } else if code.starts_with("23") {
                    err = err.with_help(format!("nothing was written: {target} is unchanged"));
                }
                err
            })?;
        Ok(rows)
    }

    /// How each input column is encoded (its staging type), and its name; every primary key column must be an
    /// input column.
    fn plans(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<(Vec<String>, Vec<Plan>), PluginError> {
        let mut plans: Vec<Plan> = Vec::new();
        for f in schema.fields() {
            plans.push(encode::plan(f).map_err(|why| {
                PluginError::new(
                    ErrorKind::Data,
                    self.code("TYPE"),
                    format!("input column `{}` {why}", f.name()),
                )
                .with_help("convert it in an upstream duckdb.processor step (e.g. CAST(x AS VARCHAR) or to_json(x))")
            })?);
        }
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        osiris_plugin_dbcommon::fields::keys_among_inputs("primary_key", &self.pk, &names)?;

        Ok((names, plans))
    }

    /// The target's columns, after creating the table from the input's columns when it is missing (and
    /// `create_if_missing` allows it).
    fn target_table(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        target: &str,
        names: &[String],
        plans: &[Plan],
    ) -> Result<Vec<TargetCol>, PluginError> {
        let mut cols = rt.block_on(self.target_columns(client))?;
        if cols.is_none() {
            if !self.create {
                return Err(PluginError::new(
                    ErrorKind::Config,
                    self.code("NO-TABLE"),
                    format!(
                        "table {target} does not exist in {}",
                        self.settings.label
                    ),
                )
                .with_help("create it first, or set `create_if_missing: true` to create it from the input's columns"));
            }
            let mut defs: Vec<String> = names
                .iter()
                .zip(plans)
                .map(|(n, p)| format!("{} {}", ident(n), p.column_type))
                .collect();
            if !self.pk.is_empty() {
                defs.push(format!(
                    "PRIMARY KEY ({})",
                    self.pk
                        .iter()
                        .map(|k| ident(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let ddl = format!("CREATE TABLE {target} ({})", defs.join(", "));
            rt.block_on(client.batch_execute(&ddl))
                .map_err(|e| self.err(&e, &format!("creating table {target}")))?;
            self.ctx.info(&format!("created table {target}"));
            cols = rt.block_on(self.target_columns(client))?;
        }
        cols.ok_or_else(|| PluginError::internal("the created table is not visible"))
    }

    /// The input compared with the target's columns under `schema_evolution`: new input columns added to the
    /// table (inside the load's transaction) or left out, or the error naming every difference. Returns the
    /// target's columns and the indices of the input columns to write.
    fn evolve(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        target: &str,
        schema: &arrow_schema::Schema,
        plans: &[Plan],
        mut cols: Vec<TargetCol>,
    ) -> Result<(Vec<TargetCol>, Vec<usize>), PluginError> {
        let diffs = osiris_plugin_dbcommon::evolution::differences(
            schema.fields(),
            |f| (f.name().clone(), input_type(f)),
            &cols,
            |c| (c.name.as_str(), c.pg_type.as_str()),
            |f, c| fits(f, &c.pg_type),
        );
        let res = self
            .evolution
            .resolve(&diffs, target, &self.code("SCHEMA"))?;
        if let Some(sql) = res.add_sql(target, |n| {
            let i = schema.index_of(n).expect("an input column");
            format!("{} {}", ident(n), plans[i].column_type)
        }) {
            rt.block_on(client.batch_execute(&sql))
                .map_err(|e| self.err(&e, &format!("adding columns to {target}")))?;
            self.ctx.info(&res.added_note(target));
            cols = rt
                .block_on(self.target_columns(client))?
                .ok_or_else(|| PluginError::internal("the target table is not visible"))?;
        }
        if let Some(note) = res.dropped_note(target) {
            self.ctx.info(&note);
        }
        let keep: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !res.drop.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        if keep.is_empty() {
            return Err(PluginError::new(
                ErrorKind::Config,
                self.code("SCHEMA"),
                format!(
                    "table {target} has none of the input's columns: there is nothing to write"
                ),
            )
            .with_help("check `table`, or rename the input columns upstream"));
        }
        Ok((cols, keep))
    }

    /// Whether COPY into the target does what an INSERT would: a plain or partitioned table (not a view,
    /// which COPY refuses), without row-level security in force for this role (COPY refuses it) and without
    /// INSERT rules (COPY ignores them).
    async fn copy_behaves_like_insert(&self, client: &Client) -> Result<bool, PluginError> {
        let target = qualified(&self.settings.schema, &self.table);
        let row = client
            .query_opt(
                "SELECT c.relkind IN ('r', 'p') AND NOT row_security_active(c.oid) \
                 AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.ev_type = '3') \
                 FROM pg_class c WHERE c.oid = to_regclass($1)",
                &[&target],
            )
            .await
            .map_err(|e| self.err(&e, &format!("inspecting {target}")))?;
        Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// Columns of the target table, or `None` when it does not exist.
    async fn target_columns(&self, client: &Client) -> Result<Option<Vec<TargetCol>>, PluginError> {
        let target = qualified(&self.settings.schema, &self.table);
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attidentity = 'a' \
                 FROM pg_attribute a WHERE a.attrelid = to_regclass($1) \
                 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&target],
            )
            .await
            .map_err(|e| self.err(&e, &format!("reading the columns of {target}")))?;
        if rows.is_empty() {
            let exists: Option<String> = client
                .query_one("SELECT to_regclass($1)::text", &[&target])
                .await
                .map_err(|e| self.err(&e, "looking up the table"))?
                .get(0);
            if exists.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(
            rows.iter()
                .map(|r| TargetCol {
                    name: r.get(0),
                    pg_type: r.get(1),
                    identity_always: r.get(2),
                })
                .collect(),
        ))
    }

    /// Streams the input into the staging table; returns the row count.
    fn copy(
        &self,
        rt: &tokio::runtime::Runtime,
        client: &Client,
        stage: &str,
        (col_list, keep): (&str, &[usize]),
        plans: &[Plan],
        input: &mut Box<dyn RecordBatchReader + Send>,
    ) -> Result<u64, PluginError> {
        let sink = rt
            .block_on(client.copy_in::<_, Bytes>(&format!(
                "COPY {stage} ({col_list}) FROM STDIN (FORMAT binary)"
            )))
            .map_err(|e| self.err(&e, "starting COPY"))?;
        let mut sink = Box::pin(sink);
        let mut buf = Vec::with_capacity(1 << 20);
        encode::header(&mut buf);
        let mut rows = 0u64;
        // Pulling the input happens outside the runtime: an upstream stream may block.
        for batch in input.by_ref() {
            let batch = batch.map_err(|e| {
                let inner = PluginError::from_arrow(&e);
                PluginError::new(
                    inner.kind,
                    inner.code,
                    format!("reading the input failed: {}", inner.message),
                )
            })?;
            self.ctx.check_cancelled()?;
            let batch = batch.project(keep).map_err(|e| {
                PluginError::internal(format!("selecting the written columns: {e}"))
            })?;
            let batch = self.canonical(&batch, plans)?;
            let n = batch.num_rows();
            let mut from = 0;
            while from < n {
                let to = (from + self.chunk_rows).min(n);
                encode::encode_rows(&batch, from, to, &mut buf)
                    .map_err(|why| PluginError::new(ErrorKind::Data, self.code("VALUE"), why))?;
                from = to;
                if buf.len() >= (1 << 20) || to == n {
                    let chunk = Bytes::from(std::mem::take(&mut buf));
                    rt.block_on(sink.send(chunk))
                        .map_err(|e| self.err(&e, "sending rows"))?;
                }
            }
            rows += n as u64;
        }
        encode::trailer(&mut buf);
        rt.block_on(sink.send(Bytes::from(buf)))
            .map_err(|e| self.err(&e, "sending rows"))?;
        rt.block_on(sink.as_mut().finish())
            .map_err(|e| self.err(&e, "finishing COPY"))?;
        Ok(rows)
    }

    fn canonical(&self, batch: &RecordBatch, plans: &[Plan]) -> Result<RecordBatch, PluginError> {
        let schema = batch.schema();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for ((f, a), p) in schema.fields().iter().zip(batch.columns()).zip(plans) {
            let c = encode::canonical(a, p).map_err(|why| {
                PluginError::new(
                    ErrorKind::Data,
                    self.code("TYPE"),
                    format!(
                        "input column `{}` cannot be converted to {}: {why}",
                        f.name(),
                        p.pg_type
                    ),
                )
            })?;
            fields.push(arrow_schema::Field::new(
                f.name(),
                c.data_type().clone(),
                true,
            ));
            arrays.push(c);
        }
        RecordBatch::try_new(
            std::sync::Arc::new(arrow_schema::Schema::new(fields)),
            arrays,
        )
        .map_err(|e| PluginError::internal(format!("re-typing a batch failed: {e}")))
    }
}

/// A type as `format_type` spells it, without type modifiers and with the short names spelt out:
/// `numeric(12,2)` -> `numeric`, `timestamp(3) without time zone` -> `timestamp without time zone`,
/// `timestamptz` -> `timestamp with time zone`.
fn base_type(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut depth = 0usize;
    for c in t.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    match out.as_str() {
        "timestamp" => "timestamp without time zone".into(),
        "timestamptz" => "timestamp with time zone".into(),
        "time" => "time without time zone".into(),
        _ => out,
    }
}

/// An input column's type as messages name it: its Arrow type, and its extension type when it has one.
fn input_type(f: &arrow_schema::Field) -> String {
    match encode::extension(f) {
        Some(ext) => format!("{} ({ext})", f.data_type()),
        None => f.data_type().to_string(),
    }
}

/// `(precision, scale)` of `numeric(p,s)` / `numeric(p)`; `None` for an unconstrained numeric.
fn numeric_typmod(t: &str) -> Option<(i64, i64)> {
    let inner = t.split_once('(')?.1.split_once(')')?.0;
    let mut parts = inner.split(',').map(|p| p.trim().parse::<i64>().ok());
    let p = parts.next()??;
    let s = parts.next().flatten().unwrap_or(0);
    Some((p, s))
}

/// Whether the values of input field `f` can go into a target column of type `target` (as `format_type`
/// spells it): the same kind of value, possibly wider or narrower (the server rejects a value that does not
/// fit). A type change (text into a number or a time, a timestamp into an integer, a decimal with more integer
/// digits than the numeric column holds, or with fractional digits into an integer column...) does not fit.
fn fits(f: &arrow_schema::Field, target: &str) -> bool {
    use arrow_schema::DataType as D;
    let t = base_type(target);
    let t = t.as_str();
    let texty = matches!(
        t,
        "text" | "character varying" | "character" | "name" | "citext" | "\"char\""
    );
    let ints = matches!(t, "smallint" | "integer" | "bigint");
    let floats = matches!(t, "real" | "double precision");
    let dt = f.data_type();
    let dt = match dt {
        D::Dictionary(_, v) => v.as_ref(),
        _ => dt,
    };
    match dt {
        D::Null => true,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => {
            !(ints
                || floats
                || matches!(
                    t,
                    "numeric"
                        | "boolean"
                        | "date"
                        | "time without time zone"
                        | "time with time zone"
                        | "timestamp without time zone"
                        | "timestamp with time zone"
                        | "interval"
                        | "bytea"
                ))
        }
        D::Boolean => texty || t == "boolean",
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            texty || ints || floats || t == "numeric"
        }
        D::Float16 | D::Float32 | D::Float64 => texty || floats || t == "numeric",
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            let int_digits = *p as i64 - *s as i64;
            if t == "numeric" {
                numeric_typmod(target).is_none_or(|(tp, ts)| int_digits <= tp - ts)
            } else if ints {
                // Whole numbers (e.g. DuckDB's SUM of integers, Decimal128(38, 0)) are integers of some
                // width; fractional digits would be rounded away.
                *s <= 0
            } else {
                texty || floats
            }
        }
        D::Binary | D::LargeBinary | D::BinaryView => t == "bytea",
        D::FixedSizeBinary(n) => t == "bytea" || (*n == 16 && t == "uuid"),
        D::Date32 | D::Date64 => {
            texty
                || matches!(
                    t,
                    "date" | "timestamp without time zone" | "timestamp with time zone"
                )
        }
        D::Timestamp(..) => {
            texty
                || matches!(
                    t,
                    "timestamp without time zone" | "timestamp with time zone"
                )
        }
        D::Time32(_) | D::Time64(_) => {
            texty || matches!(t, "time without time zone" | "time with time zone")
        }
        D::Duration(_) | D::Interval(_) => texty || t == "interval",
        _ => false,
    }
}

/// Whether values encoded for a staging column of type `staged` can be COPYed (binary) straight into a target
/// column of type `target`: the same base type (the server applies the target's modifiers, e.g. a numeric's
/// scale or a varchar's length, and rejects what does not fit), or text into a character type.
fn copy_compatible(staged: &str, target: &str) -> bool {
    let (s, t) = (base_type(staged), base_type(target));
    s == t || (s == "text" && matches!(t.as_str(), "character varying" | "character"))
}

/// The cast applied when moving a staged column into the target. Character types are cast without their
/// length (`varchar`, `bpchar`): an explicit cast to `varchar(n)` / `char(n)` would silently cut longer
/// values; the assignment to the column pads or rejects them instead.
fn cast_type(target: &str) -> String {
    // Not `character`: without a length it means `character(1)`.
    match base_type(target).as_str() {
        "character varying" => "varchar".into(),
        "character" => "bpchar".into(),
        _ => target.to_string(),
    }
}

/// `replace`'s removal of the old rows. The lock (it conflicts with itself and with writers) makes concurrent
/// replaces of one table take turns: under READ COMMITTED a second `DELETE` that waited for the first would
/// not see the rows the first inserted, and both runs' rows would remain; with it the last to commit wins.
fn replace_sql(target: &str) -> String {
    format!("LOCK TABLE {target} IN SHARE ROW EXCLUSIVE MODE; DELETE FROM {target}")
}

#[cfg(test)]
mod type_tests {
    use super::{base_type, cast_type, copy_compatible, fits, input_type};
    use arrow_schema::{DataType, Field, TimeUnit};

    #[test]
    fn a_type_change_does_not_fit_and_widths_do() {
        let f = |dt: DataType| Field::new("c", dt, true);
        let ts = DataType::Timestamp(TimeUnit::Microsecond, None);
        for (dt, target) in [
            (DataType::Int32, "bigint"),
            (DataType::Int64, "smallint"),
            (DataType::Int64, "numeric(12,2)"),
            (DataType::Int32, "double precision"),
            (DataType::Float32, "double precision"),
            (DataType::Utf8, "character varying(8)"),
            (DataType::Utf8, "jsonb"),
            (DataType::Utf8, "uuid"),
            (DataType::Decimal128(10, 2), "numeric(12,4)"),
            (DataType::Decimal128(38, 10), "numeric"),
            (DataType::Decimal128(9, 0), "integer"),
            (DataType::Decimal128(38, 0), "bigint"),
            (DataType::FixedSizeBinary(16), "uuid"),
            (DataType::FixedSizeBinary(16), "bytea"),
            (ts.clone(), "timestamp(3) with time zone"),
            (DataType::Date32, "timestamp without time zone"),
            (DataType::Null, "integer"),
        ] {
            assert!(fits(&f(dt.clone()), target), "{dt} into {target}");
        }
        for (dt, target) in [
            (DataType::Utf8, "integer"),
            (DataType::Utf8, "timestamp without time zone"),
            (ts.clone(), "integer"),
            (DataType::Decimal128(14, 1), "numeric(12,2)"),
            (DataType::Decimal128(10, 2), "bigint"),
            (DataType::Float64, "integer"),
            (DataType::Boolean, "integer"),
            (DataType::Binary, "uuid"),
            (ts, "date"),
        ] {
            assert!(!fits(&f(dt.clone()), target), "{dt} into {target}");
        }
        let json = Field::new("j", DataType::Utf8, true)
            .with_metadata([("ARROW:extension:name".to_string(), "arrow.json".to_string())].into());
        assert_eq!(input_type(&json), "Utf8 (arrow.json)");
    }

    #[test]
    fn direct_copy_needs_the_same_binary_format() {
        assert_eq!(
            base_type("timestamp(3) without time zone"),
            "timestamp without time zone"
        );
        assert!(copy_compatible("numeric(38,10)", "numeric(12,2)"));
        assert!(copy_compatible(
            "timestamp",
            "timestamp(3) without time zone"
        ));
        assert!(copy_compatible("timestamptz", "timestamp with time zone"));
        assert!(copy_compatible("text", "character varying(16)"));
        assert!(copy_compatible("bigint", "bigint"));
        assert!(!copy_compatible("bigint", "integer"));
        assert!(!copy_compatible("numeric(20,0)", "bigint"));
        assert!(!copy_compatible("text", "jsonb"));
        assert!(!copy_compatible("timestamp", "timestamp with time zone"));
        assert_eq!(cast_type("character varying(16)"), "varchar");
        assert_eq!(cast_type("character(3)"), "bpchar");
        assert_eq!(cast_type("numeric(12,2)"), "numeric(12,2)");
    }
}
