//! Arrow streams across the boundary (Arrow C Stream Interface), on both sides.
//!
//! - [`export_stream`] turns a `RecordBatchReader` into a [`RawArrowStream`] through arrow-rs' own exporter, after
//!   wrapping the reader in a [`SafeReader`]: every call the consumer makes into the producer's code (`next`,
//!   dropping the reader) runs under [`guard`], so a panic becomes a stream error instead of unwinding through
//!   the `extern "C"` callbacks (which would abort the process). The schema is read once, guarded, at export.
//! - [`import_stream`] turns a [`RawArrowStream`] back into a reader ([`ImportedStream`]) that decodes errors.
//!
//! Errors inside a stream travel as text (`get_last_error`). The SDK encodes every error it produces as
//! `ocp-error:{json}` ([`PluginError`] as JSON plus `panicked`), so the other side recovers the kind, code and
//! help exactly, whatever arrow version either side uses.

use crate::abi::RawArrowStream;
use crate::driver::{BatchStream, ErrorKind, PluginError};
use crate::panic::{Panicked, guard};
use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi_and_data_type};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchOptions, RecordBatchReader, StructArray};
use arrow_schema::{ArrowError, DataType, Schema, SchemaRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prefix of an encoded error inside an Arrow stream error message.
const ERROR_MARKER: &str = "ocp-error:";

/// Error code of a caught panic.
pub const PANIC_CODE: &str = "OCP-PANIC";
/// Error code of a call refused because the plugin panicked before.
pub const POISONED_CODE: &str = "OCP-POISONED";
/// Error code of a call for a component the plugin does not offer.
pub const UNKNOWN_COMPONENT_CODE: &str = "OCP-UNKNOWN-COMPONENT";

/// The producer label of streams the host itself exports (a plugin's inputs).
#[cfg(feature = "host")]
pub(crate) const HOST_PRODUCER: &str = "";

fn panic_help(plugin: &str) -> String {
    format!(
        "this is a bug in plugin `{plugin}`: report it to its authors with this message; \
         osiris does not call this plugin again in this process"
    )
}

/// Builds the error for a caught panic. `what` says where, e.g. "while running step `s1` (`test.echo`)";
/// `plugin` is the plugin's label (empty for the host itself).
pub(crate) fn panic_error(plugin: &str, what: &str, panicked: &Panicked) -> PluginError {
    if plugin.is_empty() {
        return PluginError::new(
            ErrorKind::Panic,
            PANIC_CODE,
            format!("osiris panicked {what}: {panicked}"),
        )
        .with_help("this is a bug in osiris: please report it with this message");
    }
    PluginError::new(
        ErrorKind::Panic,
        PANIC_CODE,
        format!("plugin `{plugin}` panicked {what}: {panicked}"),
    )
    .with_help(panic_help(plugin))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct WireError {
    kind: String,
    code: String,
    message: String,
    help: Option<String>,
    #[serde(default)]
    panicked: bool,
}

/// Encodes an error for a stream's `get_last_error` (JSON never contains a NUL byte, which the C string needs).
fn encode(error: &PluginError, panicked: bool) -> String {
    let wire = WireError {
        kind: error.kind.as_str().to_string(),
        code: error.code.clone(),
        message: error.message.clone(),
        help: error.help.clone(),
        panicked,
    };
    format!(
        "{ERROR_MARKER}{}",
        serde_json::to_string(&wire).unwrap_or_default()
    )
}

/// Finds an encoded error in a stream error message (arrow prefixes its own text to it).
fn decode(text: &str) -> Option<(PluginError, bool)> {
    let start = text.find(ERROR_MARKER)? + ERROR_MARKER.len();
    let mut de = serde_json::Deserializer::from_str(&text[start..]);
    let wire: WireError = serde::Deserialize::deserialize(&mut de).ok()?;
    let error = PluginError {
        kind: ErrorKind::parse(&wire.kind),
        code: wire.code,
        message: wire.message,
        help: wire.help,
    };
    Some((error, wire.panicked))
}

/// An encoded error as an `ArrowError` (its `Display` is the encoded text).
#[derive(Debug)]
struct EncodedError(String);

impl std::fmt::Display for EncodedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodedError {}

impl PluginError {
    /// The error behind an `ArrowError` read from a stream: the original [`PluginError`] when a driver (or the
    /// SDK) raised one, otherwise a `data`/`io`/`internal` error carrying arrow's message.
    pub fn from_arrow(error: &ArrowError) -> PluginError {
        if let ArrowError::ExternalError(inner) = error
            && let Some(plugin_error) = inner.downcast_ref::<PluginError>()
        {
            return plugin_error.clone();
        }
        let text = error.to_string();
        if let Some((plugin_error, _)) = decode(&text) {
            return plugin_error;
        }
        let kind = match error {
            ArrowError::IoError(..) => ErrorKind::Io,
            ArrowError::ParseError(_)
            | ArrowError::CsvError(_)
            | ArrowError::JsonError(_)
            | ArrowError::CastError(_)
            | ArrowError::InvalidArgumentError(_)
            | ArrowError::SchemaError(_)
            | ArrowError::ComputeError(_) => ErrorKind::Data,
            _ => ErrorKind::Internal,
        };
        PluginError::new(kind, "ARROW", text)
    }

    /// Wraps this error for returning it from a `RecordBatchReader` (the host gets it back intact).
    pub fn into_arrow(self) -> ArrowError {
        ArrowError::ExternalError(Box::new(self))
    }
}

/// Moves an arrow-rs stream struct into the ABI mirror (same C layout in every arrow version).
fn to_raw(stream: FFI_ArrowArrayStream) -> RawArrowStream {
    // SAFETY: both are `#[repr(C)]` structs of the five words of `struct ArrowArrayStream` (a unit test checks the
    // sizes); transmute moves the value without running `Drop`, so ownership moves with it.
    unsafe { std::mem::transmute::<FFI_ArrowArrayStream, RawArrowStream>(stream) }
}

fn from_raw(stream: RawArrowStream) -> FFI_ArrowArrayStream {
    // SAFETY: see `to_raw`.
    unsafe { std::mem::transmute::<RawArrowStream, FFI_ArrowArrayStream>(stream) }
}

/// A reader whose every call into the wrapped reader is guarded against panics.
pub(crate) struct SafeReader {
    inner: Option<BatchStream>,
    schema: SchemaRef,
    plugin: Arc<str>,
    what: Arc<str>,
}

impl Iterator for SafeReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let inner = self.inner.as_mut()?;
        match guard(|| inner.next()) {
            Ok(None) => None,
            Ok(Some(Ok(batch))) => Some(Ok(batch)),
            Ok(Some(Err(error))) => Some(Err(ArrowError::ExternalError(Box::new(EncodedError(
                encode(&PluginError::from_arrow(&error), false),
            ))))),
            Err(panicked) => {
                // A reader that panicked is in an unknown state: stop pulling it (dropping it is still guarded).
                self.drop_inner();
                let error = panic_error(&self.plugin, &self.what, &panicked);
                Some(Err(ArrowError::ExternalError(Box::new(EncodedError(
                    encode(&error, true),
                )))))
            }
        }
    }
}

