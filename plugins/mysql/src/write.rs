//! `mysql.writer`: multi-row `INSERT` statements of `batch_size` rows (and at most a few MB each), all inside
//! one transaction; `upsert` adds `ON DUPLICATE KEY UPDATE`.
//!
//! Invariant: the target table is either fully written or exactly as before. Rows go in one InnoDB transaction
//! committed only after the whole input was read and inserted without error; on any error it is rolled back.
//! MySQL commits DDL implicitly, so a table created by `create_table` is created before the transaction and
//! dropped again when the write fails; columns added for `schema_evolution: add_columns` are added before the
//! transaction too and stay (empty, nullable) when the load fails.
//!
//! The session comes from the pool and goes back only after the commit (reset on the way); after any error it
//! is rolled back and closed, never reused.

use crate::conn::{self, ident, str_field};
use crate::pool;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Decimal256Type, DecimalType, DurationMicrosecondType, Float32Type, Float64Type,
    Int64Type, TimestampMicrosecondType, UInt64Type,
};
use arrow_array::{Array, ArrayRef, PrimitiveArray, RecordBatch, RecordBatchReader};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, TimeUnit};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use osiris_plugin_dbcommon::evolution::Evolution;
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;

pub struct Writer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Append,
    Replace,
    Upsert,
}

/// Largest INSERT statement built before it is sent (well under the default max_allowed_packet).
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// The canonical Arrow type values are rendered from, and the MySQL column type for `create_table`.
struct Plan {
    canonical: DataType,
    mysql_type: String,
}

pub use osiris_plugin_dbcommon::extension::{
    EXTENSION_KEY, JSON_EXTENSION, UUID_TEXT_EXTENSION, extension, is_string,
};

/// How an input field is written: JSON text becomes a `JSON` column, a UUID (16 bytes, or its text form) a
/// `CHAR(36)` holding its text form; everything else by its Arrow type ([`type_plan`]).
fn plan(f: &arrow_schema::Field, key: bool) -> Result<Plan, String> {
    let dt = f.data_type();
    if is_string(dt) {
        match extension(f) {
            Some(JSON_EXTENSION) if !key => {
                return Ok(Plan {
                    canonical: DataType::Utf8,
                    mysql_type: "JSON".into(),
                });
            }
            Some(UUID_TEXT_EXTENSION) => {
                return Ok(Plan {
                    canonical: DataType::Utf8,
                    mysql_type: "CHAR(36)".into(),
                });
            }
            _ => {}
        }
    }
    if *dt == DataType::FixedSizeBinary(16) {
        return Ok(Plan {
            canonical: DataType::FixedSizeBinary(16),
            mysql_type: "CHAR(36)".into(),
        });
    }
    type_plan(dt, key)
}

/// The plan of a 16-byte UUID going into an existing binary column instead: its bytes.
fn as_bytes() -> Plan {
    Plan {
        canonical: DataType::Binary,
        mysql_type: "LONGBLOB".into(),
    }
}

fn type_plan(dt: &DataType, key: bool) -> Result<Plan, String> {
    use DataType as D;
    let (canonical, ty): (DataType, String) = match dt {
        D::Boolean => (D::Boolean, "TINYINT(1)".into()),
        D::Int8 => (D::Int64, "TINYINT".into()),
        D::Int16 => (D::Int64, "SMALLINT".into()),
        D::Int32 => (D::Int64, "INT".into()),
        D::Int64 => (D::Int64, "BIGINT".into()),
        D::UInt8 => (D::UInt64, "TINYINT UNSIGNED".into()),
        D::UInt16 => (D::UInt64, "SMALLINT UNSIGNED".into()),
        D::UInt32 => (D::UInt64, "INT UNSIGNED".into()),
        D::UInt64 => (D::UInt64, "BIGINT UNSIGNED".into()),
        D::Float16 | D::Float32 => (D::Float32, "FLOAT".into()),
        D::Float64 => (D::Float64, "DOUBLE".into()),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) if *s >= 0 => {
            if *s as u8 > 30 || *p > 65 {
                return Err(format!(
                    "is {dt}: MySQL decimals hold at most 65 digits, 30 after the point"
                ));
            }
            (D::Decimal128(*p, *s), format!("DECIMAL({p},{s})"))
        }
        D::Decimal256(p, s) if *s >= 0 => {
            if *s as u8 > 30 || *p > 65 {
                return Err(format!(
                    "is {dt}: MySQL decimals hold at most 65 digits, 30 after the point"
                ));
            }
            (D::Decimal256(*p, *s), format!("DECIMAL({p},{s})"))
        }
        D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Null => (
            D::Utf8,
            if key {
                "VARCHAR(255)".into()
            } else {
                "LONGTEXT".into()
            },
        ),
        D::Dictionary(_, v) if matches!(**v, D::Utf8 | D::LargeUtf8 | D::Utf8View) => (
            D::Utf8,
            if key {
                "VARCHAR(255)".into()
            } else {
                "LONGTEXT".into()
            },
        ),
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => (
            D::Binary,
            if key {
                "VARBINARY(255)".into()
            } else {
                "LONGBLOB".into()
            },
        ),
        D::Date32 | D::Date64 => (D::Date32, "DATE".into()),
        D::Timestamp(_, tz) => (
            D::Timestamp(TimeUnit::Microsecond, tz.clone()),
            "DATETIME(6)".into(),
        ),
        D::Time32(_) | D::Time64(_) => (D::Time64(TimeUnit::Microsecond), "TIME(6)".into()),
        D::Duration(_) => (D::Duration(TimeUnit::Microsecond), "TIME(6)".into()),
        other => {
            return Err(format!(
                "has Arrow type {other}, which has no MySQL column type here"
            ));
        }
    };
    Ok(Plan {
        canonical,
        mysql_type: ty,
    })
}

