//! The context a model writes pipelines from: the OML rules and, per component, its name, step modes,
//! capabilities, connection family, fields with their types, enums, defaults and which are required, the
//! names of its secret fields (never a value) and at most two example configs.
//!
//! [`build`] renders it twice from the registry, as compact JSON (for tools) and as text (the prompt), both
//! deterministic: the same registry and filter give the same bytes, whatever the machine. [`cached`] keeps the
//! result on disk under `.osiris_prompts/cache/`, keyed by the fingerprints of the specs it is built from, so a
//! second call with nothing changed reads one file and neither builds nor counts anything.
//!
//! **Invariant:** the context holds no secret value and no path of the machine: only what the specs say.

use osiris_core::codes::Code;
use osiris_core::diag::{Diagnostic, did_you_mean};
use osiris_registry::{ComponentSpec, Registry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The format of the JSON rendering; part of every cache key, so a new format never reads an old cache.
pub const FORMAT: &str = "osiris-context/1";

/// Examples kept per component, at most.
pub const MAX_EXAMPLES: usize = 2;

/// A second example is kept when the two together take at most this many characters in flow style.
pub const EXAMPLE_CHARS: usize = 240;

/// The OML rules, as the model reads them (the text rendering's head; the JSON's `rules`).
pub const RULES: &[&str] = &[
    "top level: oml_version: \"0.1.0\" (a quoted string), name, steps (a list); optional: description, params",
    "step: id (unique; letters, digits, _ - .), component (one listed below), mode (read|write|transform, as the component allows), config (only the component's fields), needs: [step ids] or inputs: {alias: \"${step_id.df}\"}",
    "a step without needs or inputs follows the previous step (implicit chaining); needs: [] means none; a writer needs an upstream step",
    "SQL reads upstream outputs as tables df_<step_id> (characters of the id outside [A-Za-z0-9_] become _); with one upstream step also df",
    "config.connection: \"@family.alias\" (family = the part of the component name before the dot) supplies the connection fields; never write a secret into a step: reference a connection or \"${ENV_VAR}\"",
    "params: {name: default} at the top level, used as \"${params.name}\" in any string",
];

/// The context, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Compact JSON (`{"format", "oml_version", "rules", "components"}`), for tools.
    pub json: String,
    /// The same content as text: what a model is given.
    pub text: String,
    /// `cl100k_base` tokens of [`Context::text`] ([`crate::tokens::count`]).
    pub tokens: usize,
    /// `sha256:<hex>` of [`Context::json`]: equal contexts, equal fingerprints.
    pub fingerprint: String,
    /// The components it describes, sorted.
    pub components: Vec<String>,
}

/// One component as the context shows it.
#[derive(Debug, Clone, Serialize)]
struct Component {
    name: String,
    /// OML step modes (`read`, `write`, `transform`).
    modes: Vec<&'static str>,
    /// Capabilities that are true.
    capabilities: Vec<String>,
    /// `@family.<alias>` when the component takes a connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection: Option<String>,
    /// Fields a connection supplies (not needed in the step).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    connection_fields: Vec<String>,
    /// The other fields, required ones first.
    fields: Vec<Field>,
    /// Conditions between fields (`primary_key` required when `write_mode` is upsert|merge).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<String>,
    /// Names of the secret fields; never a value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    secrets: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    examples: Vec<Value>,
}

#[derive(Debug, Clone, Serialize)]
struct Field {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    required: bool,
    #[serde(rename = "enum", skip_serializing_if = "Vec::is_empty")]
    values: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<Value>,
}

#[derive(Serialize)]
struct Doc<'a> {
    format: &'static str,
    oml_version: &'static str,
    rules: &'static [&'static str],
    components: &'a [Component],
}

