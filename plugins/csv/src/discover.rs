//! `filesystem.csv_extractor`'s `discover`: the CSV files under a directory (or one file) in the shape the
//! database extractors report: `tables[]` with columns (source and Arrow types), a row-count estimate and
//! sample rows.
//!
//! Each file goes through the extractor's own schema inference (`Plan::infer`, the code a run uses), so
//! discovery and a run agree on types. Only that sample is read: the first `INFER_SAMPLE_ROWS` records, and
//! then the first `samples` rows again. A bigger file's row count is estimated from its size over the
//! sample's bytes per row. A file that cannot be read becomes an entry with an `error`, not a failed discovery.

use crate::common::{decode, display, resolve_path};
use crate::extractor::{NAME, Plan, type_name};
use arrow_array::{Array, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use osiris_plugin_sdk::{Context, PluginError};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::{Component, Path, PathBuf};

/// Sample rows per file when the request does not say (`osiris discovery run` always does).
const DEFAULT_SAMPLES: u64 = 3;
/// The most sample rows per file.
const MAX_SAMPLES: u64 = 100;
/// The most CSV files one discovery describes; more are counted in `csv_files_found` and `truncated`.
pub(crate) const MAX_FILES: usize = 500;
/// How deep under the directory files are looked for.
const MAX_DEPTH: usize = 8;
/// The most directory entries looked at, so a `base_dir` of `/` does not walk the whole disk.
const MAX_ENTRIES: usize = 100_000;
/// Read options that apply to every file of a directory discovery (`path`, `columns`, `dtype` and `limit`
/// name one file's content and are not passed on).
const SHARED_OPTIONS: [&str; 10] = [
    "delimiter",
    "quotechar",
    "header",
    "encoding",
    "skip_rows",
    "null_values",
    "allow_quoted_nulls",
    "ignore_errors",
    "max_bad_rows",
    "compression",
];

#[derive(Deserialize)]
struct Request {
    path: String,
    #[serde(default)]
    base_dir: Option<String>,
    #[serde(default)]
    samples: Option<u64>,
}

/// A CSV file found under the directory.
struct Found {
    /// Path relative to the directory, `/`-separated: what a step's `path` names.
    name: String,
    path: PathBuf,
    size: u64,
}

pub(crate) fn discover(config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let req: Request = decode(NAME, config)?;
    let samples = req.samples.unwrap_or(DEFAULT_SAMPLES).min(MAX_SAMPLES) as usize;
    // `base_dir` `.` and `path` `.` make `./.`: shown and passed on without the `.` parts.
    let path: PathBuf = resolve_path(&req.path, req.base_dir.as_deref(), ctx)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let path = if path.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        path
    };
    if !path.is_dir() {
        // One file: its own entry, and a file that cannot be read fails as a run would.
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| display(&path));
        let entry = describe(&name, size, config, samples, ctx)?;
        return Ok(json!({ "file": display(&path), "tables": [entry] }));
    }
    let walk = csv_files(&path)?;
    let mut tables = Vec::with_capacity(walk.files.len());
    for f in &walk.files {
        let mut cfg = Map::new();
        for key in SHARED_OPTIONS {
            if let Some(v) = config.get(key) {
                cfg.insert(key.to_string(), v.clone());
            }
        }
        if is_tsv(&f.name) && !cfg.contains_key("delimiter") {
            cfg.insert("delimiter".into(), Value::String("\t".into()));
        }
        cfg.insert("path".into(), Value::String(display(&f.path)));
        let cfg = Value::Object(cfg);
        let entry = describe(&f.name, f.size, &cfg, samples, ctx).unwrap_or_else(|e| {
            ctx.debug(&format!("discovery: `{}`: {e}", f.name));
            let mut entry = base_entry(&f.name, f.size, &cfg);
            entry["error"] = json!({ "code": e.code, "message": e.message, "help": e.help });
            entry
        });
        tables.push(entry);
    }
    let mut out = json!({ "directory": display(&path), "tables": tables });
    if walk.found > walk.files.len() || walk.stopped_early {
        out["truncated"] = Value::Bool(true);
        out["csv_files_found"] = json!(walk.found);
    }
    Ok(out)
}

fn is_tsv(name: &str) -> bool {
    let lower = name.to_lowercase();
    lower.ends_with(".tsv") || lower.ends_with(".tsv.gz")
}

fn is_csv(name: &str) -> bool {
    let lower = name.to_lowercase();
    [".csv", ".csv.gz", ".tsv", ".tsv.gz"]
        .iter()
        .any(|s| lower.ends_with(s))
}

/// What the walk found: at most `MAX_FILES` CSV files sorted by name, how many there were, and whether the
/// walk stopped early (`MAX_ENTRIES`).
struct Walk {
    files: Vec<Found>,
    found: usize,
    stopped_early: bool,
}

