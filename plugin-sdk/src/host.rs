//! The host side: load a plugin module (linked in or from a cdylib) and call its components.
//!
//! Invariants:
//! - A module is never unloaded (the library is opened with `RTLD_NODELETE` and its handle is leaked): output
//!   streams and contexts may outlive any `Module` value.
//! - A plugin that panicked is poisoned: every later call (including pulling one of its streams) returns
//!   `ErrorKind::Panic` with code `OCP-POISONED` without running plugin code.
//! - Loading runs plugin code (library constructors, the module constructor, `load_spec`): call
//!   [`Module::load`] only after the plugin passed its trust checks.

use crate::abi::{FfiError, NamedStream, OcpModuleRef};
use crate::context::export_context;
use crate::driver::{BatchStream, ContextBackend, ErrorKind, PluginError, Streams};
use crate::stream::{HOST_PRODUCER, Poison, export_stream, import_stream, poisoned_error};
use abi_stable::library::{AbiHeaderRef, LibHeader, LibraryError};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::abi::{ABI_VERSION, SDK_VERSION, StaticEntry};

/// The plugin ABI majors this host can load.
pub const SUPPORTED_ABI_VERSIONS: &[u32] = &[crate::abi::ABI_VERSION];

/// One component of a module: its name and its embedded spec YAML (parsed by the registry, not here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentInfo {
    pub name: String,
    pub spec_yaml: String,
}

/// Why a module could not be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// `dlopen` failed (missing file, not a shared library, wrong architecture, missing dependency).
    Open,
    /// The library does not export the entry symbol.
    Symbol,
    /// The library was built with an incompatible abi_stable (or is not an abi_stable header at all).
    AbiHeader,
    /// The plugin speaks a plugin ABI major this host does not support.
    AbiVersion,
    /// The plugin's module layout differs from this host's (built against an incompatible SDK).
    Layout,
    /// The plugin's module constructor or component listing failed or panicked.
    Init,
    /// The plugin was built with `panic = "abort"` (or does not say how it was built): a panic in it would take
    /// the host down. Refused before any of its functions runs.
    PanicStrategy,
}

/// A load failure: one-sentence message, a fix, and (for layout mismatches) abi_stable's full report, which is
/// also logged at debug level.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    pub message: String,
    pub help: Option<String>,
    pub detail: Option<String>,
}

