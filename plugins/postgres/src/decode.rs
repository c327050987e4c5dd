//! PostgreSQL result columns -> Arrow: the type mapping and decoders for `COPY ... (FORMAT binary)` fields.
//!
//! Types without a decoder here are read as text (the query is wrapped with `::text` casts), so every column
//! arrives with its full value.

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder,
    StringBuilder, Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::types::IntervalMonthDayNano;
use arrow_schema::{DataType, IntervalUnit, TimeUnit};
use std::sync::Arc;
use tokio_postgres::types::{Kind, Type};

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Scale used for `numeric` columns declared without precision/scale (values with more fractional digits
/// are rounded half away from zero).
pub const UNCONSTRAINED_SCALE: i8 = 10;

/// How one result column is decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Dec {
    Bool,
    I16,
    I32,
    I64,
    /// `oid`, `xid`: unsigned 32-bit, widened.
    U32,
    F32,
    F64,
    Numeric {
        precision: u8,
        scale: i8,
    },
    /// text, varchar, bpchar, name, json, xml, enums and everything read through a `::text` cast.
    Text,
    /// The single-byte `"char"` type.
    Char,
    Jsonb,
    Bytea,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    /// timetz: normalised to UTC.
    TimeTz,
    Interval,
}

impl Dec {
    pub fn data_type(&self) -> DataType {
        match self {
            Dec::Bool => DataType::Boolean,
            Dec::I16 => DataType::Int16,
            Dec::I32 => DataType::Int32,
            Dec::I64 | Dec::U32 => DataType::Int64,
            Dec::F32 => DataType::Float32,
            Dec::F64 => DataType::Float64,
            Dec::Numeric { precision, scale } => DataType::Decimal128(*precision, *scale),
            Dec::Text | Dec::Char | Dec::Jsonb | Dec::Uuid => DataType::Utf8,
            Dec::Bytea => DataType::Binary,
            Dec::Date => DataType::Date32,
            Dec::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Dec::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Dec::Time | Dec::TimeTz => DataType::Time64(TimeUnit::Microsecond),
            Dec::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
        }
    }
}

/// The Arrow extension type a column of type `ty` is marked with (field metadata `ARROW:extension:name`), so a
/// writer can create the same kind of column: `arrow.json` for json and jsonb, `osiris.uuid` (text form) for
/// uuid.
pub fn extension_for(ty: &Type) -> Option<&'static str> {
    if let Kind::Domain(base) = ty.kind() {
        return extension_for(base);
    }
    match *ty {
        Type::JSON | Type::JSONB => Some(crate::encode::JSON_EXTENSION),
        Type::UUID => Some(crate::encode::UUID_TEXT_EXTENSION),
        _ => None,
    }
}

