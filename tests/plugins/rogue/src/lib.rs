//! `osiris-test-rogue`: a plugin whose module is written by hand against the SDK's ABI types, so that it can break
//! the data contract the SDK would keep: malformed Arrow arrays (offsets out of bounds, invalid UTF-8, a wrong
//! null count, a child shorter than its parent) and a stream error whose `get_last_error` returns NULL. The host
//! must turn each into an error of the step, never into a panic or a batch it uses.
//!
//! Component `test.rogue` (mode extract); config `emit` chooses what the output `df` produces (see spec.yaml), and
//! `log_encoded_credentials: true` logs the connection's credentials base64- and percent-encoded (the host's
//! redaction must mask them).

use abi_stable::library::{CheckTypeLayout, LibHeader, RootModuleResult};
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use osiris_plugin_sdk::abi::{
    ABI_VERSION, ComponentEntry, FfiContext, FfiError, NamedStream, OcpModule, OcpModuleRef,
    PANIC_UNWIND, RawArrowStream, SDK_VERSION,
};
use osiris_plugin_sdk::arrow_array::ffi_stream::FFI_ArrowArrayStream;
use osiris_plugin_sdk::arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, StringArray, make_array,
};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema};
use osiris_plugin_sdk::serde_json::{self, Value};
use std::ffi::c_char;
use std::sync::Arc;

const SPEC: &str = include_str!("../spec.yaml");
const COMPONENT: &str = "test.rogue";

fn error(code: &str, message: String) -> FfiError {
    FfiError {
        kind: RString::from("config"),
        code: RString::from(code),
        message: RString::from(message),
        help: ROption::RNone,
        panicked: false,
    }
}

/// `id` Int64 and `name` Utf8, three rows; `name` built from `name` (possibly malformed, unchecked).
fn batch(name: ArrayData, id: ArrayData) -> Result<RecordBatch, ArrowError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![make_array(id), make_array(name)];
    RecordBatch::try_new(schema, columns)
}

fn utf8(offsets: &[i32], values: &[u8]) -> ArrayData {
    // SAFETY (of the test): deliberately unchecked; the point is to hand the host what a broken plugin would.
    unsafe {
        ArrayData::new_unchecked(
            DataType::Utf8,
            offsets.len() - 1,
            Some(0),
            None,
            0,
            vec![
                Buffer::from_slice_ref(offsets),
                Buffer::from_slice_ref(values),
            ],
            vec![],
        )
    }
}

fn good_ids() -> ArrayData {
    Int64Array::from(vec![1, 2, 3]).into_data()
}

fn good_names() -> ArrayData {
    StringArray::from(vec!["ada", "bob", "cy"]).into_data()
}

fn output(emit: &str) -> Result<FFI_ArrowArrayStream, String> {
    let batch = match emit {
        "ok" => batch(good_names(), good_ids()),
        // The second offset points far beyond the 3-byte value buffer (whose length is the last offset).
        "bad_offsets" => batch(utf8(&[0, 100, 2, 3], b"abc"), good_ids()),
        "bad_utf8" => batch(utf8(&[0, 1, 2, 3], &[b'a', 0xff, b'c']), good_ids()),
        // The validity bitmap says row 2 is null, the null count says two rows are.
        "bad_null_count" => {
            let id = unsafe {
                ArrayData::new_unchecked(
                    DataType::Int64,
                    3,
                    Some(2),
                    Some(Buffer::from_slice_ref([0b0000_0101u8])),
                    0,
                    vec![Buffer::from_slice_ref([1i64, 2, 3])],
                    vec![],
                )
            };
            batch(good_names(), id)
        }
        // A column of one row in a batch of three.
        "bad_child_length" => {
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
            let short = Int64Array::from(vec![1]).into_data();
            let three_rows = unsafe {
                ArrayData::new_unchecked(
                    DataType::Struct(schema.fields().clone()),
                    3,
                    Some(0),
                    None,
                    0,
                    vec![],
                    vec![short],
                )
            };
            return Ok(struct_stream(schema, three_rows));
        }
        "null_error" => {
            let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
            let failing = RecordBatchIterator::new(
                vec![Err(ArrowError::IoError(
                    "disk gone".into(),
                    std::io::Error::other("disk gone"),
                ))],
                schema,
            );
            let mut stream = FFI_ArrowArrayStream::new(Box::new(failing));
            stream.get_last_error = Some(no_message);
            return Ok(stream);
        }
        other => return Err(format!("unknown `emit` `{other}`")),
    }
    .map_err(|e| e.to_string())?;
    let schema = batch.schema();
    Ok(FFI_ArrowArrayStream::new(Box::new(
        RecordBatchIterator::new(vec![Ok(batch)], schema),
    )))
}