/// Builds the context of the components `components` names (every component of the registry when empty),
/// sorted by name. An unknown name is an error (`LLM-E001`) with a did-you-mean.
pub fn build(registry: &Registry, components: &[String]) -> Result<Context, Box<Diagnostic>> {
    let specs = select(registry, components)?;
    let described: Vec<Component> = specs.iter().map(|s| describe(s)).collect();
    let json = serde_json::to_string(&Doc {
        format: FORMAT,
        oml_version: osiris_oml::check::OML_VERSION,
        rules: RULES,
        components: &described,
    })
    .expect("the context serializes");
    let text = render_text(&described);
    Ok(Context {
        fingerprint: sha256(json.as_bytes()),
        tokens: crate::tokens::count(&text),
        components: described.iter().map(|c| c.name.clone()).collect(),
        json,
        text,
    })
}

fn select<'r>(
    registry: &'r Registry,
    components: &[String],
) -> Result<Vec<&'r ComponentSpec>, Box<Diagnostic>> {
    if components.is_empty() {
        return Ok(registry.iter().collect());
    }
    let mut names: Vec<&str> = components.iter().map(|c| c.trim()).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        match registry.get(name) {
            Some(s) => out.push(s),
            None => {
                let help = match did_you_mean(name, registry.names()) {
                    Some(m) => {
                        format!("did you mean `{m}`? `osiris components list` shows all components")
                    }
                    None => "`osiris components list` shows all components".to_string(),
                };
                return Err(Box::new(
                    Diagnostic::error(
                        Code::LLM_E001,
                        format!("unknown component `{name}` in the context's component list"),
                    )
                    .help(help),
                ));
            }
        }
    }
    Ok(out)
}

fn describe(spec: &ComponentSpec) -> Component {
    let schema = &spec.config_schema;
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let connection_fields: Vec<String> = spec
        .connection_fields
        .iter()
        .map(|f| f.name.clone())
        .filter(|n| props.contains_key(n))
        .collect();
    let family = spec.name.split('.').next().unwrap_or_default();
    let connection = props
        .contains_key("connection")
        .then(|| format!("@{family}.<alias>"));
    let mut fields: Vec<Field> = props
        .iter()
        .filter(|(n, _)| *n != "connection" && !connection_fields.contains(n))
        .map(|(name, p)| Field {
            name: name.clone(),
            ty: type_of(p),
            required: required.contains(&name.as_str()),
            values: p
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            default: p.get("default").cloned(),
        })
        .collect();
    // required first, then as the schema lists them (sorted by name)
    fields.sort_by_key(|f| !f.required);
    let mut modes: Vec<&'static str> = spec
        .modes
        .iter()
        .filter_map(|m| match m.as_str() {
            "extract" => Some("read"),
            "write" | "load" => Some("write"),
            "transform" => Some("transform"),
            _ => None,
        })
        .collect();
    modes.dedup();
    Component {
        name: spec.name.clone(),
        modes,
        capabilities: spec
            .capabilities
            .iter()
            .filter(|(_, on)| **on)
            .map(|(k, _)| k.clone())
            .collect(),
        connection,
        connection_fields,
        fields,
        rules: conditions(schema),
        secrets: spec
            .secret_pointers
            .iter()
            .map(|p| p.trim_start_matches('/').replace('/', "."))
            .collect(),
        examples: examples(spec),
    }
}

/// The first example config, and the second when both together stay within [`EXAMPLE_CHARS`] characters in
/// flow style: short examples teach as much as long ones for far fewer tokens.
fn examples(spec: &ComponentSpec) -> Vec<Value> {
    let mut out = Vec::new();
    let mut chars = 0;
    for config in spec.examples.iter().filter_map(|e| e.get("config")) {
        chars += flow(config).chars().count();
        if out.len() == MAX_EXAMPLES || (!out.is_empty() && chars > EXAMPLE_CHARS) {
            break;
        }
        out.push(config.clone());
    }
    out
}

/// A field's type in a few characters: `str`, `int`, `num`, `bool`, `obj`, `[str]`, `str|[str]`.
fn type_of(p: &Value) -> String {
    if let Some(alts) = p
        .get("oneOf")
        .or_else(|| p.get("anyOf"))
        .and_then(Value::as_array)
    {
        let mut parts: Vec<String> = alts.iter().map(type_of).collect();
        parts.dedup();
        return parts.join("|");
    }
    let one = |t: &str| match t {
        "string" => "str".to_string(),
        "integer" => "int".to_string(),
        "number" => "num".to_string(),
        "boolean" => "bool".to_string(),
        "object" => "obj".to_string(),
        "array" => format!("[{}]", p.get("items").map(type_of).unwrap_or_default()),
        "null" => "null".to_string(),
        other => other.to_string(),
    };
    match p.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join("|"),
        _ if p.get("enum").is_some() => "enum".to_string(),
        _ => "any".to_string(),
    }
}