/// The CSV files under `dir`, hidden entries and symlinked directories skipped.
fn csv_files(dir: &Path) -> Result<Walk, PluginError> {
    let mut out = Vec::new();
    let mut seen_entries = 0usize;
    let mut stopped_early = false;
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((d, prefix, depth)) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if depth == 0 => {
                return Err(
                    PluginError::io(format!("cannot list `{}`: {e}", display(&d)))
                        .with_help("check the connection's `base_dir`"),
                );
            }
            // A subdirectory that cannot be listed holds nothing discovery can read.
            Err(_) => continue,
        };
        for entry in entries.flatten() {
            seen_entries += 1;
            if seen_entries > MAX_ENTRIES {
                stopped_early = true;
                stack.clear();
                break;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth + 1 < MAX_DEPTH {
                    stack.push((entry.path(), format!("{rel}/"), depth + 1));
                }
            } else if is_csv(&name) && entry.path().is_file() {
                let size = std::fs::metadata(entry.path())
                    .map(|m| m.len())
                    .unwrap_or(0);
                out.push(Found {
                    name: rel,
                    path: entry.path(),
                    size,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let found = out.len();
    out.truncate(MAX_FILES);
    Ok(Walk {
        files: out,
        found,
        stopped_early,
    })
}

/// The fields every entry has, before the file is read.
fn base_entry(name: &str, size: u64, cfg: &Value) -> Value {
    let gzip = match cfg.get("compression").and_then(Value::as_str) {
        Some("gzip") => true,
        Some("none") => false,
        _ => name.to_lowercase().ends_with(".gz"),
    };
    json!({
        "name": name,
        "kind": "file",
        "size_bytes": size,
        "compression": if gzip { "gzip" } else { "none" },
        "delimiter": cfg.get("delimiter").and_then(Value::as_str).unwrap_or(","),
        "row_count_estimate": Value::Null,
        "row_count_exact": false,
        "primary_key": [],
        "columns": [],
        "samples": [],
    })
}

/// One file's entry: its columns as a run would infer them, the row count (exact when the sample is the
/// whole file) and up to `samples` rows.
fn describe(
    name: &str,
    size: u64,
    cfg: &Value,
    samples: usize,
    ctx: &Context,
) -> Result<Value, PluginError> {
    let (mut plan, inference) = Plan::infer(cfg, ctx)?;
    let mut entry = base_entry(name, size, cfg);
    entry["columns"] = plan
        .schema
        .fields()
        .iter()
        .map(|f| {
            json!({
                "name": f.name(),
                "source_type": type_name(f.data_type()),
                "arrow_type": f.data_type().to_string(),
                "nullable": f.is_nullable(),
            })
        })
        .collect();
    entry["row_count_estimate"] = json!(inference.estimate_rows(size));
    entry["row_count_exact"] = Value::Bool(inference.read_whole_file());
    entry["inferred_from_rows"] = json!(inference.records);
    if samples > 0 {
        plan.limit = Some(samples as u64);
        plan.batch_size = samples;
        let mut rows = Vec::with_capacity(samples);
        for batch in plan.stream(ctx.clone())? {
            let batch = batch.map_err(|e| PluginError::data(e.to_string()))?;
            rows.extend(json_rows(&batch)?);
        }
        entry["samples"] = Value::Array(rows);
    }
    Ok(entry)
}

/// The rows of `batch` as JSON objects: numbers and booleans as JSON values, everything else as the text
/// Arrow displays (dates and timestamps in ISO 8601), null as null.
pub(crate) fn json_rows(batch: &RecordBatch) -> Result<Vec<Value>, PluginError> {
    let options = FormatOptions::default();
    let schema = batch.schema();
    let mut rows = vec![Map::new(); batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options)
            .map_err(|e| PluginError::internal(format!("formatting `{}`: {e}", field.name())))?;
        for (i, row) in rows.iter_mut().enumerate() {
            let v = if column.is_null(i) {
                Value::Null
            } else {
                match column.data_type() {
                    DataType::Int64 => column
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .map_or(Value::Null, |a| json!(a.value(i))),
                    DataType::Float64 => column
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .and_then(|a| serde_json::Number::from_f64(a.value(i)))
                        .map_or_else(
                            || Value::String(formatter.value(i).to_string()),
                            Value::Number,
                        ),
                    DataType::Boolean => column
                        .as_any()
                        .downcast_ref::<BooleanArray>()
                        .map_or(Value::Null, |a| Value::Bool(a.value(i))),
                    _ => Value::String(formatter.value(i).to_string()),
                }
            };
            row.insert(field.name().clone(), v);
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}
