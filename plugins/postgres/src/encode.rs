//! Arrow -> PostgreSQL: the column type each Arrow type is staged as (also used by `create_if_missing`), and
//! the binary `COPY ... FROM STDIN (FORMAT binary)` encoding of batches.
//!
//! Every input column is first cast to a canonical Arrow type (one per PostgreSQL type), so the encoders
//! handle a small, closed set of array types.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Decimal256Type, DurationMicrosecondType, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, IntervalMonthDayNanoType, Time64MicrosecondType,
    TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, IntervalUnit, TimeUnit};

use crate::decode::{PG_EPOCH_DAYS, PG_EPOCH_MICROS};

/// How an Arrow column is staged: the canonical Arrow type it is cast to and its PostgreSQL type, and the
/// column type a table created (or a column added) for it gets.
#[derive(Debug, Clone)]
pub struct Plan {
    pub canonical: DataType,
    pub pg_type: String,
    /// The type of a column made for the input column: `pg_type`, except for JSON text (`jsonb`) and UUIDs
    /// in text form (`uuid`), which are staged as `text`.
    pub column_type: String,
}

pub use osiris_plugin_dbcommon::extension::{
    EXTENSION_KEY, JSON_EXTENSION, UUID_TEXT_EXTENSION, extension, is_string,
};

/// The staging plan of an input field, or why it cannot be stored.
pub fn plan(f: &arrow_schema::Field) -> Result<Plan, String> {
    let dt = f.data_type();
    if is_string(dt) {
        let made = match extension(f) {
            Some(JSON_EXTENSION) => Some("jsonb"),
            Some(UUID_TEXT_EXTENSION) => Some("uuid"),
            _ => None,
        };
        if let Some(made) = made {
            return Ok(Plan {
                canonical: DataType::Utf8,
                pg_type: "text".into(),
                column_type: made.into(),
            });
        }
    }
    if *dt == DataType::FixedSizeBinary(16) {
        return Ok(Plan {
            canonical: DataType::FixedSizeBinary(16),
            pg_type: "uuid".into(),
            column_type: "uuid".into(),
        });
    }
    type_plan(dt)
}

/// The plan of a 16-byte UUID going into an existing `bytea` column instead: its bytes.
pub fn as_bytea(p: &Plan) -> Plan {
    Plan {
        canonical: DataType::Binary,
        pg_type: "bytea".into(),
        column_type: p.column_type.clone(),
    }
}

/// The staging plan of an Arrow type, or why it cannot be stored.
fn type_plan(dt: &DataType) -> Result<Plan, String> {
    use DataType as D;
    let (canonical, pg): (DataType, String) = match dt {
        D::Boolean => (D::Boolean, "boolean".into()),
        D::Int8 | D::Int16 | D::UInt8 => (D::Int16, "smallint".into()),
        D::Int32 | D::UInt16 => (D::Int32, "integer".into()),
        D::Int64 | D::UInt32 => (D::Int64, "bigint".into()),
        D::UInt64 => (D::Decimal128(20, 0), "numeric(20,0)".into()),
        D::Float16 | D::Float32 => (D::Float32, "real".into()),
        D::Float64 => (D::Float64, "double precision".into()),
        D::Decimal32(p, s) | D::Decimal64(p, s) | D::Decimal128(p, s) if *s >= 0 => {
            (D::Decimal128(*p, *s), format!("numeric({p},{s})"))
        }
        D::Decimal256(p, s) if *s >= 0 => (D::Decimal256(*p, *s), format!("numeric({p},{s})")),
        D::Utf8 | D::LargeUtf8 | D::Utf8View | D::Null => (D::Utf8, "text".into()),
        D::Dictionary(_, v) if matches!(**v, D::Utf8 | D::LargeUtf8 | D::Utf8View) => {
            (D::Utf8, "text".into())
        }
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => {
            (D::Binary, "bytea".into())
        }
        D::Date32 | D::Date64 => (D::Date32, "date".into()),
        D::Timestamp(_, None) => (
            D::Timestamp(TimeUnit::Microsecond, None),
            "timestamp".into(),
        ),
        D::Timestamp(_, Some(tz)) => (
            D::Timestamp(TimeUnit::Microsecond, Some(tz.clone())),
            "timestamptz".into(),
        ),
        D::Time32(_) | D::Time64(_) => (D::Time64(TimeUnit::Microsecond), "time".into()),
        D::Duration(_) => (D::Duration(TimeUnit::Microsecond), "interval".into()),
        D::Interval(_) => (D::Interval(IntervalUnit::MonthDayNano), "interval".into()),
        other => {
            return Err(format!(
                "has Arrow type {other}, which has no PostgreSQL column type here"
            ));
        }
    };
    Ok(Plan {
        canonical,
        column_type: pg.clone(),
        pg_type: pg,
    })
}

