//! Which plugin module runs which component: the linked-in first-party plugins (through the same entry a
//! loaded cdylib exports) and, unless disabled, the third-party plugins the plugin host verified. A plugin is
//! loaded (library hash, then `dlopen` of the hashed bytes) only when a component of it is asked for, so a run
//! loads exactly the plugins its steps use.

use osiris_core::codes::Code;
use osiris_core::exit::{Exit, Fail};
use osiris_plugin_sdk::host::Module;
use osiris_registry::{Registry, Source};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

/// The plugins linked into this binary, loaded once per process through `Module::from_static`.
pub fn linked_modules() -> &'static [Arc<Module>] {
    static MODULES: OnceLock<Vec<Arc<Module>>> = OnceLock::new();
    MODULES.get_or_init(|| {
        let entries: &[&'static osiris_plugin_sdk::StaticEntry] = &[
            &osiris_plugin_csv::OCP_ENTRY,
            &osiris_plugin_postgres::OCP_ENTRY,
            &osiris_plugin_mysql::OCP_ENTRY,
            &osiris_plugin_graphql::OCP_ENTRY,
            #[cfg(feature = "duckdb")]
            &osiris_plugin_duckdb::OCP_ENTRY,
        ];
        entries
            .iter()
            .copied()
            .filter_map(|e| match Module::from_static(e) {
                Ok(m) => Some(Arc::new(m)),
                Err(err) => {
                    tracing::error!(error = %err, "a linked-in plugin failed to initialise (this is a bug: please report it)");
                    None
                }
            })
            .collect()
    })
}

/// Components whose driver is linked into this binary, as the linked plugin modules report them.
pub fn linked_components() -> &'static [&'static str] {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = linked_modules()
            .iter()
            .flat_map(|m| m.components().iter().map(|c| c.name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    })
}

/// The registry the commands use: built-in specs, with linked-in components marked runnable, and the verified
/// specs of plugins (no plugin library is read or loaded).
pub fn build_registry(global: &osiris_core::Global) -> Registry {
    registry_from(global, verify_plugins(global))
}

/// The plugin checks [`build_registry`] makes (manifest, signature, spec hashes; no library read), without
/// registering anything.
pub fn verify_plugins(global: &osiris_core::Global) -> Result<osiris_plugins::Report, Fail> {
    osiris_plugins::verify(global, &linked_component_names())
}

/// The fingerprints of every spec [`registry_from`] would be offered for `verified` (built-in and verified
/// plugin specs), from parsing alone: what a cache of something derived from the registry is keyed by.
pub fn offered_fingerprints(verified: &Result<osiris_plugins::Report, Fail>) -> Vec<String> {
    let mut fps: Vec<String> = osiris_registry::BUILTIN_SPECS
        .iter()
        .filter_map(|(_, file, text)| osiris_registry::spec_fingerprint(file, text))
        .collect();
    if let Ok(report) = verified {
        for (label, text) in report.verified_specs() {
            // A spec that does not parse is refused by the registry; its text still tells the caches apart.
            fps.push(
                osiris_registry::spec_fingerprint(&label, text).unwrap_or_else(|| {
                    osiris_registry::fingerprint(&serde_json::Value::String(text.to_string()))
                }),
            );
        }
    }
    fps
}

/// [`build_registry`] from plugins already verified by [`verify_plugins`].
pub fn registry_from(
    global: &osiris_core::Global,
    verified: Result<osiris_plugins::Report, Fail>,
) -> Registry {
    let mut reg = Registry::builtin();
    for name in linked_components() {
        reg.set_runnable(name, Source::Builtin);
    }
    // Plugins that pass every check that needs no library (manifest, signature, spec hashes; see
    // `osiris_plugins::extend_registry`) add their verified spec files (source = plugin name). No library is
    // read or loaded here: the library hash is checked where a driver runs. A refused plugin is reported as a
    // notice and never stops the command.
    let verified = verified.map(|mut report| {
        osiris_plugins::register_specs(&mut report, &mut reg);
        report
    });
    report_plugin_problems(global, &verified);
    reg
}

