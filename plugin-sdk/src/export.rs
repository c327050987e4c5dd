//! The plugin side of the ABI: what [`export_ocp!`](crate::export_ocp) expands to.
//!
//! Every `extern "C"` function here runs its whole body under [`guard`]: a panic in a driver (or in the SDK)
//! comes back to the host as an `ErrorKind::Panic` error with `panicked = true`, never as an unwind.

use crate::abi::{ComponentEntry, FfiContext, FfiError, NamedStream, OcpModule, OcpModuleRef};
use crate::context::RemoteContext;
use crate::driver::{Component, Context, Driver, ErrorKind, PluginError, Streams};
use crate::panic::guard;
use crate::stream::{export_stream, import_stream, panic_error};
use abi_stable::library::RootModuleResult;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// What `export_ocp!` declares about a plugin. Implemented by the macro; not meant to be implemented by hand.
#[doc(hidden)]
pub trait PluginDef: 'static {
    const NAME: &'static str;
    const VERSION: &'static str;
    /// `cfg!(panic = ..)` of the plugin crate's build: `unwind`, `abort`, or whatever else the compiler offers.
    const PANIC_STRATEGY: &'static str;
    fn components() -> &'static [Component];
    fn drivers() -> &'static DriverCache;
}

/// One driver instance per component, made on first use and shared by every later call.
#[doc(hidden)]
pub struct DriverCache {
    drivers: Mutex<Vec<(&'static str, Arc<dyn Driver>)>>,
}

impl DriverCache {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> DriverCache {
        DriverCache {
            drivers: Mutex::new(Vec::new()),
        }
    }

    fn get<P: PluginDef>(&self, component: &str) -> Result<Arc<dyn Driver>, PluginError> {
        fn lock(
            cache: &DriverCache,
        ) -> std::sync::MutexGuard<'_, Vec<(&'static str, Arc<dyn Driver>)>> {
            cache
                .drivers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
        if let Some((_, driver)) = lock(self).iter().find(|(name, _)| *name == component) {
            return Ok(driver.clone());
        }
        let Some(spec) = P::components().iter().find(|c| c.name == component) else {
            return Err(unknown_component::<P>(component));
        };
        // The factory runs outside the lock (it may be slow, or panic).
        let driver: Arc<dyn Driver> = Arc::from((spec.driver)());
        let mut drivers = lock(self);
        if let Some((_, existing)) = drivers.iter().find(|(name, _)| *name == component) {
            return Ok(existing.clone());
        }
        drivers.push((spec.name, driver.clone()));
        Ok(driver)
    }
}

fn label<P: PluginDef>() -> String {
    format!("{} {}", P::NAME, P::VERSION)
}

fn unknown_component<P: PluginDef>(component: &str) -> PluginError {
    let offered: Vec<String> = P::components()
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    PluginError::new(
        ErrorKind::Config,
        crate::stream::UNKNOWN_COMPONENT_CODE,
        format!("plugin `{}` has no component `{component}`", label::<P>()),
    )
    .with_help(format!("it offers: {}", offered.join(", ")))
}

pub(crate) fn to_ffi(error: PluginError, panicked: bool) -> FfiError {
    FfiError {
        kind: RString::from(error.kind.as_str()),
        code: RString::from(error.code),
        message: RString::from(error.message),
        help: match error.help {
            Some(help) => ROption::RSome(RString::from(help)),
            None => ROption::RNone,
        },
        panicked,
    }
}

/// Runs a shim body: a returned error crosses as-is, a panic as `ErrorKind::Panic` with `panicked = true`.
fn shim<P: PluginDef, T>(
    what: impl FnOnce() -> String,
    body: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, FfiError> {
    match guard(body) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(error)) => RResult::RErr(to_ffi(error, false)),
        Err(panicked) => {
            RResult::RErr(to_ffi(panic_error(&label::<P>(), &what(), &panicked), true))
        }
    }
}

fn parse_config(config_json: &str) -> Result<Value, PluginError> {
    serde_json::from_str(config_json).map_err(|e| {
        PluginError::internal(format!("the host passed a config that is not JSON: {e}"))
    })
}

extern "C" fn load_spec<P: PluginDef>() -> RResult<RVec<ComponentEntry>, FfiError> {
    shim::<P, _>(
        || "while listing its components".to_string(),
        || {
            Ok(P::components()
                .iter()
                .map(|c| ComponentEntry {
                    name: RString::from(c.name),
                    spec_yaml: RString::from(c.spec_yaml),
                })
                .collect())
        },
    )
}

extern "C" fn run<P: PluginDef>(
    component: RStr<'_>,
    step_id: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
    inputs: RVec<NamedStream>,
) -> RResult<RVec<NamedStream>, FfiError> {
    let (component, step_id) = (component.as_str(), step_id.as_str());
    // Take ownership of the context and the input streams first, so that they are released on every path.
    let remote = RemoteContext::new(ctx);
    shim::<P, _>(
        || format!("while running step `{step_id}` (`{component}`)"),
        move || {
            let ctx = Context::new(Arc::new(remote));
            let mut streams = Streams::new();
            for named in inputs {
                let name = named.name.into_string();
                let reader = import_stream(named.stream)?;
                streams.insert(name, Box::new(reader));
            }
            let config = parse_config(config_json.as_str())?;
            let driver = P::drivers().get::<P>(component)?;
            let outputs = driver.run(step_id, &config, streams, &ctx)?;
            let plugin = label::<P>();
            let mut exported = RVec::with_capacity(outputs.len());
            for (name, reader) in outputs {
                let what =
                    format!("while producing output `{name}` of step `{step_id}` (`{component}`)");
                let stream = export_stream(reader, &plugin, &what)?;
                exported.push(NamedStream {
                    name: RString::from(name),
                    stream,
                });
            }
            Ok(exported)
        },
    )
}

