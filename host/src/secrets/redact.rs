//! Redaction: the last line of defence between a secret and anything written or printed.
//!
//! Three rules, applied together:
//! 1. JSON Pointers from the component's secret map (`secrets`, `x-secret`, `redaction.extras` in its spec);
//! 2. key names that hold credentials (`password`, `token`, `secret`, `*_key`, `dsn`, `authorization`, ...);
//! 3. every secret value resolved in this run, replaced wherever it occurs in any text (logs, errors, events).
//!
//! Strategy `mask` (default) writes the mask (`***`), `hash` writes `sha256:<12 hex>` of the value (lets two
//! runs be compared without revealing it), `drop` removes JSON keys and masks text. `OSIRIS_REDACTION_STRATEGY`
//! overrides the strategy.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::RwLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Mask,
    Hash,
    Drop,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s.trim().to_lowercase().as_str() {
            "mask" => Some(Strategy::Mask),
            "hash" => Some(Strategy::Hash),
            "drop" => Some(Strategy::Drop),
            _ => None,
        }
    }
}

/// Secret values shorter than this are masked in JSON by key, but not searched for in free text (masking
/// every `a` or `1` in a log would destroy it without protecting anything).
pub const MIN_TEXT_SECRET_LEN: usize = 4;

/// Key names that never hold secrets although they end in `_key`.
const NOT_SECRET_KEYS: &[&str] = &[
    "primary_key",
    "foreign_key",
    "partition_key",
    "sort_key",
    "unique_key",
    "upsert_key",
    "merge_key",
    "conflict_key",
    "cursor_key",
    "join_key",
    "dedup_key",
];

/// Whether a field name by itself marks a credential.
pub fn is_secret_key(name: &str) -> bool {
    let n = name.to_lowercase().replace('-', "_");
    if NOT_SECRET_KEYS.contains(&n.as_str()) {
        return false;
    }
    const PARTS: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "dsn",
        "authorization",
        "credential",
        "api_key",
        "apikey",
        "private_key",
        "access_key",
        "cookie",
        "connection_string",
    ];
    n == "key"
        || n == "pwd"
        || n.ends_with("_key")
        || n.ends_with("_pwd")
        || PARTS.iter().any(|p| n.contains(p))
}

/// Masks secrets; shared by everything that writes or prints during a run.
pub struct Redactor {
    strategy: Strategy,
    mask: String,
    /// Longest first, so a secret containing another is replaced whole.
    values: RwLock<Vec<String>>,
}

impl Redactor {
    /// `OSIRIS_REDACTION_STRATEGY` (mask|hash|drop) overrides `strategy`.
    pub fn new(strategy: Strategy, mask: &str) -> Redactor {
        let strategy = std::env::var("OSIRIS_REDACTION_STRATEGY")
            .ok()
            .and_then(|s| Strategy::parse(&s))
            .unwrap_or(strategy);
        Redactor {
            strategy,
            mask: if mask.is_empty() {
                "***".into()
            } else {
                mask.to_string()
            },
            values: RwLock::new(Vec::new()),
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Adds secret values to look for in text.
    pub fn add_secrets<I: IntoIterator<Item = S>, S: AsRef<str>>(&self, values: I) {
        let mut v = self.values.write().unwrap_or_else(|e| e.into_inner());
        for s in values {
            let s = s.as_ref();
            if s.len() >= MIN_TEXT_SECRET_LEN && !v.iter().any(|x| x == s) {
                v.push(s.to_string());
            }
        }
        v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    fn replacement(&self, secret: &str) -> String {
        match self.strategy {
            Strategy::Hash => {
                let h = Sha256::digest(secret.as_bytes());
                format!("sha256:{}", &hex::encode(h)[..12])
            }
            Strategy::Mask | Strategy::Drop => self.mask.clone(),
        }
    }

    /// Replaces every known secret value in `text`, and the password part of `scheme://user:password@host`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            for v in values.iter() {
                if out.contains(v.as_str()) {
                    out = out.replace(v.as_str(), &self.replacement(v));
                }
            }
        }
        mask_url_passwords(&out, &self.mask)
    }

    /// A copy of `v` with secrets masked: at `pointers`, under secret-looking keys, and known values anywhere.
    pub fn json(&self, v: &Value, pointers: &[String]) -> Value {
        let mut out = v.clone();
        for p in pointers {
            if p.is_empty() {
                continue;
            }
            if let Some(target) = out.pointer(p).cloned() {
                if matches!(target, Value::Null) {
                    continue;
                }
                match self.strategy {
                    Strategy::Drop => {
                        remove_pointer(&mut out, p);
                    }
                    _ => {
                        if let Some(slot) = out.pointer_mut(p) {
                            *slot = self.mask_value(&target);
                        }
                    }
                }
            }
        }
        self.walk(&mut out);
        out
    }

    fn mask_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.replacement(s)),
            Value::Number(n) => Value::String(self.replacement(&n.to_string())),
            Value::Object(_) | Value::Array(_) => Value::String(self.mask.clone()),
            other => other.clone(),
        }
    }

    fn walk(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let secret = is_secret_key(&k) && !map[&k].is_null() && !map[&k].is_boolean();
                    if secret {
                        if self.strategy == Strategy::Drop {
                            map.remove(&k);
                        } else {
                            let masked = self.mask_value(&map[&k]);
                            map.insert(k, masked);
                        }
                    } else if let Some(child) = map.get_mut(&k) {
                        self.walk(child);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.walk(x)),
            Value::String(s) => {
                let t = self.text(s);
                if t != *s {
                    *s = t;
                }
            }
            _ => {}
        }
    }
}

fn remove_pointer(v: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    let target = if parent.is_empty() {
        Some(v)
    } else {
        v.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(m)) => {
            m.remove(&last);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// `mysql://user:pa55@host` -> `mysql://user:***@host`.
fn mask_url_passwords(text: &str, mask: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => {
                out.push_str(&authority[..colon + 1]);
                out.push_str(mask);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