/// Casts `array` to the plan's canonical type.
pub fn canonical(array: &ArrayRef, plan: &Plan) -> Result<ArrayRef, String> {
    if array.data_type() == &plan.canonical {
        return Ok(array.clone());
    }
    if let (DataType::FixedSizeBinary(_), DataType::Binary) = (array.data_type(), &plan.canonical) {
        let fsb = array.as_fixed_size_binary();
        let b: arrow_array::BinaryArray = fsb.iter().collect();
        return Ok(std::sync::Arc::new(b));
    }
    arrow_cast::cast(array, &plan.canonical).map_err(|e| e.to_string())
}

/// Binary COPY header.
pub fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
}

/// Binary COPY trailer.
pub fn trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Encodes rows `from..to` of `batch` (columns already canonical) as COPY tuples.
pub fn encode_rows(
    batch: &RecordBatch,
    from: usize,
    to: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let ncols = batch.num_columns() as i16;
    let cols = batch.columns();
    for row in from..to {
        out.extend_from_slice(&ncols.to_be_bytes());
        for (i, col) in cols.iter().enumerate() {
            if col.is_null(row) {
                out.extend_from_slice(&(-1i32).to_be_bytes());
                continue;
            }
            encode_value(col, row, out).map_err(|why| {
                format!(
                    "column `{}`, row {}: {why}",
                    batch.schema().field(i).name(),
                    row + 1
                )
            })?;
        }
    }
    Ok(())
}

fn fixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_value(col: &ArrayRef, row: usize, out: &mut Vec<u8>) -> Result<(), String> {
    use DataType as D;
    match col.data_type() {
        D::Boolean => fixed(out, &[col.as_boolean().value(row) as u8]),
        D::Int16 => fixed(
            out,
            &col.as_primitive::<Int16Type>().value(row).to_be_bytes(),
        ),
        D::Int32 => fixed(
            out,
            &col.as_primitive::<Int32Type>().value(row).to_be_bytes(),
        ),
        D::Int64 => fixed(
            out,
            &col.as_primitive::<Int64Type>().value(row).to_be_bytes(),
        ),
        D::Float32 => fixed(
            out,
            &col.as_primitive::<Float32Type>().value(row).to_be_bytes(),
        ),
        D::Float64 => fixed(
            out,
            &col.as_primitive::<Float64Type>().value(row).to_be_bytes(),
        ),
        D::Decimal128(_, s) => {
            let v = col.as_primitive::<Decimal128Type>().value(row);
            numeric(out, v < 0, &v.unsigned_abs().to_string(), *s as usize);
        }
        D::Decimal256(_, s) => {
            let v = col.as_primitive::<Decimal256Type>().value(row);
            let text = v.to_string();
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d.to_string()),
                None => (false, text),
            };
            numeric(out, neg, &digits, *s as usize);
        }
        D::Utf8 => fixed(out, col.as_string::<i32>().value(row).as_bytes()),
        D::Binary => fixed(out, col.as_binary::<i32>().value(row)),
        D::FixedSizeBinary(16) => fixed(out, col.as_fixed_size_binary().value(row)),
        D::Date32 => {
            let d = col.as_primitive::<Date32Type>().value(row) - PG_EPOCH_DAYS;
            fixed(out, &d.to_be_bytes())
        }
        D::Timestamp(TimeUnit::Microsecond, _) => {
            let t = col.as_primitive::<TimestampMicrosecondType>().value(row);
            let t = t
                .checked_sub(PG_EPOCH_MICROS)
                .ok_or("timestamp out of range")?;
            fixed(out, &t.to_be_bytes())
        }
        D::Time64(TimeUnit::Microsecond) => fixed(
            out,
            &col.as_primitive::<Time64MicrosecondType>()
                .value(row)
                .to_be_bytes(),
        ),
        D::Duration(TimeUnit::Microsecond) => {
            let us = col.as_primitive::<DurationMicrosecondType>().value(row);
            let mut v = Vec::with_capacity(16);
            v.extend_from_slice(&us.to_be_bytes());
            v.extend_from_slice(&0i32.to_be_bytes());
            v.extend_from_slice(&0i32.to_be_bytes());
            fixed(out, &v)
        }
        D::Interval(IntervalUnit::MonthDayNano) => {
            let iv = col.as_primitive::<IntervalMonthDayNanoType>().value(row);
            let mut v = Vec::with_capacity(16);
            v.extend_from_slice(&(iv.nanoseconds / 1000).to_be_bytes());
            v.extend_from_slice(&iv.days.to_be_bytes());
            v.extend_from_slice(&iv.months.to_be_bytes());
            fixed(out, &v)
        }
        other => return Err(format!("no encoder for {other} (this is a bug)")),
    }
    Ok(())
}