/// The input column converted to the plan's canonical type, then typed for arrow-cast's display (see
/// [`SHOWN`]): a timestamp loses its zone (its values are UTC instants, which is what a session in UTC
/// reads), a decimal gets the widest precision of its type (the display cuts digits beyond the precision).
fn canonical(a: &ArrayRef, p: &Plan) -> Result<ArrayRef, String> {
    let c = if *a.data_type() == DataType::FixedSizeBinary(16)
        && p.canonical == DataType::FixedSizeBinary(16)
    {
        let u: arrow_array::StringArray = a
            .as_fixed_size_binary()
            .iter()
            .map(|v| v.map(uuid_text))
            .collect();
        Arc::new(u)
    } else if a.data_type() == &p.canonical {
        a.clone()
    } else if let DataType::FixedSizeBinary(_) = a.data_type() {
        let b: arrow_array::BinaryArray = a.as_fixed_size_binary().iter().collect();
        Arc::new(b)
    } else {
        arrow_cast::cast(a, &p.canonical).map_err(|e| e.to_string())?
    };
    Ok(match c.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Arc::new(
            c.as_primitive::<TimestampMicrosecondType>()
                .clone()
                .with_timezone_opt(None::<&str>),
        ),
        DataType::Decimal128(_, s) => Arc::new(widest::<Decimal128Type>(&c, *s)?),
        DataType::Decimal256(_, s) => Arc::new(widest::<Decimal256Type>(&c, *s)?),
        _ => c,
    })
}