impl RecordBatchReader for SafeReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl SafeReader {
    fn drop_inner(&mut self) {
        if let Some(inner) = self.inner.take() {
            // Nothing to report a panic in `Drop` to: the stream is being released.
            let _ = guard(move || drop(inner));
        }
    }
}

impl Drop for SafeReader {
    fn drop(&mut self) {
        self.drop_inner();
    }
}

/// Exports a reader as a C stream owned by the receiver. `plugin` and `what` name the producer in panic messages
/// (`"plugin `{plugin}` panicked {what}: .."`).
pub(crate) fn export_stream(
    reader: BatchStream,
    plugin: &str,
    what: &str,
) -> Result<RawArrowStream, PluginError> {
    let schema = match guard(|| reader.schema()) {
        Ok(schema) => schema,
        Err(panicked) => {
            let _ = guard(move || drop(reader));
            return Err(panic_error(plugin, what, &panicked));
        }
    };
    let safe = SafeReader {
        inner: Some(reader),
        schema,
        plugin: plugin.into(),
        what: what.into(),
    };
    Ok(to_raw(FFI_ArrowArrayStream::new(Box::new(safe))))
}

/// Marks a plugin poisoned; shared by a host `Module` and every stream it returned.
#[derive(Clone, Default)]
pub(crate) struct Poison {
    flag: Arc<AtomicBool>,
}