/// Reports refused plugins (or why none was verified) as notices, unless `--quiet`: what [`build_registry`]
/// says on the way to any command's result.
pub fn report_plugin_problems(
    global: &osiris_core::Global,
    verified: &Result<osiris_plugins::Report, Fail>,
) {
    if global.quiet {
        return;
    }
    match verified {
        Ok(report) => {
            for n in osiris_plugins::problem_notices(report) {
                osiris_core::notice::warn(&n);
            }
        }
        Err(fail) => osiris_core::notice::warn(&format!(
            "warning: plugins not loaded: {}",
            fail.message.trim_end()
        )),
    }
}

/// Names of the components the linked modules offer.
pub fn linked_component_names() -> BTreeSet<String> {
    linked_modules()
        .iter()
        .flat_map(|m| m.components().iter().map(|c| c.name.to_string()))
        .collect()
}

/// A resolved component: the module and a label for messages (`osiris-csv 0.1.0 (built-in)`).
#[derive(Clone)]
pub struct Provider {
    pub module: Arc<Module>,
    pub label: String,
    /// How the plugin was trusted, for the run's record: `built-in`, or its signature status and key id.
    pub signature: String,
}

/// The signature of a loaded plugin as its candidate recorded it (`valid (key <id>)`, `missing`, ...).
fn signature_of(report: &osiris_plugins::Report, name: &str, version: &str) -> String {
    report
        .candidates
        .iter()
        .find(|c| c.name == name && c.version.as_deref() == Some(version))
        .map(|c| match &c.signature.key_id {
            Some(k) => format!("{} (key {k})", c.signature.status.as_str()),
            None => c.signature.status.as_str().to_string(),
        })
        .unwrap_or_else(|| "unknown".to_string())
}