/// The text form of a 16-byte UUID (`8-4-4-4-12` lowercase hex digits).
fn uuid_text(b: &[u8]) -> String {
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A decimal column at its type's widest precision, refused when a value has more digits than that (which a
/// valid Arrow array never has).
fn widest<T: DecimalType>(c: &ArrayRef, scale: i8) -> Result<PrimitiveArray<T>, String> {
    let wide = c
        .as_primitive::<T>()
        .clone()
        .with_precision_and_scale(T::MAX_PRECISION, scale)
        .map_err(|e| e.to_string())?;
    wide.validate_decimal_precision(T::MAX_PRECISION)
        .map_err(|e| e.to_string())?;
    Ok(wide)
}

/// How arrow-cast's display writes the types it writes exactly as MySQL reads them: `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM:SS.ffffff` and `HH:MM:SS.ffffff` for years 0 to 9999 (MySQL's DATE and DATETIME hold
/// 1000 to 9999) and times within a day (all a valid Time64 holds), decimals with every digit of their scale.
/// Durations (`[-]H:MM:SS.ffffff`, beyond 24 hours) and everything else are written by [`literal`].
const SHOWN: FormatOptions<'static> = FormatOptions::new()
    .with_date_format(Some("%Y-%m-%d"))
    .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.6f"))
    .with_time_format(Some("%H:%M:%S%.6f"));

/// One canonical column's values as SQL literals.
struct Literals<'a> {
    col: &'a ArrayRef,
    /// arrow-cast's display of the column, and whether its text goes in quotes.
    shown: Option<(ArrayFormatter<'a>, bool)>,
}

impl<'a> Literals<'a> {
    fn new(col: &'a ArrayRef) -> Result<Literals<'a>, String> {
        let quoted = match col.data_type() {
            DataType::Date32 | DataType::Timestamp(..) | DataType::Time64(_) => true,
            DataType::Decimal128(..) | DataType::Decimal256(..) => false,
            _ => return Ok(Literals { col, shown: None }),
        };
        let f = ArrayFormatter::try_new(col.as_ref(), &SHOWN).map_err(|e| e.to_string())?;
        Ok(Literals {
            col,
            shown: Some((f, quoted)),
        })
    }

    /// Appends the SQL literal of row `row`.
    fn write(&self, out: &mut String, row: usize) -> Result<(), String> {
        let Some((f, quoted)) = &self.shown else {
            return literal(out, self.col, row);
        };
        if self.col.is_null(row) {
            out.push_str("NULL");
            return Ok(());
        }
        if *quoted {
            out.push('\'');
        }
        f.value(row).write(out).map_err(|e| e.to_string())?;
        if *quoted {
            out.push('\'');
        }
        Ok(())
    }
}

/// Appends the SQL literal of `col[row]`, for the types [`SHOWN`] does not cover.
fn literal(out: &mut String, col: &ArrayRef, row: usize) -> Result<(), String> {
    use DataType as D;
    if col.is_null(row) {
        out.push_str("NULL");
        return Ok(());
    }
    match col.data_type() {
        D::Boolean => out.push(if col.as_boolean().value(row) {
            '1'
        } else {
            '0'
        }),
        D::Int64 => {
            let _ = write!(out, "{}", col.as_primitive::<Int64Type>().value(row));
        }
        D::UInt64 => {
            let _ = write!(out, "{}", col.as_primitive::<UInt64Type>().value(row));
        }
        D::Float32 => {
            let v = col.as_primitive::<Float32Type>().value(row);
            if !v.is_finite() {
                return Err(format!("{v} cannot be stored in MySQL"));
            }
            let _ = write!(out, "{v:e}");
        }
        D::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(row);
            if !v.is_finite() {
                return Err(format!("{v} cannot be stored in MySQL"));
            }
            let _ = write!(out, "{v:e}");
        }
        D::Utf8 => {
            let v = col.as_string::<i32>().value(row);
            out.reserve(v.len() + 2);
            out.push('\'');
            for ch in v.chars() {
                if ch == '\'' {
                    out.push('\'');
                }
                out.push(ch);
            }
            out.push('\'');
        }
        D::Binary => {
            let v = col.as_binary::<i32>().value(row);
            out.reserve(v.len() * 2 + 3);
            out.push_str("X'");
            for b in v {
                let _ = write!(out, "{b:02X}");
            }
            out.push('\'');
        }
        D::Duration(TimeUnit::Microsecond) => {
            let v = col.as_primitive::<DurationMicrosecondType>().value(row);
            let a = v.unsigned_abs();
            let h = a / 3_600_000_000;
            if h > 838 {
                return Err("a duration beyond 838 hours does not fit MySQL's TIME".into());
            }
            let _ = write!(
                out,
                "'{}{h}:{:02}:{:02}.{:06}'",
                if v < 0 { "-" } else { "" },
                a / 60_000_000 % 60,
                a / 1_000_000 % 60,
                a % 1_000_000
            );
        }
        other => return Err(format!("no literal for {other} (this is a bug)")),
    }
    Ok(())
}

/// An input column's type as messages name it: its Arrow type, and its extension type when it has one.
fn input_type(f: &arrow_schema::Field) -> String {
    match extension(f) {
        Some(ext) => format!("{} ({ext})", f.data_type()),
        None => f.data_type().to_string(),
    }
}

fn is_binary(data_type: &str) -> bool {
    matches!(
        data_type,
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
    )
}

/// Whether the values of input field `f` can go into target column `c`: the same kind of value, possibly
/// wider or narrower (the server rejects a value that does not fit). A type change (text into a number or a
/// time, a timestamp into an integer, a decimal with more integer digits than the DECIMAL column holds or with
/// fractional digits into an integer column...) does not.
fn fits(f: &arrow_schema::Field, c: &TargetCol) -> bool {
    use DataType as D;
    let t = c.data_type.as_str();
    let texty = matches!(
        t,
        "char"
            | "varchar"
            | "tinytext"
            | "text"
            | "mediumtext"
            | "longtext"
            | "enum"
            | "set"
            | "json"
    );
    let ints = matches!(t, "tinyint" | "smallint" | "mediumint" | "int" | "bigint");
    let floats = matches!(t, "float" | "double" | "real");
    let times = matches!(t, "date" | "datetime" | "timestamp" | "time" | "year");
    let dt = f.data_type();
    let dt = match dt {
        D::Dictionary(_, v) => v.as_ref(),
        _ => dt,
    };
    match dt {
        D::Null => true,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => {
            !(ints || floats || times || matches!(t, "decimal" | "bit"))
        }
        D::Boolean => texty || ints || t == "bit",
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            texty || ints || floats || matches!(t, "decimal" | "bit" | "year")
        }
        D::Float16 | D::Float32 | D::Float64 => texty || floats || t == "decimal",
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) | D::Decimal256(p, s) => {
            let int_digits = *p as i64 - *s as i64;
            if t == "decimal" {
                match (c.precision, c.scale) {
                    (Some(tp), Some(ts)) => int_digits <= tp as i64 - ts as i64,
                    _ => true,
                }
            } else if ints {
                // Whole numbers (e.g. DuckDB's SUM of integers, Decimal128(38, 0)) are integers of some
                // width; fractional digits would be rounded away.
                *s <= 0
            } else {
                texty || floats
            }
        }
        D::Binary | D::LargeBinary | D::BinaryView => is_binary(t),
        D::FixedSizeBinary(n) => is_binary(t) || (*n == 16 && (texty || t == "uuid")),
        D::Date32 | D::Date64 => texty || matches!(t, "date" | "datetime" | "timestamp"),
        D::Timestamp(..) => texty || matches!(t, "datetime" | "timestamp"),
        D::Time32(_) | D::Time64(_) | D::Duration(_) => texty || t == "time",
        _ => false,
    }
}

