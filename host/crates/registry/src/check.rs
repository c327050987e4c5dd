//! Validation of one spec file, reporting every problem in one pass with file:line:col, why and a fix.
//!
//! Levels build on each other:
//! - `basic`: YAML syntax, `components/spec.schema.json`, and `configSchema` against the draft 2020-12
//!   meta-schema;
//! - `enhanced`: + semantic rules (secret pointers resolve into `configSchema`, connection fields exist,
//!   examples validate, `x-runtime` versions are ordered, ...);
//! - `strict`: + documentation completeness (examples, `llmHints`, a description on every property).

use super::describe::{self, Problem};
use super::{ComponentSpec, Source};
use osiris_core::codes::Code;
use osiris_core::diag::{Diagnostic, did_you_mean};
use osiris_core::yaml::{self, Flavor, SourceDoc, SpanMap};
use serde_json::Value;
use std::sync::OnceLock;

/// The spec schema, the one source of truth for the spec format.
pub const SPEC_SCHEMA: &str = include_str!("../../../../components/spec.schema.json");

/// How thoroughly a spec is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// YAML syntax, the spec schema, and `configSchema` as a JSON Schema.
    Basic,
    /// + semantic rules: pointers, connection fields, examples, versions.
    Enhanced,
    /// + documentation: examples, llmHints, a description on every configuration property.
    Strict,
}

/// The outcome of checking one spec text.
#[derive(Debug)]
pub struct Report {
    /// The spec, when it has no error.
    pub spec: Option<ComponentSpec>,
    /// Every problem, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// `name:` of the spec when it could be read.
    pub name: Option<String>,
    pub doc_spans: Option<SpanMap>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

fn spec_schema() -> &'static (Value, jsonschema::Validator) {
    static S: OnceLock<(Value, jsonschema::Validator)> = OnceLock::new();
    S.get_or_init(|| {
        let v: Value = serde_json::from_str(SPEC_SCHEMA)
            .expect("components/spec.schema.json is valid JSON (unit-tested)");
        let validator = jsonschema::draft202012::options()
            .build(&v)
            .expect("components/spec.schema.json is a valid JSON Schema (unit-tested)");
        (v, validator)
    })
}

/// Checks one spec text at `level`.
pub fn check_text(file: &str, text: &str, level: Level, source: Source) -> Report {
    let doc = match SourceDoc::parse(file, text, Flavor::Spec) {
        Ok(d) => d,
        Err(d) => {
            return Report {
                spec: None,
                diagnostics: vec![*d],
                name: None,
                doc_spans: None,
            };
        }
    };
    let mut c = Checker {
        file,
        doc: &doc,
        out: Vec::new(),
    };
    c.schema();
    let compiled = c.config_schema();
    if level >= Level::Enhanced {
        c.semantic(compiled.as_ref());
    }
    if level >= Level::Strict {
        c.strict();
    }
    let mut diagnostics = c.out;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    let name = doc
        .value
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string);
    let spec = (!diagnostics.iter().any(Diagnostic::is_error))
        .then(|| ComponentSpec::from_raw(doc.value.clone(), text, file, source));
    Report {
        spec,
        diagnostics,
        name,
        doc_spans: Some(doc.spans),
    }
}

