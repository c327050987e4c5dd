//! Pipeline parameters: `${params.NAME}` placeholders and where their values come from.
//!
//! Precedence, lowest first: the OML `params` default < `OSIRIS_PARAM_<NAME>` in the environment <
//! `profiles.<profile>.params` < `--param NAME=value`. A value from the environment or the command line is a
//! string, converted to the type of the OML default when that default is a number or a boolean.
//! A placeholder that is the whole string takes the value with its type; inside a longer string it is
//! written as text.

use osiris_core::codes::Code;
use osiris_core::diag::{Diagnostic, did_you_mean};
use osiris_core::yaml::{SourceDoc, child};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Where parameter values come from besides the OML file.
pub struct ParamInputs<'a> {
    pub profile: &'a str,
    /// True when the profile was asked for (`--profile`), so a missing profile is an error.
    pub profile_explicit: bool,
    /// `--param NAME=value`, later ones win.
    pub cli: &'a [(String, String)],
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// The effective parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub values: BTreeMap<String, Value>,
}

/// A `${params.NAME}` occurrence inside a string: byte range and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub start: usize,
    pub end: usize,
    pub name: String,
}

const PREFIX: &str = "${params.";

/// Every `${params.NAME}` in `s`, in order.
pub fn placeholders(s: &str) -> Vec<Placeholder> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find(PREFIX) {
        let start = from + i;
        let name_start = start + PREFIX.len();
        let rest = &s[name_start..];
        let name_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if name_len > 0 && rest.as_bytes().get(name_len) == Some(&b'}') {
            out.push(Placeholder {
                start,
                end: name_start + name_len + 1,
                name: rest[..name_len].to_string(),
            });
            from = name_start + name_len + 1;
        } else {
            from = name_start;
        }
    }
    out
}

pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Collects the names referenced anywhere in `v`.
pub fn referenced(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => out.extend(placeholders(s).into_iter().map(|p| p.name)),
        Value::Array(a) => a.iter().for_each(|x| referenced(x, out)),
        Value::Object(m) => m.values().for_each(|x| referenced(x, out)),
        _ => {}
    }
}

/// Text of a value substituted inside a longer string.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Parses `NAME=value` from the command line.
pub fn parse_cli(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if valid_name(k.trim()) => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "invalid --param `{arg}`: expected NAME=value with NAME made of letters, digits and `_` (e.g. --param start_date=2024-01-01)"
        )),
    }
}

fn declared_default(spec: &Value) -> Option<Value> {
    match spec {
        Value::Object(m)
            if m.keys()
                .any(|k| matches!(k.as_str(), "default" | "description" | "type" | "required")) =>
        {
            m.get("default").cloned()
        }
        other => Some(other.clone()),
    }
}

/// Converts a string from the environment or the command line to the type of the declared default.
fn coerce(raw: &str, like: Option<&Value>) -> Result<Value, &'static str> {
    match like {
        Some(Value::Bool(_)) => match raw.trim() {
            "true" | "True" | "TRUE" => Ok(Value::Bool(true)),
            "false" | "False" | "FALSE" => Ok(Value::Bool(false)),
            _ => Err("a boolean (true or false)"),
        },
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => raw
            .trim()
            .parse::<i64>()
            .map(|i| Value::Number(i.into()))
            .map_err(|_| "an integer"),
        Some(Value::Number(_)) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or("a number"),
        _ => Ok(Value::String(raw.to_string())),
    }
}

