//! `mysql.extractor`: runs the query as a prepared statement (binary protocol: typed values) and streams the
//! rows into Arrow batches of `batch_size`.
//!
//! The database work runs on a thread of its own; batches reach the host through a channel holding at most one
//! batch, so rows are fetched as the host pulls and memory stays bounded by about two batches. The session
//! comes from the pool; it goes back once the result was read to its end, before the last batch is handed on
//! (so a step after this one finds it idle). Dropping the stream early, or any error, closes the session.

use crate::conn::{self, ident, str_field};
use crate::pool::{self, Pooled};
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mysql_async::Value as My;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use osiris_plugin_dbcommon::within;
use osiris_plugin_sdk::{
    BatchSender, Context, Driver, ErrorKind, PluginError, Streams, batch_from_arrays, spawn_reader,
};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct Extractor;

/// How one result column is decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Dec {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
    Decimal(u8, i8),
    Text,
    Bytes,
    /// BIT(n), n < 64: the bits as an integer.
    Bits,
    Date,
    DateTime,
    Timestamp,
    Time,
}

impl Dec {
    pub fn data_type(&self) -> DataType {
        match self {
            Dec::Bool => DataType::Boolean,
            Dec::I8 => DataType::Int8,
            Dec::I16 => DataType::Int16,
            Dec::I32 => DataType::Int32,
            Dec::I64 | Dec::Bits => DataType::Int64,
            Dec::U8 => DataType::UInt8,
            Dec::U16 => DataType::UInt16,
            Dec::U32 => DataType::UInt32,
            Dec::U64 => DataType::UInt64,
            Dec::F32 => DataType::Float32,
            Dec::F64 => DataType::Float64,
            Dec::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Dec::Text => DataType::Utf8,
            Dec::Bytes => DataType::Binary,
            Dec::Date => DataType::Date32,
            Dec::DateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Dec::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Dec::Time => DataType::Time64(TimeUnit::Microsecond),
        }
    }
}

/// The decoder for a result column from its metadata.
pub fn decoder_for(
    ty: ColumnType,
    flags: ColumnFlags,
    length: u32,
    decimals: u8,
    charset: u16,
) -> Dec {
    use ColumnType as T;
    let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
    let binary = charset == 63;
    match ty {
        T::MYSQL_TYPE_TINY if length == 1 && !unsigned => Dec::Bool,
        T::MYSQL_TYPE_TINY => {
            if unsigned {
                Dec::U8
            } else {
                Dec::I8
            }
        }
        T::MYSQL_TYPE_SHORT => {
            if unsigned {
                Dec::U16
            } else {
                Dec::I16
            }
        }
        T::MYSQL_TYPE_YEAR => Dec::I16,
        T::MYSQL_TYPE_INT24 | T::MYSQL_TYPE_LONG => {
            if unsigned {
                Dec::U32
            } else {
                Dec::I32
            }
        }
        T::MYSQL_TYPE_LONGLONG => {
            if unsigned {
                Dec::U64
            } else {
                Dec::I64
            }
        }
        T::MYSQL_TYPE_FLOAT => Dec::F32,
        T::MYSQL_TYPE_DOUBLE => Dec::F64,
        T::MYSQL_TYPE_DECIMAL | T::MYSQL_TYPE_NEWDECIMAL => {
            let scale = decimals as u32;
            let mut precision = length as i64;
            if scale > 0 {
                precision -= 1; // the decimal point
            }
            if !unsigned {
                precision -= 1; // the sign
            }
            let precision = precision.max(scale as i64).max(1) as u32;
            if precision > 38 || scale > 38 {
                Dec::Text // beyond Decimal128: exact text
            } else {
                Dec::Decimal(precision as u8, scale as i8)
            }
        }
        T::MYSQL_TYPE_DATE | T::MYSQL_TYPE_NEWDATE => Dec::Date,
        T::MYSQL_TYPE_DATETIME | T::MYSQL_TYPE_DATETIME2 => Dec::DateTime,
        T::MYSQL_TYPE_TIMESTAMP | T::MYSQL_TYPE_TIMESTAMP2 => Dec::Timestamp,
        T::MYSQL_TYPE_TIME | T::MYSQL_TYPE_TIME2 => Dec::Time,
        T::MYSQL_TYPE_BIT if length < 64 => Dec::Bits,
        T::MYSQL_TYPE_BIT => Dec::Bytes,
        T::MYSQL_TYPE_JSON => Dec::Text,
        T::MYSQL_TYPE_ENUM | T::MYSQL_TYPE_SET => Dec::Text,
        T::MYSQL_TYPE_GEOMETRY => Dec::Bytes,
        T::MYSQL_TYPE_NULL => Dec::Text,
        _ => {
            if flags.intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG) || !binary {
                Dec::Text
            } else {
                Dec::Bytes
            }
        }
    }
}