/// The decoder for a column of type `ty` with type modifier `typmod`; `None` means "read it as text".
pub fn decoder_for(ty: &Type, typmod: i32) -> Option<Dec> {
    if let Kind::Domain(base) = ty.kind() {
        return decoder_for(base, typmod);
    }
    if let Kind::Enum(_) = ty.kind() {
        return Some(Dec::Text);
    }
    Some(match *ty {
        Type::BOOL => Dec::Bool,
        Type::INT2 => Dec::I16,
        Type::INT4 => Dec::I32,
        Type::INT8 => Dec::I64,
        Type::OID | Type::XID => Dec::U32,
        Type::FLOAT4 => Dec::F32,
        Type::FLOAT8 => Dec::F64,
        Type::NUMERIC => {
            if typmod >= 4 {
                let t = typmod - 4;
                let precision = ((t >> 16) & 0xffff) as u32;
                // Negative scales (PostgreSQL 15+) are stored in the low 11 bits as two's complement.
                let raw = t & 0x7ff;
                let scale = if raw & 0x400 != 0 { raw - 0x800 } else { raw };
                if precision > 38 || scale < 0 || scale as u32 > precision {
                    return None; // beyond Decimal128: exact text
                }
                Dec::Numeric {
                    precision: precision.max(1) as u8,
                    scale: scale as i8,
                }
            } else {
                Dec::Numeric {
                    precision: 38,
                    scale: UNCONSTRAINED_SCALE,
                }
            }
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::XML => {
            Dec::Text
        }
        Type::CHAR => Dec::Char,
        Type::JSONB => Dec::Jsonb,
        Type::BYTEA => Dec::Bytea,
        Type::UUID => Dec::Uuid,
        Type::DATE => Dec::Date,
        Type::TIMESTAMP => Dec::Timestamp,
        Type::TIMESTAMPTZ => Dec::TimestampTz,
        Type::TIME => Dec::Time,
        Type::TIMETZ => Dec::TimeTz,
        Type::INTERVAL => Dec::Interval,
        _ => return None,
    })
}

/// One column's builder.
pub enum Col {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, i8),
    Str(StringBuilder),
    Bin(BinaryBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Time(Time64MicrosecondBuilder),
    Iv(IntervalMonthDayNanoBuilder),
}

/// A value that cannot be represented (the message names it; the caller adds the column).
pub type DecodeError = String;

impl Col {
    pub fn new(dec: &Dec, capacity: usize) -> Col {
        match dec {
            Dec::Bool => Col::Bool(BooleanBuilder::with_capacity(capacity)),
            Dec::I16 => Col::I16(Int16Builder::with_capacity(capacity)),
            Dec::I32 => Col::I32(Int32Builder::with_capacity(capacity)),
            Dec::I64 | Dec::U32 => Col::I64(Int64Builder::with_capacity(capacity)),
            Dec::F32 => Col::F32(Float32Builder::with_capacity(capacity)),
            Dec::F64 => Col::F64(Float64Builder::with_capacity(capacity)),
            Dec::Numeric { scale, .. } => Col::Dec(
                Decimal128Builder::with_capacity(capacity).with_data_type(dec.data_type()),
                *scale,
            ),
            Dec::Text | Dec::Char | Dec::Jsonb | Dec::Uuid => {
                Col::Str(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            Dec::Bytea => Col::Bin(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            Dec::Date => Col::Date(Date32Builder::with_capacity(capacity)),
            Dec::Timestamp => Col::Ts(TimestampMicrosecondBuilder::with_capacity(capacity)),
            Dec::TimestampTz => {
                Col::Ts(TimestampMicrosecondBuilder::with_capacity(capacity).with_timezone("UTC"))
            }
            Dec::Time | Dec::TimeTz => Col::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            Dec::Interval => Col::Iv(IntervalMonthDayNanoBuilder::with_capacity(capacity)),
        }
    }

    pub fn null(&mut self) {
        match self {
            Col::Bool(b) => b.append_null(),
            Col::I16(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Dec(b, _) => b.append_null(),
            Col::Str(b) => b.append_null(),
            Col::Bin(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Ts(b) => b.append_null(),
            Col::Time(b) => b.append_null(),
            Col::Iv(b) => b.append_null(),
        }
    }

    /// Appends one binary-format field of a column decoded as `dec`.
    pub fn push(&mut self, dec: &Dec, v: &[u8]) -> Result<(), DecodeError> {
        match (self, dec) {
            (Col::Bool(b), _) => b.append_value(byte(v, 0)? != 0),
            (Col::I16(b), _) => b.append_value(i16::from_be_bytes(arr(v)?)),
            (Col::I32(b), _) => b.append_value(i32::from_be_bytes(arr(v)?)),
            (Col::I64(b), Dec::U32) => b.append_value(u32::from_be_bytes(arr(v)?) as i64),
            (Col::I64(b), _) => b.append_value(i64::from_be_bytes(arr(v)?)),
            (Col::F32(b), _) => b.append_value(f32::from_be_bytes(arr(v)?)),
            (Col::F64(b), _) => b.append_value(f64::from_be_bytes(arr(v)?)),
            (Col::Dec(b, scale), _) => b.append_value(numeric(v, *scale)?),
            (Col::Str(b), Dec::Jsonb) => {
                let (version, text) = v.split_first().ok_or("empty jsonb value")?;
                if *version != 1 {
                    return Err(format!("unknown jsonb format version {version}"));
                }
                b.append_value(utf8(text)?)
            }
            (Col::Str(b), Dec::Uuid) => {
                let u: [u8; 16] = arr(v)?;
                b.append_value(uuid_text(&u))
            }
            (Col::Str(b), Dec::Char) => {
                // "char" carries one byte in the server encoding (UTF-8 here): ASCII in practice.
                b.append_value(String::from_utf8_lossy(v))
            }
            (Col::Str(b), _) => b.append_value(utf8(v)?),
            (Col::Bin(b), _) => b.append_value(v),
            (Col::Date(b), _) => {
                let d = i32::from_be_bytes(arr(v)?);
                if d == i32::MAX || d == i32::MIN {
                    return Err("an infinite date has no Arrow equivalent".into());
                }
                b.append_value(d.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?)
            }
            (Col::Ts(b), _) => {
                let t = i64::from_be_bytes(arr(v)?);
                if t == i64::MAX || t == i64::MIN {
                    return Err("an infinite timestamp has no Arrow equivalent".into());
                }
                b.append_value(
                    t.checked_add(PG_EPOCH_MICROS)
                        .ok_or("timestamp out of range")?,
                )
            }
            (Col::Time(b), Dec::TimeTz) => {
                if v.len() != 12 {
                    return Err(format!("timetz value of {} bytes", v.len()));
                }
                let t = i64::from_be_bytes(arr(&v[..8])?);
                // The zone is stored as seconds west of UTC.
                let west = i32::from_be_bytes(arr(&v[8..])?) as i64;
                let day = 86_400_000_000i64;
                b.append_value((t + west * 1_000_000).rem_euclid(day))
            }
            (Col::Time(b), _) => b.append_value(i64::from_be_bytes(arr(v)?)),
            (Col::Iv(b), _) => {
                if v.len() != 16 {
                    return Err(format!("interval value of {} bytes", v.len()));
                }
                let micros = i64::from_be_bytes(arr(&v[..8])?);
                let days = i32::from_be_bytes(arr(&v[8..12])?);
                let months = i32::from_be_bytes(arr(&v[12..])?);
                b.append_value(IntervalMonthDayNano::new(
                    months,
                    days,
                    micros.checked_mul(1000).ok_or("interval out of range")?,
                ))
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Dec(b, _) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
            Col::Bin(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Ts(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
            Col::Iv(b) => Arc::new(b.finish()),
        }
    }
}

fn byte(v: &[u8], i: usize) -> Result<u8, DecodeError> {
    v.get(i).copied().ok_or_else(|| "truncated value".into())
}

fn arr<const N: usize>(v: &[u8]) -> Result<[u8; N], DecodeError> {
    v.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(v).map_err(|_| "text that is not valid UTF-8".into())
}

pub fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Decodes PostgreSQL's binary `numeric` into an integer at `scale` (rounding half away from zero when the
/// value has more fractional digits, which only happens for unconstrained `numeric`).
pub fn numeric(v: &[u8], scale: i8) -> Result<i128, DecodeError> {
    if v.len() < 8 {
        return Err("truncated numeric".into());
    }
    let ndigits = i16::from_be_bytes([v[0], v[1]]) as usize;
    let weight = i16::from_be_bytes([v[2], v[3]]) as i32;
    let sign = u16::from_be_bytes([v[4], v[5]]);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Err("NaN has no decimal equivalent".into()),
        0xD000 | 0xF000 => return Err("an infinite numeric has no decimal equivalent".into()),
        _ => return Err(format!("unknown numeric sign {sign:#x}")),
    }
    if v.len() < 8 + 2 * ndigits {
        return Err("truncated numeric".into());
    }
    let overflow = || "value too large for a 38-digit decimal".to_string();
    let scale = scale as i32;
    let mut acc: i128 = 0;
    let mut round_up = false;
    for i in 0..ndigits {
        let d = i16::from_be_bytes([v[8 + 2 * i], v[9 + 2 * i]]) as i128;
        // This group is worth d * 10^(4 * (weight - i)); scaled by 10^scale.
        let exp = 4 * (weight - i as i32) + scale;
        if exp >= 0 {
            let f = 10i128.checked_pow(exp as u32).ok_or_else(overflow)?;
            acc = d
                .checked_mul(f)
                .and_then(|x| acc.checked_add(x))
                .ok_or_else(overflow)?;
        } else if exp > -4 {
            let f = 10i128.pow((-exp) as u32);
            acc = acc.checked_add(d / f).ok_or_else(overflow)?;
            let rem = d % f;
            if rem * 2 >= f {
                round_up = true;
            }
            break;
        } else {
            // Wholly beyond the scale: only rounding can be affected, by the first such group.
            if exp == -4 && d >= 5000 {
                round_up = true;
            }
            break;
        }
    }
    if round_up {
        acc = acc.checked_add(1).ok_or_else(overflow)?;
    }
    if acc >= 10i128.pow(38) {
        return Err(overflow());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(ndigits: i16, weight: i16, sign: u16, dscale: u16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(ndigits.to_be_bytes());
        v.extend(weight.to_be_bytes());
        v.extend(sign.to_be_bytes());
        v.extend(dscale.to_be_bytes());
        for d in digits {
            v.extend(d.to_be_bytes());
        }
        v
    }

    #[test]
    fn numeric_decodes_exactly_and_rounds_only_beyond_the_scale() {
        // 12345.6789 = [1, 2345, 6789], weight 1
        assert_eq!(
            numeric(&enc(3, 1, 0, 4, &[1, 2345, 6789]), 4).unwrap(),
            123_456_789
        );
        assert_eq!(
            numeric(&enc(3, 1, 0x4000, 4, &[1, 2345, 6789]), 2).unwrap(),
            -1_234_568
        );
        // 0.0001
        assert_eq!(numeric(&enc(1, -1, 0, 4, &[1]), 4).unwrap(), 1);
        // 0 (no digits)
        assert_eq!(numeric(&enc(0, 0, 0, 2, &[]), 2).unwrap(), 0);
        // 10^36 at scale 2 overflows 38 digits
        assert!(numeric(&enc(1, 9, 0, 0, &[1]), 2).is_err());
        assert!(numeric(&enc(0, 0, 0xC000, 0, &[]), 2).is_err());
    }
}