impl Driver for Writer {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        mut inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let m = conn::merged(config, ctx);
        let settings = conn::settings(&m)?;
        let table = str_field(&m, "table")
            .ok_or_else(|| PluginError::config("`table` is required: the table to write to"))?
            .to_string();
        let mode = match str_field(&m, "mode")
            .or_else(|| str_field(&m, "write_mode"))
            .unwrap_or("append")
        {
            "append" => Mode::Append,
            "replace" => Mode::Replace,
            "upsert" => Mode::Upsert,
            other => {
                return Err(
                    PluginError::config(format!("`mode`: unknown value `{other}`"))
                        .with_help("use append, replace or upsert"),
                );
            }
        };
        let keys: Vec<String> = m
            .get("upsert_keys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if mode == Mode::Upsert && keys.is_empty() {
            return Err(PluginError::config(
                "`mode: upsert` needs `upsert_keys`: the columns identifying a row",
            )
            .with_help("e.g. `upsert_keys: [id]`"));
        }
        let create = m
            .get("create_table")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let batch_rows = m
            .get("batch_size")
            .and_then(Value::as_u64)
            .map(|b| b.clamp(1, 100_000) as usize)
            .unwrap_or(1000);
        let input = match inputs.len() {
            0 => {
                return Err(
                    PluginError::config(format!("step `{step_id}` has no input to write"))
                        .with_help("list the step that produces the data in `needs`"),
                );
            }
            1 => inputs.pop_first().map(|(_, s)| s).expect("one input"),
            n => match inputs.remove("df") {
                Some(s) => s,
                None => {
                    return Err(PluginError::config(format!(
                        "step `{step_id}` has {n} inputs; a database writer writes exactly one"
                    ))
                    .with_help("join the inputs in a duckdb.processor step first"));
                }
            },
        };
        let evolution = Evolution::from_fields(&m, "MYSQL-CONFIG")?;
        let job = Job {
            settings,
            table,
            mode,
            keys,
            create,
            evolution,
            batch_rows,
            ctx: ctx.clone(),
        };
        conn::on_thread(move || job.run(input))?;
        Ok(Streams::new())
    }

    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::discover(config, ctx)
    }

    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::doctor(config, ctx)
    }
}

struct Job {
    settings: conn::Settings,
    table: String,
    mode: Mode,
    keys: Vec<String>,
    create: bool,
    evolution: Evolution,
    batch_rows: usize,
    ctx: Context,
}

/// The columns a load writes: their names, plans, and indices among the input's columns.
type Written = (Vec<String>, Vec<Plan>, Vec<usize>);

/// A target column as information_schema.COLUMNS describes it.
struct TargetCol {
    name: String,
    /// `DATA_TYPE`: the type's name without modifiers (`int`, `decimal`, `varchar`, ...).
    data_type: String,
    /// `COLUMN_TYPE`: the type as declared (`int(11)`, `decimal(10,2)`), as messages name it.
    column_type: String,
    precision: Option<u64>,
    scale: Option<u64>,
}

impl Job {
    fn run(self, mut input: Box<dyn RecordBatchReader + Send>) -> Result<(), PluginError> {
        let rt = pool::POOLS.runtime()?;
        let started = std::time::Instant::now();
        let mut c = rt.block_on(pool::POOLS.checkout(&self.settings, &self.ctx))?;
        let mut created = false;
        let result = self.write(rt, &mut c, &mut input, &mut created);
        match result {
            Ok(rows) => {
                self.ctx.metric("rows_written", rows as f64, Some("rows"));
                self.ctx.metric(
                    "duration_ms",
                    started.elapsed().as_millis() as f64,
                    Some("ms"),
                );
                self.ctx.debug(&format!(
                    "wrote {rows} rows into {} ({:?})",
                    ident(&self.table),
                    self.mode
                ));
                rt.block_on(c.release());
                Ok(())
            }
            Err(e) => {
                let _ = rt.block_on(c.query_drop("ROLLBACK"));
                if created {
                    let _ = rt.block_on(c.query_drop(format!("DROP TABLE {}", ident(&self.table))));
                }
                rt.block_on(c.discard());
                Err(e)
            }
        }
    }

