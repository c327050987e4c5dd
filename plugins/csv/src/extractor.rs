//! `filesystem.csv_extractor`: streams one CSV file as Arrow record batches.
//!
//! The file is opened twice: once to infer the schema from a sample (types the user did not fix in `dtype`),
//! once to stream it in batches of `batch_size`. Rows are parsed as the host pulls the output stream; nothing
//! is materialised up front.

use crate::common::{ConsumeCounting, Counting, decode, display, resolve_path, single_byte};
use crate::scan::{NULL_MARK, ScanOptions, Scanner, SharedReport};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_csv::reader::Format;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use flate2::bufread::MultiGzDecoder;
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) const NAME: &str = "filesystem.csv_extractor";

/// Records read to infer column types (by a run and by discovery alike).
pub(crate) const INFER_SAMPLE_ROWS: usize = 10_000;

#[derive(Debug, Deserialize)]
struct Config {
    path: String,
    #[serde(default)]
    base_dir: Option<String>,
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "default_quotechar")]
    quotechar: String,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default = "default_encoding")]
    encoding: String,
    #[serde(default)]
    skip_rows: u64,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default)]
    dtype: BTreeMap<String, String>,
    #[serde(default = "default_null_values")]
    null_values: Vec<String>,
    #[serde(default)]
    allow_quoted_nulls: bool,
    #[serde(default)]
    ignore_errors: bool,
    #[serde(default)]
    max_bad_rows: Option<u64>,
    #[serde(default = "default_compression")]
    compression: String,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_quotechar() -> String {
    "\"".into()
}
fn yes() -> bool {
    true
}
fn default_encoding() -> String {
    "utf-8".into()
}
fn default_null_values() -> Vec<String> {
    vec![String::new()]
}
fn default_compression() -> String {
    "infer".into()
}
fn default_batch_size() -> usize {
    10_000
}

/// Everything needed to open the file again (inference, then streaming).
struct Source {
    path: PathBuf,
    gzip: bool,
    latin1: bool,
    skip_rows: u64,
    scan: ScanOptions,
}

impl Source {
    fn open(&self) -> Result<Opened, PluginError> {
        let file = File::open(&self.path).map_err(|e| {
            let kind = if e.kind() == io::ErrorKind::NotFound {
                "not found"
            } else {
                "cannot be opened"
            };
            PluginError::new(
                ErrorKind::Io,
                "CSV-OPEN",
                format!("CSV file `{}` {kind}: {e}", display(&self.path)),
            )
            .with_help("check `path` (relative paths resolve against the connection's `base_dir`)")
        })?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(PluginError::new(
                ErrorKind::Config,
                "CSV-OPEN",
                format!("`{}` is a directory, not a CSV file", display(&self.path)),
            ));
        }
        let (raw, file_bytes, plain_bytes): (Box<dyn Read + Send>, _, _) = if self.gzip {
            // Compressed bytes are counted as the decoder consumes them (not as buffers fill), so the
            // compression ratio of a sample is close to the truth.
            let (consumed, file_bytes) = ConsumeCounting::new(BufReader::new(file));
            let (decoded, plain_bytes) = Counting::new(MultiGzDecoder::new(consumed));
            (Box::new(decoded), file_bytes, plain_bytes)
        } else {
            let (counted, n) = Counting::new(file);
            (Box::new(counted), n.clone(), n)
        };
        let decoded: Box<dyn Read + Send> = if self.latin1 {
            Box::new(Latin1ToUtf8::new(raw))
        } else {
            raw
        };
        let mut reader = BufReader::with_capacity(1 << 16, decoded);
        let mut line = Vec::new();
        for _ in 0..self.skip_rows {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.read_error(e))?;
            if n == 0 {
                break;
            }
        }
        let (scanner, report) = Scanner::new(reader, self.scan.clone());
        Ok(Opened {
            reader: Box::new(scanner),
            file_bytes,
            plain_bytes,
            report,
        })
    }

    fn read_error(&self, e: io::Error) -> PluginError {
        let hint = if self.gzip {
            " (is it really gzip-compressed? set `compression: none` if not)"
        } else {
            ""
        };
        PluginError::new(
            ErrorKind::Io,
            "CSV-READ",
            format!("reading `{}` failed: {e}{hint}", display(&self.path)),
        )
    }
}