/// A stream of one struct array given as is (a `RecordBatch` would refuse the short child).
fn struct_stream(schema: Arc<Schema>, data: ArrayData) -> FFI_ArrowArrayStream {
    /// Only its schema is used: `get_next` is replaced below.
    struct One {
        schema: Arc<Schema>,
    }
    impl Iterator for One {
        type Item = Result<RecordBatch, ArrowError>;
        fn next(&mut self) -> Option<Self::Item> {
            None
        }
    }
    impl osiris_plugin_sdk::arrow_array::RecordBatchReader for One {
        fn schema(&self) -> Arc<Schema> {
            self.schema.clone()
        }
    }
    let mut stream = FFI_ArrowArrayStream::new(Box::new(One { schema }));
    // Replace `get_next` with one that exports the struct array unchecked, once.
    static mut DATA: Option<ArrayData> = None;
    unsafe extern "C" fn get_next(
        _stream: *mut FFI_ArrowArrayStream,
        out: *mut osiris_plugin_sdk::arrow_array::ffi::FFI_ArrowArray,
    ) -> i32 {
        // SAFETY: test plugin, one stream at a time.
        let data = unsafe { (*std::ptr::addr_of_mut!(DATA)).take() };
        if let Some(data) = data {
            unsafe {
                out.write(osiris_plugin_sdk::arrow_array::ffi::FFI_ArrowArray::new(
                    &data,
                ))
            };
        }
        0
    }
    unsafe { *std::ptr::addr_of_mut!(DATA) = Some(data) };
    stream.get_next = Some(get_next);
    stream
}

/// `get_last_error` that has no message: allowed to return NULL by the C Stream Interface only when there is no
/// error, so a consumer trusting it would crash.
unsafe extern "C" fn no_message(_stream: *mut FFI_ArrowArrayStream) -> *const c_char {
    std::ptr::null()
}

fn to_raw(stream: FFI_ArrowArrayStream) -> RawArrowStream {
    // SAFETY: both are the five-word C `struct ArrowArrayStream` (the SDK does the same).
    unsafe { std::mem::transmute::<FFI_ArrowArrayStream, RawArrowStream>(stream) }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

extern "C" fn load_spec() -> RResult<RVec<ComponentEntry>, FfiError> {
    RResult::ROk(RVec::from(vec![ComponentEntry {
        name: RString::from(COMPONENT),
        spec_yaml: RString::from(SPEC),
    }]))
}

extern "C" fn run(
    component: RStr<'_>,
    _step_id: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
    inputs: RVec<NamedStream>,
) -> RResult<RVec<NamedStream>, FfiError> {
    drop(inputs);
    let result = (|| {
        if component.as_str() != COMPONENT {
            return Err(error(
                "ROGUE-COMPONENT",
                format!("no component `{component}`"),
            ));
        }
        let config: Value = serde_json::from_str(config_json.as_str())
            .map_err(|e| error("ROGUE-CONFIG", e.to_string()))?;
        if config["log_encoded_credentials"] == Value::Bool(true) {
            let connection: Value = match (ctx.connection)(ctx.data) {
                ROption::RSome(json) => serde_json::from_str(json.as_str()).unwrap_or_default(),
                ROption::RNone => Value::Null,
            };
            let user = connection["user"].as_str().unwrap_or_default();
            let password = connection["password"].as_str().unwrap_or_default();
            let basic = base64(format!("{user}:{password}").as_bytes());
            let message = format!(
                "calling https://api.example.invalid/v1?key={} with Authorization: Basic {basic}",
                percent_encode(password)
            );
            (ctx.log)(ctx.data, 3, RStr::from_str(&message));
        }
        let emit = config["emit"].as_str().unwrap_or("ok");
        let stream = output(emit).map_err(|e| error("ROGUE-CONFIG", e))?;
        Ok(RVec::from(vec![NamedStream {
            name: RString::from("df"),
            stream: to_raw(stream),
        }]))
    })();
    (ctx.release)(ctx.data);
    result.into()
}

extern "C" fn json_call(
    _component: RStr<'_>,
    _config_json: RStr<'_>,
    ctx: FfiContext,
) -> RResult<RString, FfiError> {
    (ctx.release)(ctx.data);
    RResult::RErr(FfiError {
        kind: RString::from("unsupported"),
        code: RString::from("ROGUE-UNSUPPORTED"),
        message: RString::from("test.rogue only runs"),
        help: ROption::RNone,
        panicked: false,
    })
}

fn module() -> OcpModuleRef {
    OcpModule {
        abi_version: ABI_VERSION,
        sdk_version: RStr::from_str(SDK_VERSION),
        plugin_name: RStr::from_str("osiris-test-rogue"),
        plugin_version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        load_spec,
        run,
        discover: json_call,
        doctor: json_call,
        panic_strategy: RStr::from_str(PANIC_UNWIND),
    }
    .leak_into_prefix()
}

extern "C" fn constructor() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(module)
}

#[unsafe(no_mangle)]
pub static osiris_ocp_test_rogue: LibHeader =
    unsafe { LibHeader::from_constructor::<OcpModuleRef>(constructor, CheckTypeLayout::Yes) };

include!("../../marker.rs");
