//! The FFI-safe module layout shared by the host and every plugin (OCP).
//!
//! Everything here is `#[repr(C)]` and derives [`StableAbi`], so the host can compare the layout a plugin was
//! built with against its own before calling anything (abi_stable's type-layout check, run by
//! `LibHeader::init_root_module`). See `docs/adr/0003-plugin-abi.md` for the versioning rules.
//!
//! Invariant: no Rust-only type (`Box<dyn ..>`, `String`, `Vec`, arrow structs) crosses the boundary; data
//! crosses as [`RawArrowStream`] (the Arrow C Stream Interface), everything else as abi_stable types.

use abi_stable::library::{CheckTypeLayout, LibHeader, RootModule, RootModuleResult};
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics};
use std::ffi::{c_int, c_void};

/// The plugin ABI major version this SDK speaks.
///
/// It changes only when a change to the module cannot be made by appending a field (see the ADR); appending a
/// field to [`OcpModule`] keeps it. The host accepts the majors in `host::SUPPORTED_ABI_VERSIONS`.
pub const ABI_VERSION: u32 = 1;

/// `ABI_VERSION` as the version string abi_stable compares at load (same major = compatible).
/// A unit test keeps the two in step.
pub(crate) const ABI_VERSION_STRING: &str = "1.0.0";

/// The version of this SDK crate, recorded in every plugin module (for messages, not for compatibility).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// [`OcpModule::panic_strategy`] of a plugin built with `panic = "unwind"`, the only one the host loads.
pub const PANIC_UNWIND: &str = "unwind";
/// [`OcpModule::panic_strategy`] of a plugin built with `panic = "abort"`.
pub const PANIC_ABORT: &str = "abort";

/// The root module of a plugin: its identity and its entry points.
///
/// A prefix type: the host can read every field up to `#[sabi(last_prefix_field)]` from any plugin of the same
/// ABI major; fields appended after it read as "absent" from older plugins.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = OcpModuleRef)))]
pub struct OcpModule {
    /// [`ABI_VERSION`] of the SDK the plugin was built with.
    pub abi_version: u32,
    /// [`SDK_VERSION`] of the SDK the plugin was built with.
    pub sdk_version: RStr<'static>,
    /// The plugin's name (`export_ocp! { name: .. }`).
    pub plugin_name: RStr<'static>,
    /// The plugin's version (`export_ocp! { version: .. }`).
    pub plugin_version: RStr<'static>,
    /// The components the plugin offers, with their embedded spec YAML.
    pub load_spec: extern "C" fn() -> RResult<RVec<ComponentEntry>, FfiError>,
    /// Runs one step of `component`; see [`RunFn`] (the same type, spelled out for the layout derive).
    pub run: extern "C" fn(
        component: RStr<'_>,
        step_id: RStr<'_>,
        config_json: RStr<'_>,
        ctx: FfiContext,
        inputs: RVec<NamedStream>,
    ) -> RResult<RVec<NamedStream>, FfiError>,
    /// `Driver::discover` of `component`; see [`JsonFn`].
    pub discover: extern "C" fn(
        component: RStr<'_>,
        config_json: RStr<'_>,
        ctx: FfiContext,
    ) -> RResult<RString, FfiError>,
    /// `Driver::doctor` of `component`; see [`JsonFn`].
    #[sabi(last_prefix_field)]
    pub doctor: extern "C" fn(
        component: RStr<'_>,
        config_json: RStr<'_>,
        ctx: FfiContext,
    ) -> RResult<RString, FfiError>,
    /// The panic strategy the plugin was compiled with, recorded by `export_ocp!` from `cfg!(panic = ..)`:
    /// [`PANIC_UNWIND`] or [`PANIC_ABORT`]. The host reads it before calling any function of the module and
    /// refuses anything but `unwind`. Appended after the prefix (ADR 0003): a module built before it existed
    /// reads as `None`, which the host refuses too.
    pub panic_strategy: RStr<'static>,
}

/// `run(component, step_id, config_json, ctx, inputs) -> outputs`.
///
/// Ownership: `ctx` (one reference) and every input stream move into the plugin; every output stream moves to
/// the host. Errors are plain data.
pub type RunFn = extern "C" fn(
    component: RStr<'_>,
    step_id: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
    inputs: RVec<NamedStream>,
) -> RResult<RVec<NamedStream>, FfiError>;

/// `discover`/`doctor(component, config_json, ctx) -> result_json`.
pub type JsonFn = extern "C" fn(
    component: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
) -> RResult<RString, FfiError>;

impl RootModule for OcpModuleRef {
    declare_root_module_statics! {OcpModuleRef}
    const BASE_NAME: &'static str = "osiris_ocp";
    const NAME: &'static str = "osiris plugin module";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION_STRING);
}

/// One component of a plugin as it crosses the boundary.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ComponentEntry {
    pub name: RString,
    pub spec_yaml: RString,
}

/// An error as plain data. `kind` is `ErrorKind::as_str` (unknown kinds read as `internal`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    pub kind: RString,
    pub code: RString,
    pub message: RString,
    pub help: ROption<RString>,
    /// True when the plugin itself panicked during this call: the host then marks the plugin poisoned. An error
    /// of kind `panic` that the plugin merely passes on (read from an upstream stream) leaves this false.
    pub panicked: bool,
}

