//! Which plugin module runs which component: the linked-in first-party plugins (through the same entry a
//! loaded cdylib exports) and, unless disabled, the third-party plugins the plugin host loaded after its
//! trust checks.

use crate::exit::{Exit, Fail};
use osiris_plugin_sdk::host::Module;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

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
}

/// component name -> provider.
#[derive(Clone, Default)]
pub struct ModuleSet {
    by_component: BTreeMap<String, Provider>,
    /// Why a component has no provider, when a plugin for it was refused.
    refusals: BTreeMap<String, String>,
}

impl ModuleSet {
    /// Linked modules first; then loaded plugins for components no linked module offers.
    pub fn load(g: &crate::cli::Global) -> Result<ModuleSet, Fail> {
        let mut set = ModuleSet::default();
        for m in linked_modules() {
            let label = format!("{} {} (built-in)", m.plugin_name(), m.plugin_version());
            for c in m.components() {
                set.by_component.insert(
                    c.name.to_string(),
                    Provider {
                        module: m.clone(),
                        label: label.clone(),
                    },
                );
            }
        }
        if g.disable_plugins {
            return Ok(set);
        }
        let builtins = linked_component_names();
        let report = crate::plugins::load(g, &builtins)?;
        for l in &report.loaded {
            for (name, _, _) in &l.components {
                set.by_component
                    .entry(name.clone())
                    .or_insert_with(|| Provider {
                        module: l.module.clone(),
                        label: format!("{} {}", l.name, l.version),
                    });
            }
        }
        for c in &report.candidates {
            if let Some(d) = c.diagnostic() {
                for name in &c.components {
                    set.refusals
                        .entry(name.clone())
                        .or_insert_with(|| d.message.clone());
                }
            }
        }
        Ok(set)
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
                    },
                );
            }
        }
        set
    }

    /// Every runnable component with its provider, sorted by name.
    pub fn components(&self) -> impl Iterator<Item = (&String, &Provider)> {
        self.by_component.iter()
    }

    /// The provider of `component`, or an error naming the step and what to do.
    pub fn provider(&self, step: &str, component: &str) -> Result<Provider, Fail> {
        if let Some(p) = self.by_component.get(component) {
            return Ok(p.clone());
        }
        let why = match self.refusals.get(component) {
            Some(r) => format!("\n  = note: a plugin offering it was refused: {r}"),
            None => String::new(),
        };
        Err(Fail::new(
            Exit::Run,
            format!(
                "error[RUN-E002]: step `{step}` uses component `{component}`, but no loaded plugin runs it{why}\n  = help: `osiris plugins list` shows the installed plugins; built-in components: {}",
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
/// metrics, never cancelled; logs go to tracing, masked.
pub struct OneShotCtx {
    pub connection: serde_json::Value,
    pub redactor: Arc<crate::secrets::Redactor>,
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
        false
    }
    fn connection(&self) -> Option<serde_json::Value> {
        Some(self.connection.clone())
    }
}
