//! The driver [`Context`](crate::Context) across the boundary: the host exports its `ContextBackend` as an
//! [`FfiContext`] (callbacks over a reference-counted pointer); the plugin wraps that in [`RemoteContext`].

use crate::abi::FfiContext;
use crate::driver::{ContextBackend, Level};
use abi_stable::std_types::{ROption, RStr};
use serde_json::Value;
#[cfg(feature = "host")]
use {abi_stable::std_types::RString, std::ffi::c_void};

/// Plugin side: a `ContextBackend` that forwards to the host. Releases its reference when dropped.
pub(crate) struct RemoteContext {
    ffi: FfiContext,
}

impl RemoteContext {
    pub fn new(ffi: FfiContext) -> Self {
        RemoteContext { ffi }
    }
}

impl Drop for RemoteContext {
    fn drop(&mut self) {
        (self.ffi.release)(self.ffi.data);
    }
}

impl ContextBackend for RemoteContext {
    fn log(&self, level: Level, message: &str) {
        (self.ffi.log)(self.ffi.data, level as u8, RStr::from_str(message))
    }

    fn metric(&self, name: &str, value: f64, unit: Option<&str>) {
        let unit = match unit {
            Some(u) => ROption::RSome(RStr::from_str(u)),
            None => ROption::RNone,
        };
        (self.ffi.metric)(self.ffi.data, RStr::from_str(name), value, unit)
    }

    fn is_cancelled(&self) -> bool {
        (self.ffi.is_cancelled)(self.ffi.data)
    }

    fn connection(&self) -> Option<Value> {
        let json = (self.ffi.connection)(self.ffi.data).into_option()?;
        serde_json::from_str(json.as_str()).ok()
    }
}

#[cfg(feature = "host")]
fn level_from_u8(level: u8) -> Level {
    match level {
        1 => Level::Error,
        2 => Level::Warn,
        3 => Level::Info,
        4 => Level::Debug,
        _ => Level::Trace,
    }
}

/// Host side: what `data` points to (an `Arc`, counted by `retain`/`release`).
#[cfg(feature = "host")]
struct HostContext {
    backend: std::sync::Arc<dyn ContextBackend>,
}

/// Exports a backend as an `FfiContext` holding one reference. Every callback catches panics of the backend
/// (a panicking host callback would otherwise unwind into the plugin).
#[cfg(feature = "host")]
pub(crate) fn export_context(backend: std::sync::Arc<dyn ContextBackend>) -> FfiContext {
    use std::sync::Arc;

    fn with<T>(data: *const c_void, default: T, f: impl FnOnce(&dyn ContextBackend) -> T) -> T {
        // SAFETY: `data` comes from `Arc::into_raw` below and the caller holds a reference (the FfiContext).
        let host = unsafe { &*(data as *const HostContext) };
        crate::panic::guard(|| f(host.backend.as_ref())).unwrap_or(default)
    }
    extern "C" fn log(data: *const c_void, level: u8, message: RStr<'_>) {
        with(data, (), |b| b.log(level_from_u8(level), message.as_str()))
    }
    extern "C" fn metric(data: *const c_void, name: RStr<'_>, value: f64, unit: ROption<RStr<'_>>) {
        with(data, (), |b| {
            b.metric(name.as_str(), value, unit.into_option().map(|u| u.as_str()))
        })
    }
    extern "C" fn is_cancelled(data: *const c_void) -> bool {
        // A backend that cannot answer is treated as "cancelled": stop rather than run on.
        with(data, true, |b| b.is_cancelled())
    }
    extern "C" fn connection(data: *const c_void) -> ROption<RString> {
        with(data, ROption::RNone, |b| match b.connection() {
            Some(value) => ROption::RSome(RString::from(value.to_string())),
            None => ROption::RNone,
        })
    }
    extern "C" fn retain(data: *const c_void) {
        // SAFETY: see `with`; one more strong count, given back by `release`.
        unsafe { Arc::increment_strong_count(data as *const HostContext) }
    }
    extern "C" fn release(data: *const c_void) {
        // SAFETY: gives back the reference held by the releasing FfiContext. Dropping the backend runs host code:
        // keep a panic there from unwinding into the plugin.
        let _ = crate::panic::guard(|| unsafe {
            Arc::decrement_strong_count(data as *const HostContext)
        });
    }

    let data = Arc::into_raw(Arc::new(HostContext { backend })) as *const c_void;
    FfiContext {
        data,
        log,
        metric,
        is_cancelled,
        connection,
        retain,
        release,
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;
    use crate::Context;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Recorder {
        logs: Mutex<Vec<(Level, String)>>,
        metrics: Mutex<Vec<(String, f64, Option<String>)>>,
    }

    impl ContextBackend for Recorder {
        fn log(&self, level: Level, message: &str) {
            self.logs.lock().unwrap().push((level, message.to_string()));
        }
        fn metric(&self, name: &str, value: f64, unit: Option<&str>) {
            self.metrics
                .lock()
                .unwrap()
                .push((name.to_string(), value, unit.map(str::to_string)));
        }
        fn is_cancelled(&self) -> bool {
            false
        }
        fn connection(&self) -> Option<Value> {
            Some(serde_json::json!({"host": "db", "port": 3306}))
        }
    }

    #[test]
    fn calls_cross_and_the_backend_is_freed_with_the_last_reference() {
        let recorder = Arc::new(Recorder::default());
        let ffi = export_context(recorder.clone());
        let ctx = Context::new(Arc::new(RemoteContext::new(ffi)));
        ctx.warn("careful");
        ctx.metric("rows_read", 3.0, Some("rows"));
        assert!(!ctx.is_cancelled());
        assert_eq!(ctx.connection().unwrap()["port"], 3306);
        assert_eq!(
            recorder.logs.lock().unwrap().as_slice(),
            &[(Level::Warn, "careful".to_string())]
        );
        assert_eq!(
            recorder.metrics.lock().unwrap()[0],
            ("rows_read".to_string(), 3.0, Some("rows".to_string()))
        );
        assert_eq!(Arc::strong_count(&recorder), 2);
        let kept = ctx.clone();
        drop(ctx);
        assert_eq!(
            Arc::strong_count(&recorder),
            2,
            "a clone keeps the host side alive"
        );
        drop(kept);
        assert_eq!(
            Arc::strong_count(&recorder),
            1,
            "the last release frees the host side"
        );
    }
}