    fn write(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        input: &mut Box<dyn RecordBatchReader + Send>,
        created: &mut bool,
    ) -> Result<u64, PluginError> {
        let target = ident(&self.table);
        let schema = input.schema();
        let (names, plans) = self.plans(&schema)?;
        let (names, plans, keep) =
            self.prepare_table(rt, c, &target, &schema, (names, plans), created)?;

        rt.block_on(c.query_drop("START TRANSACTION"))
            .map_err(|e| conn::db_error(&e, "starting the transaction"))?;
        if self.mode == Mode::Replace {
            rt.block_on(c.query_drop(format!("DELETE FROM {target}")))
                .map_err(|e| conn::db_error(&e, &format!("removing the rows of {target}")))?;
        }
        let col_list = names
            .iter()
            .map(|n| ident(n))
            .collect::<Vec<_>>()
            .join(", ");
        let head = format!("INSERT INTO {target} ({col_list}) VALUES ");
        let tail = self.on_duplicate(&names);
        let rows = self.insert_all(
            rt,
            c,
            input,
            (&names, &plans, &keep),
            (&head, &tail),
            &target,
        )?;
        rt.block_on(c.query_drop("COMMIT"))
            .map_err(|e| conn::db_error(&e, "committing the transaction"))?;
        Ok(rows)
    }

    /// Each input column's name and how it is written; every upsert key must be an input column.
    fn plans(
        &self,
        schema: &arrow_schema::Schema,
    ) -> Result<(Vec<String>, Vec<Plan>), PluginError> {
        let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let mut plans = Vec::new();
        for f in schema.fields() {
            let key = self.keys.contains(f.name());
            plans.push(plan(f, key).map_err(|why| {
                PluginError::new(
                    ErrorKind::Data,
                    "MYSQL-TYPE",
                    format!("input column `{}` {why}", f.name()),
                )
                .with_help(
                    "convert it in an upstream duckdb.processor step (e.g. CAST(x AS VARCHAR))",
                )
            })?);
        }
        osiris_plugin_dbcommon::fields::keys_among_inputs("upsert_keys", &self.keys, &names)?;
        Ok((names, plans))
    }

