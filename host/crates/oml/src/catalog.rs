//! What the validator and the compiler need to know about components, as a narrow trait over the registry.
//!
//! The registry implements it (below); unit tests use a small in-memory catalogue.

use osiris_core::diag::Diagnostic;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Override {
    Allowed,
    Forbidden,
    Warning,
}

/// The parts of a component spec the compiler uses.
#[derive(Debug, Clone)]
pub struct SpecView<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub modes: &'a [String],
    pub config_schema: &'a Value,
    /// JSON Pointers into the step config that hold secrets.
    pub secret_pointers: &'a [String],
    pub connection_fields: Vec<(&'a str, Override)>,
    pub driver: &'a str,
    /// `sha256:<hex>` of the canonical spec.
    pub fingerprint: &'a str,
}

/// A config problem found by checking a step config against the spec's `configSchema`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON Pointer into the step config ("" for the config itself).
    pub pointer: String,
    pub message: String,
    pub help: Option<String>,
}

pub trait Catalog {
    fn spec(&self, name: &str) -> Option<SpecView<'_>>;
    fn validate_config(&self, name: &str, config: &Value) -> Vec<Problem>;
    /// The "unknown component" diagnostic with a did-you-mean; the caller adds the location.
    fn unknown_component(&self, name: &str) -> Diagnostic;
}

impl Catalog for osiris_registry::Registry {
    fn spec(&self, name: &str) -> Option<SpecView<'_>> {
        use osiris_registry::OverridePolicy;
        let s = self.get(name)?;
        Some(SpecView {
            name: &s.name,
            version: &s.version,
            modes: &s.modes,
            config_schema: &s.config_schema,
            secret_pointers: &s.secret_pointers,
            connection_fields: s
                .connection_fields
                .iter()
                .map(|f| {
                    let p = match f.policy {
                        OverridePolicy::Allowed => Override::Allowed,
                        OverridePolicy::Forbidden => Override::Forbidden,
                        OverridePolicy::Warning => Override::Warning,
                    };
                    (f.name.as_str(), p)
                })
                .collect(),
            driver: &s.driver,
            fingerprint: &s.fingerprint,
        })
    }

    fn validate_config(&self, name: &str, config: &Value) -> Vec<Problem> {
        osiris_registry::Registry::validate_config(self, name, config)
            .into_iter()
            .map(|p| Problem {
                pointer: p.pointer,
                message: p.message,
                help: p.help,
            })
            .collect()
    }

    fn unknown_component(&self, name: &str) -> Diagnostic {
        osiris_registry::Registry::unknown_component(self, name)
    }
}
