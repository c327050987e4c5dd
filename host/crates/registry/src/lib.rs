//! `osiris-registry`: the component registry, the catalogue of components built from their `spec.yaml` files.
//!
//! Owns: parsing and checking specs, validating a step's configuration against its component's schema, secret
//! maps, connection-field rules. Depends on `osiris-core` only. May not: load plugins, read osiris.yaml or the
//! environment, or print. `osiris-plugins` adds the verified specs of plugins
//! ([`Registry::load_specs_all_or_nothing`]); the runner's `modules::build_registry` assembles the registry the
//! commands use.
//!
//! **Invariant:** this crate is the only code that parses `spec.yaml`. Everything else asks the registry.
//!
//! - [`osiris_core::yaml`] (shared with OML, [`Flavor::Spec`](osiris_core::yaml::Flavor::Spec)) parses YAML keeping the
//!   line and column of every node;
//! - [`check`] validates a spec against `components/spec.schema.json` and the semantic rules, reporting every
//!   problem at once with file:line:col and a fix;
//! - [`describe`] turns JSON Schema errors into words (shared by spec and step-configuration checks).
//!
//! Built-in specs are embedded with `include_str!` ([`BUILTIN_SPECS`]) and trusted at startup (a unit test
//! validates each one strictly), so `osiris components list` does not compile a single schema. Compiled
//! configuration validators and secret maps are built on first use and cached by spec fingerprint.

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod check;
pub mod describe;
pub mod docs;

pub use check::Level;

use osiris_core::codes::Code;
use osiris_core::diag::{Diagnostic, did_you_mean};
use osiris_core::yaml;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            concat!("components/", $name, "/spec.yaml"),
            include_str!(concat!("../../../../components/", $name, "/spec.yaml")),
        )
    };
}

/// The first-party catalogue, one line per component: (name, file label, spec text).
/// **Invariant:** a built-in spec is valid at level `strict` (checked by `builtin_specs_are_strictly_valid`).
pub const BUILTIN_SPECS: &[(&str, &str, &str)] = &[
    builtin!("duckdb.processor"),
    builtin!("filesystem.csv_extractor"),
    builtin!("filesystem.csv_writer"),
    builtin!("graphql.extractor"),
    builtin!("mysql.extractor"),
    builtin!("mysql.writer"),
    builtin!("postgres.extractor"),
    builtin!("postgres.writer"),
    builtin!("supabase.extractor"),
    builtin!("supabase.writer"),
];

/// Where a spec came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    Plugin { name: String, version: String },
}

impl Source {
    /// `builtin` or the plugin name, as shown by `components list`.
    pub fn label(&self) -> &str {
        match self {
            Source::Builtin => "builtin",
            Source::Plugin { name, .. } => name,
        }
    }
}

/// Whether a step that references a connection may set a connection field itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverridePolicy {
    Allowed,
    Forbidden,
    Warning,
}

/// A configuration field a connection can supply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionField {
    pub name: String,
    pub policy: OverridePolicy,
}

/// How secret values are redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    Mask,
    Hash,
    Drop,
}

/// One component, as its spec describes it.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    pub name: String,
    pub version: String,
    pub title: String,
    pub description: String,
    pub modes: Vec<String>,
    pub capabilities: BTreeMap<String, bool>,
    pub config_schema: Value,
    /// `secrets` ∪ `x-secret` ∪ `redaction.extras`: JSON Pointers into the step configuration, sorted, unique.
    pub secret_pointers: Vec<String>,
    pub strategy: Strategy,
    pub mask: String,
    pub connection_fields: Vec<ConnectionField>,
    /// Each `{title, config, notes?}`.
    pub examples: Vec<Value>,
    /// `x-runtime.driver`, defaulting to the component name.
    pub driver: String,
    pub min_osiris_version: Option<semver::Version>,
    pub max_osiris_version: Option<semver::Version>,
    /// The whole spec as JSON.
    pub raw: Value,
    /// The YAML text exactly as loaded.
    pub text: Arc<str>,
    /// Label of the file, e.g. `components/mysql.extractor/spec.yaml`.
    pub file: String,
    /// `sha256:<hex>` of the canonical JSON of `raw` (sorted keys, no whitespace).
    pub fingerprint: String,
    pub source: Source,
    /// A driver exists for it: linked in, or in a plugin that passed the checks that need no library (its
    /// library is hashed and loaded when a command runs the component).
    pub runnable: bool,
}