struct Checker<'a> {
    file: &'a str,
    doc: &'a SourceDoc,
    out: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn raw(&self) -> &Value {
        &self.doc.value
    }

    /// Adds a problem at `pointer` (or at its key); a semantic problem at a node that already has an error
    /// is dropped, the first report says enough.
    fn push(
        &mut self,
        code: Code,
        pointer: &str,
        at_key: bool,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        if self
            .out
            .iter()
            .any(|d| d.is_error() && d.pointer.as_deref() == Some(pointer))
        {
            return;
        }
        self.emit(code, pointer, at_key, message, label, help);
    }

    fn emit(
        &mut self,
        code: Code,
        pointer: &str,
        at_key: bool,
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        let pos = if at_key {
            self.doc.spans.locate_key(pointer)
        } else {
            self.doc.spans.locate(pointer)
        };
        let mut d = Diagnostic::of(code, message);
        d = d.at(self.file, pos.line, pos.col).label(label, pos.len);
        if !pointer.is_empty() {
            d = d.pointer(pointer);
        }
        if let Some(name) = self.raw().get("name").and_then(Value::as_str) {
            d = d.component(name);
        }
        if let Some(h) = help {
            d = d.help(h);
        }
        self.out.push(d);
    }

    fn push_problem(&mut self, code: Code, prefix: &str, p: Problem) {
        self.emit(
            code,
            &p.pointer.clone(),
            p.at_key,
            format!("{prefix}{}", p.message),
            &p.label,
            p.help,
        );
    }

    fn schema(&mut self) {
        let (schema, validator) = spec_schema();
        let never = |_: &str| false;
        let ctx = describe::Ctx {
            root_schema: schema,
            instance: &self.doc.value,
            noun: "key",
            hide: &never,
        };
        let problems = describe::describe_all(&ctx, validator.iter_errors(&self.doc.value));
        for p in problems {
            self.push_problem(p.kind.spec_code(), "", p);
        }
    }

    /// `configSchema` must itself be a valid draft 2020-12 schema that compiles.
    fn config_schema(&mut self) -> Option<jsonschema::Validator> {
        let cs = self.raw().get("configSchema")?.clone();
        if !cs.is_object() {
            return None;
        }
        let meta = jsonschema::draft202012::meta::validator();
        let never = |_: &str| false;
        let ctx = describe::Ctx {
            root_schema: &Value::Null,
            instance: &cs,
            noun: "keyword",
            hide: &never,
        };
        let problems = describe::describe_all(&ctx, meta.iter_errors(&cs));
        if !problems.is_empty() {
            for mut p in problems {
                p.pointer = format!("/configSchema{}", p.pointer);
                self.push_problem(
                    Code::SPEC_E020,
                    "`configSchema` is not a valid JSON Schema: ",
                    p,
                );
            }
            return None;
        }
        match super::compile_config_schema(&cs) {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(
                    Code::SPEC_E021,
                    "/configSchema",
                    false,
                    format!("`configSchema` does not compile: {e}"),
                    "invalid schema",
                    Some("check regular expressions (`pattern`) and `$ref` targets; remote references are not supported".to_string()),
                );
                None
            }
        }
    }

    fn config_properties(&self) -> Option<&serde_json::Map<String, Value>> {
        self.raw()
            .pointer("/configSchema/properties")
            .and_then(Value::as_object)
    }

    fn semantic(&mut self, compiled: Option<&jsonschema::Validator>) {
        let raw = self.raw().clone();
        let cs = raw.get("configSchema").cloned().unwrap_or(Value::Null);
        let fields: Vec<String> = self
            .config_properties()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();

        self.check_secret_pointers(&raw, &cs);
        self.check_connection_fields(&raw, &fields);
        self.check_runtime_versions(&raw);
        self.check_modes(&raw);
        self.check_examples(&raw, &cs, compiled);
        self.check_defaults();
        self.check_directory(&raw);
    }

    /// Secret pointers resolve into configSchema.
    fn check_secret_pointers(&mut self, raw: &Value, cs: &Value) {
        let all_pointers = schema_pointers(cs, "", 0);
        for list in ["/secrets", "/x-secret", "/redaction/extras"] {
            let Some(items) = raw.pointer(list).and_then(Value::as_array) else {
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let Some(p) = item.as_str() else { continue };
                if !p.starts_with('/') || resolve(cs, p) {
                    continue;
                }
                let help = match did_you_mean(p, all_pointers.iter().map(String::as_str)) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None if all_pointers.is_empty() => {
                        "declare the field under `configSchema.properties` first".to_string()
                    }
                    None => format!(
                        "point at a configuration field, one of: {}",
                        backticks(&all_pointers)
                    ),
                };
                self.push(
                    Code::SPEC_E030,
                    &format!("{list}/{i}"),
                    false,
                    format!("secret pointer `{p}` does not name a field of `configSchema`"),
                    "no such configuration field",
                    Some(help),
                );
            }
        }
    }

    /// Connection fields name configuration properties and are never required.
    fn check_connection_fields(&mut self, raw: &Value, fields: &[String]) {
        let required: Vec<String> = raw
            .pointer("/configSchema/required")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let mut connection_fields = Vec::new();
        if let Some(items) = raw.get("x-connection-fields").and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                let (name, ptr) = match item {
                    Value::String(s) => (s.as_str(), format!("/x-connection-fields/{i}")),
                    Value::Object(o) => match o.get("name").and_then(Value::as_str) {
                        Some(s) => (s, format!("/x-connection-fields/{i}/name")),
                        None => continue,
                    },
                    _ => continue,
                };
                connection_fields.push(name.to_string());
                if self.config_properties().is_some() && !fields.iter().any(|f| f == name) {
                    self.push(
                        Code::SPEC_E031,
                        &ptr,
                        false,
                        format!("connection field `{name}` is not a property of `configSchema`"),
                        "no such configuration field",
                        Some(suggest(
                            name,
                            fields,
                            "add it under `configSchema.properties`",
                        )),
                    );
                }
            }
        }
        for (j, r) in required.iter().enumerate() {
            let ptr = format!("/configSchema/required/{j}");
            if self.config_properties().is_some() && !fields.iter().any(|f| f == r) {
                self.push(
                    Code::SPEC_E035,
                    &ptr,
                    false,
                    format!("required field `{r}` is not a property of `configSchema`"),
                    "no such property",
                    Some(suggest(
                        r,
                        fields,
                        "declare it under `configSchema.properties`",
                    )),
                );
            } else if connection_fields.iter().any(|c| c == r) {
                self.push(
                    Code::SPEC_E036,
                    &ptr,
                    false,
                    format!("connection field `{r}` must not be required"),
                    "supplied by a connection",
                    Some(format!("remove `{r}` from `configSchema.required`: a step may take it from `connection: \"@family.alias\"`")),
                );
            }
        }
    }

    /// X-runtime versions.
    fn check_runtime_versions(&mut self, raw: &Value) {
        let version = |p: &str| {
            raw.pointer(p)
                .and_then(Value::as_str)
                .map(|s| (s.to_string(), semver::Version::parse(s)))
        };
        let min = version("/x-runtime/min_osiris_version");
        let max = version("/x-runtime/max_osiris_version");
        for (p, v) in [
            ("/x-runtime/min_osiris_version", &min),
            ("/x-runtime/max_osiris_version", &max),
        ] {
            if let Some((s, Err(e))) = v {
                self.push(
                    Code::SPEC_E032,
                    p,
                    false,
                    format!("`{s}` is not a semantic version: {e}"),
                    "not MAJOR.MINOR.PATCH",
                    Some("write a version such as \"0.1.0\" (quoted)".to_string()),
                );
            }
        }
        if let (Some((lo, Ok(a))), Some((hi, Ok(b)))) = (&min, &max)
            && a > b
        {
            self.push(
                Code::SPEC_E033,
                "/x-runtime/max_osiris_version",
                false,
                format!("`max_osiris_version` {hi} is older than `min_osiris_version` {lo}"),
                "below the minimum",
                Some("swap the two versions, or raise `max_osiris_version`".to_string()),
            );
        }
    }

    /// Modes: deprecated `load`, discover capability without the mode.
    fn check_modes(&mut self, raw: &Value) {
        if let Some(modes) = raw.get("modes").and_then(Value::as_array) {
            for (i, m) in modes.iter().enumerate() {
                if m.as_str() == Some("load") {
                    self.push(
                        Code::SPEC_W001,
                        &format!("/modes/{i}"),
                        false,
                        "mode `load` is deprecated".to_string(),
                        "deprecated",
                        Some("use `write`".to_string()),
                    );
                }
            }
            if raw.pointer("/capabilities/discover") == Some(&Value::Bool(true))
                && !modes.iter().any(|m| m.as_str() == Some("discover"))
            {
                self.push(
                    Code::SPEC_W003,
                    "/capabilities/discover",
                    false,
                    "capability `discover` is true but `modes` lacks `discover`".to_string(),
                    "no discover mode",
                    Some("add `discover` to `modes`, or set the capability to false".to_string()),
                );
            }
        }
    }

    /// Every example validates against configSchema.
    fn check_examples(
        &mut self,
        raw: &Value,
        cs: &Value,
        compiled: Option<&jsonschema::Validator>,
    ) {
        if let (Some(validator), Some(examples)) =
            (compiled, raw.get("examples").and_then(Value::as_array))
        {
            for (i, ex) in examples.iter().enumerate() {
                let Some(config) = ex.get("config") else {
                    continue;
                };
                let title = ex
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or("untitled");
                let never = |_: &str| false;
                for p in super::config_problems(validator, cs, config, &never) {
                    let ptr = format!("/examples/{i}/config{}", p.pointer);
                    let at_key = p.code == Code::CFG_E001;
                    self.push(
                        Code::SPEC_E034,
                        &ptr,
                        at_key,
                        format!(
                            "example {} (`{title}`) does not match `configSchema`: {}",
                            i + 1,
                            p.message
                        ),
                        "invalid example",
                        p.help,
                    );
                }
            }
        }
    }

    /// Defaults match their own property schema.
    fn check_defaults(&mut self) {
        if let Some(props) = self.config_properties().cloned() {
            for (name, prop) in &props {
                let Some(default) = prop.get("default") else {
                    continue;
                };
                let ok = super::compile_config_schema(prop)
                    .map(|v| v.is_valid(default))
                    .unwrap_or(true);
                if !ok {
                    self.push(
                        Code::SPEC_W002,
                        &format!(
                            "/configSchema/properties/{}/default",
                            yaml::escape_token(name)
                        ),
                        false,
                        format!("the default of `{name}` does not match its own schema"),
                        "invalid default",
                        Some("change the default, or remove it".to_string()),
                    );
                }
            }
        }
    }

    /// The directory of a spec file carries the component name.
    fn check_directory(&mut self, raw: &Value) {
        if let (Some(name), Some(dir)) = (
            raw.get("name").and_then(Value::as_str),
            parent_dir(self.file),
        ) && dir.contains('.')
            && dir != name
        {
            self.push(
                Code::SPEC_W004,
                "/name",
                false,
                format!("component `{name}` lives in directory `{dir}`"),
                "differs from the directory",
                Some(format!(
                    "rename the directory to `{name}` or set `name: {dir}`"
                )),
            );
        }
    }

    fn strict(&mut self) {
        let raw = self.raw().clone();
        for key in ["title", "description"] {
            if raw.get(key).is_none() {
                self.push(
                    Code::SPEC_E053,
                    "",
                    false,
                    format!("missing `{key}`"),
                    "documentation incomplete",
                    Some(format!("add a `{key}:` line: `osiris components list` and the generated reference show it")),
                );
            }
        }
        if raw
            .get("examples")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            self.push(
                Code::SPEC_E050,
                "",
                false,
                "the spec has no `examples`".to_string(),
                "no examples",
                Some("add `examples:` with at least one `{title, config}`; `osiris components config-example` prints the first".to_string()),
            );
        }
        if raw.get("llmHints").is_none() {
            self.push(
                Code::SPEC_E051,
                "",
                false,
                "the spec has no `llmHints`".to_string(),
                "no llmHints",
                Some("add `llmHints:` with `promptGuidance` (when to use the component) and `inputAliases`".to_string()),
            );
        }
        let mut undocumented = Vec::new();
        if let Some(cs) = raw.get("configSchema") {
            undocumented_properties(cs, "/configSchema", &mut undocumented, 0);
        }
        for ptr in undocumented {
            let name = yaml::unescape_token(ptr.rsplit('/').next().unwrap_or_default());
            self.push(
                Code::SPEC_E052,
                &ptr,
                true,
                format!("configuration property `{name}` has no `description`"),
                "undocumented",
                Some(format!(
                    "add `description:` under `{name}`: what it does, its unit and default"
                )),
            );
        }
    }
}