/// Resolves every parameter the pipeline declares or references.
pub fn resolve(doc: &SourceDoc, inputs: &ParamInputs<'_>, diags: &mut Vec<Diagnostic>) -> Params {
    let root = &doc.value;
    let mut declared: BTreeMap<String, Option<Value>> = BTreeMap::new();
    match root.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, spec) in m {
                if !valid_name(name) {
                    diags.push(doc.at(
                        Diagnostic::error(Code::OML_E052, format!("invalid parameter name `{name}`"))
                            .label("not a parameter name", name.chars().count())
                            .help("use letters, digits and `_`, starting with a letter or `_` (e.g. `start_date`)"),
                        &child("/params", name),
                        true,
                    ));
                    continue;
                }
                declared.insert(name.clone(), declared_default(spec));
            }
        }
        Some(_) => diags.push(
            doc.at(
                Diagnostic::error(
                    Code::OML_E007,
                    "`params` must be a mapping of parameter names to default values",
                )
                .help("write e.g. `params: { start_date: \"2024-01-01\" }`"),
                "/params",
                true,
            ),
        ),
    }

    let mut profile_params: BTreeMap<String, Value> = BTreeMap::new();
    let profiles = root.get("profiles").and_then(Value::as_object);
    match profiles.and_then(|p| p.get(inputs.profile)) {
        Some(p) => match p.get("params") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                profile_params.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())))
            }
            Some(_) => diags.push(doc.at(
                Diagnostic::error(
                    Code::OML_E007,
                    format!(
                        "`profiles.{}.params` must be a mapping of parameter names to values",
                        inputs.profile
                    ),
                ),
                &format!("{}/params", child("/profiles", inputs.profile)),
                true,
            )),
        },
        None if inputs.profile_explicit && inputs.profile != "default" => {
            let names: Vec<&str> = profiles
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let mut d = Diagnostic::error(
                Code::OML_E053,
                format!("unknown profile `{}`", inputs.profile),
            )
            .file(&doc.file);
            d = match (did_you_mean(inputs.profile, names.iter().copied()), names.is_empty()) {
                (Some(s), _) => d.help(format!("did you mean `{s}`? profiles in this file: {}", names.join(", "))),
                (None, true) => d.help("this file has no `profiles`; drop --profile or add `profiles: { NAME: { params: {...} } }`"),
                (None, false) => d.help(format!("profiles in this file: {}", names.join(", "))),
            };
            diags.push(d);
        }
        None => {}
    }

    let mut refs = BTreeSet::new();
    if let Value::Object(m) = root {
        for (k, v) in m {
            if k != "params" && k != "profiles" {
                referenced(v, &mut refs);
            }
        }
    }

    let mut names: BTreeSet<String> = declared.keys().cloned().collect();
    names.extend(refs.iter().cloned());
    names.extend(profile_params.keys().cloned());
    names.extend(inputs.cli.iter().map(|(k, _)| k.clone()));

    let mut values = BTreeMap::new();
    for name in &names {
        let default = declared.get(name).cloned().flatten();
        let like = default
            .clone()
            .or_else(|| profile_params.get(name).cloned());
        let mut value = default.clone();
        let env_var = format!("OSIRIS_PARAM_{name}");
        let env_upper = format!("OSIRIS_PARAM_{}", name.to_uppercase());
        if let Some((var, raw)) = (inputs.env)(&env_var)
            .map(|r| (env_var.clone(), r))
            .or_else(|| (inputs.env)(&env_upper).map(|r| (env_upper.clone(), r)))
        {
            match coerce(&raw, like.as_ref()) {
                Ok(v) => value = Some(v),
                Err(want) => diags.push(
                    Diagnostic::error(Code::OML_E052, format!("environment variable `{var}` must be {want} for parameter `{name}`"))
                        .file(&doc.file)
                        .help(format!("the OML default of `{name}` is {}; set `{var}` to a value of the same type", default.clone().unwrap_or(Value::Null))),
                ),
            }
        }
        if let Some(v) = profile_params.get(name) {
            value = Some(v.clone());
        }
        if let Some((_, raw)) = inputs.cli.iter().rev().find(|(k, _)| k == name) {
            match coerce(raw, like.as_ref()) {
                Ok(v) => value = Some(v),
                Err(want) => diags.push(
                    Diagnostic::error(Code::OML_E052, format!("--param `{name}` must be {want}"))
                        .file(&doc.file)
                        .help(format!(
                            "the OML default of `{name}` is {}",
                            like.clone().unwrap_or(Value::Null)
                        )),
                ),
            }
        }
        if let Some(v) = value {
            values.insert(name.clone(), v);
        }
    }

    for (name, _) in inputs.cli {
        if !refs.contains(name) && !declared.contains_key(name) {
            let mut d = Diagnostic::warning(
                Code::OML_W054,
                format!("parameter `{name}` is given but the pipeline does not use it"),
            )
            .file(&doc.file);
            let known: Vec<&str> = declared
                .keys()
                .map(String::as_str)
                .chain(refs.iter().map(String::as_str))
                .collect();
            d = match did_you_mean(name, known.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("remove the --param, or reference it as `${params.NAME}`"),
            };
            diags.push(d);
        }
    }
    Params { values }
}