impl ComponentSpec {
    /// Builds the typed view of a spec that passed [`check`] (missing optional parts get their defaults).
    pub fn from_raw(raw: Value, text: &str, file: &str, source: Source) -> ComponentSpec {
        let s = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let name = s("name");
        let mut secret_pointers = strings(raw.get("secrets"));
        secret_pointers.extend(strings(raw.get("x-secret")));
        secret_pointers.extend(strings(raw.pointer("/redaction/extras")));
        secret_pointers.sort();
        secret_pointers.dedup();
        let strategy = match raw.pointer("/redaction/strategy").and_then(Value::as_str) {
            Some("hash") => Strategy::Hash,
            Some("drop") => Strategy::Drop,
            _ => Strategy::Mask,
        };
        let mask = raw
            .pointer("/redaction/mask")
            .and_then(Value::as_str)
            .unwrap_or("***")
            .to_string();
        let connection_fields = raw
            .get("x-connection-fields")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| match f {
                        Value::String(n) => Some(ConnectionField {
                            name: n.clone(),
                            policy: OverridePolicy::Allowed,
                        }),
                        Value::Object(o) => Some(ConnectionField {
                            name: o.get("name")?.as_str()?.to_string(),
                            policy: match o.get("override").and_then(Value::as_str) {
                                Some("forbidden") => OverridePolicy::Forbidden,
                                Some("warning") => OverridePolicy::Warning,
                                _ => OverridePolicy::Allowed,
                            },
                        }),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let version_at = |p: &str| {
            raw.pointer(p)
                .and_then(Value::as_str)
                .and_then(|v| semver::Version::parse(v).ok())
        };
        let driver = raw
            .pointer("/x-runtime/driver")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| name.clone());
        ComponentSpec {
            version: s("version"),
            title: s("title"),
            description: s("description"),
            modes: strings(raw.get("modes")),
            capabilities: raw
                .get("capabilities")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_bool()?)))
                        .collect()
                })
                .unwrap_or_default(),
            config_schema: raw.get("configSchema").cloned().unwrap_or(Value::Null),
            secret_pointers,
            strategy,
            mask,
            connection_fields,
            examples: raw
                .get("examples")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            driver,
            min_osiris_version: version_at("/x-runtime/min_osiris_version"),
            max_osiris_version: version_at("/x-runtime/max_osiris_version"),
            fingerprint: fingerprint(&raw),
            name,
            text: Arc::from(text),
            file: file.to_string(),
            source,
            runnable: false,
            raw,
        }
    }

    /// The `config` of example `index` as YAML, keys in the order the spec writes them.
    pub fn example_config_yaml(&self, index: usize) -> Option<String> {
        let doc: serde_yaml::Value = serde_yaml::from_str(&self.text).ok()?;
        let config = doc.get("examples")?.get(index)?.get("config")?;
        serde_yaml::to_string(config).ok()
    }

    /// `version` lies within `x-runtime.min_osiris_version ..= max_osiris_version` (open ends allowed).
    pub fn works_with(&self, version: &semver::Version) -> bool {
        self.min_osiris_version
            .as_ref()
            .is_none_or(|min| version >= min)
            && self
                .max_osiris_version
                .as_ref()
                .is_none_or(|max| version <= max)
    }

    pub fn supports_mode(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m == mode)
    }
}

/// Secret fields of a component's configuration and how to redact them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretMap {
    /// JSON Pointers into the step configuration; a pointer to an object covers everything inside it.
    pub pointers: Vec<String>,
    pub strategy: Strategy,
    pub mask: String,
}