impl Poison {
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    pub fn set(&self) {
        self.flag.store(true, Ordering::SeqCst)
    }
}

/// Error code of a batch that fails validation on import (offsets, lengths, UTF-8, null counts, ...).
pub const INVALID_BATCH_CODE: &str = "OCP-INVALID-BATCH";
/// Error code of a stream that reported an error but gave no message (`get_last_error` returned NULL), or that
/// breaks the C Stream Interface in another way (missing callbacks).
pub const STREAM_ERROR_CODE: &str = "OCP-STREAM-ERROR";

/// Every code the SDK raises at the plugin boundary (the `OCP-*` rows of docs/errors.md; the host checks that
/// its table of codes lists the same).
pub const CODES: [&str; 5] = [
    INVALID_BATCH_CODE,
    STREAM_ERROR_CODE,
    PANIC_CODE,
    POISONED_CODE,
    UNKNOWN_COMPONENT_CODE,
];

/// A stream received over the C Stream Interface. Errors come back as `ArrowError::ExternalError(PluginError)`
/// when the producer encoded one (always, for SDK producers). When `poison` is given (host side, a plugin's
/// output), a panic in the producer marks the plugin poisoned and later pulls are refused without calling it.
///
/// The C stream is driven here, not by arrow-rs' `ArrowArrayStreamReader`, so that a producer breaking the
/// interface (a NULL error message, a missing callback, an array arrow cannot import) becomes an error of this
/// stream instead of a panic of the consumer, and so that each batch can be validated before it is used.
pub(crate) struct ImportedStream {
    stream: FFI_ArrowArrayStream,
    schema: SchemaRef,
    poison: Option<(Poison, Arc<str>)>,
    /// When set (host side, a plugin that is not linked in), every batch is fully validated on import; the
    /// plugin label and output name are named in the error.
    validate: Option<(Arc<str>, Arc<str>)>,
    finished: bool,
}

impl ImportedStream {
    #[cfg(feature = "host")]
    pub fn with_poison(mut self, poison: Poison, plugin: &str) -> Self {
        self.poison = Some((poison, plugin.into()));
        self
    }

    /// Validates every batch fully before handing it out (see [`validate_batch`]): the producer is a plugin whose
    /// data the consumer must not trust. `plugin` and `output` name it in the error.
    #[cfg(feature = "host")]
    pub fn with_validation(mut self, plugin: &str, output: &str) -> Self {
        self.validate = Some((plugin.into(), output.into()));
        self
    }

    /// Who produced this stream, for messages: "plugin `X`" on the host side, "the stream's producer" otherwise.
    fn producer(&self) -> String {
        match (&self.validate, &self.poison) {
            (Some((plugin, _)), _) | (None, Some((_, plugin))) => format!("plugin `{plugin}`"),
            (None, None) => "the stream's producer".to_string(),
        }
    }

    /// The producer's `get_last_error` text; `None` when it has no such callback or returns NULL.
    fn last_error(&mut self) -> Option<String> {
        last_error(&mut self.stream)
    }

    /// A failed `get_next`: the decoded error, or one with [`STREAM_ERROR_CODE`] when there is no message.
    fn stream_error(&mut self, code: i32) -> ArrowError {
        let Some(text) = self.last_error() else {
            return PluginError::new(
                ErrorKind::Internal,
                STREAM_ERROR_CODE,
                format!(
                    "{} failed to produce the next batch (C stream error {}) and gave no error message",
                    self.producer(),
                    errno_name(code)
                ),
            )
            .with_help(
                "this is a bug in the producer of the stream (its `get_last_error` returned NULL): report it to \
                 its authors",
            )
            .into_arrow();
        };
        match decode(&text) {
            Some((plugin_error, panicked)) => {
                if panicked && let Some((poison, _)) = &self.poison {
                    poison.set();
                }
                plugin_error.into_arrow()
            }
            None => ArrowError::CDataInterface(text),
        }
    }

