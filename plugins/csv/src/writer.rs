//! `filesystem.csv_writer`: writes its one input stream to a CSV file.
//!
//! Invariant: `path` only ever holds a complete file. Batches go to a temporary file in the target directory,
//! which is renamed over `path` once the input stream ended without error; on any error (including an error
//! raised by an upstream step while its stream is pulled) the temporary file is removed.

use crate::common::{Counting, decode, display, resolve_path, single_byte};
use arrow_array::{Array, RecordBatch, StringArray};
use arrow_csv::QuoteStyle;
use arrow_schema::DataType;
use flate2::Compression;
use flate2::write::GzEncoder;
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
use serde::Deserialize;
use serde_json::Value;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

pub const NAME: &str = "filesystem.csv_writer";

#[derive(Debug, Deserialize)]
struct Config {
    path: String,
    #[serde(default)]
    base_dir: Option<String>,
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "yes")]
    header: bool,
    #[serde(default = "default_quoting")]
    quoting: String,
    #[serde(default = "default_newline")]
    newline: String,
    #[serde(default = "yes")]
    create_dirs: bool,
    #[serde(default = "default_compression")]
    compression: String,
}

fn default_delimiter() -> String {
    ",".into()
}
fn yes() -> bool {
    true
}
fn default_quoting() -> String {
    "minimal".into()
}
fn default_newline() -> String {
    "lf".into()
}
fn default_compression() -> String {
    "none".into()
}

/// Removes the temporary file unless the write was committed.
struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

enum Sink {
    Plain(Counting<BufWriter<File>>),
    Gzip(GzEncoder<Counting<BufWriter<File>>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Finishes compression, flushes and syncs; returns the file.
    fn finish(self) -> std::io::Result<File> {
        let counting = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        let file = counting.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    }
}

pub struct CsvWriter;

impl Driver for CsvWriter {
    /// A filesystem connection works when its `base_dir` exists, is a directory and is writable.
    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        crate::extractor::doctor_base_dir(config, ctx)
    }