impl SecretMap {
    /// The field at `pointer` is secret (it is, or lies inside, a secret pointer).
    pub fn covers(&self, pointer: &str) -> bool {
        self.pointers.iter().any(|p| {
            pointer == p
                || pointer
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// One problem with a step configuration, found by the component's `configSchema`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// JSON Pointer into the configuration: the offending field, or for a missing field the object lacking
    /// it (`""` for the top level; the message names the field).
    pub pointer: String,
    /// Lower-case, identifiers in backticks; never contains the value of a secret field.
    pub message: String,
    /// One concrete fix: allowed values, did-you-mean for unknown fields, the field's description.
    pub help: Option<String>,
    /// `CFG-E0xx`, documented in docs/errors.md.
    pub code: Code,
}

/// The catalogue of components, sorted by name.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    specs: BTreeMap<String, ComponentSpec>,
}

impl Registry {
    /// The first-party catalogue from `components/*/spec.yaml`, embedded at build time.
    pub fn builtin() -> Registry {
        let mut reg = Registry::default();
        for (name, file, text) in BUILTIN_SPECS {
            // Trusted: `builtin_specs_are_strictly_valid` checks each one; only parsing happens here.
            match yaml::SourceDoc::parse(file, text, yaml::Flavor::Spec) {
                Ok(doc) => {
                    let spec = ComponentSpec::from_raw(doc.value, text, file, Source::Builtin);
                    debug_assert_eq!(
                        &spec.name, name,
                        "{file}: name does not match its directory"
                    );
                    reg.specs.insert(spec.name.clone(), spec);
                }
                Err(d) => {
                    tracing::error!(error = %d.message, file, "built-in spec does not parse: this is a bug, please report it")
                }
            }
        }
        reg
    }

    /// Validates a spec (level `enhanced`) and adds it. A spec with the same name and the same content is
    /// accepted again (the same plugin seen twice); a different spec under a taken name is refused.
    pub fn load_spec_text(
        &mut self,
        file_label: &str,
        text: &str,
        source: Source,
    ) -> Result<&ComponentSpec, Vec<Diagnostic>> {
        let report = check::check_text(file_label, text, Level::Enhanced, source);
        for w in report.diagnostics.iter().filter(|d| !d.is_error()) {
            tracing::warn!(file = file_label, code = %w.code, "{}", w.message);
        }
        let errors: Vec<Diagnostic> = report
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .cloned()
            .collect();
        let spec = match report.spec {
            Some(spec) if errors.is_empty() => spec,
            _ => return Err(errors),
        };
        let this = semver::Version::parse(env!("CARGO_PKG_VERSION"))
            .unwrap_or_else(|_| semver::Version::new(0, 0, 0));
        if !spec.works_with(&this) {
            let at = report
                .doc_spans
                .as_ref()
                .map(|s| s.locate("/x-runtime"))
                .unwrap_or(yaml::Pos {
                    line: 1,
                    col: 1,
                    len: 1,
                });
            let range = match (&spec.min_osiris_version, &spec.max_osiris_version) {
                (Some(a), Some(b)) => format!(">= {a}, <= {b}"),
                (Some(a), None) => format!(">= {a}"),
                (None, Some(b)) => format!("<= {b}"),
                (None, None) => String::new(),
            };
            return Err(vec![
                Diagnostic::error(
                    Code::SPEC_E037,
                    format!(
                        "component `{}` needs osiris {range}; this is osiris {this}",
                        spec.name
                    ),
                )
                .at(file_label, at.line, at.col)
                .label("version range excludes this osiris", at.len)
                .component(&spec.name)
                .help("upgrade osiris, or use a release of the plugin built for this version"),
            ]);
        }
        if let Some(existing) = self.specs.get(&spec.name)
            && existing.fingerprint != spec.fingerprint
        {
            let at = report
                .doc_spans
                .as_ref()
                .map(|s| s.locate("/name"))
                .unwrap_or(yaml::Pos {
                    line: 1,
                    col: 1,
                    len: 1,
                });
            return Err(vec![
                Diagnostic::error(
                    Code::SPEC_E038,
                    format!("component `{}` is already registered", spec.name),
                )
                .at(file_label, at.line, at.col)
                .label("name taken", at.len)
                .help(format!(
                    "`{}` comes from {} (`{}`); rename this component or remove one of the two",
                    spec.name,
                    existing.source.label(),
                    existing.file
                )),
            ]);
        }
        let name = spec.name.clone();
        let runnable = self.specs.get(&name).is_some_and(|e| e.runnable);
        let entry = self.specs.entry(name).or_insert(spec);
        entry.runnable |= runnable;
        Ok(entry)
    }

    /// Validates and adds one plugin's specs, all or nothing: when any spec is refused, the specs of this call
    /// already added are taken out again and every problem is returned. (No copy of the registry: listing many
    /// plugins stays linear in their number.)
    pub fn load_specs_all_or_nothing(
        &mut self,
        specs: &[(String, &str)],
        source: &Source,
    ) -> Result<(), Vec<Diagnostic>> {
        let mut added = Vec::new();
        let mut problems = Vec::new();
        for (label, text) in specs {
            let before = self.specs.len();
            match self.load_spec_text(label, text, source.clone()) {
                Ok(spec) => {
                    let name = spec.name.clone();
                    if self.specs.len() > before {
                        added.push(name);
                    }
                }
                Err(diags) => problems.extend(diags),
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        for name in added {
            self.specs.remove(&name);
        }
        Err(problems)
    }

    /// Marks a component runnable: a driver for it is linked in or provided by the plugin `source`.
    pub fn set_runnable(&mut self, name: &str, source: Source) {
        if let Some(spec) = self.specs.get_mut(name) {
            spec.runnable = true;
            spec.source = source;
        }
    }

    pub fn get(&self, name: &str) -> Option<&ComponentSpec> {
        self.specs.get(name)
    }

    /// Every component, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &ComponentSpec> {
        self.specs.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.specs.keys().map(String::as_str)
    }

    /// `unknown component` with did-you-mean; the caller adds file, line, column and step.
    pub fn unknown_component(&self, name: &str) -> Diagnostic {
        let hint = match did_you_mean(name, self.names()) {
            Some(m) => format!("did you mean `{m}`? `osiris components list` shows all components"),
            None => "`osiris components list` shows all components".to_string(),
        };
        Diagnostic::error(Code::OML_E104, format!("unknown component `{name}`"))
            .label("not in the registry", name.chars().count())
            .help(hint)
    }

    /// Checks a step configuration against the component's `configSchema` (validator compiled once per spec
    /// fingerprint). Values of secret fields never appear in the problems.
    pub fn validate_config(&self, name: &str, config: &Value) -> Vec<ConfigProblem> {
        let Some(spec) = self.get(name) else {
            let d = self.unknown_component(name);
            return vec![ConfigProblem {
                pointer: String::new(),
                message: d.message,
                help: d.help,
                code: d.code,
            }];
        };
        let validator = match config_validator(spec) {
            Ok(v) => v,
            Err(message) => {
                return vec![ConfigProblem {
                    pointer: String::new(),
                    message: format!("`configSchema` of `{name}` does not compile: {message}"),
                    help: Some("this is a bug in the component spec: `osiris components validate` shows the problem; please report it".to_string()),
                    code: Code::CFG_E010,
                }];
            }
        };
        let secrets = self.secret_map(name);
        let hide = |p: &str| secrets.as_ref().is_some_and(|s| s.covers(p));
        config_problems(&validator, &spec.config_schema, config, &hide)
    }

    /// Secret pointers and redaction policy of a component; cached by spec fingerprint.
    pub fn secret_map(&self, name: &str) -> Option<SecretMap> {
        let spec = self.get(name)?;
        let cache = SECRET_MAPS.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        let map = cache.entry(spec.fingerprint.clone()).or_insert_with(|| {
            Arc::new(SecretMap {
                pointers: spec.secret_pointers.clone(),
                strategy: spec.strategy,
                mask: spec.mask.clone(),
            })
        });
        Some(SecretMap::clone(map))
    }
}

static SECRET_MAPS: OnceLock<Mutex<HashMap<String, Arc<SecretMap>>>> = OnceLock::new();
static CONFIG_VALIDATORS: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    OnceLock::new();

/// The compiled `configSchema` of a spec, built once per fingerprint.
fn config_validator(spec: &ComponentSpec) -> Result<Arc<jsonschema::Validator>, String> {
    let cache = CONFIG_VALIDATORS.get_or_init(Default::default);
    if let Some(v) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&spec.fingerprint)
    {
        return Ok(v.clone());
    }
    // compiled outside the lock: another thread may do the same work, the result is identical
    let v = Arc::new(compile_config_schema(&spec.config_schema)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(spec.fingerprint.clone(), v.clone());
    Ok(v)
}

/// Compiles a `configSchema` (draft 2020-12, no remote references, formats asserted).
pub(crate) fn compile_config_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.masked().to_string())
}

pub(crate) fn config_problems(
    validator: &jsonschema::Validator,
    schema: &Value,
    config: &Value,
    hide: &dyn Fn(&str) -> bool,
) -> Vec<ConfigProblem> {
    let ctx = describe::Ctx {
        root_schema: schema,
        instance: config,
        noun: "field",
        hide,
    };
    describe::describe_all(&ctx, validator.iter_errors(config))
        .into_iter()
        .map(|p| ConfigProblem {
            pointer: p.pointer,
            message: p.message,
            help: p.help,
            code: p.kind.config_code(),
        })
        .collect()
}

/// The fingerprint a spec text would have in the registry ([`ComponentSpec::fingerprint`]), from parsing
/// alone: nothing is checked or compiled. `None` when the text does not parse (the registry would refuse it).
pub fn spec_fingerprint(file: &str, text: &str) -> Option<String> {
    let doc = yaml::SourceDoc::parse(file, text, yaml::Flavor::Spec).ok()?;
    Some(fingerprint(&doc.value))
}

/// `sha256:<hex>` of the canonical JSON of `v`.
pub fn fingerprint(v: &Value) -> String {
    let mut s = String::new();
    canonical_json(v, &mut s);
    format!("sha256:{}", hex::encode(Sha256::digest(s.as_bytes())))
}

/// Canonical JSON: keys sorted by their UTF-8 bytes, no whitespace.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&o[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
