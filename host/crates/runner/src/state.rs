//! Incremental state (ADR 0018): per profile, pipeline and step, the high-water mark of an extractor's
//! `incremental.cursor`, in `.osiris/state/<profile>/<pipeline>/<step>.json`.
//!
//! ```json
//! {"version": 1, "pipeline": "orders", "profile": "default", "step": "extract",
//!  "cursor": ["updated_at"], "kinds": ["timestamp"], "value": ["2026-12-01 10:00:00.000000"],
//!  "primary_key": ["id"], "run_id": "run-…", "updated_at": "2026-12-01T10:00:03.120Z", "rows": 1000}
//! ```
//!
//! Invariant: a state file is replaced whole (written beside, synced, renamed over), so a reader sees the old
//! mark or the new one, never half of one; it is written only after every writer fed by its step committed.
//! Invariant: a newer osiris reads every older `version`; a file of a newer version is refused, not guessed.

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{OwnedRow, RowConverter, SortField};
use arrow_schema::{ArrowError, DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The state format this osiris writes; it reads every version up to this one.
pub const VERSION: u32 = 1;

/// One step's high-water mark.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    pub pipeline: String,
    pub profile: String,
    pub step: String,
    pub cursor: Vec<String>,
    /// How each cursor value is compared and moved back by `lookback` (see [`Kind`]).
    pub kinds: Vec<Kind>,
    /// One per cursor column: a JSON number, or a string the database converts to the column's type.
    pub value: Vec<Value>,
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// The run that set the mark.
    pub run_id: String,
    pub updated_at: String,
    /// Rows that run read.
    #[serde(default)]
    pub rows: u64,
}

/// What kind of value a cursor column holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Integer,
    Float,
    Decimal,
    Text,
    Date,
    /// Without a zone: `YYYY-MM-DD HH:MM:SS.ffffff`.
    Timestamp,
    /// An instant, written in UTC: `YYYY-MM-DD HH:MM:SS.ffffff+00:00`.
    TimestampTz,
}

impl Kind {
    fn of(dt: &DataType) -> Option<Kind> {
        Some(match dt {
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Kind::Integer,
            DataType::Float32 | DataType::Float64 => Kind::Float,
            DataType::Decimal128(..) | DataType::Decimal256(..) => Kind::Decimal,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Date32 | DataType::Date64 => Kind::Date,
            DataType::Timestamp(_, None) => Kind::Timestamp,
            DataType::Timestamp(_, Some(_)) => Kind::TimestampTz,
            _ => return None,
        })
    }
}

/// A step's `incremental:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Incremental {
    pub cursor: Vec<String>,
    pub initial: Option<Vec<Value>>,
    pub lookback: Option<Value>,
    pub primary_key: Vec<String>,
}

fn names(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

impl Incremental {
    /// The block of a step's config, if it has one.
    pub fn of(config: &Value) -> Option<Incremental> {
        let b = config.get("incremental")?;
        let cursor = names(b.get("cursor"));
        if cursor.is_empty() {
            return None;
        }
        let initial = match b.get("initial_value") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(v) => Some(vec![v.clone()]),
        };
        Some(Incremental {
            cursor,
            initial,
            lookback: b.get("lookback").cloned(),
            primary_key: names(b.get("primary_key")),
        })
    }
}

/// A condition of the read window: `(columns) op (values)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub columns: Vec<String>,
    pub op: &'static str,
    pub values: Vec<Value>,
}

impl Cond {
    pub fn to_json(&self) -> Value {
        json!({ "columns": self.columns, "op": self.op, "values": self.values })
    }
}