/// An opened source: the decoded text, and how many bytes it took from the file so far.
struct Opened {
    reader: Box<dyn BufRead + Send>,
    /// Bytes read from the file.
    file_bytes: Arc<AtomicU64>,
    /// Bytes out of decompression (the same counter as `file_bytes` without compression).
    plain_bytes: Arc<AtomicU64>,
    /// What the scanner found: its error (the parser sees it as an I/O error), rejected rows.
    report: SharedReport,
}

/// The scanner's error when it stopped the parser, else the parser's own error as `CSV-PARSE`.
fn parse_error(report: &SharedReport, arrow: impl FnOnce() -> PluginError) -> PluginError {
    let scanned = report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .error
        .clone();
    scanned.unwrap_or_else(arrow)
}

/// What schema inference read: at most `INFER_SAMPLE_ROWS` records from the start of the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inference {
    /// Data records read (the header is not one).
    pub(crate) records: usize,
    /// Decoded bytes the CSV parser took, header included (ahead of the last record by at most one parser
    /// buffer, 8 KiB).
    parsed_bytes: u64,
    /// Bytes read from the file.
    file_bytes: u64,
    /// Bytes out of decompression for those file bytes (equal to `file_bytes` without compression).
    plain_bytes: u64,
}

impl Inference {
    /// Whether inference read every record: then `records` is the file's row count.
    pub(crate) fn read_whole_file(&self) -> bool {
        self.records < INFER_SAMPLE_ROWS
    }

    /// Rows in a file of `file_size` bytes: its (decompressed) size over the sample's bytes per row.
    pub(crate) fn estimate_rows(&self, file_size: u64) -> u64 {
        if self.read_whole_file() {
            return self.records as u64;
        }
        let per_row = self.parsed_bytes as f64 / self.records as f64;
        let ratio = if self.file_bytes == 0 {
            1.0
        } else {
            self.plain_bytes as f64 / self.file_bytes as f64
        };
        ((file_size as f64 * ratio) / per_row).round() as u64
    }
}

pub struct CsvExtractor;

impl Driver for CsvExtractor {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        _inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let plan = Plan::new(config, ctx)?;
        ctx.debug(&format!(
            "step `{step_id}`: reading `{}`",
            display(&plan.source.path)
        ));
        let modified = Modified::of(config, &plan.source.path)?;
        let mut stream = plan.stream(ctx.clone())?;
        if let Some(m) = modified {
            if m.unchanged {
                ctx.info(&format!(
                    "`{}` was not modified since the last successful run: no rows to read",
                    display(&stream.path_buf)
                ));
            }
            stream = stream.with_modified(m)?;
        }
        let mut out = Streams::new();
        out.insert("df".to_string(), Box::new(stream));
        Ok(out)
    }

    /// With a directory: every CSV file under it, as tables with columns, types, a row-count estimate and
    /// sample rows (see `discover.rs`). With a file: that file alone.
    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::discover::discover(config, ctx)
    }

    /// A filesystem connection works when its `base_dir` exists, is a directory and is writable.
    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        doctor_base_dir(config, ctx)
    }
}

