//! The author test kit (feature `testing`): check a spec, load the built cdylib through the real loading path,
//! run a component on in-memory batches and collect what it produced.
//!
//! ```ignore
//! use osiris_plugin_sdk::testing::{self, TestContext};
//!
//! #[test]
//! fn spec_is_valid() {
//!     testing::check_spec(include_str!("../spec.yaml")).unwrap();
//! }
//!
//! #[test]
//! fn passes_rows_through() {
//!     let module = testing::load_cdylib(&path_to_built_cdylib, "osiris_ocp_acme").unwrap();
//!     let ctx = TestContext::new();
//!     let out = testing::run_collect(&module, "acme.processor", &serde_json::json!({}), ctx.clone(),
//!         testing::single_input(vec![batch])).unwrap();
//!     assert_eq!(out["df"][0].num_rows(), 3);
//! }
//! ```
//!
//! [`Compliance`] runs the checks every driver must pass (spec, valid run, schemas, metrics, error kinds,
//! cancellation, no panic, no secret in logs or errors) and reports them all at once.

mod compliance;

pub use compliance::{Case, CheckResult, Compliance, Outcome, Report, Role, checks};

use crate::driver::{BatchStream, Context, ContextBackend, Level, PluginError, Streams};
use crate::host::{LoadError, Module};
use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use arrow_schema::SchemaRef;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Checks a component spec the way an author needs before publishing: the YAML parses; `name`, `version`,
/// `modes` and `configSchema` are present and well-formed; `configSchema` is a valid JSON Schema; every example's
/// `config` validates against it. Returns the spec as JSON, or every problem found (not just the first).
///
/// The registry of the host applies the full `spec.schema.json`; this is the author-side subset that catches
/// the usual mistakes without needing the host.
pub fn check_spec(spec_yaml: &str) -> Result<Value, Vec<String>> {
    let spec: Value = match serde_yaml::from_str(spec_yaml) {
        Ok(v) => v,
        Err(e) => return Err(vec![format!("the spec is not valid YAML: {e}")]),
    };
    let Some(map) = spec.as_object() else {
        return Err(vec![
            "the spec must be a mapping (name, version, modes, configSchema, ...)".to_string(),
        ]);
    };
    let mut problems = Vec::new();
    match map.get("name").and_then(Value::as_str) {
        None => problems.push("`name` is missing: set it to `family.role`, e.g. `acme.extractor`".to_string()),
        Some(name) if !is_component_name(name) => problems.push(format!(
            "`name` is `{name}` but must be `family.role` in lower case (letters, digits, `_`), e.g. `acme.extractor`"
        )),
        Some(_) => {}
    }
    match map.get("version") {
        None => problems.push("`version` is missing: set it to a semantic version, e.g. \"0.1.0\"".to_string()),
        Some(Value::String(v)) if is_semver(v) => {}
        Some(other) => problems.push(format!(
            "`version` is {other} but must be a semantic version string such as \"1.2.3\" (quote it in YAML)"
        )),
    }
    match map.get("modes").and_then(Value::as_array) {
        None => problems.push(
            "`modes` is missing: list at least one of `extract`, `write`, `transform`, `discover`"
                .to_string(),
        ),
        Some(modes) if modes.is_empty() => {
            problems.push("`modes` is empty: list at least one mode".to_string())
        }
        Some(modes) => {
            for (i, mode) in modes.iter().enumerate() {
                if !mode.is_string() {
                    problems.push(format!("`modes[{i}]` is {mode} but must be a string"));
                }
            }
        }
    }
    let validator = match map.get("configSchema") {
        None => {
            problems.push(
                "`configSchema` is missing: describe the step's config as a JSON Schema object"
                    .to_string(),
            );
            None
        }
        Some(schema) if !schema.is_object() => {
            problems.push(
                "`configSchema` must be a JSON Schema object (`type: object`, `properties: ..`)"
                    .to_string(),
            );
            None
        }
        Some(schema) => match jsonschema::validator_for(schema) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("`configSchema` is not a valid JSON Schema: {e}"));
                None
            }
        },
    };
    if let Some(examples) = map.get("examples") {
        match examples.as_array() {
            None => problems.push("`examples` must be a list of `{title, config}`".to_string()),
            Some(examples) => {
                for (i, example) in examples.iter().enumerate() {
                    let title = example
                        .get("title")
                        .and_then(Value::as_str)
                        .unwrap_or("untitled");
                    let Some(config) = example.get("config") else {
                        problems.push(format!("`examples[{i}]` (`{title}`) has no `config`"));
                        continue;
                    };
                    if let Some(validator) = &validator {
                        for error in validator.iter_errors(config) {
                            let at = error.instance_path().as_str();
                            let at = if at.is_empty() { "/" } else { at };
                            problems.push(format!(
                                "`examples[{i}]` (`{title}`) does not match `configSchema` at `{at}`: {error}"
                            ));
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(problems)
    }
}

fn is_component_name(name: &str) -> bool {
    let part = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    matches!(name.split_once('.'), Some((family, role)) if part(family) && part(role))
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Checks every component a module offers: its spec passes [`check_spec`] and names the component.
pub fn check_module(module: &Module) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if module.components().is_empty() {
        problems.push(format!(
            "plugin `{}` offers no component",
            module.plugin_name()
        ));
    }
    for component in module.components() {
        match check_spec(&component.spec_yaml) {
            Ok(spec) => {
                let named = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                if named != component.name {
                    problems.push(format!(
                        "component `{}` embeds a spec named `{named}`: the two must be equal",
                        component.name
                    ));
                }
            }
            Err(errors) => problems.extend(
                errors
                    .into_iter()
                    .map(|e| format!("component `{}`: {e}", component.name)),
            ),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Loads a built plugin cdylib through the same path the host uses (`host::Module::load`).
///
/// Meant for tests of the plugin's own build output: loading runs the library's code.
pub fn load_cdylib(path: &Path, entry_symbol: &str) -> Result<Module, LoadError> {
    // SAFETY: the caller (a test) asks to load a library it built; the entry is checked like in the host.
    unsafe { Module::load(path, entry_symbol) }
}

/// The cdylib `lib_name` (the `[lib] name`, e.g. `osiris_plugin_csv`) that cargo built alongside the running
/// test binary: `target/<profile>/deps/` or `target/<profile>/`. A crate with `crate-type = ["cdylib", "rlib"]`
/// gets its cdylib built whenever its tests (or a dependent's tests) are built.
///
/// Panics with a hint when there is none (a test helper).
pub fn built_cdylib(lib_name: &str) -> std::path::PathBuf {
    let file = format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let candidates: Vec<std::path::PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&file))
        .collect();
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no `{file}` next to the test binary (looked at {candidates:?}): \
             give the plugin crate `crate-type = [\"cdylib\", \"rlib\"]` and check the library name"
            )
        })
}

/// Whether the service a test needs (e.g. a database) listens on `127.0.0.1:port`. When it does not, the test
/// should return early: this prints a `SKIP` note, or panics when `OSIRIS_REQUIRE_DATABASES=1` (set in CI, so a
/// service that is down fails the run instead of silently skipping its tests).
pub fn local_service_available(name: &str, port: u16, test: &str) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_ok() {
        return true;
    }
    if std::env::var("OSIRIS_REQUIRE_DATABASES").as_deref() == Ok("1") {
        panic!("{test}: {name} at 127.0.0.1:{port} is unreachable and OSIRIS_REQUIRE_DATABASES=1");
    }
    eprintln!(
        "SKIP {test}: {name} at 127.0.0.1:{port} is unreachable (set OSIRIS_REQUIRE_DATABASES=1 to fail instead)"
    );
    false
}

/// A [`ContextBackend`] that records what a driver logs and measures, with a settable connection and a cancel
/// switch.
#[derive(Default)]
pub struct TestContext {
    logs: Mutex<Vec<(Level, String)>>,
    metrics: Mutex<Vec<(String, f64, Option<String>)>>,
    cancelled: AtomicBool,
    connection: Mutex<Option<Value>>,
}

impl TestContext {
    pub fn new() -> Arc<TestContext> {
        Arc::new(TestContext::default())
    }

    /// A context whose `connection()` returns `connection`.
    pub fn with_connection(connection: Value) -> Arc<TestContext> {
        let ctx = TestContext::default();
        *ctx.connection.lock().unwrap() = Some(connection);
        Arc::new(ctx)
    }

    /// A [`Context`] over this one, to call a [`Driver`](crate::Driver) directly (without a [`Module`]).
    pub fn context(self: &Arc<Self>) -> Context {
        Context::new(self.clone())
    }

    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst)
    }

    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.lock().unwrap().clone()
    }

    pub fn metrics(&self) -> Vec<(String, f64, Option<String>)> {
        self.metrics.lock().unwrap().clone()
    }

    /// The sum of every value reported for metric `name`.
    pub fn metric_total(&self, name: &str) -> f64 {
        self.metrics
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, v, _)| v)
            .sum()
    }
}