/// Where an incremental read starts: after the mark (moved back by `lookback`), else from `initial_value`,
/// else everything (`None`). `full_refresh` ignores the mark. An error says why the mark cannot be used.
pub fn window(
    inc: &Incremental,
    prior: Option<&State>,
    full_refresh: bool,
) -> Result<Option<Cond>, String> {
    if let Some(s) = prior.filter(|_| !full_refresh) {
        if s.cursor != inc.cursor {
            return Err(format!(
                "the state was kept for cursor ({}) but the step's cursor is now ({})",
                s.cursor.join(", "),
                inc.cursor.join(", ")
            ));
        }
        if s.value.len() != s.cursor.len() || s.kinds.len() != s.cursor.len() {
            return Err("the state's `value` or `kinds` does not match its `cursor`".into());
        }
        let mut values = s.value.clone();
        let mut op = ">";
        if let Some(lb) = &inc.lookback {
            if values.len() != 1 {
                return Err("`lookback` needs a single cursor column".into());
            }
            values[0] = back(&values[0], s.kinds[0], lb)?;
            // A window moved back starts at its edge: rows exactly `lookback` older are read again too.
            op = ">=";
        }
        return Ok(Some(Cond {
            columns: inc.cursor.clone(),
            op,
            values,
        }));
    }
    match &inc.initial {
        Some(v) if v.len() != inc.cursor.len() => Err(format!(
            "`initial_value` has {} values for {} cursor columns",
            v.len(),
            inc.cursor.len()
        )),
        Some(v) => Ok(Some(Cond {
            columns: inc.cursor.clone(),
            op: ">=",
            values: v.clone(),
        })),
        None => Ok(None),
    }
}

/// `lookback` as a duration: `90s`, `15m`, `2h`, `1d`, `500ms`.
fn duration(text: &str) -> Option<TimeDelta> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    Some(match unit {
        "ms" => TimeDelta::milliseconds(n),
        "s" => TimeDelta::seconds(n),
        "m" => TimeDelta::minutes(n),
        "h" => TimeDelta::hours(n),
        "d" => TimeDelta::days(n),
        _ => return None,
    })
}

const TS: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// The mark `v` moved back by `lookback`.
fn back(v: &Value, kind: Kind, lookback: &Value) -> Result<Value, String> {
    let wrong = || {
        format!(
            "`lookback: {lookback}` does not fit a cursor of kind {}",
            serde_json::to_string(&kind).unwrap_or_default()
        )
    };
    match (kind, lookback) {
        (Kind::Integer, Value::Number(n)) => {
            let (Some(x), Some(d)) = (v.as_i64(), n.as_i64()) else {
                return Err(wrong());
            };
            Ok(json!(x.saturating_sub(d)))
        }
        (Kind::Float, Value::Number(n)) => {
            let (Some(x), Some(d)) = (v.as_f64(), n.as_f64()) else {
                return Err(wrong());
            };
            Ok(json!(x - d))
        }
        (Kind::Date | Kind::Timestamp | Kind::TimestampTz, Value::String(d)) => {
            let d = duration(d).ok_or_else(wrong)?;
            let text = v.as_str().ok_or_else(wrong)?;
            let bad = || format!("the state's value `{text}` is not a valid {kind:?}");
            match kind {
                Kind::Date => {
                    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad())?;
                    let days = (d.num_seconds() + 86_399) / 86_400;
                    Ok(json!(
                        (day - TimeDelta::days(days)).format("%Y-%m-%d").to_string()
                    ))
                }
                Kind::Timestamp => {
                    let t = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                        .map_err(|_| bad())?;
                    Ok(json!((t - d).format(TS).to_string()))
                }
                _ => {
                    let t = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z")
                        .map_err(|_| bad())?;
                    Ok(json!(format!("{}+00:00", (t.naive_utc() - d).format(TS))))
                }
            }
        }
        _ => Err(wrong()),
    }
}