/// PostgreSQL binary numeric from an unsigned decimal digit string (the unscaled value) and its scale.
fn numeric(out: &mut Vec<u8>, negative: bool, digits: &str, scale: usize) {
    // Split into integer and fraction digit strings.
    let (int_part, frac_part) = if digits.len() > scale {
        (
            &digits[..digits.len() - scale],
            digits[digits.len() - scale..].to_string(),
        )
    } else {
        (
            "",
            format!("{}{}", "0".repeat(scale - digits.len()), digits),
        )
    };
    let int_part = int_part.trim_start_matches('0');
    // Base-10000 groups: integer part padded on the left, fraction on the right.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let int_str = format!("{}{}", "0".repeat(int_pad), int_part);
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let frac_str = format!("{}{}", frac_part, "0".repeat(frac_pad));
    let mut groups: Vec<i16> = Vec::new();
    for c in int_str.as_bytes().chunks(4) {
        groups.push(std::str::from_utf8(c).unwrap().parse().unwrap());
    }
    let int_groups = groups.len() as i32;
    for c in frac_str.as_bytes().chunks(4) {
        groups.push(std::str::from_utf8(c).unwrap().parse().unwrap());
    }
    let mut weight = int_groups - 1;
    // Strip leading zero groups (adjusting the weight) and trailing zero groups.
    let mut start = 0;
    while start < groups.len() && groups[start] == 0 {
        start += 1;
        weight -= 1;
    }
    let mut end = groups.len();
    while end > start && groups[end - 1] == 0 {
        end -= 1;
    }
    let groups = &groups[start..end];
    if groups.is_empty() {
        weight = 0;
    }
    let mut v = Vec::with_capacity(8 + 2 * groups.len());
    v.extend_from_slice(&(groups.len() as i16).to_be_bytes());
    v.extend_from_slice(&(weight as i16).to_be_bytes());
    let sign: u16 = if negative && !groups.is_empty() {
        0x4000
    } else {
        0
    };
    v.extend_from_slice(&sign.to_be_bytes());
    v.extend_from_slice(&(scale as u16).to_be_bytes());
    for g in groups {
        v.extend_from_slice(&g.to_be_bytes());
    }
    fixed(out, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(unscaled: i128, scale: i8) -> i128 {
        let mut out = Vec::new();
        numeric(
            &mut out,
            unscaled < 0,
            &unscaled.unsigned_abs().to_string(),
            scale as usize,
        );
        crate::decode::numeric(&out[4..], scale).unwrap()
    }

    #[test]
    fn created_columns_keep_the_input_types() {
        use arrow_schema::Field;
        let made = |f: Field| plan(&f).unwrap().column_type;
        let ext = |name: &str| {
            Field::new("c", DataType::Utf8, true)
                .with_metadata([(EXTENSION_KEY.to_string(), name.to_string())].into())
        };
        assert_eq!(made(ext(JSON_EXTENSION)), "jsonb");
        assert_eq!(made(ext(UUID_TEXT_EXTENSION)), "uuid");
        assert_eq!(made(Field::new("c", DataType::Utf8, true)), "text");
        assert_eq!(
            made(Field::new("c", DataType::FixedSizeBinary(16), true)),
            "uuid"
        );
        assert_eq!(made(Field::new("c", DataType::Binary, true)), "bytea");
        assert_eq!(
            made(Field::new("c", DataType::Decimal128(20, 4), true)),
            "numeric(20,4)"
        );
        assert_eq!(
            made(Field::new("c", DataType::Decimal256(60, 10), true)),
            "numeric(60,10)"
        );
        assert_eq!(
            made(Field::new(
                "c",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true
            )),
            "timestamp"
        );
        assert_eq!(
            made(Field::new(
                "c",
                DataType::Timestamp(TimeUnit::Second, Some("+02:00".into())),
                true
            )),
            "timestamptz"
        );
        // JSON is staged as text and cast into the jsonb column.
        assert_eq!(plan(&ext(JSON_EXTENSION)).unwrap().pg_type, "text");
    }

    #[test]
    fn numeric_encoding_round_trips_through_the_decoder() {
        for (v, s) in [
            (0i128, 2i8),
            (1, 4),
            (-1, 4),
            (123_456_789, 4),
            (-(10i128.pow(38) - 1), 10),
            (10_000, 0),
            (100_000_000, 8),
            (5, 0),
            (-12345, 3),
        ] {
            assert_eq!(roundtrip(v, s), v, "{v} scale {s}");
        }
    }
}
