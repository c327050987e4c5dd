//! Redaction: the last line of defence between a secret and anything written or printed.
//!
//! Three rules, applied together:
//! 1. JSON Pointers from the component's secret map (`secrets`, `x-secret`, `redaction.extras` in its spec);
//! 2. key names that hold credentials (`password`, `token`, `secret`, `*_key`, `dsn`, `authorization`, ...);
//! 3. every secret value resolved in this run, replaced wherever it occurs in any text (logs, errors, events),
//!    also in the encoded forms a secret takes on its way to a service: percent-encoded (any mix of `%XX`,
//!    upper or lower case, and `+` for a space, as URL and form encoders write it) and base64 (the value
//!    itself in the standard and URL-safe alphabets, and at each of the three byte alignments it can have
//!    inside a longer base64 text, such as `Authorization: Basic base64(user:password)` with any user name).
//!    [`basic_credentials`] gives the whole `user:password` form, which a connection adds for its user fields.
//!
//! Strategy `mask` (default) writes the mask (`***`), `hash` writes `sha256:<12 hex>` of the value (lets two
//! runs be compared without revealing it), `drop` removes JSON keys and masks text. `OSIRIS_REDACTION_STRATEGY`
//! overrides the strategy.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
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

/// A base64 form of a secret found at an alignment inside a longer base64 text is masked only when it is at least
/// this long (shorter runs of base64 characters occur in ordinary text).
pub const MIN_BASE64_FORM_LEN: usize = 6;

/// `base64(user:password)`, the credentials of an HTTP `Authorization: Basic` header.
pub fn basic_credentials(user: &str, password: &str) -> String {
    STANDARD.encode(format!("{user}:{password}"))
}

/// Whether a field name holds a user name (paired with the connection's secrets for [`basic_credentials`]).
pub fn is_user_key(name: &str) -> bool {
    let n = name.to_lowercase().replace('-', "_");
    matches!(
        n.as_str(),
        "user" | "username" | "user_name" | "login" | "client_id"
    ) || n.ends_with("_user")
        || n.ends_with("_username")
}

/// The base64 texts that reveal `secret`: its whole encoding (standard and URL-safe, with and without padding),
/// and for each of the three byte offsets it can start at inside longer encoded data, the run of base64
/// characters that depends on the secret's bytes alone.
fn base64_forms(secret: &str) -> Vec<String> {
    let bytes = secret.as_bytes();
    let mut forms = vec![
        STANDARD.encode(bytes),
        URL_SAFE.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
    ];
    for offset in 0..3usize {
        let mut shifted = vec![0u8; offset];
        shifted.extend_from_slice(bytes);
        // Characters whose six bits lie entirely inside the secret's bits [8*offset, 8*(offset + len)).
        let start = (8 * offset).div_ceil(6);
        let end = 8 * (offset + bytes.len()) / 6;
        if end < start + MIN_BASE64_FORM_LEN {
            continue;
        }
        for engine in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
            forms.push(engine.encode(&shifted)[start..end].to_string());
        }
    }
    forms.sort();
    forms.dedup();
    forms.retain(|f| f.len() >= MIN_TEXT_SECRET_LEN && f != secret);
    forms
}

/// One text to replace, and the secret it reveals (what the `hash` strategy hashes).
struct Pattern {
    text: String,
    secret: String,
}

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
    /// Secret values and their base64 forms, longest first, so a secret containing another is replaced whole.
    patterns: RwLock<Vec<Pattern>>,
    /// The secret values themselves, longest first (for their percent-encoded forms).
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
            patterns: RwLock::new(Vec::new()),
            values: RwLock::new(Vec::new()),
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Adds secret values to look for in text, with their encoded forms.
    pub fn add_secrets<I: IntoIterator<Item = S>, S: AsRef<str>>(&self, values: I) {
        let mut v = self.values.write().unwrap_or_else(|e| e.into_inner());
        let mut p = self.patterns.write().unwrap_or_else(|e| e.into_inner());
        for s in values {
            let s = s.as_ref();
            if s.len() < MIN_TEXT_SECRET_LEN || v.iter().any(|x| x == s) {
                continue;
            }
            v.push(s.to_string());
            for text in std::iter::once(s.to_string()).chain(base64_forms(s)) {
                if !p.iter().any(|x| x.text == text) {
                    p.push(Pattern {
                        text,
                        secret: s.to_string(),
                    });
                }
            }
        }
        v.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        p.sort_by(|a, b| {
            b.text
                .len()
                .cmp(&a.text.len())
                .then_with(|| a.text.cmp(&b.text))
        });
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

    /// Replaces every known secret value in `text` (as is, base64- or percent-encoded), and the password part of
    /// `scheme://user:password@host`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        {
            let patterns = self.patterns.read().unwrap_or_else(|e| e.into_inner());
            for p in patterns.iter() {
                if out.contains(p.text.as_str()) {
                    out = out.replace(p.text.as_str(), &self.replacement(&p.secret));
                }
            }
        }
        if out.contains(['%', '+']) {
            let values = self.values.read().unwrap_or_else(|e| e.into_inner());
            for v in values.iter() {
                if let Some(replaced) = replace_percent_encoded(&out, v, &self.replacement(v)) {
                    out = replaced;
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

/// Replaces every occurrence of `secret` in `text` where any of its bytes may be written `%XX` (hex in either
/// case) and a space `+`: what URL, query-string and form encoders make of it. `None` when there is none.
fn replace_percent_encoded(text: &str, secret: &str, replacement: &str) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    /// The end of a match of `secret` starting at `i`.
    fn match_at(t: &[u8], mut i: usize, secret: &[u8]) -> Option<usize> {
        for &b in secret {
            let decoded = (t.get(i) == Some(&b'%'))
                .then(|| Some(hex(*t.get(i + 1)?)? * 16 + hex(*t.get(i + 2)?)?))
                .flatten();
            if decoded == Some(b) {
                i += 3;
            } else if t.get(i) == Some(&b) || (b == b' ' && t.get(i) == Some(&b'+')) {
                i += 1;
            } else {
                return None;
            }
        }
        Some(i)
    }
    let (t, s) = (text.as_bytes(), secret.as_bytes());
    let mut out: Vec<u8> = Vec::with_capacity(t.len());
    let (mut i, mut found) = (0, false);
    while i < t.len() {
        // A match starts at `%`, `+` or the secret's first byte: always a character boundary of `text`, and so
        // is its end (the last byte of a character of the secret, or an ASCII `%XX`).
        match match_at(t, i, s) {
            Some(end) if end > i => {
                out.extend_from_slice(replacement.as_bytes());
                i = end;
                found = true;
            }
            _ => {
                out.push(t[i]);
                i += 1;
            }
        }
    }
    found.then(|| {
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    })
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
