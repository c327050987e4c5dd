//! The author-facing API: implement [`Driver`] for each component, export them with [`crate::export_ocp!`].
//!
//! CONTRACT (shared by plugins, the host runner and the test kit; change only with the whole team):
//! - `run` receives the step's config as JSON (already validated against the spec's `configSchema`, with the
//!   resolved connection's fields available through [`Context::connection`]) and named input streams, and returns
//!   named output streams. By convention an extractor or processor returns one output named `df`; a writer
//!   returns none.
//! - Output streams are pulled lazily by the host after `run` returns: an extractor should return a reader that
//!   fetches rows as it is pulled, not materialise everything first. A writer consumes its inputs inside `run`.
//! - Errors are plain data ([`PluginError`]): kind, code, message, help. Messages must never contain a secret
//!   value; the host also masks known secret values as a second line of defence.

use arrow_array::RecordBatchReader;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stream of record batches crossing the plugin boundary (through the Arrow C Stream Interface).
pub type BatchStream = Box<dyn RecordBatchReader + Send>;

/// Named streams. Inputs arrive keyed `df_<upstream step>` (one stream per upstream step: a stream can be read
/// only once, so it is never handed over under two names); a step with exactly one input may call it `df`, which
/// [`take_input`] resolves. Outputs are keyed `df` by convention.
pub type Streams = BTreeMap<String, BatchStream>;

/// Takes the input called `name` out of `inputs`. `df` also names the sole input of a step with exactly one
/// upstream, whatever its `df_<step>` key.
pub fn take_input(inputs: &mut Streams, name: &str) -> Option<BatchStream> {
    if let Some(stream) = inputs.remove(name) {
        return Some(stream);
    }
    if name == "df" && inputs.len() == 1 {
        let key = inputs.keys().next().cloned()?;
        return inputs.remove(&key);
    }
    None
}

/// Error categories that the host maps to exit codes and retry decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The step's config is wrong (exit 2/4; not retried).
    Config,
    /// The service could not be reached (refused, timeout, DNS): retry may help.
    Connection,
    /// Credentials were refused.
    Auth,
    /// The data does not fit (type mismatch, constraint violation).
    Data,
    /// Reading or writing files failed.
    Io,
    /// The step saw cancellation and stopped.
    Cancelled,
    /// The plugin panicked; the host marks it poisoned.
    Panic,
    /// The component does not implement this operation (e.g. discover).
    Unsupported,
    /// Anything else.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Connection => "connection",
            ErrorKind::Auth => "auth",
            ErrorKind::Data => "data",
            ErrorKind::Io => "io",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Panic => "panic",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn parse(s: &str) -> ErrorKind {
        match s {
            "config" => ErrorKind::Config,
            "connection" => ErrorKind::Connection,
            "auth" => ErrorKind::Auth,
            "data" => ErrorKind::Data,
            "io" => ErrorKind::Io,
            "cancelled" => ErrorKind::Cancelled,
            "panic" => ErrorKind::Panic,
            "unsupported" => ErrorKind::Unsupported,
            _ => ErrorKind::Internal,
        }
    }
}

/// An error as plain data, the same on both sides of the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    /// Stable, component-specific code, e.g. `MYSQL-CONNECT`.
    pub code: String,
    pub message: String,
    pub help: Option<String>,
}

impl PluginError {
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            code: code.into(),
            message: message.into(),
            help: None,
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, "CONFIG", message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, "IO", message)
    }
    pub fn data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Data, "DATA", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "INTERNAL", message)
    }
    /// The error a step returns once it saw cancellation.
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "CANCELLED", "the run was cancelled")
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}

/// Log levels forwarded to the host's `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// What the host offers a driver while it runs. Cheap to clone; usable from stream callbacks on any thread
/// for as long as the streams live.
#[derive(Clone)]
pub struct Context {
    pub(crate) inner: Arc<dyn ContextBackend>,
}

/// The host side of a [`Context`]. The SDK implements it over the ABI for loaded plugins; tests and the
/// test kit may implement it directly.
pub trait ContextBackend: Send + Sync {
    fn log(&self, level: Level, message: &str);
    fn metric(&self, name: &str, value: f64, unit: Option<&str>);
    fn is_cancelled(&self) -> bool;
    /// The resolved connection (fields of `@family.alias` from the connections file, secrets included), if the
    /// step names one.
    fn connection(&self) -> Option<Value>;
}

impl Context {
    pub fn new(backend: Arc<dyn ContextBackend>) -> Self {
        Context { inner: backend }
    }
    pub fn log(&self, level: Level, message: &str) {
        self.inner.log(level, message)
    }
    pub fn info(&self, message: &str) {
        self.log(Level::Info, message)
    }
    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message)
    }
    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message)
    }
    /// Emits a metric, e.g. `rows_read`, `rows_written`, `bytes_read`.
    pub fn metric(&self, name: &str, value: f64, unit: Option<&str>) {
        self.inner.metric(name, value, unit)
    }
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
    /// Returns `Err(Cancelled)` once the host asked the step to stop.
    pub fn check_cancelled(&self) -> Result<(), PluginError> {
        if self.is_cancelled() {
            Err(PluginError::cancelled())
        } else {
            Ok(())
        }
    }
    pub fn connection(&self) -> Option<Value> {
        self.inner.connection()
    }
}

/// One component's implementation. One driver instance may serve several steps, possibly concurrently.
pub trait Driver: Send + Sync + 'static {
    /// Runs one step: see the module docs for the contract.
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError>;

    /// Lists what the connection offers (tables, columns, types, keys, samples) as JSON.
    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        let _ = (config, ctx);
        Err(PluginError::new(
            ErrorKind::Unsupported,
            "UNSUPPORTED",
            "this component does not support discovery",
        ))
    }

    /// Checks that the connection works: `{"ok": true, "latency_ms": ..}` or an error whose code tells
    /// `refused`, `auth_failed`, `timeout`, `unknown_database` apart.
    fn doctor(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        let _ = (config, ctx);
        Err(PluginError::new(
            ErrorKind::Unsupported,
            "UNSUPPORTED",
            "this component has no connection check",
        ))
    }
}

/// A component a plugin offers: its embedded spec (the very `spec.yaml` file, via `include_str!`) and a factory.
pub struct Component {
    /// `family.role`; must equal `name:` in the spec.
    pub name: &'static str,
    pub spec_yaml: &'static str,
    pub driver: fn() -> Box<dyn Driver>,
}
