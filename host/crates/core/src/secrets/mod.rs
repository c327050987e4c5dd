//! Connections, secrets and redaction.
//!
//! - [`Connections`] loads `osiris_connections.yaml` (and an optional `--secrets-file` of the same shape),
//!   substitutes `${VAR}` / `${VAR:-default}` from the environment and the project's `.env`, merges
//!   `OSIRIS_CONN__<FAMILY>__<ALIAS>__<FIELD>` variables, and resolves `@family.alias` references.
//!   Precedence per field: secrets file > `OSIRIS_CONN__` variables > connections file.
//! - [`Redactor`] masks secrets in JSON (by pointer and by key name) and in any text (by every secret value
//!   seen in this run).
//!
//! Invariant: no error message produced here contains a field value, only family, alias, field and variable
//! names.

mod redact;

pub use redact::{Redactor, Strategy, basic_credentials, is_secret_key, is_user_key};

use crate::exit::{Exit, Fail};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default connections file name, looked up in the project directory.
pub const CONNECTIONS_FILE: &str = "osiris_connections.yaml";
const ENV_PREFIX: &str = "OSIRIS_CONN__";

/// Where a field's value came from (for `connections list` and error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ConnectionsFile,
    Env,
    SecretsFile,
}

/// One field as written (before substitution).
#[derive(Debug, Clone)]
pub struct RawField {
    pub value: serde_yaml::Value,
    pub origin: Origin,
}

/// One alias of one family, merged across sources.
#[derive(Debug, Clone, Default)]
pub struct RawConnection {
    pub default: bool,
    pub fields: BTreeMap<String, RawField>,
}

/// A resolved connection: fields as JSON (secrets included: hand it to the driver only) and the secret values
/// it contains (for the [`Redactor`]).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub family: String,
    pub alias: String,
    pub fields: Value,
    pub secret_values: Vec<String>,
}

/// A variable lookup: process environment first, then the project's `.env`.
#[derive(Debug, Clone, Default)]
pub struct Env {
    dotenv: BTreeMap<String, String>,
}

impl Env {
    pub fn load(project_dir: &Path) -> Result<Env, Fail> {
        let path = project_dir.join(".env");
        let mut dotenv = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            crate::perms::warn_if_secrets_writable(&path);
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let line = line.strip_prefix("export ").unwrap_or(line);
                let Some((k, v)) = line.split_once('=') else {
                    return Err(Fail::new(
                        Exit::Config,
                        format!("error: {}:{}: expected `NAME=value`", path.display(), i + 1),
                    ));
                };
                let v = v.trim();
                let v = if v.len() >= 2
                    && ((v.starts_with('"') && v.ends_with('"'))
                        || (v.starts_with('\'') && v.ends_with('\'')))
                {
                    &v[1..v.len() - 1]
                } else {
                    v
                };
                dotenv.insert(k.trim().to_string(), v.to_string());
            }
        }
        Ok(Env { dotenv })
    }

    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }
}

/// All connections known to this run.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    pub families: BTreeMap<String, BTreeMap<String, RawConnection>>,
    /// Files that were read, for messages.
    pub files: Vec<PathBuf>,
    /// Directory relative `base_dir` values resolve against (the connections file's directory).
    pub base: PathBuf,
    env: Env,
    /// Secret values written literally in a source but overridden by a higher-precedence one.
    shadowed: Vec<String>,
}

/// Options for [`Connections::load`].
pub struct LoadOptions<'a> {
    pub project_dir: &'a Path,
    /// `--connections FILE`; default `<project_dir>/osiris_connections.yaml` (optional then).
    pub connections_file: Option<&'a Path>,
    pub secrets_file: Option<&'a Path>,
}

impl Connections {
    pub fn load(opts: &LoadOptions) -> Result<Connections, Fail> {
        let env = Env::load(opts.project_dir)?;
        let mut c = Connections {
            env,
            base: opts.project_dir.to_path_buf(),
            ..Default::default()
        };
        let conn_path = match opts.connections_file {
            Some(p) => {
                if !p.is_file() {
                    return Err(Fail::new(
                        Exit::Config,
                        format!(
                            "error: connections file `{}` not found\n  = help: create it (`osiris init` writes one) or drop `--connections`",
                            p.display()
                        ),
                    ));
                }
                Some(p.to_path_buf())
            }
            None => {
                let p = opts.project_dir.join(CONNECTIONS_FILE);
                p.is_file().then_some(p)
            }
        };
        if let Some(p) = conn_path {
            c.base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            c.merge_file(&p, Origin::ConnectionsFile)?;
        }
        c.merge_env(std::env::vars());
        if let Some(p) = opts.secrets_file {
            if !p.is_file() {
                return Err(Fail::new(
                    Exit::Config,
                    format!("error: secrets file `{}` not found", p.display()),
                ));
            }
            c.merge_file(p, Origin::SecretsFile)?;
        }
        Ok(c)
    }