impl LoadError {
    fn new(kind: LoadErrorKind, message: String, help: Option<String>) -> LoadError {
        LoadError {
            kind,
            message,
            help,
            detail: None,
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

fn sdk_minor() -> String {
    let mut parts = crate::abi::SDK_VERSION.split('.');
    format!(
        "{}.{}",
        parts.next().unwrap_or("0"),
        parts.next().unwrap_or("0")
    )
}

/// `RTLD_NODELETE`: keep the library mapped even if a handle is closed. Not exported by libloading.
#[cfg(any(target_os = "macos", target_os = "ios"))]
const RTLD_NODELETE: std::ffi::c_int = 0x80;
#[cfg(not(any(target_os = "macos", target_os = "ios")))]
const RTLD_NODELETE: std::ffi::c_int = 0x1000;

/// One plugin module, linked in or loaded. `Send + Sync`; share it behind an `Arc`.
///
/// Poisoning belongs to this value (and the streams it returned): load a plugin once per process and share it.
pub struct Module {
    module: OcpModuleRef,
    origin: String,
    name: String,
    version: String,
    label: String,
    abi_version: u32,
    sdk_version: String,
    components: Vec<ComponentInfo>,
    poison: Poison,
    /// Whether every batch this module's streams produce is validated on import (a loaded library; not a
    /// plugin linked into this binary).
    validate_batches: bool,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("origin", &self.origin)
            .field("abi_version", &self.abi_version)
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

impl Module {
    /// A plugin linked into this binary (`Module::from_static(&some_plugin::OCP_ENTRY)`): the same entry, the
    /// same checks and the same calls as a loaded one.
    pub fn from_static(entry: &'static StaticEntry) -> Result<Module, LoadError> {
        Module::from_header(entry.header(), "linked-in plugin".to_string(), false)
    }

    /// Loads a plugin library: `dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)`, resolves `entry_symbol`
    /// (the plugin's `export_ocp! { entry: .. }`), checks the abi_stable header, the plugin ABI major and the
    /// module's type layout, then lists the components.
    ///
    /// # Safety
    /// Loading runs code from the library (its constructors, then the module's): call this only for a library
    /// that passed the host's trust checks, and whose `entry_symbol` is an osiris entry (a symbol of another type
    /// under that name is undefined behaviour).
    pub unsafe fn load(path: &Path, entry_symbol: &str) -> Result<Module, LoadError> {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

        let shown = path.display();
        let valid_symbol = !entry_symbol.is_empty()
            && entry_symbol
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !entry_symbol.starts_with(|c: char| c.is_ascii_digit());
        if !valid_symbol {
            return Err(LoadError::new(
                LoadErrorKind::Symbol,
                format!("plugin entry `{entry_symbol}` of `{shown}` is not a valid symbol name"),
                Some("an entry is the identifier given to `export_ocp! { entry: .. }`, e.g. `osiris_ocp_csv`".into()),
            ));
        }
        // SAFETY: opening runs the library's constructors: the caller vouches for the library (see `# Safety`).
        // RTLD_NODELETE keeps it mapped for the rest of the process, which the handles below rely on.
        let library = unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) }.map_err(|e| {
            LoadError::new(
                LoadErrorKind::Open,
                format!("cannot load plugin library `{shown}`: {e}"),
                Some("check that the file is a plugin built for this platform and that its dependencies are installed".into()),
            )
        })?;
        // SAFETY: the entry is a `#[no_mangle] static` of type `StaticEntry`, i.e. a `LibHeader` whose first
        // field is an `AbiHeader`: its address is what an `AbiHeaderRef` holds (this is how abi_stable reads
        // its own fixed-name header).
        let header =
            unsafe { library.get::<AbiHeaderRef>(entry_symbol.as_bytes()) }.map(|symbol| *symbol);
        // Never unloaded: the module, its streams and contexts may be used for the rest of the process.
        std::mem::forget(library);
        let header = header.map_err(|e| {
            LoadError::new(
                LoadErrorKind::Symbol,
                format!("plugin library `{shown}` does not export the entry `{entry_symbol}`: {e}"),
                Some(
                    "the manifest's entry must name the plugin's `export_ocp! { entry: .. }`"
                        .into(),
                ),
            )
        })?;
        let lib_header = header.upgrade().map_err(|e| {
            let mut error = LoadError::new(
                LoadErrorKind::AbiHeader,
                format!(
                    "plugin library `{shown}` was built with an incompatible abi_stable (its `{entry_symbol}` is not a compatible plugin header)"
                ),
                Some(format!("rebuild it against osiris-plugin-sdk {}", sdk_minor())),
            );
            error.detail = Some(e.to_string());
            error
        })?;
        Module::from_header(lib_header, format!("`{shown}`"), true)
    }

    fn from_header(
        header: &'static LibHeader,
        origin: String,
        validate_batches: bool,
    ) -> Result<Module, LoadError> {
        let version = header.version_strings();
        let major: Option<u32> = version
            .version
            .as_str()
            .split('.')
            .next()
            .and_then(|m| m.parse().ok());
        if !major.is_some_and(|m| SUPPORTED_ABI_VERSIONS.contains(&m)) {
            let supported: Vec<String> =
                SUPPORTED_ABI_VERSIONS.iter().map(u32::to_string).collect();
            return Err(LoadError::new(
                LoadErrorKind::AbiVersion,
                format!(
                    "plugin {origin} uses plugin ABI {} but this osiris supports ABI {}",
                    major.map_or_else(
                        || format!("`{}`", version.version.as_str()),
                        |m| m.to_string()
                    ),
                    supported.join(", ")
                ),
                Some(format!(
                    "rebuild the plugin against osiris-plugin-sdk {} (plugin ABI {}), or use an osiris that supports its ABI",
                    sdk_minor(),
                    crate::abi::ABI_VERSION
                )),
            ));
        }
        let module = header
            .init_root_module::<OcpModuleRef>()
            .map_err(|e| summarise(e, &origin))?;
        Module::from_module(module, origin, validate_batches)
    }

    fn from_module(
        module: OcpModuleRef,
        origin: String,
        validate_batches: bool,
    ) -> Result<Module, LoadError> {
        let name = module.plugin_name().as_str().to_string();
        let version = module.plugin_version().as_str().to_string();
        let label = format!("{name} {version}");
        // Before any function of the module runs: a plugin whose panics abort would take the host down.
        check_panic_strategy(&module, &label, &origin)?;
        let listed = (module.load_spec())().into_result().map_err(|e| {
            LoadError::new(
                LoadErrorKind::Init,
                format!(
                    "plugin `{label}` ({origin}) could not list its components: {}",
                    e.message.as_str()
                ),
                e.help.into_option().map(RString::into_string),
            )
        })?;
        let components = listed
            .into_iter()
            .map(|c| ComponentInfo {
                name: c.name.into_string(),
                spec_yaml: c.spec_yaml.into_string(),
            })
            .collect();
        Ok(Module {
            abi_version: module.abi_version(),
            sdk_version: module.sdk_version().as_str().to_string(),
            module,
            origin,
            name,
            version,
            label,
            components,
            poison: Poison::default(),
            validate_batches,
        })
    }

    /// Whether the batches this module's streams produce are validated on import: true for a loaded library,
    /// false for a plugin linked into this binary (first-party code, built and tested with the host).
    pub fn validates_batches(&self) -> bool {
        self.validate_batches
    }

    pub fn plugin_name(&self) -> &str {
        &self.name
    }

    pub fn plugin_version(&self) -> &str {
        &self.version
    }

    pub fn abi_version(&self) -> u32 {
        self.abi_version
    }

    /// The osiris-plugin-sdk version the plugin was built with.
    pub fn sdk_version(&self) -> &str {
        &self.sdk_version
    }

    /// Where the module comes from: the library path in backticks, or "linked-in plugin".
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn components(&self) -> &[ComponentInfo] {
        &self.components
    }

    pub fn is_poisoned(&self) -> bool {
        self.poison.is_set()
    }

    fn check_callable(&self, component: &str) -> Result<(), PluginError> {
        if self.is_poisoned() {
            return Err(poisoned_error(&self.label));
        }
        if !self.components.iter().any(|c| c.name == component) {
            let offered: Vec<String> = self
                .components
                .iter()
                .map(|c| format!("`{}`", c.name))
                .collect();
            return Err(PluginError::new(
                ErrorKind::Config,
                crate::stream::UNKNOWN_COMPONENT_CODE,
                format!("plugin `{}` has no component `{component}`", self.label),
            )
            .with_help(format!("it offers: {}", offered.join(", "))));
        }
        Ok(())
    }

    fn take_error(&self, error: FfiError) -> PluginError {
        if error.panicked {
            self.poison.set();
        }
        PluginError {
            kind: ErrorKind::parse(error.kind.as_str()),
            code: error.code.into_string(),
            message: error.message.into_string(),
            help: error.help.into_option().map(RString::into_string),
        }
    }

    /// Runs one step. Inputs are moved into the plugin; outputs are pulled lazily (after this returns) and turn
    /// a panic of the plugin into an error of kind `panic` (poisoning the module).
    pub fn run(
        &self,
        component: &str,
        step_id: &str,
        config: &Value,
        ctx: Arc<dyn ContextBackend>,
        inputs: Streams,
    ) -> Result<Streams, PluginError> {
        self.check_callable(component)?;
        let config_json = config.to_string();
        let mut exported = RVec::with_capacity(inputs.len());
        for (name, reader) in inputs {
            let what = format!("while providing input `{name}` of step `{step_id}`");
            let stream = export_stream(reader, HOST_PRODUCER, &what)?;
            exported.push(NamedStream {
                name: RString::from(name),
                stream,
            });
        }
        let result = (self.module.run())(
            RStr::from_str(component),
            RStr::from_str(step_id),
            RStr::from_str(&config_json),
            export_context(ctx),
            exported,
        );
        let outputs = match result {
            RResult::ROk(outputs) => outputs,
            RResult::RErr(error) => return Err(self.take_error(error)),
        };
        let mut streams = Streams::new();
        for named in outputs {
            let name = named.name.into_string();
            let mut reader =
                import_stream(named.stream)?.with_poison(self.poison.clone(), &self.label);
            if self.validate_batches {
                reader = reader.with_validation(&self.label, &name);
            }
            streams.insert(name, Box::new(reader) as BatchStream);
        }
        Ok(streams)
    }

    /// `Driver::discover` of `component`.
    pub fn discover(
        &self,
        component: &str,
        config: &Value,
        ctx: Arc<dyn ContextBackend>,
    ) -> Result<Value, PluginError> {
        let call = self.module.discover();
        self.json_call(component, config, ctx, call)
    }

    /// `Driver::doctor` of `component`.
    pub fn doctor(
        &self,
        component: &str,
        config: &Value,
        ctx: Arc<dyn ContextBackend>,
    ) -> Result<Value, PluginError> {
        let call = self.module.doctor();
        self.json_call(component, config, ctx, call)
    }

    fn json_call(
        &self,
        component: &str,
        config: &Value,
        ctx: Arc<dyn ContextBackend>,
        call: crate::abi::JsonFn,
    ) -> Result<Value, PluginError> {
        self.check_callable(component)?;
        let config_json = config.to_string();
        match call(
            RStr::from_str(component),
            RStr::from_str(&config_json),
            export_context(ctx),
        ) {
            RResult::ROk(json) => serde_json::from_str(json.as_str()).map_err(|e| {
                PluginError::internal(format!(
                    "plugin `{}` returned a result that is not JSON: {e}",
                    self.label
                ))
            }),
            RResult::RErr(error) => Err(self.take_error(error)),
        }
    }
}

/// Refuses a module built with a panic strategy other than `unwind` (or one that does not say: built with an SDK
/// before the field existed). Reads the field only: no function of the module runs.
fn check_panic_strategy(module: &OcpModuleRef, label: &str, origin: &str) -> Result<(), LoadError> {
    let strategy = module.panic_strategy().map(|s| s.as_str());
    if strategy == Some(crate::abi::PANIC_UNWIND) {
        return Ok(());
    }
    let message = match strategy {
        Some(other) => format!(
            "plugin `{label}` ({origin}) was built with `panic = \"{other}\"`: its first panic would abort the whole osiris process, so it is not loaded"
        ),
        None => format!(
            "plugin `{label}` ({origin}) does not record its panic strategy (built with an osiris-plugin-sdk older than {}): a panic in it could abort the whole osiris process, so it is not loaded",
            crate::abi::SDK_VERSION
        ),
    };
    let mut error = LoadError::new(
        LoadErrorKind::PanicStrategy,
        message,
        Some(format!(
            "rebuild the plugin with `panic = \"unwind\"` (the default; check `[profile.*]` in its Cargo.toml) against osiris-plugin-sdk {}",
            sdk_minor()
        )),
    );
    // The strategy the module reports, for callers that word their own message.
    error.detail = strategy.map(str::to_string);
    Err(error)
}

/// One sentence for a failed `init_root_module`; abi_stable's full report goes to `detail` and the debug log.
fn summarise(error: LibraryError, origin: &str) -> LoadError {
    let full = error.to_string();
    let (kind, message, help) = match &error {
        LibraryError::AbiInstability(_) => (
            LoadErrorKind::Layout,
            format!(
                "plugin {origin} was built against an incompatible osiris-plugin-sdk ABI (type layout of `OcpModule` differs): rebuild it against osiris-plugin-sdk {}",
                sdk_minor()
            ),
            None,
        ),
        LibraryError::IncompatibleVersionNumber { actual_version, .. } => (
            LoadErrorKind::AbiVersion,
            format!(
                "plugin {origin} uses plugin ABI {} but this osiris supports ABI {}",
                actual_version.major,
                crate::abi::ABI_VERSION
            ),
            Some(format!(
                "rebuild it against osiris-plugin-sdk {}",
                sdk_minor()
            )),
        ),
        LibraryError::RootModule { .. } => (
            LoadErrorKind::Init,
            format!("plugin {origin} failed to initialise its module"),
            Some("this is a bug in the plugin: report it to its authors".to_string()),
        ),
        _ => (
            LoadErrorKind::Init,
            format!("plugin {origin} could not be loaded: {}", full.trim()),
            None,
        ),
    };
    tracing::debug!(plugin = %origin, detail = %full, "plugin load check failed");
    LoadError {
        kind,
        message,
        help,
        detail: Some(full),
    }
}

/// The path a test or tool would pass to [`Module::load`] for a cdylib named `name` in `dir`
/// (`lib<name>.so`, `lib<name>.dylib`).
pub fn library_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn module_is_send_and_sync() {
        assert_send_sync::<Module>();
    }

    #[test]
    fn a_missing_library_is_a_clear_open_error() {
        // SAFETY: no library is there to run: opening fails before any code is loaded.
        let err = unsafe {
            Module::load(
                Path::new("/nonexistent/libnothing.so"),
                "osiris_ocp_nothing",
            )
        }
        .unwrap_err();
        assert_eq!(err.kind, LoadErrorKind::Open);
        assert!(
            err.message
                .starts_with("cannot load plugin library `/nonexistent/libnothing.so`"),
            "{err}"
        );
    }
}