/// Substitutes parameters in `v` (at `pointer`); returns the pointers and names of unresolved ones.
pub fn substitute(
    v: &Value,
    pointer: &str,
    params: &Params,
    missing: &mut Vec<(String, String)>,
) -> Value {
    match v {
        Value::String(s) => {
            let found = placeholders(s);
            if found.is_empty() {
                return v.clone();
            }
            if found.len() == 1 && found[0].start == 0 && found[0].end == s.len() {
                return match params.values.get(&found[0].name) {
                    Some(val) => val.clone(),
                    None => {
                        missing.push((pointer.to_string(), found[0].name.clone()));
                        v.clone()
                    }
                };
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for p in &found {
                out.push_str(&s[last..p.start]);
                match params.values.get(&p.name) {
                    Some(val) => out.push_str(&as_text(val)),
                    None => {
                        missing.push((pointer.to_string(), p.name.clone()));
                        out.push_str(&s[p.start..p.end]);
                    }
                }
                last = p.end;
            }
            out.push_str(&s[last..]);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| substitute(x, &format!("{pointer}/{i}"), params, missing))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        substitute(x, &child(pointer, k), params, missing),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve_with(
        text: &str,
        profile: &str,
        cli: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> (Params, Vec<Diagnostic>) {
        let doc = SourceDoc::parse("p.yaml", text, osiris_core::yaml::Flavor::Oml).unwrap();
        let cli: Vec<(String, String)> = cli
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        let inputs = ParamInputs {
            profile,
            profile_explicit: profile != "default",
            cli: &cli,
            env: &lookup,
        };
        let mut diags = Vec::new();
        let p = resolve(&doc, &inputs, &mut diags);
        (p, diags)
    }

    const DOC: &str = "params:\n  a: 1\n  b: {default: x, description: d}\n  c: {description: no default}\nprofiles:\n  prod:\n    params: {a: 3, b: y}\nsteps:\n  - q: \"${params.a} ${params.b} ${params.c}\"\n";

    #[test]
    fn precedence_default_env_profile_cli() {
        let (p, d) = resolve_with(DOC, "default", &[], &[]);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(p.values.get("a"), Some(&json!(1)));
        assert_eq!(p.values.get("b"), Some(&json!("x")));
        assert_eq!(p.values.get("c"), None);
        let (p, _) = resolve_with(
            DOC,
            "default",
            &[],
            &[("OSIRIS_PARAM_a", "2"), ("OSIRIS_PARAM_C", "env")],
        );
        assert_eq!(p.values.get("a"), Some(&json!(2)));
        assert_eq!(p.values.get("c"), Some(&json!("env")));
        let (p, _) = resolve_with(DOC, "prod", &[], &[("OSIRIS_PARAM_a", "2")]);
        assert_eq!(p.values.get("a"), Some(&json!(3)));
        let (p, _) = resolve_with(
            DOC,
            "prod",
            &[("a", "4"), ("a", "5")],
            &[("OSIRIS_PARAM_a", "2")],
        );
        assert_eq!(p.values.get("a"), Some(&json!(5)));
    }

    #[test]
    fn typed_defaults_convert_cli_values() {
        let (_, d) = resolve_with(DOC, "default", &[("a", "many")], &[]);
        assert_eq!(d[0].code, "OML-E052");
        let (_, d) = resolve_with(DOC, "staging", &[], &[]);
        assert_eq!(d[0].code, "OML-E053");
        assert!(d[0].help.as_deref().unwrap().contains("prod"));
        let (_, d) = resolve_with(DOC, "default", &[("zzz", "1")], &[]);
        assert_eq!(d[0].code, "OML-W054");
    }

    #[test]
    fn substitution_keeps_types_for_whole_values() {
        let params = Params {
            values: [("n".to_string(), json!(5)), ("s".to_string(), json!("x"))].into(),
        };
        let mut missing = Vec::new();
        let v =
            json!({"a": "${params.n}", "b": "n=${params.n}, s=${params.s}", "c": ["${params.zz}"]});
        let out = substitute(&v, "", &params, &mut missing);
        assert_eq!(out, json!({"a": 5, "b": "n=5, s=x", "c": ["${params.zz}"]}));
        assert_eq!(missing, vec![("/c/0".to_string(), "zz".to_string())]);
    }

    #[test]
    fn finds_placeholders_and_ignores_malformed_ones() {
        let p = placeholders("${params.a}${params.}${params.b-c}${params.d}");
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "d"]);
        assert!(parse_cli("x=1=2").unwrap().1 == "1=2");
        assert!(parse_cli("=1").is_err());
    }
}
