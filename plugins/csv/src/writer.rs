//! `filesystem.csv_writer`: writes its one input stream to a CSV file.
//!
//! Invariant: `path` only ever holds a complete file. Batches go to a temporary file in the target directory,
//! which is renamed over `path` once the input stream ended without error; on any error (including an error
//! raised by an upstream step while its stream is pulled) the temporary file is removed.

//!
//! Nulls and empty strings stay apart (DuckDB's `COPY ... TO` convention): a null is written as `nullstr`
//! (default: nothing) without quotes, and a value that would read back as `nullstr` (with the default, the
//! empty string) is always quoted, so `1,"",` holds an empty string and a null.

use crate::common::{Counting, decode, display, resolve_path, single_byte};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::Schema;
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
    #[serde(default)]
    nullstr: String,
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
        let quoting = match cfg.quoting.as_str() {
            "minimal" => Quoting::Minimal,
            "all" => Quoting::All,
            "nonnumeric" => Quoting::NonNumeric,
            "none" => Quoting::Never,
            other => {
                return Err(
                    PluginError::config(format!("`quoting`: unknown value `{other}`"))
                        .with_help("use one of minimal, all, nonnumeric, none"),
                );
            }
        };
        let terminator: &'static [u8] = match cfg.newline.as_str() {
            "lf" => b"\n",
            "crlf" => b"\r\n",
            other => {
                return Err(
                    PluginError::config(format!("`newline`: unknown value `{other}`"))
                        .with_help("use lf or crlf"),
                );
            }
        };
        if cfg
            .nullstr
            .bytes()
            .any(|b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
        {
            return Err(PluginError::config(format!(
                "`nullstr` {:?} contains the delimiter, a quote or a line break",
                cfg.nullstr
            ))
            .with_help("use e.g. `nullstr: \"\\\\N\"` or `nullstr: NULL`, or leave it out to write nulls as empty fields"));
        }
        let encoder = Encoder::new(
            delimiter,
            quoting,
            terminator,
            cfg.nullstr.clone().into_bytes(),
        );
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
        let mut sink = if gzip {
            Sink::Gzip(GzEncoder::new(counting, Compression::default()))
        } else {
            Sink::Plain(counting)
        };

        let schema = input.schema();
        let mut rows: u64 = 0;
        let io_err = |e: &dyn std::fmt::Display| {
            PluginError::new(
                ErrorKind::Io,
                "CSV-WRITE",
                format!("writing `{}` failed: {e}", display(&target)),
            )
        };
        let mut out = Vec::with_capacity(1 << 16);
        if cfg.header {
            encoder.header(&schema, &mut out)?;
        }
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
            encoder.batch(&batch, rows, &mut out, |chunk: &mut Vec<u8>| {
                sink.write_all(chunk).map_err(|e| io_err(&e))?;
                chunk.clear();
                Ok(())
            })?;
            rows += batch.num_rows() as u64;
        }
        sink.write_all(&out).map_err(|e| io_err(&e))?;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// Only fields that need it: a delimiter, quote or line break inside, or a value equal to `nullstr`.
    Minimal,
    /// Every value (nulls stay unquoted, so they are not read back as strings).
    All,
    /// Every value that does not parse as a number, and what `Minimal` quotes.
    NonNumeric,
    /// Never; a value that would need quotes is an error (the file could not be read back).
    Never,
}

/// Turns batches into CSV bytes.
struct Encoder {
    /// Bytes that make a value need quotes: the delimiter, the quote, CR and LF.
    special: [bool; 256],
    delimiter: u8,
    quoting: Quoting,
    terminator: &'static [u8],
    nullstr: Vec<u8>,
}

/// Rows are encoded into a buffer that is handed to the sink whenever it holds this much.
const FLUSH_BYTES: usize = 1 << 16;

impl Encoder {
    fn new(delimiter: u8, quoting: Quoting, terminator: &'static [u8], nullstr: Vec<u8>) -> Self {
        let mut special = [false; 256];
        for b in [delimiter, b'"', b'\n', b'\r'] {
            special[b as usize] = true;
        }
        Encoder {
            special,
            delimiter,
            quoting,
            terminator,
            nullstr,
        }
    }