/// The conditions a `configSchema` states at its top level with `if`/`then` and `not` (also inside `allOf`),
/// in words; other shapes are left to the validator.
fn conditions(schema: &Value) -> Vec<String> {
    let mut parts = vec![schema];
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        parts.extend(all);
    }
    let mut out = Vec::new();
    for s in parts {
        if let Some(not) = s.get("not")
            && let Some(req) = strings(not.get("required"))
            && req.len() > 1
            && not.as_object().is_some_and(|o| o.len() == 1)
        {
            out.push(format!("not {} together", req.join(" and ")));
        }
        let (Some(cond), Some(then)) = (s.get("if"), s.get("then")) else {
            continue;
        };
        let when = condition(cond);
        let Some(when) = when else { continue };
        if let Some(req) = strings(then.get("required")) {
            out.push(format!("{} required when {when}", req.join(", ")));
        }
        if let Some(props) = then.get("properties").and_then(Value::as_object) {
            let banned: Vec<&str> = props
                .iter()
                .filter(|(_, v)| **v == Value::Bool(false))
                .map(|(k, _)| k.as_str())
                .collect();
            if !banned.is_empty() {
                out.push(format!("no {} when {when}", banned.join(", ")));
            }
        }
    }
    out
}

/// `write_mode is upsert|merge`, `mode is upsert`, `query is set`.
fn condition(cond: &Value) -> Option<String> {
    let required = strings(cond.get("required")).unwrap_or_default();
    let props = cond.get("properties").and_then(Value::as_object);
    match props {
        Some(props) if !props.is_empty() => {
            let parts: Vec<String> = props
                .iter()
                .filter_map(|(k, v)| {
                    let values: Vec<String> = match (v.get("const"), v.get("enum")) {
                        (Some(c), _) => vec![scalar(c)],
                        (None, Some(Value::Array(a))) => a.iter().map(scalar).collect(),
                        _ => return None,
                    };
                    Some(format!("{k} is {}", values.join("|")))
                })
                .collect();
            (parts.len() == props.len()).then(|| parts.join(" and "))
        }
        _ if !required.is_empty() => Some(format!("{} is set", required.join(" and "))),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> Option<Vec<&str>> {
    let a = v?.as_array()?;
    Some(a.iter().filter_map(Value::as_str).collect())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_text(components: &[Component]) -> String {
    let mut t = String::new();
    t.push_str("OML ");
    t.push_str(osiris_oml::check::OML_VERSION);
    t.push_str(" pipeline rules:\n");
    for r in RULES {
        let _ = writeln!(t, "- {r}");
    }
    t.push_str(
        "Components (`*` required, `=` default, a|b allowed values; connection: supplies host, user, password and the like; secret: never inline):\n",
    );
    for c in components {
        let _ = write!(t, "{} mode {}", c.name, c.modes.join("|"));
        if !c.capabilities.is_empty() {
            let _ = write!(t, "; can {}", c.capabilities.join(","));
        }
        t.push('\n');
        // The fields a connection supplies are in the JSON only: the model is told to use the connection.
        if let Some(conn) = &c.connection {
            let _ = writeln!(t, " connection: \"{conn}\"");
        }
        if !c.secrets.is_empty() {
            let _ = writeln!(t, " secret: {}", c.secrets.join(" "));
        }
        let fields: Vec<String> = c.fields.iter().map(field_text).collect();
        let _ = writeln!(t, " {}", fields.join(" "));
        for r in &c.rules {
            let _ = writeln!(t, " {r}");
        }
        for e in &c.examples {
            let _ = writeln!(t, " e.g. {}", flow(e));
        }
    }
    t
}

/// `table*:str`, `write_mode:append|replace|upsert=append`, `batch_size:int=1000`.
fn field_text(f: &Field) -> String {
    let mut s = f.name.clone();
    if f.required {
        s.push('*');
    }
    s.push(':');
    if f.values.is_empty() {
        s.push_str(&f.ty);
    } else {
        let values: Vec<String> = f.values.iter().map(scalar).collect();
        s.push_str(&values.join("|"));
    }
    if let Some(d) = &f.default {
        s.push('=');
        s.push_str(&flow(d));
    }
    s
}

/// A value in YAML flow style, quoting only strings that need it: `{connection: "@mysql.main", table: users}`.
fn flow(v: &Value) -> String {
    match v {
        Value::Object(o) => {
            let parts: Vec<String> = o.iter().map(|(k, v)| format!("{k}: {}", flow(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(flow).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::String(s) => {
            let s = s.trim_end_matches('\n');
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./ ".contains(c))
                && !s.starts_with(|c: char| c == '-' || c == ' ' || c.is_ascii_digit())
                && !matches!(s, "true" | "false" | "null" | "yes" | "no" | "on" | "off");
            if plain {
                s.to_string()
            } else {
                Value::String(s.to_string()).to_string()
            }
        }
        other => other.to_string(),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Whether [`cached`] read the context from disk or built it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Rebuilt,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "cache hit",
            CacheStatus::Rebuilt => "rebuilt",
        }
    }
}

/// The cache key of a context: its [`FORMAT`], this build's version, the rules, the component filter and the
/// fingerprints of every spec offered (any order; built-in and plugin specs alike). A spec changed, added or
/// removed changes the key.
pub fn cache_key<S: AsRef<str>>(spec_fingerprints: &[S], components: &[String]) -> String {
    let mut fps: Vec<&str> = spec_fingerprints.iter().map(AsRef::as_ref).collect();
    fps.sort_unstable();
    fps.dedup();
    let mut filter: Vec<&str> = components.iter().map(|c| c.trim()).collect();
    filter.sort_unstable();
    filter.dedup();
    let key = serde_json::json!({
        "format": FORMAT,
        "version": env!("CARGO_PKG_VERSION"),
        "rules": RULES,
        "components": filter,
        "specs": fps,
    });
    sha256(key.to_string().as_bytes())
}

/// Where [`cached`] keeps the context of `key` under `dir` (`.osiris_prompts` of the project).
pub fn cache_file(dir: &Path, key: &str) -> PathBuf {
    let hex = key.strip_prefix("sha256:").unwrap_or(key);
    dir.join("cache").join(format!("{hex}.json"))
}

/// The context for `key` ([`cache_key`]) from `dir`'s cache, or built from the registry `registry` returns (it
/// is only called on a miss) and stored. A cache file that does not read back is rebuilt; one that cannot be
/// written leaves the result as built and says so in the error's place: `Ok` with [`CacheStatus::Rebuilt`]
/// and the write problem as the third value.
pub fn cached(
    dir: &Path,
    key: &str,
    components: &[String],
    registry: impl FnOnce() -> Registry,
) -> Result<(Context, CacheStatus, Option<String>), Box<Diagnostic>> {
    let file = cache_file(dir, key);
    if let Ok(bytes) = std::fs::read(&file)
        && let Ok(ctx) = serde_json::from_slice::<Context>(&bytes)
        && ctx.fingerprint == sha256(ctx.json.as_bytes())
    {
        return Ok((ctx, CacheStatus::Hit, None));
    }
    let ctx = build(&registry(), components)?;
    let stored = serde_json::to_vec(&ctx).expect("the context serializes");
    let problem = write_atomic(&file, &stored)
        .err()
        .map(|e| format!("cannot write the context cache `{}`: {e}", file.display()));
    Ok((ctx, CacheStatus::Rebuilt, problem))
}

/// Writes `bytes` to `path` through a temporary file in the same directory, renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The spec fingerprints a registry was built from, for [`cache_key`].
pub fn fingerprints(registry: &Registry) -> Vec<String> {
    registry.iter().map(|s| s.fingerprint.clone()).collect()
}

#[cfg(test)]
mod tests;