/// component name -> provider.
#[derive(Clone, Default)]
pub struct ModuleSet {
    /// Linked modules, and plugins loaded up front by [`ModuleSet::load_where`].
    by_component: BTreeMap<String, Provider>,
    /// The verified plugins (steps 1–3 of the plugin host; no library read yet): [`ModuleSet::provider`] loads the
    /// one offering a component on first use, and names its refusal when it has none.
    plugins: Option<Arc<Mutex<osiris_plugins::Report>>>,
    /// A load started ahead by [`ModuleSet::load_ahead`]; [`ModuleSet::provider`] waits for it first.
    ahead: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl ModuleSet {
    /// Linked modules, and the plugins that pass every check needing no library; none is loaded yet: the first
    /// [`ModuleSet::provider`] call for one of a plugin's components checks its library hash and loads it. The
    /// runner's preflight asks for every step's provider before any step runs, so a run loads exactly the plugins
    /// its manifest uses, and a refusal fails the run before anything started.
    pub fn load(g: &osiris_core::Global) -> Result<ModuleSet, Fail> {
        ModuleSet::load_where(g, |_| false)
    }

    /// As [`ModuleSet::load`], and loads now the plugins providing a component `wanted` selects, so that
    /// [`ModuleSet::components`] lists them (discovery and `connections doctor` choose among a family's
    /// components).
    pub fn load_where(
        g: &osiris_core::Global,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<ModuleSet, Fail> {
        let mut set = ModuleSet::linked_only();
        if g.disable_plugins {
            return Ok(set);
        }
        let mut report = osiris_plugins::verify(g, &linked_component_names())?;
        report.load_where(&wanted);
        for l in &report.loaded {
            for (name, _, _) in &l.components {
                set.by_component
                    .entry(name.clone())
                    .or_insert_with(|| Provider {
                        module: l.module.clone(),
                        label: format!("{} {}", l.name, l.version),
                        signature: signature_of(&report, &l.name, &l.version),
                    });
            }
        }
        set.plugins = Some(Arc::new(Mutex::new(report)));
        Ok(set)
    }

    /// Starts checking and loading, on a thread of its own, the plugins providing `components` (a run's steps),
    /// so that hashing and `dlopen` overlap with what the command does before its first [`ModuleSet::provider`]
    /// call (building the registry, preparing the run directory). The checks and the load are the same as on
    /// first use, in the same order (no plugin code before every check passed), and their outcome is the
    /// same: [`ModuleSet::provider`] waits for this load and then finds the plugin loaded or refused.
    pub fn load_ahead<'a>(&self, components: impl IntoIterator<Item = &'a str>) {
        let Some(plugins) = &self.plugins else {
            return;
        };
        let wanted: BTreeSet<String> = components
            .into_iter()
            .filter(|c| !self.by_component.contains_key(*c))
            .map(str::to_string)
            .collect();
        if wanted.is_empty() {
            return;
        }
        let plugins = plugins.clone();
        let spawned = std::thread::Builder::new()
            .name("osiris-plugin-load".into())
            .spawn(move || {
                let mut report = plugins.lock().unwrap_or_else(|e| e.into_inner());
                report.load_where(|n| wanted.contains(n));
            });
        // Without a thread the plugins load on first use, as they would without this call.
        if let Ok(handle) = spawned {
            *self.ahead.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
    }

    pub fn linked_only() -> ModuleSet {
        let mut set = ModuleSet::default();
        for m in linked_modules() {
            let label = format!("{} {} (built-in)", m.plugin_name(), m.plugin_version());
            for c in m.components() {
                set.by_component.insert(
                    c.name.to_string(),
                    Provider {
                        module: m.clone(),
                        label: label.clone(),
                        signature: "built-in (linked into the binary)".to_string(),
                    },
                );
            }
        }
        set
    }

    /// Every component with a loaded provider (linked, or a plugin loaded by [`ModuleSet::load_where`]), sorted
    /// by name.
    pub fn components(&self) -> impl Iterator<Item = (&String, &Provider)> {
        self.by_component.iter()
    }

    /// The provider of `component`, loading the verified plugin offering it on first use (library hash, load,
    /// cross-check), or an error naming the step, the plugin's refusal if any, and what to do.
    pub fn provider(&self, step: &str, component: &str) -> Result<Provider, Fail> {
        if let Some(p) = self.by_component.get(component) {
            return Ok(p.clone());
        }
        let ahead = self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = ahead {
            // Whatever it did is in the report (loaded or refused); a panic in it left the plugin unloaded,
            // and the load below tries again and reports it.
            let _ = handle.join();
        }
        let mut why = String::new();
        if let Some(plugins) = &self.plugins {
            let mut report = plugins.lock().unwrap_or_else(|e| e.into_inner());
            report.load_where(|n| n == component);
            if let Some(l) = report.loaded_for(component) {
                return Ok(Provider {
                    module: l.module.clone(),
                    label: format!("{} {}", l.name, l.version),
                    signature: signature_of(&report, &l.name, &l.version),
                });
            }
            if let Some(c) = report.refusal_for(component)
                && let (Some(code), Some(reason)) = (c.code, &c.reason)
            {
                why = format!(
                    "\n  = note: a plugin offering it was refused: error[{code}]: {reason}"
                );
            }
        }
        Err(Fail::new(
            Exit::Run,
            format!(
                "error[{}]: step `{step}` uses component `{component}`, but no loaded plugin runs it{why}\n  = help: `osiris plugins list` shows the installed plugins; built-in components: {}",
                Code::RUN_E002,
                self.by_component
                    .keys()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

/// The context of a one-off driver call outside a run (`doctor`, `discover`): the resolved connection, no
/// metrics, cancelled by SIGINT/SIGTERM (see [`super::cancel::interruptible`]); logs go to tracing, masked.
pub struct OneShotCtx {
    pub connection: serde_json::Value,
    pub redactor: Arc<osiris_core::secrets::Redactor>,
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl osiris_plugin_sdk::ContextBackend for OneShotCtx {
    fn log(&self, level: osiris_plugin_sdk::Level, message: &str) {
        use osiris_plugin_sdk::Level;
        let m = self.redactor.text(message);
        match level {
            Level::Error | Level::Warn => tracing::warn!("{m}"),
            Level::Info => tracing::info!("{m}"),
            _ => tracing::debug!("{m}"),
        }
    }
    fn metric(&self, _: &str, _: f64, _: Option<&str>) {}
    fn is_cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn connection(&self) -> Option<serde_json::Value> {
        Some(self.connection.clone())
    }
}