/// The connection check shared by the CSV components: codes `not_found`, `not_a_directory`, `not_writable`.
pub(crate) fn doctor_base_dir(config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let started = std::time::Instant::now();
    let base = config
        .get("base_dir")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            ctx.connection().and_then(|c| {
                c.get("base_dir")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        })
        .unwrap_or_else(|| ".".to_string());
    let path = PathBuf::from(&base);
    let meta = std::fs::metadata(&path).map_err(|e| {
        PluginError::new(
            ErrorKind::Io,
            "not_found",
            format!("base_dir `{base}` cannot be accessed: {e}"),
        )
        .with_help("create the directory, or fix `base_dir` in the connection")
    })?;
    if !meta.is_dir() {
        return Err(PluginError::new(
            ErrorKind::Config,
            "not_a_directory",
            format!("base_dir `{base}` is not a directory"),
        ));
    }
    let probe = path.join(format!(".osiris-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        PluginError::new(
            ErrorKind::Io,
            "not_writable",
            format!("base_dir `{base}` is not writable: {e}"),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(json!({ "ok": true, "latency_ms": started.elapsed().as_millis() as u64, "base_dir": base }))
}

/// The `dtype` name of an Arrow type (what discovery reports as a CSV column's `source_type`).
pub(crate) fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int64 => "int64".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 => "utf8".into(),
        DataType::Boolean => "bool".into(),
        DataType::Date32 => "date32".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        other => other.to_string(),
    }
}

fn parse_dtype(column: &str, name: &str) -> Result<DataType, PluginError> {
    Ok(match name {
        "int64" => DataType::Int64,
        "float64" => DataType::Float64,
        "utf8" => DataType::Utf8,
        "bool" => DataType::Boolean,
        "date32" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => {
            return Err(
                PluginError::config(format!("`dtype.{column}`: unknown type `{other}`"))
                    .with_help("use one of int64, float64, utf8, bool, date32, timestamp"),
            );
        }
    })
}

/// The parser's null regex: the scanner has already rewritten every null field (`null_values`, quoting,
/// `allow_quoted_nulls`) to the mark, so nothing else is a null.
fn null_regex() -> Result<regex::Regex, PluginError> {
    regex::Regex::new(&format!("^{}$", regex::escape(NULL_MARK)))
        .map_err(|e| PluginError::internal(format!("null pattern: {e}")))
}

/// The resolved reading plan: source, CSV format, full schema (with overrides) and projection.
pub(crate) struct Plan {
    source: Source,
    format: Format,
    /// Schema of the file (all columns, overrides applied).
    file_schema: SchemaRef,
    /// Schema of the output (after `columns`).
    pub(crate) schema: SchemaRef,
    projection: Option<Vec<usize>>,
    pub(crate) limit: Option<u64>,
    pub(crate) batch_size: usize,
}

impl Plan {
    fn new(config: &Value, ctx: &Context) -> Result<Plan, PluginError> {
        Plan::infer(config, ctx).map(|(plan, _)| plan)
    }

