//! Shared by the extractor and the writer: config decoding, path resolution, byte counting.

use osiris_plugin_sdk::{Context, PluginError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Decodes the step config into `T`, turning serde's message into a config error that names the component.
pub fn decode<T: DeserializeOwned>(component: &str, config: &Value) -> Result<T, PluginError> {
    serde_json::from_value(config.clone())
        .map_err(|e| PluginError::config(format!("{component}: invalid config: {e}")))
}

/// A single-byte option (`delimiter`, `quotechar`): the spec allows one character; it must be ASCII here.
pub fn single_byte(field: &str, value: &str) -> Result<u8, PluginError> {
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii() => Ok(c as u8),
        _ => Err(PluginError::config(format!(
            "`{field}` must be one ASCII character, got {value:?}"
        ))
        .with_help(format!("use e.g. `{field}: \",\"` or `{field}: \"\\t\"`"))),
    }
}

/// Where a relative `path` is resolved: the step's own `base_dir`, else the connection's `base_dir`, else the
/// working directory.
pub fn resolve_path(path: &str, base_dir: Option<&str>, ctx: &Context) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let conn_base = ctx.connection().and_then(|c| {
        c.get("base_dir")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    match base_dir.map(str::to_string).or(conn_base) {
        Some(base) => Path::new(&base).join(p),
        None => p.to_path_buf(),
    }
}

/// Counts bytes passing through a reader or writer (for the `bytes_processed` metric).
pub struct Counting<T> {
    pub inner: T,
    pub count: Arc<AtomicU64>,
}

impl<T> Counting<T> {
    pub fn new(inner: T) -> (Self, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            Counting {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the bytes a `BufRead` consumer takes (`consume` and `read`), not the bytes its buffer holds.
pub struct ConsumeCounting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> ConsumeCounting<R> {
    pub fn new(inner: R) -> (Self, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            ConsumeCounting {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: BufRead> Read for ConsumeCounting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for ConsumeCounting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt);
        self.count.fetch_add(amt as u64, Ordering::Relaxed);
    }
}

pub fn display(p: &Path) -> String {
    p.display().to_string()
}