/// The Arrow C Stream Interface struct (`struct ArrowArrayStream` of the Arrow spec), mirrored field for field
/// so that it can sit inside StableAbi types: arrow-rs' `FFI_ArrowArrayStream` has exactly this C layout in
/// every arrow version, so both sides convert by moving the five words, whatever arrow major they were built on.
///
/// Ownership: whoever holds a `RawArrowStream` owns the stream; dropping it calls `release`. Moving it (by value,
/// inside [`NamedStream`]) moves ownership.
#[repr(C)]
#[derive(StableAbi)]
pub struct RawArrowStream {
    pub get_schema:
        Option<unsafe extern "C" fn(stream: *mut c_void, out_schema: *mut c_void) -> c_int>,
    pub get_next:
        Option<unsafe extern "C" fn(stream: *mut c_void, out_array: *mut c_void) -> c_int>,
    pub get_last_error: Option<unsafe extern "C" fn(stream: *mut c_void) -> *const c_void>,
    pub release: Option<unsafe extern "C" fn(stream: *mut c_void)>,
    pub private_data: *mut c_void,
}

// SAFETY: the Arrow C Stream Interface lets a stream move between threads (it is never used from two threads at
// once: it is owned, and `&mut` is needed to pull it); arrow-rs' own struct is `Send` for the same reason.
unsafe impl Send for RawArrowStream {}

impl Drop for RawArrowStream {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: a non-null release means the stream is live and owned by us.
            unsafe { release(self as *mut RawArrowStream as *mut c_void) };
        }
    }
}

/// A named stream (`df`, `df_<step>`), moved across the boundary by value.
#[repr(C)]
#[derive(StableAbi)]
pub struct NamedStream {
    pub name: RString,
    pub stream: RawArrowStream,
}

/// What the host offers a running driver, as callbacks over an opaque host pointer.
///
/// Reference-counted across the boundary: each `FfiContext` value owns one reference to `data`; `retain` makes
/// another (for a second `FfiContext` value), `release` gives one back. The plugin may keep its context (inside
/// output streams) after `run` returns; the host frees its side when the last reference is released.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiContext {
    pub data: *const c_void,
    /// `level`: 1 error, 2 warn, 3 info, 4 debug, 5 trace.
    pub log: extern "C" fn(data: *const c_void, level: u8, message: RStr<'_>),
    pub metric:
        extern "C" fn(data: *const c_void, name: RStr<'_>, value: f64, unit: ROption<RStr<'_>>),
    pub is_cancelled: extern "C" fn(data: *const c_void) -> bool,
    /// The resolved connection as JSON, if any.
    pub connection: extern "C" fn(data: *const c_void) -> ROption<RString>,
    pub retain: extern "C" fn(data: *const c_void),
    pub release: extern "C" fn(data: *const c_void),
}

// SAFETY: the host side behind `data` is a `ContextBackend`, which is `Send + Sync`; the callbacks are plain
// functions.
unsafe impl Send for FfiContext {}
// SAFETY: as for `Send`: `data` is only ever read through the callbacks, which forward to a `Sync` backend.
unsafe impl Sync for FfiContext {}

/// The unique, versioned entry of one plugin: an abi_stable `LibHeader` under the plugin's own symbol name.
///
/// `export_ocp!` defines it as a `#[no_mangle] static` named after `entry:` (what the host resolves after
/// `dlopen`) and re-exports it as `OCP_ENTRY` (what the host passes to `host::Module::from_static` when the
/// plugin is linked in). Both paths go through the same header and the same checks.
#[repr(transparent)]
pub struct StaticEntry {
    header: LibHeader,
}

impl StaticEntry {
    /// Used by `export_ocp!`; not meant to be called directly.
    #[doc(hidden)]
    pub const fn new<P: crate::export::PluginDef>() -> StaticEntry {
        StaticEntry {
            // SAFETY: `constructor::<P>` returns a `PrefixRef` made from an `OcpModuleRef` (see `export`).
            header: unsafe {
                LibHeader::from_constructor::<OcpModuleRef>(
                    crate::export::constructor::<P>,
                    CheckTypeLayout::Yes,
                )
            },
        }
    }

    #[cfg(feature = "host")]
    pub(crate) fn header(&'static self) -> &'static LibHeader {
        &self.header
    }
}

/// Converts an [`OcpModule`] value to what `LibHeader` stores.
pub(crate) fn into_root_result(module: fn() -> OcpModuleRef) -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_version_string_matches_abi_version() {
        let major: u32 = ABI_VERSION_STRING
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(major, ABI_VERSION);
    }

    #[test]
    fn raw_stream_has_the_c_layout_of_arrow_rs() {
        use arrow_array::ffi_stream::FFI_ArrowArrayStream;
        assert_eq!(
            std::mem::size_of::<RawArrowStream>(),
            std::mem::size_of::<FFI_ArrowArrayStream>()
        );
        assert_eq!(
            std::mem::align_of::<RawArrowStream>(),
            std::mem::align_of::<FFI_ArrowArrayStream>()
        );
        assert_eq!(
            std::mem::size_of::<RawArrowStream>(),
            5 * std::mem::size_of::<usize>()
        );
    }
}