    /// The plan, and what inferring its schema read (discovery reports on that sample).
    pub(crate) fn infer(config: &Value, ctx: &Context) -> Result<(Plan, Inference), PluginError> {
        let cfg: Config = decode(NAME, config)?;
        let path = resolve_path(&cfg.path, cfg.base_dir.as_deref(), ctx);
        let gzip = match cfg.compression.as_str() {
            "gzip" => true,
            "none" => false,
            "infer" => path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gz")),
            other => {
                return Err(
                    PluginError::config(format!("`compression`: unknown value `{other}`"))
                        .with_help("use one of infer, none, gzip"),
                );
            }
        };
        let latin1 = match cfg.encoding.to_lowercase().as_str() {
            "utf-8" | "utf8" => false,
            "latin-1" | "latin1" | "iso-8859-1" => true,
            other => {
                return Err(PluginError::config(format!(
                    "`encoding`: unsupported encoding `{other}`"
                ))
                .with_help("use utf-8 or latin-1"));
            }
        };
        if cfg.batch_size == 0 {
            return Err(PluginError::config("`batch_size` must be at least 1"));
        }
        if cfg.max_bad_rows.is_some() && !cfg.ignore_errors {
            return Err(PluginError::config(
                "`max_bad_rows` only applies with `ignore_errors: true`",
            )
            .with_help("add `ignore_errors: true`, or remove `max_bad_rows`"));
        }
        let delimiter = single_byte("delimiter", &cfg.delimiter)?;
        let quote = single_byte("quotechar", &cfg.quotechar)?;
        let scan = ScanOptions {
            delimiter,
            quote,
            null_values: cfg
                .null_values
                .iter()
                .map(|v| v.as_bytes().to_vec())
                .collect(),
            allow_quoted_nulls: cfg.allow_quoted_nulls,
            header: cfg.header,
            ignore_errors: cfg.ignore_errors,
            max_bad_rows: cfg.max_bad_rows,
            lines_before: cfg.skip_rows,
            path: display(&path),
            text_columns: None,
        };
        let source = Source {
            path,
            gzip,
            latin1,
            skip_rows: cfg.skip_rows,
            scan,
        };
        let format = Format::default()
            .with_header(cfg.header)
            .with_delimiter(delimiter)
            .with_quote(quote)
            .with_null_regex(null_regex()?);

        let opened = source.open()?;
        let (parsed, parsed_bytes) = Counting::new(opened.reader);
        let (inferred, records) = format
            .infer_schema(parsed, Some(INFER_SAMPLE_ROWS))
            .map_err(|e| {
                parse_error(&opened.report, || PluginError::new(
                    ErrorKind::Data,
                    "CSV-PARSE",
                    format!(
                        "cannot infer the columns of `{}` from its first {INFER_SAMPLE_ROWS} rows: {e}",
                        display(&source.path)
                    ),
                )
                .with_help("check `delimiter`, `quotechar`, `encoding` and `compression` against the file; every row needs as many fields as the header"))
            })?;
        let inference = Inference {
            records,
            parsed_bytes: parsed_bytes.load(Ordering::Relaxed),
            file_bytes: opened.file_bytes.load(Ordering::Relaxed),
            plain_bytes: opened.plain_bytes.load(Ordering::Relaxed),
        };
        if inferred.fields().is_empty() {
            return Err(PluginError::new(
                ErrorKind::Data,
                "CSV-EMPTY",
                format!(
                    "`{}` is empty: no header row to take column names from",
                    display(&source.path)
                ),
            ));
        }
        let names: Vec<&str> = inferred
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        for column in cfg.dtype.keys() {
            if !names.contains(&column.as_str()) {
                return Err(PluginError::config(format!(
                    "`dtype` names column `{column}`, which is not in `{}`",
                    display(&source.path)
                ))
                .with_help(format!("columns in the file: {}", names.join(", "))));
            }
        }
        let mut fields = Vec::with_capacity(inferred.fields().len());
        for f in inferred.fields() {
            let data_type = match cfg.dtype.get(f.name()) {
                Some(t) => parse_dtype(f.name(), t)?,
                None => f.data_type().clone(),
            };
            fields.push(Field::new(f.name(), data_type, true));
        }
        let file_schema = Arc::new(Schema::new(fields));
        // The run's scan knows the types now: an empty field of a column that is not text is a null.
        let mut source = source;
        source.scan.text_columns = Some(
            file_schema
                .fields()
                .iter()
                .map(|f| {
                    matches!(
                        f.data_type(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    )
                })
                .collect(),
        );
        let (schema, projection) = match &cfg.columns {
            None => (file_schema.clone(), None),
            Some(columns) => {
                let mut idx = Vec::with_capacity(columns.len());
                for c in columns {
                    match names.iter().position(|n| n == c) {
                        Some(i) => idx.push(i),
                        None => {
                            return Err(PluginError::config(format!(
                                "`columns` lists `{c}`, which is not in `{}`",
                                display(&source.path)
                            ))
                            .with_help(format!("columns in the file: {}", names.join(", "))));
                        }
                    }
                }
                // Columns are kept in file order.
                idx.sort_unstable();
                let projected = file_schema
                    .project(&idx)
                    .map_err(|e| PluginError::internal(e.to_string()))?;
                (Arc::new(projected), Some(idx))
            }
        };
        let plan = Plan {
            source,
            format,
            file_schema,
            schema,
            projection,
            limit: cfg.limit,
            batch_size: cfg.batch_size,
        };
        Ok((plan, inference))
    }

    pub(crate) fn stream(self, ctx: Context) -> Result<CsvStream, PluginError> {
        let Opened {
            reader,
            file_bytes: bytes,
            report,
            ..
        } = self.source.open()?;
        let mut builder = arrow_csv::ReaderBuilder::new(self.file_schema.clone())
            .with_format(self.format)
            .with_batch_size(self.batch_size);
        if let Some(p) = self.projection {
            builder = builder.with_projection(p);
        }
        let reader = builder
            .build_buffered(reader)
            .map_err(|e| PluginError::internal(e.to_string()))?;
        Ok(CsvStream {
            reader,
            schema: self.schema,
            remaining: self.limit,
            rows: 0,
            bytes,
            ctx,
            path: display(&self.source.path),
            path_buf: self.source.path.clone(),
            done: false,
            report,
            modified: None,
        })
    }
}

/// The output stream: parses on demand, applies `limit`, reports metrics when it ends.
pub(crate) struct CsvStream {
    reader: arrow_csv::reader::BufReader<Box<dyn BufRead + Send>>,
    schema: SchemaRef,
    remaining: Option<u64>,
    rows: u64,
    bytes: Arc<AtomicU64>,
    ctx: Context,
    path: String,
    path_buf: PathBuf,
    done: bool,
    report: SharedReport,
    /// `incremental:`: the file's modification time (microseconds since the epoch) added as a column.
    modified: Option<i64>,
}

/// `incremental: {cursor: NAME}` on a CSV file: a column NAME holding the file's modification time (UTC) is
/// added to every row, so the host keeps the greatest one as the mark; a file not modified since the mark is
/// not read again.
pub(crate) struct Modified {
    column: String,
    micros: i64,
    pub(crate) unchanged: bool,
}

impl Modified {
    fn of(config: &Value, path: &std::path::Path) -> Result<Option<Modified>, PluginError> {
        let Some(column) = config
            .pointer("/incremental/cursor")
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let meta = std::fs::metadata(path).map_err(|e| {
            PluginError::new(
                ErrorKind::Config,
                "CSV-OPEN",
                format!("CSV file `{}`: {e}", display(path)),
            )
        })?;
        let micros = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_micros() as i64)
            .ok_or_else(|| PluginError::internal("the file system gives no modification time"))?;
        // The mark arrives as the host keeps a UTC timestamp: `YYYY-MM-DD HH:MM:SS.ffffff+00:00`, which
        // compares as text in time order.
        let text = arrow_array::temporal_conversions::timestamp_us_to_datetime(micros)
            .map(|t| format!("{}+00:00", t.format("%Y-%m-%d %H:%M:%S%.6f")))
            .unwrap_or_default();
        let window = config.pointer("/_window/where/0");
        let unchanged = match (
            window
                .and_then(|w| w.pointer("/values/0"))
                .and_then(Value::as_str),
            window.and_then(|w| w.get("op")).and_then(Value::as_str),
        ) {
            (Some(mark), Some(">=")) => text.as_str() < mark,
            (Some(mark), _) => text.as_str() <= mark,
            (None, _) => false,
        };
        Ok(Some(Modified {
            column: column.to_string(),
            micros,
            unchanged,
        }))
    }
}