    /// Appends one non-null value; `Err` holds why `quoting: none` cannot write it.
    fn value(&self, v: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        let special = v.iter().any(|&b| self.special[b as usize]);
        // A value that reads back as a null must be quoted: with the default `nullstr`, every empty string.
        let looks_null = v == self.nullstr.as_slice();
        let quote = match self.quoting {
            Quoting::All => true,
            Quoting::Minimal => special || looks_null,
            Quoting::NonNumeric => special || looks_null || !is_numeric(v),
            Quoting::Never => {
                if special {
                    return Err("contains a delimiter, quote or line break");
                }
                if looks_null {
                    return Err("equals `nullstr` (it would be read back as a null)");
                }
                false
            }
        };
        if quote {
            out.push(b'"');
            for &b in v {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(v);
        }
        Ok(())
    }

    fn header(&self, schema: &Schema, out: &mut Vec<u8>) -> Result<(), PluginError> {
        for (i, f) in schema.fields().iter().enumerate() {
            if i > 0 {
                out.push(self.delimiter);
            }
            self.value(f.name().as_bytes(), out).map_err(|why| {
                PluginError::data(format!(
                    "column name `{}` {why}, which `quoting: none` cannot write",
                    f.name()
                ))
                .with_help("use `quoting: minimal`, or rename the column upstream")
            })?;
        }
        out.extend_from_slice(self.terminator);
        Ok(())
    }

    /// Appends the rows of `batch`, handing `out` to `flush` whenever it is large.
    fn batch(
        &self,
        batch: &RecordBatch,
        rows_before: u64,
        out: &mut Vec<u8>,
        mut flush: impl FnMut(&mut Vec<u8>) -> Result<(), PluginError>,
    ) -> Result<(), PluginError> {
        let schema = batch.schema();
        let options = FormatOptions::default().with_null("");
        let mut formatters = Vec::with_capacity(batch.num_columns());
        let mut nulls = Vec::with_capacity(batch.num_columns());
        for (col, field) in batch.columns().iter().zip(schema.fields()) {
            if col.data_type().is_nested() {
                return Err(PluginError::data(format!(
                    "column `{}` has the nested type {}, which CSV cannot hold",
                    field.name(),
                    col.data_type()
                ))
                .with_help(
                    "flatten or cast it to text upstream, e.g. in a duckdb.processor step",
                ));
            }
            formatters.push(
                ArrayFormatter::try_new(col.as_ref(), &options).map_err(|e| {
                    PluginError::data(format!(
                        "column `{}` cannot be written as CSV: {e}",
                        field.name()
                    ))
                })?,
            );
            nulls.push(col.logical_nulls());
        }
        let mut text = String::new();
        for row in 0..batch.num_rows() {
            for (i, formatter) in formatters.iter().enumerate() {
                if i > 0 {
                    out.push(self.delimiter);
                }
                if nulls[i].as_ref().is_some_and(|n| n.is_null(row)) {
                    out.extend_from_slice(&self.nullstr);
                    continue;
                }
                text.clear();
                formatter.value(row).write(&mut text).map_err(|e| {
                    PluginError::data(format!(
                        "row {} column `{}` cannot be formatted: {e}",
                        rows_before + row as u64 + 1,
                        schema.field(i).name()
                    ))
                })?;
                self.value(text.as_bytes(), out).map_err(|why| {
                    PluginError::data(format!(
                        "row {} column `{}` {why}, which `quoting: none` cannot write",
                        rows_before + row as u64 + 1,
                        schema.field(i).name()
                    ))
                    .with_help("use `quoting: minimal`, or set `nullstr` to a marker no value equals, e.g. `\\N`")
                })?;
            }
            out.extend_from_slice(self.terminator);
            if out.len() >= FLUSH_BYTES {
                flush(out)?;
            }
        }
        Ok(())
    }
}

/// The check of `quoting: nonnumeric`: the value parses as a float or an integer.
fn is_numeric(v: &[u8]) -> bool {
    std::str::from_utf8(v).is_ok_and(|s| s.parse::<f64>().is_ok() || s.parse::<i128>().is_ok())
}