    fn run(
        &self,
        step_id: &str,
        config: &Value,
        mut inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let cfg: Config = decode(NAME, config)?;
        let input =
            match inputs.len() {
                1 => inputs.pop_first().map(|(_, s)| s).expect("one input"),
                0 => {
                    return Err(PluginError::config(format!(
                        "step `{step_id}` has no input to write"
                    ))
                    .with_help("list the step that produces the data in `needs`"));
                }
                _ => {
                    let names: Vec<String> = inputs.keys().cloned().collect();
                    match inputs.remove("df") {
                        Some(s) => s,
                        None => {
                            return Err(PluginError::config(format!(
                            "step `{step_id}` has {} inputs ({}); a CSV writer writes exactly one",
                            names.len(),
                            names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                        ))
                        .with_help("join the inputs in a duckdb.processor step first"));
                        }
                    }
                }
            };
        let delimiter = single_byte("delimiter", &cfg.delimiter)?;
        let quote_style = match cfg.quoting.as_str() {
            "minimal" => QuoteStyle::Necessary,
            "all" => QuoteStyle::Always,
            "nonnumeric" => QuoteStyle::NonNumeric,
            "none" => QuoteStyle::Never,
            other => {
                return Err(
                    PluginError::config(format!("`quoting`: unknown value `{other}`"))
                        .with_help("use one of minimal, all, nonnumeric, none"),
                );
            }
        };
        let terminator = match cfg.newline.as_str() {
            "lf" => arrow_csv::writer::Terminator::Any(b'\n'),
            "crlf" => arrow_csv::writer::Terminator::CRLF,
            other => {
                return Err(
                    PluginError::config(format!("`newline`: unknown value `{other}`"))
                        .with_help("use lf or crlf"),
                );
            }
        };
        let gzip = match cfg.compression.as_str() {
            "none" => false,
            "gzip" => true,
            other => {
                return Err(
                    PluginError::config(format!("`compression`: unknown value `{other}`"))
                        .with_help("use none or gzip"),
                );
            }
        };

        let target = resolve_path(&cfg.path, cfg.base_dir.as_deref(), ctx);
        let file_name = target
            .file_name()
            .ok_or_else(|| {
                PluginError::config(format!(
                    "`path` `{}` does not name a file",
                    display(&target)
                ))
            })?
            .to_string_lossy()
            .to_string();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            if cfg.create_dirs {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    PluginError::new(
                        ErrorKind::Io,
                        "CSV-WRITE",
                        format!("cannot create `{}`: {e}", display(&dir)),
                    )
                })?;
            } else {
                return Err(PluginError::new(
                    ErrorKind::Io,
                    "CSV-WRITE",
                    format!("directory `{}` does not exist", display(&dir)),
                )
                .with_help("create it, or set `create_dirs: true`"));
            }
        }

        let tmp_path = temp_path(&dir, &file_name);
        let file = File::create(&tmp_path).map_err(|e| {
            PluginError::new(
                ErrorKind::Io,
                "CSV-WRITE",
                format!("cannot create a file in `{}`: {e}", display(&dir)),
            )
        })?;
        let mut tmp = TempFile {
            path: tmp_path,
            committed: false,
        };
        let (counting, bytes) = Counting::new(BufWriter::with_capacity(1 << 16, file));
        let sink = if gzip {
            Sink::Gzip(GzEncoder::new(counting, Compression::default()))
        } else {
            Sink::Plain(counting)
        };
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_delimiter(delimiter)
            .with_header(cfg.header)
            .with_quote_style(quote_style)
            .with_line_terminator(terminator)
            .build(sink);

        let schema = input.schema();
        let mut rows: u64 = 0;
        let mut wrote_any = false;
        let io_err = |e: &dyn std::fmt::Display| {
            PluginError::new(
                ErrorKind::Io,
                "CSV-WRITE",
                format!("writing `{}` failed: {e}", display(&target)),
            )
        };
        for batch in input {
            ctx.check_cancelled()?;
            let batch = batch.map_err(|e| {
                PluginError::new(
                    ErrorKind::Data,
                    "UPSTREAM",
                    format!("input stream failed: {e}"),
                )
                .with_help(format!("`{}` was left untouched", display(&target)))
            })?;
            if matches!(quote_style, QuoteStyle::Never) {
                check_unquotable(&batch, delimiter, rows)?;
            }
            writer.write(&batch).map_err(|e| io_err(&e))?;
            wrote_any = true;
            rows += batch.num_rows() as u64;
        }
        if !wrote_any {
            // An empty input still produces a file with the header row.
            writer
                .write(&RecordBatch::new_empty(schema))
                .map_err(|e| io_err(&e))?;
        }
        let sink = writer.into_inner();
        sink.finish().map_err(|e| io_err(&e))?;
        std::fs::rename(&tmp.path, &target).map_err(|e| io_err(&e))?;
        tmp.committed = true;

        ctx.metric("rows_written", rows as f64, Some("rows"));
        ctx.metric(
            "bytes_processed",
            bytes.load(Ordering::Relaxed) as f64,
            Some("bytes"),
        );
        ctx.info(&format!("wrote {rows} rows to `{}`", display(&target)));
        Ok(Streams::new())
    }
}

fn temp_path(dir: &Path, file_name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!(".{file_name}.{}-{nanos}.tmp", std::process::id()))
}

/// `quoting: none` must not produce a file that cannot be read back: fail on a field that needs quotes.
fn check_unquotable(
    batch: &RecordBatch,
    delimiter: u8,
    rows_before: u64,
) -> Result<(), PluginError> {
    let schema = batch.schema();
    for (i, col) in batch.columns().iter().enumerate() {
        if !matches!(col.data_type(), DataType::Utf8) {
            continue;
        }
        let Some(strings) = col.as_any().downcast_ref::<StringArray>() else {
            continue;
        };
        for row in 0..strings.len() {
            if strings.is_null(row) {
                continue;
            }
            let v = strings.value(row).as_bytes();
            if v.iter()
                .any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
            {
                return Err(PluginError::data(format!(
                    "row {} column `{}` contains a delimiter, quote or line break, which `quoting: none` cannot write",
                    rows_before + row as u64 + 1,
                    schema.field(i).name()
                ))
                .with_help("use `quoting: minimal`"));
            }
        }
    }
    Ok(())
}