enum Col {
    Bool(BooleanBuilder),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, i8),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
}

impl Col {
    fn new(d: &Dec, cap: usize) -> Col {
        match d {
            Dec::Bool => Col::Bool(BooleanBuilder::with_capacity(cap)),
            Dec::I8 => Col::I8(Int8Builder::with_capacity(cap)),
            Dec::I16 => Col::I16(Int16Builder::with_capacity(cap)),
            Dec::I32 => Col::I32(Int32Builder::with_capacity(cap)),
            Dec::I64 | Dec::Bits => Col::I64(Int64Builder::with_capacity(cap)),
            Dec::U8 => Col::U8(UInt8Builder::with_capacity(cap)),
            Dec::U16 => Col::U16(UInt16Builder::with_capacity(cap)),
            Dec::U32 => Col::U32(UInt32Builder::with_capacity(cap)),
            Dec::U64 => Col::U64(UInt64Builder::with_capacity(cap)),
            Dec::F32 => Col::F32(Float32Builder::with_capacity(cap)),
            Dec::F64 => Col::F64(Float64Builder::with_capacity(cap)),
            Dec::Decimal(_, s) => Col::Dec(
                Decimal128Builder::with_capacity(cap).with_data_type(d.data_type()),
                *s,
            ),
            Dec::Text => Col::Str(StringBuilder::with_capacity(cap, cap * 16)),
            Dec::Bytes => Col::Bin(BinaryBuilder::with_capacity(cap, cap * 16)),
            Dec::Date => Col::Date(Date32Builder::with_capacity(cap)),
            Dec::DateTime => Col::Ts(TimestampMicrosecondBuilder::with_capacity(cap)),
            Dec::Timestamp => {
                Col::Ts(TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC"))
            }
            Dec::Time => Col::Time(Time64MicrosecondBuilder::with_capacity(cap)),
        }
    }

    fn null(&mut self) {
        match self {
            Col::Bool(b) => b.append_null(),
            Col::I8(b) => b.append_null(),
            Col::I16(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::U8(b) => b.append_null(),
            Col::U16(b) => b.append_null(),
            Col::U32(b) => b.append_null(),
            Col::U64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Dec(b, _) => b.append_null(),
            Col::Str(b) => b.append_null(),
            Col::Bin(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b) => b.append_null(),
            Col::Time(b) => b.append_null(),
        }
    }

    /// Appends a value; `Ok(false)` when it was a zero date stored as NULL.
    fn push(&mut self, dec: &Dec, v: My) -> Result<bool, String> {
        if let My::NULL = v {
            self.null();
            return Ok(true);
        }
        match self {
            Col::Bool(b) => b.append_value(int(&v)? != 0),
            Col::I8(b) => b.append_value(narrow(int(&v)?)?),
            Col::I16(b) => b.append_value(narrow(int(&v)?)?),
            Col::I32(b) => b.append_value(narrow(int(&v)?)?),
            Col::I64(b) if *dec == Dec::Bits => match v {
                My::Bytes(bytes) => {
                    let mut x: u64 = 0;
                    for byte in bytes {
                        x = (x << 8) | byte as u64;
                    }
                    b.append_value(x as i64)
                }
                other => b.append_value(int(&other)?),
            },
            Col::I64(b) => b.append_value(int(&v)?),
            Col::U8(b) => b.append_value(narrow(uint(&v)?)?),
            Col::U16(b) => b.append_value(narrow(uint(&v)?)?),
            Col::U32(b) => b.append_value(narrow(uint(&v)?)?),
            Col::U64(b) => b.append_value(uint(&v)?),
            Col::F32(b) => b.append_value(match v {
                My::Float(f) => f,
                My::Double(d) => d as f32,
                other => float_text(&other)? as f32,
            }),
            Col::F64(b) => b.append_value(match v {
                My::Double(d) => d,
                My::Float(f) => f as f64,
                other => float_text(&other)?,
            }),
            Col::Dec(b, scale) => {
                let text = match &v {
                    My::Bytes(t) => std::str::from_utf8(t).map_err(|_| "decimal is not text")?,
                    other => return Err(format!("unexpected decimal value {other:?}")),
                };
                b.append_value(parse_decimal(text, *scale)?)
            }
            Col::Str(b) => match v {
                My::Bytes(t) => b.append_value(
                    std::str::from_utf8(&t).map_err(|_| "text that is not valid UTF-8")?,
                ),
                other => b.append_value(other.as_sql(true).trim_matches('\'')),
            },
            Col::Bin(b) => match v {
                My::Bytes(t) => b.append_value(&t),
                other => return Err(format!("unexpected binary value {other:?}")),
            },
            Col::Date(b) => match v {
                My::Date(_, 0, ..) | My::Date(_, _, 0, ..) => {
                    b.append_null();
                    return Ok(false);
                }
                My::Date(y, m, d, ..) => {
                    b.append_value(days_from_civil(y as i64, m as i64, d as i64) as i32)
                }
                other => return Err(format!("unexpected date value {other:?}")),
            },
            Col::Ts(b) => match v {
                My::Date(_, 0, ..) | My::Date(_, _, 0, ..) => {
                    b.append_null();
                    return Ok(false);
                }
                My::Date(y, mo, d, h, mi, s, us) => {
                    let days = days_from_civil(y as i64, mo as i64, d as i64);
                    b.append_value(
                        ((days * 24 + h as i64) * 60 + mi as i64) * 60_000_000
                            + s as i64 * 1_000_000
                            + us as i64,
                    )
                }
                other => return Err(format!("unexpected datetime value {other:?}")),
            },
            Col::Time(b) => match v {
                My::Time(neg, days, h, m, s, us) => {
                    let micros = (((days as i64 * 24 + h as i64) * 60 + m as i64) * 60 + s as i64)
                        * 1_000_000
                        + us as i64;
                    if neg && micros != 0 || micros >= 86_400_000_000 {
                        return Err(format!(
                            "TIME value {}{}h is not a time of day",
                            if neg { "-" } else { "" },
                            micros / 3_600_000_000
                        ));
                    }
                    b.append_value(micros)
                }
                other => return Err(format!("unexpected time value {other:?}")),
            },
        }
        Ok(true)
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I8(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::U8(b) => Arc::new(b.finish()),
            Col::U16(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::U64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Dec(b, _) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
            Col::Bin(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
        }
    }
}

fn int(v: &My) -> Result<i64, String> {
    match v {
        My::Int(i) => Ok(*i),
        My::UInt(u) => i64::try_from(*u).map_err(|_| format!("{u} is out of range")),
        My::Bytes(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "not an integer".to_string()),
        other => Err(format!("unexpected integer value {other:?}")),
    }
}

fn uint(v: &My) -> Result<u64, String> {
    match v {
        My::UInt(u) => Ok(*u),
        My::Int(i) => u64::try_from(*i).map_err(|_| format!("{i} is out of range")),
        My::Bytes(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "not an integer".to_string()),
        other => Err(format!("unexpected integer value {other:?}")),
    }
}

fn narrow<A: TryInto<B> + Copy + std::fmt::Display, B>(a: A) -> Result<B, String> {
    a.try_into().map_err(|_| format!("{a} is out of range"))
}

fn float_text(v: &My) -> Result<f64, String> {
    match v {
        My::Bytes(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "not a number".to_string()),
        My::Int(i) => Ok(*i as f64),
        My::UInt(u) => Ok(*u as f64),
        other => Err(format!("unexpected number {other:?}")),
    }
}

/// `-123.4500` at scale 4 -> -1234500. Exact: more fractional digits than `scale` is an error.
pub fn parse_decimal(text: &str, scale: i8) -> Result<i128, String> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac) = t.split_once('.').unwrap_or((t, ""));
    let scale = scale.max(0) as usize;
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > scale {
        return Err(format!(
            "decimal `{text}` has more than {scale} fractional digits"
        ));
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a decimal"));
    }
    let digits = format!(
        "{int_part}{frac_trimmed}{}",
        "0".repeat(scale - frac_trimmed.len())
    );
    let digits = digits.trim_start_matches('0');
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits
            .parse()
            .map_err(|_| format!("decimal `{text}` is too large for 38 digits"))?
    };
    Ok(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn source_sql(m: &Map<String, Value>) -> Result<String, PluginError> {
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
    let mut sql = format!("SELECT {cols} FROM {}", ident(table));
    let offset = m.get("offset").and_then(Value::as_u64).unwrap_or(0);
    match (m.get("limit").and_then(Value::as_u64), offset) {
        (Some(l), 0) => sql.push_str(&format!(" LIMIT {l}")),
        (Some(l), o) => sql.push_str(&format!(" LIMIT {l} OFFSET {o}")),
        (None, 0) => {}
        (None, o) => sql.push_str(&format!(" LIMIT 18446744073709551615 OFFSET {o}")),
    }
    Ok(sql)
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
        let settings = conn::settings(&m)?;
        let sql = osiris_plugin_dbcommon::window::apply(
            &source_sql(&m)?,
            &m,
            osiris_plugin_dbcommon::window::Dialect::Mysql,
            crate::conn::ident,
        )?;
        let batch_size = m
            .get("batch_size")
            .and_then(Value::as_u64)
            .map(|b| b.clamp(1, 1_000_000) as usize)
            .unwrap_or(10_000);
        let ctx2 = ctx.clone();
        let reader = spawn_reader(format!("mysql-extract-{step_id}"), 1, move |mut out| {
            let rt = match pool::POOLS.runtime() {
                Ok(rt) => rt,
                Err(e) => {
                    out.fail(e);
                    return;
                }
            };
            rt.block_on(read(settings, sql, batch_size, ctx2, &mut out));
        })?;
        let mut out = Streams::new();
        out.insert(
            "df".to_string(),
            Box::new(reader) as Box<dyn RecordBatchReader + Send>,
        );
        Ok(out)
    }

    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::discover(config, ctx)
    }

    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::doctor(config, ctx)
    }
}