impl CsvStream {
    /// Adds the modification-time column; an unchanged file yields no rows.
    fn with_modified(mut self, m: Modified) -> Result<CsvStream, PluginError> {
        if self.schema.field_with_name(&m.column).is_ok() {
            return Err(PluginError::config(format!(
                "`incremental.cursor`: `{}` is already a column of `{}`",
                m.column, self.path
            ))
            .with_help("name the modification-time column something the file does not have, e.g. `_modified_at`"));
        }
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.push(Field::new(
            &m.column,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ));
        self.schema = Arc::new(Schema::new(fields));
        self.modified = Some(m.micros);
        if m.unchanged {
            self.remaining = Some(0);
        }
        Ok(self)
    }

    fn finish(&mut self) {
        self.done = true;
        self.ctx.metric("rows_read", self.rows as f64, Some("rows"));
        let (rejected, lines) = {
            let r = self.report.lock().unwrap_or_else(|p| p.into_inner());
            (r.rejected, r.rejected_lines.clone())
        };
        self.ctx
            .metric("rows_rejected", rejected as f64, Some("rows"));
        if rejected > 0 {
            let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
            let more = if rejected > lines.len() as u64 {
                ", ..."
            } else {
                ""
            };
            self.ctx.warn(&format!(
                "skipped {rejected} rows of `{}` with the wrong number of fields (`ignore_errors`): line {}{more}",
                self.path,
                lines.join(", ")
            ));
        }
        self.ctx.metric(
            "bytes_processed",
            self.bytes.load(Ordering::Relaxed) as f64,
            Some("bytes"),
        );
        self.ctx
            .debug(&format!("read {} rows from `{}`", self.rows, self.path));
    }
}

