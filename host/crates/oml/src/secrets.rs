//! Inline secrets: a secret-bearing config field holding a literal value.
//!
//! A field is secret-bearing when its JSON Pointer is one of the spec's secret pointers (`secrets`,
//! `x-secret`, `redaction.extras`) or lies inside one (a pointer to a mapping covers all of it, as for
//! redaction), or when its own name is in [`BUILTIN_NAMES`] (at any depth, so `headers.Authorization` counts). Allowed values are references: a `${VAR}` environment reference (alone or
//! inside the string) or a connection reference `@family.alias`, plus empty values and booleans.
//! A `${params.NAME}` is not allowed there: parameter values are written into the compiled config.

use crate::params::placeholders;
use osiris_core::yaml::child;
use serde_json::Value;

/// Field names that hold credentials whatever the component says (compared lower-case, `-` as `_`).
pub const BUILTIN_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "secret_key",
    "secret_access_key",
    "private_key",
    "token",
    "access_token",
    "refresh_token",
    "auth_token",
    "bearer_token",
    "api_key",
    "apikey",
    "x_api_key",
    "api_token",
    "service_role_key",
    "anon_key",
    "authorization",
    "proxy_authorization",
    "credentials",
    "connection_string",
];

pub fn is_builtin_name(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    BUILTIN_NAMES.contains(&k.as_str())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A literal where a reference is required. `value` is kept only to mask the source display.
    Literal {
        pointer: String,
        field: String,
        value: String,
    },
    /// A `${params.NAME}` in a secret field.
    Param {
        pointer: String,
        field: String,
        name: String,
    },
}

/// Scans a step's raw config (before parameters are substituted). `secret_pointers` are relative to the config.
pub fn scan(config: &Value, secret_pointers: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    walk(config, "", None, false, secret_pointers, &mut out);
    out
}

fn walk(
    v: &Value,
    pointer: &str,
    key: Option<&str>,
    inside: bool,
    secret_pointers: &[String],
    out: &mut Vec<Finding>,
) {
    let flagged =
        inside || secret_pointers.iter().any(|p| p == pointer) || key.is_some_and(is_builtin_name);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                walk(
                    x,
                    &child(pointer, k),
                    Some(k),
                    flagged,
                    secret_pointers,
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let p = format!("{pointer}/{i}");
                if flagged {
                    check_scalar(x, &p, key.unwrap_or(""), out);
                }
                if !x.is_object() && !x.is_array() {
                    continue;
                }
                walk(x, &p, None, flagged, secret_pointers, out);
            }
        }
        _ if flagged => check_scalar(v, pointer, key.unwrap_or(""), out),
        _ => {}
    }
}

fn check_scalar(v: &Value, pointer: &str, field: &str, out: &mut Vec<Finding>) {
    let field = field.to_string();
    match v {
        Value::String(s) => {
            if let Some(p) = placeholders(s).into_iter().next() {
                out.push(Finding::Param {
                    pointer: pointer.to_string(),
                    field,
                    name: p.name,
                });
            } else if s.trim().is_empty() || s.contains("${") || is_connection_ref(s) {
            } else {
                out.push(Finding::Literal {
                    pointer: pointer.to_string(),
                    field,
                    value: s.clone(),
                });
            }
        }
        Value::Number(n) => out.push(Finding::Literal {
            pointer: pointer.to_string(),
            field,
            value: n.to_string(),
        }),
        _ => {}
    }
}

fn is_connection_ref(s: &str) -> bool {
    s.starts_with('@') && !s.contains(char::is_whitespace) && s.len() > 1
}

/// Where an inline secret value is written: 1-based line and column of its first character (the opening
/// quote for a quoted scalar), its length there, and the value itself.
pub struct Written {
    pub line: usize,
    pub col: usize,
    pub len: usize,
    pub value: String,
}

/// `text` with the given secret values replaced by `***` where they are written (for showing source lines).
/// A multi-line value (a block scalar) is masked on every line it spans.
pub fn mask_source(text: &str, values: &[Written]) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for w in values {
        let Some(line) = lines.get_mut(w.line.saturating_sub(1)) else {
            continue;
        };
        let chars: Vec<char> = line.chars().collect();
        let start = w.col.saturating_sub(1).min(chars.len());
        let quoted = matches!(chars.get(start), Some('"' | '\''));
        let end = (start + w.len.max(1)).min(chars.len());
        let masked = if quoted {
            format!("{0}***{0}", chars[start])
        } else {
            "***".to_string()
        };
        if w.value.contains('\n') {
            *line = chars[..start].iter().collect::<String>() + "***";
            let pieces: Vec<&str> = w
                .value
                .lines()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            for l in lines.iter_mut().skip(w.line) {
                let t = l.trim();
                if t.is_empty() {
                    continue;
                }
                if !pieces.contains(&t) {
                    break;
                }
                let indent = l.len() - l.trim_start().len();
                *l = format!("{}***", &l[..indent]);
            }
        } else {
            *line = chars[..start].iter().collect::<String>()
                + &masked
                + &chars[end..].iter().collect::<String>();
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_literals_in_spec_and_builtin_fields_including_nested_maps() {
        let cfg = json!({
            "key": "abcdef", "password": "${MYSQL_PASSWORD}", "table": "t",
            "headers": {"Authorization": "Bearer abc", "User-Agent": "${UA}"},
            "api": {"headers": {"User-Agent": "osiris"}},
            "nested": {"deep": {"api-key": 12345}},
            "token": "${params.tok}", "connection": "@mysql.default", "secret": ""
        });
        let found = scan(&cfg, &["/key".to_string()]);
        let lits: Vec<&str> = found
            .iter()
            .filter_map(|f| match f {
                Finding::Literal { pointer, .. } => Some(pointer.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            lits,
            ["/headers/Authorization", "/key", "/nested/deep/api-key"]
        );
        assert!(found.contains(&Finding::Param {
            pointer: "/token".into(),
            field: "token".into(),
            name: "tok".into()
        }));
    }

    #[test]
    fn masks_values_in_the_displayed_source() {
        let src = "config:\n  password: hunter22 # note\n  token: 'ab cd'\n  key: |\n    line one\n    line two\n  user: hunter22x\n";
        let w = |line, col, len, value: &str| Written {
            line,
            col,
            len,
            value: value.to_string(),
        };
        let masked = mask_source(
            src,
            &[
                w(2, 13, 8, "hunter22"),
                w(3, 10, 7, "ab cd"),
                w(4, 8, 1, "line one\nline two\n"),
            ],
        );
        assert_eq!(
            masked,
            "config:\n  password: *** # note\n  token: '***'\n  key: ***\n    ***\n    ***\n  user: hunter22x\n"
        );
    }
}