fn json_call<P: PluginDef>(
    operation: &'static str,
    component: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
    call: fn(&dyn Driver, &Value, &Context) -> Result<Value, PluginError>,
) -> RResult<RString, FfiError> {
    let component = component.as_str();
    let remote = RemoteContext::new(ctx);
    shim::<P, _>(
        || format!("in `{operation}` of `{component}`"),
        move || {
            let ctx = Context::new(Arc::new(remote));
            let config = parse_config(config_json.as_str())?;
            let driver = P::drivers().get::<P>(component)?;
            let value = call(driver.as_ref(), &config, &ctx)?;
            Ok(RString::from(value.to_string()))
        },
    )
}

extern "C" fn discover<P: PluginDef>(
    component: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
) -> RResult<RString, FfiError> {
    json_call::<P>("discover", component, config_json, ctx, |d, c, x| {
        d.discover(c, x)
    })
}

extern "C" fn doctor<P: PluginDef>(
    component: RStr<'_>,
    config_json: RStr<'_>,
    ctx: FfiContext,
) -> RResult<RString, FfiError> {
    json_call::<P>("doctor", component, config_json, ctx, |d, c, x| {
        d.doctor(c, x)
    })
}

fn module<P: PluginDef>() -> OcpModuleRef {
    OcpModule {
        abi_version: crate::abi::ABI_VERSION,
        sdk_version: RStr::from_str(crate::abi::SDK_VERSION),
        plugin_name: RStr::from_str(P::NAME),
        plugin_version: RStr::from_str(P::VERSION),
        load_spec: load_spec::<P>,
        run: run::<P>,
        discover: discover::<P>,
        doctor: doctor::<P>,
        panic_strategy: RStr::from_str(P::PANIC_STRATEGY),
    }
    .leak_into_prefix()
}

/// The root-module constructor stored in the plugin's `LibHeader` (called once, by the host's first load).
#[doc(hidden)]
pub extern "C" fn constructor<P: PluginDef>() -> RootModuleResult {
    crate::abi::into_root_result(module::<P>)
}

/// Exports a plugin's components under one versioned, uniquely named entry.
///
/// ```
/// use osiris_plugin_sdk::serde_json::Value;
/// use osiris_plugin_sdk::{Context, Driver, PluginError, Streams};
///
/// /// Passes its inputs through.
/// struct Passthrough;
///
/// impl Driver for Passthrough {
///     fn run(&self, _step: &str, _config: &Value, inputs: Streams, _ctx: &Context) -> Result<Streams, PluginError> {
///         Ok(inputs)
///     }
/// }
///
/// osiris_plugin_sdk::export_ocp! {
///     entry: osiris_ocp_acme,                        // unique symbol name per plugin
///     name: "acme", version: "0.1.0",                // usually env!("CARGO_PKG_VERSION")
///     components: [
///         osiris_plugin_sdk::Component {
///             name: "acme.passthrough",
///             spec_yaml: "name: acme.passthrough\n",  // usually include_str!("../spec.yaml")
///             driver: || Box::new(Passthrough),
///         },
///     ],
/// }
///
/// fn main() {
///     // The same entry, under its fixed alias, for linking the plugin into a host.
///     let _entry: &'static osiris_plugin_sdk::StaticEntry = &OCP_ENTRY;
/// }
/// ```
///
/// It defines, in the module where it is invoked (normally the crate root; invoke it once per crate):
/// - `#[no_mangle] pub static <entry>`: the plugin's header, what the host resolves after `dlopen`. The name
///   must be unique across every plugin that may be linked into one binary (use `osiris_ocp_<plugin>`) and is
///   the `entry` the plugin's manifest declares.
/// - `pub use <entry> as OCP_ENTRY`: the same header, for `host::Module::from_static(&your_crate::OCP_ENTRY)`
///   when the plugin is linked into the host instead of loaded.
///
/// The plugin crate needs `crate-type = ["cdylib"]` (add `"rlib"` to also link it statically) and no other
/// dependency than this SDK: the macro only uses paths through `$crate`, so `abi_stable` does not have to be a
/// direct dependency. Component names must match `name:` in their spec; each driver factory is called at most
/// once per process (the driver is then shared by every step, possibly concurrently).
#[macro_export]
macro_rules! export_ocp {
    (
        entry: $entry:ident,
        name: $name:expr,
        version: $version:expr,
        components: [ $($component:expr),* $(,)? ] $(,)?
    ) => {
        #[doc(hidden)]
        pub struct __OsirisOcpPlugin;

        impl $crate::__private::PluginDef for __OsirisOcpPlugin {
            const NAME: &'static str = $name;
            const VERSION: &'static str = $version;
            // Evaluated in the plugin crate: the strategy its whole build uses (the host refuses `abort`).
            const PANIC_STRATEGY: &'static str = if cfg!(panic = "unwind") {
                "unwind"
            } else if cfg!(panic = "abort") {
                "abort"
            } else {
                "unknown"
            };
            fn components() -> &'static [$crate::Component] {
                static COMPONENTS: &[$crate::Component] = &[$($component),*];
                COMPONENTS
            }
            fn drivers() -> &'static $crate::__private::DriverCache {
                static DRIVERS: $crate::__private::DriverCache = $crate::__private::DriverCache::new();
                &DRIVERS
            }
        }

        /// This plugin's entry (see `osiris_plugin_sdk::export_ocp!`).
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static $entry: $crate::StaticEntry = $crate::StaticEntry::new::<__OsirisOcpPlugin>();

        pub use self::$entry as OCP_ENTRY;
    };
}
