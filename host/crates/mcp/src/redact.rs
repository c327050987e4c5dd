//! Defence in depth for what a child `osiris` returns. The child has already masked every secret value it
//! resolved (osiris's own redactor, which knows the values); this server knows no secret value, so it masks by
//! form instead:
//!
//! - in JSON, the value under a key that names a credential (`password`, `token`, `*_key`, `dsn`, ...:
//!   `osiris_core::secrets::is_secret_key`), at any depth;
//! - in text, the password of `scheme://user:password@host`, the credentials after `Bearer` and `Basic`, and
//!   the value of `key=value`, `key: value` and `"key": "value"` when `key` names a credential (a value that
//!   is already masked or a `${VAR}` reference is left as it is).
//!
//! What this cannot find: a secret value that appears with no such form around it. That is the child's
//! redactor's job, and the reason the child alone ever holds a secret (ADR 0012).

use osiris_core::secrets::{Redactor, Strategy, is_secret_key};
use serde_json::Value;

/// What a masked value is replaced with (the same mask osiris uses).
pub const MASK: &str = "***";

/// A redactor that knows no secret value: it masks by key name and URL password only.
fn redactor() -> Redactor {
    Redactor::new(Strategy::Mask, MASK)
}

/// A copy of `v` with credential-named keys masked and every string passed through [`text`].
pub fn json(v: &Value) -> Value {
    let mut out = redactor().json(v, &[]);
    strings(&mut out);
    out
}

fn strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            let t = text(s);
            if t != *s {
                *s = t;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strings),
        Value::Object(m) => m.values_mut().for_each(strings),
        _ => {}
    }
}

/// `text` with URL passwords, `Bearer`/`Basic` credentials and credential-named `key=value` values masked.
pub fn text(text: &str) -> String {
    let t = redactor().text(text);
    let t = after_scheme(&t, "bearer");
    let t = after_scheme(&t, "basic");
    key_values(&t)
}

fn is_value_char(c: char) -> bool {
    !(c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '&' | ';' | ',' | ')' | ']' | '}' | '>'
        ))
}

/// Masks the word after `Bearer ` / `Basic ` (any case) when it looks like a credential (8 or more characters).
fn after_scheme(text: &str, scheme: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut from = 0;
    while let Some(i) = lower[from..].find(scheme).map(|i| i + from) {
        let start = i + scheme.len();
        from = start;
        let boundary = i == 0 || !lower[..i].ends_with(|c: char| c.is_ascii_alphanumeric());
        let Some(rest) = text[start..].strip_prefix(' ') else {
            continue;
        };
        if !boundary {
            continue;
        }
        let len = rest.find(|c: char| !is_value_char(c)).unwrap_or(rest.len());
        let word = &rest[..len];
        if word.len() >= 8 && word != MASK {
            out.push_str(&text[last..start + 1]);
            out.push_str(MASK);
            last = start + 1 + len;
            from = last;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Masks the value in `key=value`, `key: value`, `"key": "value"` and `key = 'value'` when `key` names a
/// credential.
fn key_values(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        if !(b[i] == b'=' || b[i] == b':') {
            i += 1;
            continue;
        }
        // The key: the identifier just before the separator (an optional closing quote and spaces between).
        let mut k_end = i;
        while k_end > 0 && b[k_end - 1] == b' ' {
            k_end -= 1;
        }
        if k_end > 0 && matches!(b[k_end - 1], b'"' | b'\'') {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0
            && (b[k_start - 1].is_ascii_alphanumeric() || matches!(b[k_start - 1], b'_' | b'-'))
        {
            k_start -= 1;
        }
        let key = &text[k_start..k_end];
        // `://` is a URL, `==` and `:=` are not assignments of a value here.
        let url = text[i..].starts_with("://");
        if key.is_empty() || url || !is_secret_key(key) {
            i += 1;
            continue;
        }
        // The value: after spaces and an optional opening quote.
        let mut v_start = i + 1;
        while v_start < b.len() && b[v_start] == b' ' {
            v_start += 1;
        }
        let quote = (v_start < b.len() && matches!(b[v_start], b'"' | b'\'')).then(|| b[v_start]);
        if quote.is_some() {
            v_start += 1;
        }
        let rest = &text[v_start..];
        let len = match quote {
            Some(q) => rest.find(q as char).unwrap_or(rest.len()),
            None => rest.find(|c: char| !is_value_char(c)).unwrap_or(rest.len()),
        };
        let value = &rest[..len];
        let keep = value.is_empty()
            || value == MASK
            || value.starts_with("${")
            || (quote.is_none() && matches!(value, "null" | "true" | "false"))
            // `Authorization: Bearer <token>`: the token is masked by `after_scheme`
            || value.eq_ignore_ascii_case("bearer")
            || value.eq_ignore_ascii_case("basic");
        if !keep {
            out.push_str(&text[last..v_start]);
            out.push_str(MASK);
            last = v_start + len;
        }
        i = (v_start + len).max(i + 1);
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_credentials_by_form() {
        assert_eq!(
            text("connect mysql://app:hunter2-long@db:3306/x failed"),
            "connect mysql://app:***@db:3306/x failed"
        );
        assert_eq!(
            text("sent Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload and"),
            "sent Authorization: Bearer *** and"
        );
        assert_eq!(text("Basic dXNlcjpwYXNzd29yZA=="), "Basic ***");
        assert_eq!(
            text("password=s3cr3t-value host=db api_token: 'tok en' \"client_secret\": \"abc\""),
            "password=*** host=db api_token: '***' \"client_secret\": \"***\""
        );
        // Left alone: masked values, references, words that are not credentials, URLs without a password.
        for same in [
            "password: ***",
            "api_token: ${API_TOKEN}",
            "field `password` is a secret",
            "primary_key: id",
            "see https://example.invalid/docs: ok",
            "a basic step",
            "mode=write rows: 20",
            "{\"secret\": true, \"token\": null}",
        ] {
            assert_eq!(text(same), same);
        }
    }

    #[test]
    fn masks_json_by_key_and_text() {
        let v = json!({
            "fields": [{"name": "password", "secret": true}],
            "password": "x1",
            "nested": {"api_key": 42, "dsn": "postgres://u:p4ss@h/db"},
            "error": "login failed for token=abcdef123",
            "primary_key": ["id"],
        });
        assert_eq!(
            json(&v),
            json!({
                "fields": [{"name": "password", "secret": true}],
                "password": "***",
                "nested": {"api_key": "***", "dsn": "***"},
                "error": "login failed for token=***",
                "primary_key": ["id"],
            })
        );
    }
}