/// The value at `row` of a cursor column, as the state keeps it.
pub fn value_at(a: &ArrayRef, row: usize) -> Option<Value> {
    if a.is_null(row) {
        return None;
    }
    let ts = |n: i64, unit: &TimeUnit| -> Option<NaiveDateTime> {
        let t = match unit {
            TimeUnit::Second => DateTime::from_timestamp(n, 0),
            TimeUnit::Millisecond => DateTime::from_timestamp_millis(n),
            TimeUnit::Microsecond => DateTime::from_timestamp_micros(n),
            TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(n)),
        };
        t.map(|t| t.naive_utc())
    };
    Some(match a.data_type() {
        DataType::Int8 => json!(a.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => json!(a.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => json!(a.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => json!(a.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => json!(a.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => json!(a.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => json!(a.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => json!(a.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => json!(a.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => json!(a.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(..) => json!(a.as_primitive::<Decimal128Type>().value_as_string(row)),
        DataType::Decimal256(..) => json!(a.as_primitive::<Decimal256Type>().value_as_string(row)),
        DataType::Utf8 => json!(a.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => json!(a.as_string::<i64>().value(row)),
        DataType::Utf8View => json!(a.as_string_view().value(row)),
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(row);
            json!(
                (NaiveDate::from_ymd_opt(1970, 1, 1)? + TimeDelta::days(d as i64))
                    .format("%Y-%m-%d")
                    .to_string()
            )
        }
        DataType::Date64 => {
            let ms = a.as_primitive::<Date64Type>().value(row);
            json!(
                DateTime::from_timestamp_millis(ms)?
                    .format("%Y-%m-%d")
                    .to_string()
            )
        }
        DataType::Timestamp(unit, tz) => {
            let n = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(row),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(row),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(row),
            };
            let fmt = if *unit == TimeUnit::Nanosecond {
                "%Y-%m-%d %H:%M:%S%.9f"
            } else {
                TS
            };
            let t = ts(n, unit)?.format(fmt).to_string();
            if tz.is_some() {
                json!(format!("{t}+00:00"))
            } else {
                json!(t)
            }
        }
        _ => return None,
    })
}

/// The greatest cursor value of the batches seen so far: rows with a NULL cursor column are skipped (they
/// never compare greater than a mark).
pub struct CursorMax {
    cursor: Vec<String>,
    converter: Option<RowConverter>,
    best: Option<(OwnedRow, Vec<Value>)>,
    pub kinds: Vec<Kind>,
    pub rows: u64,
    /// The stream was read to its end.
    pub ended: bool,
}

impl CursorMax {
    pub fn new(cursor: Vec<String>) -> CursorMax {
        CursorMax {
            cursor,
            converter: None,
            best: None,
            kinds: Vec::new(),
            rows: 0,
            ended: false,
        }
    }

    /// The greatest value so far, if any row had one.
    pub fn value(&self) -> Option<Vec<Value>> {
        self.best.as_ref().map(|(_, v)| v.clone())
    }

    /// Takes in one batch; an error names a cursor column the batch lacks or cannot compare.
    pub fn see(&mut self, b: &RecordBatch) -> Result<(), ArrowError> {
        self.rows += b.num_rows() as u64;
        if b.num_rows() == 0 {
            // An empty result may come with no columns at all (an API that returned no record).
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = Vec::new();
        for c in &self.cursor {
            let Some(a) = b.column_by_name(c) else {
                let have: Vec<String> = b
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| format!("`{}`", f.name()))
                    .collect();
                return Err(ArrowError::InvalidArgumentError(format!(
                    "incremental cursor column `{c}` is not in the step's output (its columns: {})",
                    have.join(", ")
                )));
            };
            if Kind::of(a.data_type()).is_none() {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "incremental cursor column `{c}` has type {}, which cannot be a cursor (use an integer, decimal, text, date or timestamp column)",
                    a.data_type()
                )));
            }
            cols.push(a.clone());
        }
        if self.converter.is_none() {
            self.kinds = cols
                .iter()
                .filter_map(|a| Kind::of(a.data_type()))
                .collect();
            let fields = cols
                .iter()
                .map(|a| SortField::new(a.data_type().clone()))
                .collect();
            self.converter = Some(RowConverter::new(fields)?);
        }
        let Some(conv) = &self.converter else {
            return Ok(());
        };
        let rows = conv.convert_columns(&cols)?;
        let mut top: Option<usize> = None;
        for i in 0..b.num_rows() {
            if cols.iter().any(|a| a.is_null(i)) {
                continue;
            }
            if top.is_none_or(|t| rows.row(i) > rows.row(t)) {
                top = Some(i);
            }
        }
        let Some(t) = top else { return Ok(()) };
        if self
            .best
            .as_ref()
            .is_none_or(|(r, _)| rows.row(t) > r.row())
        {
            let values: Option<Vec<Value>> = cols.iter().map(|a| value_at(a, t)).collect();
            if let Some(values) = values {
                self.best = Some((rows.row(t).owned(), values));
            }
        }
        Ok(())
    }
}

/// `.osiris/state/<profile>/<pipeline>/<step>.json` under the project.
pub fn path(project_dir: &Path, profile: &str, pipeline: &str, step: &str) -> PathBuf {
    use osiris_core::file_name_part as part;
    project_dir
        .join(".osiris/state")
        .join(part(profile))
        .join(part(pipeline))
        .join(format!("{}.json", part(step)))
}

/// The state in `path`, `None` when there is none; an error says why it cannot be used.
pub fn load(path: &Path) -> Result<Option<State>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let version = v.get("version").and_then(Value::as_u64).unwrap_or(0);
    if version > VERSION as u64 {
        return Err(format!(
            "{} has state format version {version}, written by a newer osiris (this one reads up to {VERSION})",
            path.display()
        ));
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| format!("{} is not a state file: {e}", path.display()))
}

/// Replaces the state in `path` whole: written to a file beside it, synced, renamed over it, and the directory
/// synced, so a crash leaves the old state or the new one.
pub fn save(path: &Path, state: &State) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state"),
        std::process::id()
    ));
    let text = serde_json::to_string_pretty(state).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Every state file under the project, with its path (unreadable ones as errors), sorted by path.
pub fn list(project_dir: &Path) -> Vec<(PathBuf, Result<State, String>)> {
    let mut out = Vec::new();
    let root = project_dir.join(".osiris/state");
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
            {
                let s = load(&p).and_then(|s| s.ok_or_else(|| "vanished".to_string()));
                out.push((p, s));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;

    fn state(cursor: &[&str], kinds: Vec<Kind>, value: Vec<Value>) -> State {
        State {
            version: VERSION,
            pipeline: "p".into(),
            profile: "default".into(),
            step: "s".into(),
            cursor: cursor.iter().map(|s| s.to_string()).collect(),
            kinds,
            value,
            primary_key: vec![],
            run_id: "run-1".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
            rows: 1,
        }
    }

    fn inc(cursor: &[&str], lookback: Option<Value>, initial: Option<Vec<Value>>) -> Incremental {
        Incremental {
            cursor: cursor.iter().map(|s| s.to_string()).collect(),
            initial,
            lookback,
            primary_key: vec![],
        }
    }

    #[test]
    fn the_window_starts_after_the_mark_or_at_the_initial_value() {
        let i = inc(&["id"], None, Some(vec![json!(10)]));
        let first = window(&i, None, false).unwrap().unwrap();
        assert_eq!((first.op, first.values.clone()), (">=", vec![json!(10)]));
        let s = state(&["id"], vec![Kind::Integer], vec![json!(42)]);
        let next = window(&i, Some(&s), false).unwrap().unwrap();
        assert_eq!((next.op, next.values), (">", vec![json!(42)]));
        // A full refresh starts over from the initial value; without one it reads everything.
        assert_eq!(window(&i, Some(&s), true).unwrap(), Some(first));
        assert_eq!(
            window(&inc(&["id"], None, None), Some(&s), true).unwrap(),
            None
        );
    }

    #[test]
    fn lookback_moves_the_mark_back() {
        let s = state(
            &["u"],
            vec![Kind::Timestamp],
            vec![json!("2026-12-01 10:00:00.250000")],
        );
        let w = window(&inc(&["u"], Some(json!("90m")), None), Some(&s), false)
            .unwrap()
            .unwrap();
        assert_eq!(w.op, ">=");
        assert_eq!(w.values, vec![json!("2026-12-01 08:30:00.250000")]);
        let tz = state(
            &["u"],
            vec![Kind::TimestampTz],
            vec![json!("2026-12-01 00:10:00.000000+00:00")],
        );
        let w = window(&inc(&["u"], Some(json!("1d")), None), Some(&tz), false).unwrap();
        assert_eq!(
            w.unwrap().values,
            vec![json!("2026-11-30 00:10:00.000000+00:00")]
        );
        let n = state(&["id"], vec![Kind::Integer], vec![json!(100)]);
        let w = window(&inc(&["id"], Some(json!(30)), None), Some(&n), false).unwrap();
        assert_eq!(w.unwrap().values, vec![json!(70)]);
        // A duration for a number, or a changed cursor, is refused with the reason.
        assert!(window(&inc(&["id"], Some(json!("2h")), None), Some(&n), false).is_err());
        let e = window(&inc(&["other"], None, None), Some(&n), false).unwrap_err();
        assert!(e.contains("cursor (id)") && e.contains("(other)"), "{e}");
    }

    #[test]
    fn the_maximum_is_taken_over_batches_skipping_nulls_and_rows_compare_as_tuples() {
        let schema = Arc::new(arrow_schema::Schema::new(vec![
            arrow_schema::Field::new("a", DataType::Int64, true),
            arrow_schema::Field::new("b", DataType::Utf8, true),
        ]));
        let batch = |a: Vec<Option<i64>>, b: Vec<Option<&str>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(a)),
                    Arc::new(StringArray::from(b)),
                ],
            )
            .unwrap()
        };
        let mut m = CursorMax::new(vec!["a".into(), "b".into()]);
        m.see(&batch(
            vec![Some(1), Some(3), None],
            vec![Some("z"), Some("a"), Some("zz")],
        ))
        .unwrap();
        m.see(&batch(vec![Some(3), Some(2)], vec![Some("b"), None]))
            .unwrap();
        m.see(&batch(vec![Some(2)], vec![Some("zzz")])).unwrap();
        assert_eq!(m.value(), Some(vec![json!(3), json!("b")]));
        assert_eq!(m.rows, 6);
        assert_eq!(m.kinds, vec![Kind::Integer, Kind::Text]);
        let mut missing = CursorMax::new(vec!["nope".into()]);
        let e = missing
            .see(&batch(vec![Some(1)], vec![Some("x")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("`nope` is not in the step's output"),
            "{e}"
        );
    }

    #[test]
    fn timestamps_are_kept_as_the_databases_read_them() {
        let naive: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![1_764_583_200_123_456]));
        assert_eq!(
            value_at(&naive, 0),
            Some(json!("2025-12-01 10:00:00.123456"))
        );
        let utc: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1_764_583_200_000_000]).with_timezone("+01:00"),
        );
        assert_eq!(
            value_at(&utc, 0),
            Some(json!("2025-12-01 10:00:00.000000+00:00"))
        );
    }

    #[test]
    fn state_files_are_replaced_whole_and_newer_versions_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "default", "orders", "extract");
        assert_eq!(load(&p).unwrap(), None);
        let s = state(&["id"], vec![Kind::Integer], vec![json!(7)]);
        save(&p, &s).unwrap();
        assert_eq!(load(&p).unwrap(), Some(s.clone()));
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("extract.json")]);
        assert_eq!(list(dir.path()).len(), 1);
        // Fields a later version adds are ignored; a later version itself is refused.
        let mut v = serde_json::to_value(&s).unwrap();
        v["added_later"] = json!(true);
        std::fs::write(&p, v.to_string()).unwrap();
        assert_eq!(load(&p).unwrap(), Some(s));
        v["version"] = json!(VERSION + 1);
        std::fs::write(&p, v.to_string()).unwrap();
        assert!(load(&p).unwrap_err().contains("newer osiris"));
        std::fs::write(&p, "{\"version\": 1, \"pip").unwrap();
        assert!(load(&p).unwrap_err().contains("not valid JSON"));
    }
}