/// Does `pointer` name a field declared in `schema` (walking `properties`, object `additionalProperties`
/// and `items`)?
pub fn resolve(schema: &Value, pointer: &str) -> bool {
    let mut s = schema;
    for token in pointer.split('/').skip(1) {
        let key = yaml::unescape_token(token);
        if let Some(p) = s.get("properties").and_then(|p| p.get(&key)) {
            s = p;
        } else if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
            s = a;
        } else if let (Some(items), true) =
            (s.get("items"), key.parse::<usize>().is_ok() || key == "*")
        {
            s = items;
        } else {
            return false;
        }
    }
    true
}

/// Every field pointer declared in a schema (nested `properties`, a few levels deep).
fn schema_pointers(schema: &Value, prefix: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    if depth > 3 {
        return out;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = format!("{prefix}/{}", yaml::escape_token(k));
            out.push(p.clone());
            out.extend(schema_pointers(v, &p, depth + 1));
        }
    }
    out
}

fn undocumented_properties(schema: &Value, at: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 3 {
        return;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = format!("{at}/properties/{}", yaml::escape_token(k));
            if v.is_object() && v.get("description").is_none() {
                out.push(p.clone());
            }
            undocumented_properties(v, &p, out, depth + 1);
        }
    }
}

fn parent_dir(file: &str) -> Option<&str> {
    let mut parts = file.rsplit(['/', '\\']);
    parts.next()?;
    parts.next().filter(|d| !d.is_empty() && *d != ".")
}

fn suggest(name: &str, fields: &[String], otherwise: &str) -> String {
    match did_you_mean(name, fields.iter().map(String::as_str)) {
        Some(m) => format!("did you mean `{m}`?"),
        None if fields.is_empty() => otherwise.to_string(),
        None => format!("{otherwise}, or use one of: {}", backticks(fields)),
    }
}

fn backticks(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