async fn read(
    settings: conn::Settings,
    sql: String,
    batch_size: usize,
    ctx: Context,
    out: &mut BatchSender,
) {
    let pooled = match pool::POOLS.checkout(&settings, &ctx).await {
        Ok(c) => c,
        Err(e) => {
            out.fail(e);
            return;
        }
    };
    match stream(pooled, &sql, batch_size, &settings, &ctx, out).await {
        Ok(Some((rows, zero_dates))) => {
            if zero_dates > 0 {
                ctx.warn(&format!(
                    "{zero_dates} zero dates (0000-00-00) were read as NULL"
                ));
            }
            ctx.metric("rows_read", rows as f64, Some("rows"));
            ctx.debug(&format!("read {rows} rows from {}", settings.label));
        }
        Ok(None) => {}
        Err(e) => out.fail(e),
    }
}

/// Returns (rows, zero dates), or `None` when the host stopped reading. `pooled` goes back to the pool once the
/// result was read to its end, and is closed on any other way out.
async fn stream(
    mut pooled: Pooled,
    sql: &str,
    batch_size: usize,
    settings: &conn::Settings,
    ctx: &Context,
    out: &mut BatchSender,
) -> Result<Option<(u64, u64)>, PluginError> {
    // Every wait for the server is bounded by `read_timeout`: a stalled network fails the step instead of
    // hanging it. On a timeout `pooled` is dropped, which closes the session.
    let (limit, label) = (settings.read_timeout, settings.label.as_str());
    let c: &mut mysql_async::Conn = &mut pooled;
    let stmt = within(limit, label, "preparing the query", async {
        c.prep(sql).await.map_err(|e| {
            let mut err = conn::db_error(&e, "the query was refused");
            if let mysql_async::Error::Server(se) = &e
                && se.code == 1146
            {
                err = err.with_help(
                    "check `table` and the connection's `database`; `osiris discover` lists the tables",
                );
            }
            err
        })
    })
    .await?;
    let mut decs = Vec::new();
    let mut fields = Vec::new();
    for col in stmt.columns().iter() {
        let dec = decoder_for(
            col.column_type(),
            col.flags(),
            col.column_length(),
            col.decimals(),
            col.character_set(),
        );
        let mut field = Field::new(col.name_str().as_ref(), dec.data_type(), true);
        // MySQL's JSON columns (MariaDB's JSON is a LONGTEXT and arrives as text).
        if col.column_type() == mysql_async::consts::ColumnType::MYSQL_TYPE_JSON {
            field = field.with_metadata(
                [(
                    crate::write::EXTENSION_KEY.to_string(),
                    crate::write::JSON_EXTENSION.to_string(),
                )]
                .into(),
            );
        }
        fields.push(field);
        decs.push(dec);
    }
    let schema = Arc::new(Schema::new(fields));
    let mut result = within(limit, label, "running the query", async {
        c.exec_iter(&stmt, ())
            .await
            .map_err(|e| conn::db_error(&e, "the query failed"))
    })
    .await?;
    if !out.describe(schema.clone()) {
        return Ok(None);
    }
    let mut cols: Vec<Col> = decs.iter().map(|d| Col::new(d, batch_size)).collect();
    let mut in_batch = 0usize;
    let mut total = 0u64;
    let mut zero_dates = 0u64;
    loop {
        let row = within(limit, label, "reading the rows", async {
            result
                .next()
                .await
                .map_err(|e| conn::db_error(&e, "reading the rows failed"))
        })
        .await?;
        let Some(row) = row else { break };
        let values = row.unwrap();
        for (i, (v, dec)) in values.into_iter().zip(&decs).enumerate() {
            match cols[i].push(dec, v) {
                Ok(true) => {}
                Ok(false) => zero_dates += 1,
                Err(why) => {
                    return Err(PluginError::new(
                        ErrorKind::Data,
                        "MYSQL-VALUE",
                        format!(
                            "column `{}`, row {}: {why}",
                            schema.field(i).name(),
                            total + 1
                        ),
                    )
                    .with_help("cast or filter the value in `query`"));
                }
            }
        }
        in_batch += 1;
        total += 1;
        if in_batch == batch_size {
            let batch = finish(&schema, &mut cols, in_batch)?;
            in_batch = 0;
            if !out.send_checked(ctx, batch)? {
                return Ok(None);
            }
        }
    }
    // The result was read to its end: the session is idle again.
    drop(result);
    drop(stmt);
    pooled.release().await;
    if in_batch > 0 || total == 0 {
        let batch = finish(&schema, &mut cols, in_batch)?;
        out.send_checked(ctx, batch)?;
    }
    Ok(Some((total, zero_dates)))
}

fn finish(schema: &SchemaRef, cols: &mut [Col], rows: usize) -> Result<RecordBatch, PluginError> {
    batch_from_arrays(schema, cols.iter_mut().map(|c| c.finish()).collect(), rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(parse_decimal("-123.4500", 4).unwrap(), -1_234_500);
        assert_eq!(parse_decimal("0.00", 2).unwrap(), 0);
        assert_eq!(parse_decimal("12", 3).unwrap(), 12_000);
        assert!(parse_decimal("1.234", 2).is_err());
        assert_eq!(
            parse_decimal("99999999999999999999999999.999999999999", 12).unwrap(),
            99_999_999_999_999_999_999_999_999_999_999_999_999
        );
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