    /// Imports the array `get_next` produced as a batch of this stream's schema (and validates it when asked).
    fn import(&self, array: FFI_ArrowArray) -> Result<RecordBatch, ArrowError> {
        let fields = self.schema.fields().clone();
        let validate = self.validate.is_some();
        let imported = guard(move || -> Result<RecordBatch, ArrowError> {
            // SAFETY: `array` was just written by the producer's `get_next`, which the C Data Interface makes
            // responsible for its validity; with `validate` set, the import is checked below before use.
            let data = unsafe { from_ffi_and_data_type(array, DataType::Struct(fields.clone())) }?;
            if validate {
                // What arrow-rs' `ArrayData::validate_full` checks, column by column so that the error names
                // the column (see `docs/plugins.md`, "The data boundary").
                data.validate()?;
                for (child, field) in data.child_data().iter().zip(fields.iter()) {
                    child.validate_full().map_err(|e| {
                        ArrowError::InvalidArgumentError(format!(
                            "column `{}` ({}): {e}",
                            field.name(),
                            field.data_type()
                        ))
                    })?;
                }
            }
            let rows = data.len();
            let columns = StructArray::from(data).into_parts().1;
            RecordBatch::try_new_with_options(
                self.schema.clone(),
                columns,
                &RecordBatchOptions::new().with_row_count(Some(rows)),
            )
        });
        let invalid = |why: String| {
            let (plugin, output) = match &self.validate {
                Some((plugin, output)) => (format!("plugin `{plugin}`"), format!(" `{output}`")),
                None => (self.producer(), String::new()),
            };
            PluginError::new(
                ErrorKind::Data,
                INVALID_BATCH_CODE,
                format!("{plugin} produced an invalid batch on its output{output}: {why}"),
            )
            .with_help(
                "the batch breaks the Arrow format and was not used; this is a bug in the plugin: report it to its \
                 authors with this message",
            )
            .into_arrow()
        };
        match imported {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(error)) => Err(invalid(error.to_string())),
            Err(panicked) => Err(invalid(format!(
                "it cannot be imported ({})",
                panicked.message
            ))),
        }
    }
}

/// `get_last_error` of a C stream, NULL-safe.
fn last_error(stream: &mut FFI_ArrowArrayStream) -> Option<String> {
    let get_last_error = stream.get_last_error?;
    // SAFETY: the stream is live (not released) and owned by us; the callback is the producer's.
    let text = unsafe { get_last_error(stream) };
    if text.is_null() {
        return None;
    }
    // SAFETY: the C Stream Interface makes a non-NULL result a NUL-terminated string valid until the next call.
    let text = unsafe { std::ffi::CStr::from_ptr(text) };
    Some(text.to_string_lossy().into_owned())
}

/// `5 (EIO)` for the codes the C Stream Interface names.
fn errno_name(code: i32) -> String {
    let name = match code {
        5 => "EIO",
        12 => "ENOMEM",
        22 => "EINVAL",
        _ => return code.to_string(),
    };
    format!("{code} ({name})")
}

pub(crate) fn poisoned_error(plugin: &str) -> PluginError {
    PluginError::new(
        ErrorKind::Panic,
        POISONED_CODE,
        format!(
            "plugin `{plugin}` panicked earlier in this process and is not called again (poisoned)"
        ),
    )
    .with_help("fix or remove the plugin; the first error of this run says where it panicked")
}