    fn merge_file(&mut self, path: &Path, origin: Origin) -> Result<(), Fail> {
        crate::perms::warn_if_secrets_writable(path);
        let text = std::fs::read_to_string(path).map_err(|e| {
            Fail::new(
                Exit::Config,
                format!("error: cannot read `{}`: {e}", path.display()),
            )
        })?;
        self.merge_text(&path.display().to_string(), &text, origin)?;
        self.files.push(path.to_path_buf());
        Ok(())
    }

    /// Merges one file's text. Errors name the file and, for YAML syntax errors, line and column.
    pub fn merge_text(&mut self, label: &str, text: &str, origin: Origin) -> Result<(), Fail> {
        let bad = |msg: String| Fail::new(Exit::Config, format!("error: {label}: {msg}"));
        let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
            // serde_yaml's message may quote the offending text: report only where it is.
            match e.location() {
                Some(l) => bad(format!(
                    "invalid YAML at line {}, column {}",
                    l.line(),
                    l.column()
                )),
                None => bad("invalid YAML".to_string()),
            }
        })?;
        if doc.is_null() {
            return Ok(());
        }
        let Some(root) = doc.as_mapping() else {
            return Err(bad(
                "expected a mapping with `version` and `connections`".into()
            ));
        };
        if let Some(v) = root.get("version") {
            let v = v
                .as_str()
                .map(str::to_string)
                .or_else(|| v.as_f64().map(|f| format!("{f:.1}")));
            if v.as_deref() != Some("1.0") {
                return Err(bad("unsupported `version` (expected \"1.0\")".into()));
            }
        }
        let Some(conns) = root.get("connections") else {
            return Ok(());
        };
        if conns.is_null() {
            return Ok(());
        }
        let Some(conns) = conns.as_mapping() else {
            return Err(bad(
                "`connections` must map family -> alias -> fields".into()
            ));
        };
        for (family, aliases) in conns {
            let Some(family) = family.as_str() else {
                return Err(bad("a family name is not a string".into()));
            };
            let Some(aliases) = aliases.as_mapping() else {
                return Err(bad(format!(
                    "`connections.{family}` must map alias -> fields"
                )));
            };
            for (alias, fields) in aliases {
                let Some(alias) = alias.as_str() else {
                    return Err(bad(format!(
                        "an alias under `connections.{family}` is not a string"
                    )));
                };
                let Some(fields) = fields.as_mapping() else {
                    return Err(bad(format!(
                        "`connections.{family}.{alias}` must be a mapping of fields"
                    )));
                };
                let entry = self
                    .families
                    .entry(family.to_string())
                    .or_default()
                    .entry(alias.to_string())
                    .or_default();
                for (k, v) in fields {
                    let Some(k) = k.as_str() else {
                        return Err(bad(format!(
                            "a field name under `connections.{family}.{alias}` is not a string"
                        )));
                    };
                    if k == "default" {
                        entry.default = v.as_bool().unwrap_or(false);
                        continue;
                    }
                    if let Some(old) = entry.fields.insert(
                        k.to_string(),
                        RawField {
                            value: v.clone(),
                            origin,
                        },
                    ) {
                        shadow(&mut self.shadowed, k, &old);
                    }
                }
            }
        }
        Ok(())
    }

    /// Merges `OSIRIS_CONN__<FAMILY>__<ALIAS>__<FIELD>=value` variables.
    pub fn merge_env(&mut self, vars: impl Iterator<Item = (String, String)>) {
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let parts: Vec<&str> = rest.split("__").collect();
            let [family, alias, field] = parts[..] else {
                continue;
            };
            if family.is_empty() || alias.is_empty() || field.is_empty() {
                continue;
            }
            let family = family.to_lowercase();
            let aliases = self.families.entry(family).or_default();
            let alias = aliases
                .keys()
                .find(|a| a.eq_ignore_ascii_case(alias))
                .cloned()
                .unwrap_or_else(|| alias.to_lowercase());
            let entry = aliases.entry(alias).or_default();
            let field = field.to_lowercase();
            if field == "default" {
                entry.default = matches!(v.to_lowercase().as_str(), "1" | "true" | "yes");
                continue;
            }
            let keep_existing = entry
                .fields
                .get(&field)
                .is_some_and(|f| f.origin == Origin::SecretsFile);
            if !keep_existing {
                let name = field.clone();
                if let Some(old) = entry.fields.insert(
                    field,
                    RawField {
                        value: serde_yaml::Value::String(v),
                        origin: Origin::Env,
                    },
                ) {
                    shadow(&mut self.shadowed, &name, &old);
                }
            }
        }
    }

    /// Every secret value written literally in any source (including overridden ones), without resolving
    /// anything: for the redactor, so that even a connection that fails to resolve cannot leak.
    pub fn literal_secrets(&self) -> Vec<String> {
        let mut out = self.shadowed.clone();
        for aliases in self.families.values() {
            for conn in aliases.values() {
                for (name, f) in &conn.fields {
                    if let serde_yaml::Value::String(s) = &f.value
                        && (is_secret_key(name) || f.origin == Origin::SecretsFile)
                        && !s.contains("${")
                    {
                        out.push(s.clone());
                    }
                }
            }
        }
        out
    }

    /// Parses `@family.alias` or `@family` (the family's default alias).
    pub fn parse_ref(reference: &str) -> Option<(&str, Option<&str>)> {
        let r = reference.strip_prefix('@')?;
        match r.split_once('.') {
            Some((f, a)) if !f.is_empty() && !a.is_empty() => Some((f, Some(a))),
            None if !r.is_empty() => Some((r, None)),
            _ => None,
        }
    }

    /// The alias `@family` means: the one with `default: true`, else the one named `default`.
    pub fn default_alias(&self, family: &str) -> Result<String, Fail> {
        let Some(aliases) = self.families.get(family) else {
            return Err(self.missing_family(family));
        };
        let marked: Vec<&String> = aliases
            .iter()
            .filter(|(_, c)| c.default)
            .map(|(a, _)| a)
            .collect();
        match marked.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                return Err(Fail::new(
                    Exit::Config,
                    format!(
                        "error: connection family `{family}` has several aliases marked `default: true`: {}\n  = help: keep `default: true` on one of them",
                        many.iter()
                            .map(|a| format!("`{a}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if aliases.contains_key("default") {
            return Ok("default".into());
        }
        Err(Fail::new(
            Exit::Config,
            format!(
                "error: `@{family}` names no alias and family `{family}` has no default\n  = help: use one of {} (e.g. `@{family}.{}`), or mark one with `default: true`",
                aliases
                    .keys()
                    .map(|a| format!("`@{family}.{a}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                aliases.keys().next().map(String::as_str).unwrap_or("alias")
            ),
        ))
    }

    fn missing_family(&self, family: &str) -> Fail {
        let where_ = if self.files.is_empty() {
            format!(
                "no connections file was found (looked for `{}`)",
                self.base.join(CONNECTIONS_FILE).display()
            )
        } else {
            format!(
                "it is not in {}",
                self.files
                    .iter()
                    .map(|f| format!("`{}`", f.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let known = if self.families.is_empty() {
            String::new()
        } else {
            format!(
                "; defined families: {}",
                self.families
                    .keys()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Fail::new(
            Exit::Config,
            format!(
                "error: connection family `{family}` is not defined: {where_}{known}\n  = help: add `connections: {{ {family}: {{ <alias>: {{ ... }} }} }}` to {CONNECTIONS_FILE}, or set OSIRIS_CONN__{}__<ALIAS>__<FIELD>",
                family.to_uppercase()
            ),
        )
    }

    /// Resolves `@family.alias` / `@family`: substitutes variables and returns the fields and secret values.
    pub fn resolve(&self, reference: &str) -> Result<Resolved, Fail> {
        let Some((family, alias)) = Self::parse_ref(reference) else {
            return Err(Fail::new(
                Exit::Config,
                format!(
                    "error: `{reference}` is not a connection reference\n  = help: write `@family.alias`, e.g. `@mysql.primary`"
                ),
            ));
        };
        let alias = match alias {
            Some(a) => a.to_string(),
            None => self.default_alias(family)?,
        };
        let Some(aliases) = self.families.get(family) else {
            return Err(self.missing_family(family));
        };
        let Some(conn) = aliases.get(&alias) else {
            return Err(Fail::new(
                Exit::Config,
                format!(
                    "error: connection `@{family}.{alias}` is not defined\n  = help: defined aliases of `{family}`: {}",
                    aliases
                        .keys()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let mut fields = Map::new();
        let mut secret_values = Vec::new();
        for (name, raw) in &conn.fields {
            let value = self.substitute(&raw.value, family, &alias, name)?;
            let value = if name == "base_dir" {
                self.absolutize(value)
            } else {
                value
            };
            if is_secret_key(name) || raw.origin == Origin::SecretsFile {
                collect_strings(&value, &mut secret_values);
            }
            fields.insert(name.clone(), value);
        }
        // A client may send a user and a secret as HTTP Basic credentials: mask `base64(user:secret)` whole.
        let users: Vec<&str> = fields
            .iter()
            .filter(|(name, _)| is_user_key(name))
            .filter_map(|(_, v)| v.as_str())
            .collect();
        let basic: Vec<String> = users
            .iter()
            .flat_map(|u| secret_values.iter().map(move |p| basic_credentials(u, p)))
            .collect();
        secret_values.extend(basic);
        Ok(Resolved {
            family: family.to_string(),
            alias,
            fields: Value::Object(fields),
            secret_values,
        })
    }

    /// A relative `base_dir` is relative to the connections file, not to wherever `osiris` was started.
    fn absolutize(&self, v: Value) -> Value {
        match v.as_str() {
            Some(s) if Path::new(s).is_relative() => {
                Value::String(self.base.join(s).display().to_string())
            }
            _ => v,
        }
    }

    fn substitute(
        &self,
        v: &serde_yaml::Value,
        family: &str,
        alias: &str,
        field: &str,
    ) -> Result<Value, Fail> {
        Ok(match v {
            serde_yaml::Value::String(s) => Value::String(self.expand(s, family, alias, field)?),
            other => yaml_to_json(other),
        })
    }

    /// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`.
    pub fn expand(&self, s: &str, family: &str, alias: &str, field: &str) -> Result<String, Fail> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                out.push('$');
                rest = after;
                continue;
            };
            let Some(end) = body.find('}') else {
                return Err(Fail::new(
                    Exit::Config,
                    format!(
                        "error: connection `@{family}.{alias}` field `{field}`: unclosed `${{` in a variable reference"
                    ),
                ));
            };
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            match self
                .env
                .get(name)
                .filter(|v| !v.is_empty() || default.is_none())
            {
                Some(v) => out.push_str(&v),
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        return Err(Fail::new(
                            Exit::Config,
                            format!(
                                "error: connection `@{family}.{alias}` field `{field}` needs environment variable `{name}`, which is not set\n  = help: export {name}=..., add it to .env in the project directory, or give the field in --secrets-file"
                            ),
                        ));
                    }
                },
            }
            rest = &body[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The variables a field refers to (for `connections list`), read as [`Connections::expand`] reads them:
    /// `$$` is a literal `$`, and `${VAR:-default}` has a default that applies when `VAR` is unset or empty.
    pub fn referenced_vars(&self, v: &serde_yaml::Value) -> Vec<VarRef> {
        let mut out = Vec::new();
        let serde_yaml::Value::String(s) = v else {
            return out;
        };
        let mut rest = s.as_str();
        while let Some(i) = rest.find('$') {
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                rest = r;
                continue;
            }
            let Some(body) = after.strip_prefix('{') else {
                rest = after;
                continue;
            };
            let Some(end) = body.find('}') else { break };
            let inner = &body[..end];
            let (name, has_default) = match inner.split_once(":-") {
                Some((n, _)) => (n, true),
                None => (inner, false),
            };
            let set = self
                .env
                .get(name)
                .is_some_and(|v| !v.is_empty() || !has_default);
            out.push(VarRef {
                name: name.to_string(),
                set,
                has_default,
            });
            rest = &body[end + 1..];
        }
        out
    }
}

/// A `${VAR}` or `${VAR:-default}` reference in a connection field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    /// The variable is set (and, for a reference with a default, not empty).
    pub set: bool,
    /// `${VAR:-default}`: the default applies when the variable is unset or empty.
    pub has_default: bool,
}

impl VarRef {
    /// The field cannot be resolved without this variable.
    pub fn missing(&self) -> bool {
        !self.set && !self.has_default
    }
}

fn shadow(out: &mut Vec<String>, name: &str, old: &RawField) {
    if let serde_yaml::Value::String(s) = &old.value
        && (is_secret_key(name) || old.origin == Origin::SecretsFile)
        && !s.contains("${")
    {
        out.push(s.clone());
    }
}

fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

pub fn yaml_to_json(v: &serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(*b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map(Value::from).unwrap_or(Value::Null)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s.clone()),
        serde_yaml::Value::Sequence(s) => Value::Array(s.iter().map(yaml_to_json).collect()),
        serde_yaml::Value::Mapping(m) => {
            let mut o = Map::new();
            for (k, v) in m {
                let key = match k {
                    serde_yaml::Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                o.insert(key, yaml_to_json(v));
            }
            Value::Object(o)
        }
        serde_yaml::Value::Tagged(t) => yaml_to_json(&t.value),
    }
}

#[cfg(test)]
mod tests;