impl Iterator for CsvStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == Some(0) {
            self.finish();
            return None;
        }
        if self.ctx.is_cancelled() {
            self.done = true;
            return Some(Err(PluginError::cancelled().into_arrow()));
        }
        match self.reader.next() {
            None => {
                self.finish();
                None
            }
            Some(Err(e)) => {
                self.done = true;
                let path = &self.path;
                Some(Err(parse_error(&self.report, || {
                    PluginError::new(ErrorKind::Data, "CSV-PARSE", format!("`{path}`: {e}"))
                        .with_help(format!(
                            "column types are inferred from the first {INFER_SAMPLE_ROWS} rows; if a later value does not fit, set the column's type in `dtype` (e.g. `utf8`)"
                        ))
                })
                .into_arrow()))
            }
            Some(Ok(mut batch)) => {
                if let Some(rem) = self.remaining.as_mut() {
                    if (batch.num_rows() as u64) > *rem {
                        batch = batch.slice(0, *rem as usize);
                    }
                    *rem -= batch.num_rows() as u64;
                }
                self.rows += batch.num_rows() as u64;
                if let Some(micros) = self.modified {
                    let col = arrow_array::TimestampMicrosecondArray::from_value(
                        micros,
                        batch.num_rows(),
                    )
                    .with_timezone("UTC");
                    let mut cols = batch.columns().to_vec();
                    cols.push(Arc::new(col));
                    return Some(RecordBatch::try_new(self.schema.clone(), cols));
                }
                Some(Ok(batch))
            }
        }
    }
}

impl RecordBatchReader for CsvStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Transcodes ISO-8859-1 bytes to UTF-8 (every byte is one code point).
struct Latin1ToUtf8<R> {
    inner: R,
    raw: Vec<u8>,
    pending: Vec<u8>,
    pos: usize,
}

impl<R: Read> Latin1ToUtf8<R> {
    fn new(inner: R) -> Self {
        Latin1ToUtf8 {
            inner,
            raw: vec![0; 1 << 15],
            pending: Vec::with_capacity(1 << 16),
            pos: 0,
        }
    }
}

impl<R: Read> Read for Latin1ToUtf8<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.pending.len() {
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending.clear();
            self.pos = 0;
            for &b in &self.raw[..n] {
                if b < 0x80 {
                    self.pending.push(b);
                } else {
                    self.pending.push(0xC0 | (b >> 6));
                    self.pending.push(0x80 | (b & 0x3F));
                }
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) fn read_all(config: &Value, ctx: &Context) -> Result<Vec<RecordBatch>, String> {
    let mut out = CsvExtractor
        .run("t", config, Streams::new(), ctx)
        .map_err(|e| e.to_string())?;
    let stream = out.remove("df").expect("df output");
    stream
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}