    /// The target table as the load needs it: created from the input's columns when missing (and allowed),
    /// compared with the input under `schema_evolution` (new columns added before the load's transaction, as
    /// MySQL commits DDL at once, or left out), with a unique key for an upsert. Returns the names, plans and
    /// input indices of the columns to write.
    fn prepare_table(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        target: &str,
        schema: &arrow_schema::Schema,
        (names, plans): (Vec<String>, Vec<Plan>),
        created: &mut bool,
    ) -> Result<Written, PluginError> {
        let db: Option<String> = rt
            .block_on(c.query_first("SELECT DATABASE()"))
            .map_err(|e| conn::db_error(&e, "asking for the current database"))?
            .flatten();
        let Some(db) = db else {
            return Err(PluginError::config("no database selected for the write")
                .with_help("set `database` in the mysql connection"));
        };
        let mut cols = self.columns(rt, c, &db)?;
        if cols.is_empty() {
            if !self.create {
                return Err(PluginError::new(
                    ErrorKind::Config,
                    "MYSQL-NO-TABLE",
                    format!("table {target} does not exist in {}", self.settings.label),
                )
                .with_help("create it first, or set `create_table: true` to create it from the input's columns"));
            }
            let mut defs: Vec<String> = names
                .iter()
                .zip(&plans)
                .map(|(n, p)| format!("{} {}", ident(n), p.mysql_type))
                .collect();
            if !self.keys.is_empty() {
                defs.push(format!(
                    "PRIMARY KEY ({})",
                    self.keys
                        .iter()
                        .map(|k| ident(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let ddl = format!(
                "CREATE TABLE {target} ({}) DEFAULT CHARSET = utf8mb4",
                defs.join(", ")
            );
            rt.block_on(c.query_drop(&ddl))
                .map_err(|e| conn::db_error(&e, &format!("creating table {target}")))?;
            *created = true;
            self.ctx.info(&format!("created table {target}"));
            cols = self.columns(rt, c, &db)?;
        }
        let diffs = osiris_plugin_dbcommon::evolution::differences(
            schema.fields(),
            |f| (f.name().clone(), input_type(f)),
            &cols,
            |c| (c.name.as_str(), c.column_type.as_str()),
            |f, c| fits(f, c),
        );
        let res = self.evolution.resolve(&diffs, target, "MYSQL-SCHEMA")?;
        if let Some(sql) = res.add_sql(target, |n| {
            let i = schema.index_of(n).expect("an input column");
            format!("{} {} NULL", ident(n), plans[i].mysql_type)
        }) {
            rt.block_on(c.query_drop(sql))
                .map_err(|e| conn::db_error(&e, &format!("adding columns to {target}")))?;
            self.ctx.info(&res.added_note(target));
            cols = self.columns(rt, c, &db)?;
        }
        if let Some(note) = res.dropped_note(target) {
            self.ctx.info(&note);
        }
        let keep: Vec<usize> = (0..names.len())
            .filter(|&i| !res.drop.contains(&names[i]))
            .collect();
        if keep.is_empty() {
            return Err(PluginError::new(
                ErrorKind::Config,
                "MYSQL-SCHEMA",
                format!(
                    "table {target} has none of the input's columns: there is nothing to write"
                ),
            )
            .with_help("check `table`, or rename the input columns upstream"));
        }
        let mut kept_names = Vec::new();
        let mut kept_plans = Vec::new();
        for &i in &keep {
            let col = cols.iter().find(|c| c.name == names[i]).ok_or_else(|| {
                PluginError::internal(format!("column `{}` of {target} is not visible", names[i]))
            })?;
            // A 16-byte binary input goes into an existing binary column as its bytes.
            let p = if plans[i].canonical == DataType::FixedSizeBinary(16)
                && is_binary(&col.data_type)
            {
                as_bytes()
            } else {
                Plan {
                    canonical: plans[i].canonical.clone(),
                    mysql_type: plans[i].mysql_type.clone(),
                }
            };
            kept_names.push(names[i].clone());
            kept_plans.push(p);
        }
        if self.mode == Mode::Upsert {
            self.check_unique_key(rt, c, &db)?;
        }

        Ok((kept_names, kept_plans, keep))
    }

    /// `ON DUPLICATE KEY UPDATE ...` of an upsert (empty otherwise).
    fn on_duplicate(&self, names: &[String]) -> String {
        if self.mode == Mode::Upsert {
            let updates: Vec<String> = names
                .iter()
                .filter(|n| !self.keys.contains(n))
                .map(|n| format!("{0} = VALUES({0})", ident(n)))
                .collect();
            if updates.is_empty() {
                // Nothing to update: keep the existing row.
                let k = ident(&self.keys[0]);
                format!(" ON DUPLICATE KEY UPDATE {k} = {k}")
            } else {
                format!(" ON DUPLICATE KEY UPDATE {}", updates.join(", "))
            }
        } else {
            String::new()
        }
    }

    /// Sends every input row as multi-row `INSERT` statements of at most `batch_rows` rows and
    /// `MAX_STATEMENT_BYTES`; returns the rows sent.
    fn insert_all(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        input: &mut Box<dyn RecordBatchReader + Send>,
        (names, plans, keep): (&[String], &[Plan], &[usize]),
        (head, tail): (&str, &str),
        target: &str,
    ) -> Result<u64, PluginError> {
        let mut rows = 0u64;
        let mut sql = String::with_capacity(1 << 20);
        let mut in_stmt = 0usize;
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
            let literals = batch
                .columns()
                .iter()
                .zip(names)
                .map(|(col, name)| {
                    Literals::new(col).map_err(|why| {
                        PluginError::internal(format!(
                            "column `{name}` cannot be shown as SQL (this is a bug): {why}"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            for row in 0..batch.num_rows() {
                if in_stmt == 0 {
                    sql.clear();
                    sql.push_str(head);
                } else {
                    sql.push(',');
                }
                sql.push('(');
                for (i, col) in literals.iter().enumerate() {
                    if i > 0 {
                        sql.push(',');
                    }
                    col.write(&mut sql, row).map_err(|why| {
                        PluginError::new(
                            ErrorKind::Data,
                            "MYSQL-VALUE",
                            format!("column `{}`, row {}: {why}", names[i], rows + 1),
                        )
                    })?;
                }
                sql.push(')');
                in_stmt += 1;
                rows += 1;
                if in_stmt >= self.batch_rows || sql.len() >= MAX_STATEMENT_BYTES {
                    self.send(rt, c, &mut sql, tail, target)?;
                    in_stmt = 0;
                }
            }
        }
        if in_stmt > 0 {
            self.send(rt, c, &mut sql, tail, target)?;
        }
        Ok(rows)
    }

    fn send(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        sql: &mut String,
        tail: &str,
        target: &str,
    ) -> Result<(), PluginError> {
        sql.push_str(tail);
        rt.block_on(c.query_drop(sql.as_str())).map_err(|e| {
            let mut err = conn::db_error(&e, &format!("writing into {target}"));
            if err.kind == ErrorKind::Data {
                err = err.with_help(format!("nothing was written: {target} is unchanged"));
            }
            err
        })
    }

    fn columns(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        db: &str,
    ) -> Result<Vec<TargetCol>, PluginError> {
        type Row = (String, String, String, Option<u64>, Option<u64>);
        let rows: Vec<Row> = rt
            .block_on(c.exec(
                "SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE \
                 FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (db, &self.table),
            ))
            .map_err(|e| conn::db_error(&e, "reading the table's columns"))?;
        Ok(rows
            .into_iter()
            .map(
                |(name, data_type, column_type, precision, scale)| TargetCol {
                    name,
                    data_type,
                    column_type,
                    precision,
                    scale,
                },
            )
            .collect())
    }

    fn check_unique_key(
        &self,
        rt: &tokio::runtime::Runtime,
        c: &mut Conn,
        db: &str,
    ) -> Result<(), PluginError> {
        let rows: Vec<(String, String)> = rt
            .block_on(c.exec(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (db, &self.table),
            ))
            .map_err(|e| conn::db_error(&e, "reading the table's keys"))?;
        let mut by_index: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (i, col) in rows {
            by_index.entry(i).or_default().push(col);
        }
        let mut want = self.keys.clone();
        want.sort();
        let found = by_index.values().any(|cols| {
            let mut c = cols.clone();
            c.sort();
            c == want
        });
        if !found {
            return Err(PluginError::config(format!(
                "upsert into {} needs a primary key or unique index on exactly ({}), and the table has none",
                ident(&self.table),
                self.keys.join(", ")
            ))
            .with_help(format!(
                "add one (ALTER TABLE {} ADD UNIQUE ({})) or fix `upsert_keys`",
                ident(&self.table),
                self.keys.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    fn canonical(&self, batch: &RecordBatch, plans: &[Plan]) -> Result<RecordBatch, PluginError> {
        let schema = batch.schema();
        let mut fields = Vec::new();
        let mut arrays = Vec::new();
        for ((f, a), p) in schema.fields().iter().zip(batch.columns()).zip(plans) {
            let c = canonical(a, p).map_err(|why| {
                PluginError::new(
                    ErrorKind::Data,
                    "MYSQL-TYPE",
                    format!("input column `{}` cannot be converted: {why}", f.name()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Date32Array, Decimal128Array, Decimal256Array, Time64MicrosecondArray,
        TimestampMicrosecondArray,
    };

    type I256 = <Decimal256Type as arrow_array::ArrowPrimitiveType>::Native;

    /// The SQL literals of every value of `a` as the writer renders them, after the canonical conversion.
    fn rendered(a: ArrayRef) -> Vec<String> {
        let p = type_plan(a.data_type(), false).unwrap();
        let c = canonical(&a, &p).unwrap();
        let literals = Literals::new(&c).unwrap();
        (0..c.len())
            .map(|row| {
                let mut s = String::new();
                literals.write(&mut s, row).unwrap();
                s
            })
            .collect()
    }

    const DAY: i64 = 86_400_000_000;

    #[test]
    fn created_columns_keep_the_input_types_and_refuse_what_mysql_cannot_hold() {
        use arrow_schema::Field;
        let made = |f: Field| plan(&f, false).map(|p| p.mysql_type);
        let json = Field::new("c", DataType::Utf8, true)
            .with_metadata([(EXTENSION_KEY.to_string(), JSON_EXTENSION.to_string())].into());
        assert_eq!(made(json).unwrap(), "JSON");
        assert_eq!(
            made(Field::new("c", DataType::FixedSizeBinary(16), true)).unwrap(),
            "CHAR(36)"
        );
        assert_eq!(
            made(Field::new("c", DataType::Decimal128(20, 4), true)).unwrap(),
            "DECIMAL(20,4)"
        );
        assert_eq!(
            made(Field::new(
                "c",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true
            ))
            .unwrap(),
            "DATETIME(6)"
        );
        let why = made(Field::new("c", DataType::Decimal256(70, 2), true)).unwrap_err();
        assert!(why.contains("at most 65 digits"), "{why}");
        // A 16-byte UUID is written in its text form.
        let u: ArrayRef = Arc::new(
            arrow_array::FixedSizeBinaryArray::try_from_iter(
                [[
                    0xa0u8, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd,
                    0x38, 0x0a, 0x11,
                ]]
                .into_iter(),
            )
            .unwrap(),
        );
        let p = plan(&Field::new("c", DataType::FixedSizeBinary(16), true), false).unwrap();
        let c = canonical(&u, &p).unwrap();
        assert_eq!(
            c.as_string::<i32>().value(0),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }

    #[test]
    fn a_type_change_does_not_fit_and_widths_do() {
        let col = |data_type: &str, precision: Option<u64>, scale: Option<u64>| TargetCol {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: data_type.into(),
            precision,
            scale,
        };
        let f = |dt: DataType| arrow_schema::Field::new("c", dt, true);
        assert!(fits(&f(DataType::Int32), &col("bigint", None, None)));
        assert!(fits(
            &f(DataType::Int64),
            &col("decimal", Some(10), Some(2))
        ));
        assert!(fits(&f(DataType::Utf8), &col("varchar", None, None)));
        assert!(fits(&f(DataType::Date32), &col("datetime", None, None)));
        assert!(fits(
            &f(DataType::Decimal128(10, 2)),
            &col("decimal", Some(12), Some(2))
        ));
        assert!(!fits(
            &f(DataType::Decimal128(14, 1)),
            &col("decimal", Some(12), Some(2))
        ));
        assert!(fits(
            &f(DataType::Decimal128(38, 0)),
            &col("bigint", None, None)
        ));
        assert!(!fits(
            &f(DataType::Decimal128(38, 2)),
            &col("bigint", None, None)
        ));
        assert!(!fits(&f(DataType::Utf8), &col("int", None, None)));
        assert!(!fits(&f(DataType::Utf8), &col("datetime", None, None)));
        assert!(!fits(
            &f(DataType::Timestamp(TimeUnit::Microsecond, None)),
            &col("int", None, None)
        ));
    }

    #[test]
    fn dates_render_as_mysql_reads_them() {
        let days = [0, -1, 10_957, 19_782, -719_162, -354_285, 2_932_896];
        let a: ArrayRef = Arc::new(Date32Array::from(
            days.iter()
                .map(|d| Some(*d))
                .chain([None])
                .collect::<Vec<_>>(),
        ));
        assert_eq!(
            rendered(a),
            [
                "'1970-01-01'",
                "'1969-12-31'",
                "'2000-01-01'",
                "'2024-02-29'",
                "'0001-01-01'",
                "'1000-01-01'",
                "'9999-12-31'",
                "NULL",
            ]
        );
    }

    #[test]
    fn timestamps_render_in_utc_with_six_digits_whatever_their_zone() {
        let t = [
            0,
            1,
            -1,
            1_704_164_645_123_456,
            10_957 * DAY + DAY - 1,
            -354_285 * DAY,
        ];
        let expected = [
            "'1970-01-01 00:00:00.000000'",
            "'1970-01-01 00:00:00.000001'",
            "'1969-12-31 23:59:59.999999'",
            "'2024-01-02 03:04:05.123456'",
            "'2000-01-01 23:59:59.999999'",
            "'1000-01-01 00:00:00.000000'",
            "NULL",
        ];
        for tz in [None, Some("UTC"), Some("+09:00"), Some("Europe/Berlin")] {
            let a = TimestampMicrosecondArray::from(
                t.iter().map(|v| Some(*v)).chain([None]).collect::<Vec<_>>(),
            )
            .with_timezone_opt(tz);
            assert_eq!(rendered(Arc::new(a)), expected, "time zone {tz:?}");
        }
        // Other units are converted to microseconds first.
        let ms: ArrayRef = Arc::new(arrow_array::TimestampMillisecondArray::from(vec![
            1_704_164_645_123,
        ]));
        assert_eq!(rendered(ms), ["'2024-01-02 03:04:05.123000'"]);
    }

    #[test]
    fn times_of_day_render_with_six_digits() {
        let a: ArrayRef = Arc::new(Time64MicrosecondArray::from(vec![
            Some(0),
            Some(1),
            Some(DAY - 1),
            Some(13 * 3_600_000_000 + 5 * 60_000_000 + 7_000_050),
            None,
        ]));
        assert_eq!(
            rendered(a),
            [
                "'00:00:00.000000'",
                "'00:00:00.000001'",
                "'23:59:59.999999'",
                "'13:05:07.000050'",
                "NULL"
            ]
        );
    }

    #[test]
    fn decimals_render_with_every_digit_of_their_scale() {
        let d = |values: Vec<Option<i128>>, p: u8, s: i8| -> ArrayRef {
            Arc::new(
                Decimal128Array::from(values)
                    .with_precision_and_scale(p, s)
                    .unwrap(),
            )
        };
        assert_eq!(
            rendered(d(
                vec![
                    Some(-5),
                    Some(5),
                    Some(0),
                    Some(123_456),
                    Some(-123_456),
                    None
                ],
                10,
                3
            )),
            ["-0.005", "0.005", "0.000", "123.456", "-123.456", "NULL"]
        );
        assert_eq!(rendered(d(vec![Some(42), Some(-42)], 5, 0)), ["42", "-42"]);
        // More digits than the declared precision (no valid array has them, arrow compute can make them):
        // every digit is written, as MySQL's column decides what fits.
        assert_eq!(rendered(d(vec![Some(1_234_567)], 5, 2)), ["12345.67"]);
        // More than Decimal128 holds at all: refused rather than cut short.
        let a = d(vec![Some(10i128.pow(38))], 38, 0);
        let why = canonical(&a, &type_plan(a.data_type(), false).unwrap()).unwrap_err();
        assert!(why.contains("too large"), "{why}");
        let max = 10i128.pow(38) - 1;
        assert_eq!(
            rendered(d(vec![Some(max), Some(-max)], 38, 30)),
            [
                "99999999.999999999999999999999999999999",
                "-99999999.999999999999999999999999999999"
            ]
        );
        let big =
            I256::from_string("-12345678901234567890123456789012345678901234567890123456789012345")
                .unwrap();
        let a: ArrayRef = Arc::new(
            Decimal256Array::from(vec![Some(big), Some(I256::from_i128(7))])
                .with_precision_and_scale(65, 30)
                .unwrap(),
        );
        assert_eq!(
            rendered(a),
            [
                "-12345678901234567890123456789012345.678901234567890123456789012345",
                "0.000000000000000000000000000007"
            ]
        );
    }

    #[test]
    fn durations_render_as_mysql_times() {
        let a: ArrayRef = Arc::new(arrow_array::DurationMicrosecondArray::from(vec![
            0,
            -1,
            838 * 3_600_000_000 + 59 * 60_000_000 + 59_999_999,
        ]));
        assert_eq!(
            rendered(a),
            [
                "'0:00:00.000000'",
                "'-0:00:00.000001'",
                "'838:59:59.999999'"
            ]
        );
    }
}