impl ContextBackend for TestContext {
    fn log(&self, level: Level, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()))
    }
    fn metric(&self, name: &str, value: f64, unit: Option<&str>) {
        self.metrics
            .lock()
            .unwrap()
            .push((name.to_string(), value, unit.map(str::to_string)))
    }
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
    fn connection(&self) -> Option<Value> {
        self.connection.lock().unwrap().clone()
    }
}

/// A stream over in-memory batches (all of `schema`).
pub fn batch_stream(schema: SchemaRef, batches: Vec<RecordBatch>) -> BatchStream {
    Box::new(RecordBatchIterator::new(
        batches.into_iter().map(Ok),
        schema,
    ))
}

/// `{"df": batches}`, the usual single input. Panics if `batches` is empty (use [`batch_stream`] with a schema).
pub fn single_input(batches: Vec<RecordBatch>) -> Streams {
    let schema = batches
        .first()
        .expect("single_input needs at least one batch to know the schema")
        .schema();
    Streams::from([("df".to_string(), batch_stream(schema, batches))])
}

/// Reads a stream to the end; the first error is returned as the [`PluginError`] behind it.
pub fn collect(stream: BatchStream) -> Result<Vec<RecordBatch>, PluginError> {
    let mut batches = Vec::new();
    for item in stream {
        batches.push(item.map_err(|e| PluginError::from_arrow(&e))?);
    }
    Ok(batches)
}