impl Iterator for ImportedStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some((poison, plugin)) = &self.poison
            && poison.is_set()
        {
            self.finished = true;
            return Some(Err(poisoned_error(plugin).into_arrow()));
        }
        let Some(get_next) = self.stream.get_next else {
            self.finished = true;
            return Some(Err(PluginError::new(
                ErrorKind::Internal,
                STREAM_ERROR_CODE,
                format!(
                    "{} handed over a stream without `get_next`",
                    self.producer()
                ),
            )
            .into_arrow()));
        };
        let mut array = FFI_ArrowArray::empty();
        // SAFETY: the stream is live and owned by us; `array` is an empty struct for the producer to fill.
        let code = unsafe { get_next(&mut self.stream, &mut array) };
        if code != 0 {
            // After an error the only valid call on a C stream is `release`.
            self.finished = true;
            return Some(Err(self.stream_error(code)));
        }
        if array.is_released() {
            self.finished = true;
            return None;
        }
        let batch = self.import(array);
        if batch.is_err() {
            self.finished = true;
        }
        Some(batch)
    }
}

impl RecordBatchReader for ImportedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Imports a C stream (takes ownership; the stream is released when the reader drops).
pub(crate) fn import_stream(stream: RawArrowStream) -> Result<ImportedStream, PluginError> {
    let mut stream = from_raw(stream);
    let unreadable =
        |why: String| PluginError::internal(format!("a stream could not be read: {why}"));
    if stream.release.is_none() {
        return Err(unreadable("it is already released".into()));
    }
    let Some(get_schema) = stream.get_schema else {
        return Err(PluginError::new(
            ErrorKind::Internal,
            STREAM_ERROR_CODE,
            "a stream could not be read: it has no `get_schema`",
        ));
    };
    let mut schema = FFI_ArrowSchema::empty();
    // SAFETY: the stream is live and owned by us; `schema` is an empty struct for the producer to fill.
    let code = unsafe { get_schema(&mut stream, &mut schema) };
    if code != 0 {
        return Err(match last_error(&mut stream) {
            Some(text) => match decode(&text) {
                Some((error, _)) => error,
                None => unreadable(format!("its schema could not be read: {text}")),
            },
            None => PluginError::new(
                ErrorKind::Internal,
                STREAM_ERROR_CODE,
                format!(
                    "a stream could not be read: its schema could not be read (C stream error {}) and it gave no error message",
                    errno_name(code)
                ),
            ),
        });
    }
    let schema = guard(|| Schema::try_from(&schema))
        .map_err(|panicked| {
            unreadable(format!(
                "its schema cannot be imported ({})",
                panicked.message
            ))
        })?
        .map_err(|e| unreadable(format!("its schema cannot be imported: {e}")))?;
    Ok(ImportedStream {
        stream,
        schema: Arc::new(schema),
        poison: None,
        validate: None,
        finished: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatchIterator};
    use arrow_schema::{DataType, Field, Schema};

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    struct Panicking {
        schema: SchemaRef,
        after: usize,
    }

    impl Iterator for Panicking {
        type Item = Result<RecordBatch, ArrowError>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.after == 0 {
                panic!("reader exploded");
            }
            self.after -= 1;
            Some(Ok(batch(&[1])))
        }
    }

    impl RecordBatchReader for Panicking {
        fn schema(&self) -> SchemaRef {
            self.schema.clone()
        }
    }

    #[test]
    fn a_stream_round_trips_through_the_c_interface() {
        let batches = vec![batch(&[1, 2]), batch(&[3])];
        let schema = batches[0].schema();
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema.clone());
        let raw = export_stream(Box::new(reader), "p", "while testing").unwrap();
        let imported = import_stream(raw).unwrap();
        assert_eq!(imported.schema(), schema);
        let got: Vec<RecordBatch> = imported.collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![batch(&[1, 2]), batch(&[3])]);
    }

    #[test]
    fn plugin_errors_cross_intact() {
        let schema = batch(&[1]).schema();
        let error =
            PluginError::new(ErrorKind::Auth, "X-AUTH", "token refused").with_help("renew it");
        let items = vec![Ok(batch(&[1])), Err(error.clone().into_arrow())];
        let reader = RecordBatchIterator::new(items, schema);
        let mut imported =
            import_stream(export_stream(Box::new(reader), "p", "w").unwrap()).unwrap();
        assert!(imported.next().unwrap().is_ok());
        let got = imported.next().unwrap().unwrap_err();
        assert_eq!(PluginError::from_arrow(&got), error);
    }

    #[test]
    fn a_panic_in_next_becomes_an_error_and_poisons() {
        let schema = batch(&[1]).schema();
        let reader = Panicking { schema, after: 1 };
        let poison = Poison::default();
        let raw = export_stream(Box::new(reader), "echo", "while producing `df`").unwrap();
        let mut imported = import_stream(raw)
            .unwrap()
            .with_poison(poison.clone(), "echo");
        assert!(imported.next().unwrap().is_ok());
        let error = PluginError::from_arrow(&imported.next().unwrap().unwrap_err());
        assert_eq!(error.kind, ErrorKind::Panic);
        assert_eq!(error.code, PANIC_CODE);
        assert!(
            error
                .message
                .starts_with("plugin `echo` panicked while producing `df`: reader exploded"),
            "{error}"
        );
        assert!(poison.is_set());
        assert!(imported.next().is_none());
    }

    /// What validating a loaded plugin's output costs, on the shape of the 1M-row benchmark file (`id`, `name`,
    /// `amount`, `created_at`, plus echo's `n`) in 8192-row batches: the same export and import, with and without
    /// validation. Run with `cargo test --release -p osiris-plugin-sdk --features host --lib -- --ignored
    /// --nocapture validation_cost`; docs/performance.md has the figures.
    #[cfg(feature = "host")]
    #[test]
    #[ignore = "a measurement, not a test"]
    fn validation_cost() {
        use arrow_array::{ArrayRef, Float64Array, StringArray, TimestampMicrosecondArray};
        use arrow_schema::TimeUnit;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new(
                "created_at",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new("n", DataType::Int64, false),
        ]));
        let rows = 1_000_000i64;
        let batches: Vec<RecordBatch> = (0..rows)
            .step_by(8192)
            .map(|start| {
                let ids: Vec<i64> = (start..(start + 8192).min(rows)).collect();
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(ids.clone())),
                    Arc::new(StringArray::from_iter_values(
                        ids.iter()
                            .map(|i| format!("customer_{:04}", (i * 7919) % 5000)),
                    )),
                    Arc::new(Float64Array::from_iter_values(
                        ids.iter().map(|i| ((i * 104729) % 100000) as f64 / 100.0),
                    )),
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        ids.iter().map(|i| 1_704_067_200_000_000 + i * 1_000_000),
                    )),
                    Arc::new(Int64Array::from(ids)),
                ];
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            })
            .collect();
        let pull = |validate: bool| {
            let reader =
                RecordBatchIterator::new(batches.clone().into_iter().map(Ok), schema.clone());
            let raw = export_stream(Box::new(reader), "p", "w").unwrap();
            let mut imported = import_stream(raw).unwrap();
            if validate {
                imported = imported.with_validation("p", "df");
            }
            let started = std::time::Instant::now();
            let n: usize = imported.map(|b| b.unwrap().num_rows()).sum();
            assert_eq!(n as i64, rows);
            started.elapsed().as_secs_f64() * 1000.0
        };
        let median = |validate: bool| {
            let mut times: Vec<f64> = (0..11).map(|_| pull(validate)).collect();
            times.sort_by(f64::total_cmp);
            times[5]
        };
        let (off, on) = (median(false), median(true));
        println!(
            "1M rows through export+import: {off:.2} ms unvalidated, {on:.2} ms validated, validation {:.2} ms",
            on - off
        );
    }

    #[test]
    fn plain_arrow_errors_get_a_kind() {
        let error = PluginError::from_arrow(&ArrowError::CsvError("bad row 3".into()));
        assert_eq!(error.kind, ErrorKind::Data);
        assert_eq!(error.code, "ARROW");
        assert!(error.message.contains("bad row 3"));
    }

    #[test]
    fn encoded_errors_decode_after_a_prefix() {
        let error = PluginError::new(ErrorKind::Io, "IO", "disk \"full\"\0?");
        let text = format!(
            "C Data interface error: External error: {}",
            encode(&error, true)
        );
        let (decoded, panicked) = decode(&text).unwrap();
        assert_eq!(decoded, error);
        assert!(panicked);
        assert!(!encode(&error, false).contains('\0'));
    }
}