/// Runs `component` (step id `test`) and reads every output to the end.
pub fn run_collect(
    module: &Module,
    component: &str,
    config: &Value,
    ctx: Arc<dyn ContextBackend>,
    inputs: Streams,
) -> Result<BTreeMap<String, Vec<RecordBatch>>, PluginError> {
    let outputs = module.run(component, "test", config, ctx, inputs)?;
    let mut collected = BTreeMap::new();
    for (name, stream) in outputs {
        collected.insert(name, collect(stream)?);
    }
    Ok(collected)
}

/// The schema of a stream, for assertions (`RecordBatchReader::schema` without importing the trait).
pub fn schema_of(stream: &BatchStream) -> SchemaRef {
    RecordBatchReader::schema(stream.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
name: acme.processor
version: "0.1.0"
modes: [transform]
capabilities: {}
configSchema:
  type: object
  additionalProperties: false
  properties:
    column: { type: string }
examples:
  - title: good
    config: { column: x }
"#;

    #[test]
    fn a_good_spec_passes() {
        let spec = check_spec(SPEC).unwrap();
        assert_eq!(spec["name"], "acme.processor");
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = SPEC
            .replace("name: acme.processor", "name: Acme")
            .replace("version: \"0.1.0\"", "version: 1.0")
            .replace("modes: [transform]", "modes: []")
            .replace(
                "config: { column: x }",
                "config: { column: 3, extra: true }",
            );
        let problems = check_spec(&bad).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with("`name` is `Acme`")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("`version` is 1.0")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("`modes` is empty")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p
                    .contains("`examples[0]` (`good`) does not match `configSchema` at `/column`")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("`examples[0]` (`good`) does not match `configSchema` at `/`")),
            "{problems:#?}"
        );
    }

    #[test]
    fn missing_fields_and_broken_yaml() {
        let problems = check_spec("title: nothing\n").unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        let problems = check_spec("name: [unclosed").unwrap_err();
        assert!(
            problems[0].starts_with("the spec is not valid YAML"),
            "{problems:#?}"
        );
    }
}
