//! Canonical JSON: object keys sorted by code point, no insignificant whitespace (or, for files people read,
//! 2-space indentation and a trailing newline). The same value always gives the same bytes.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A copy of `v` whose objects hold their keys in sorted order (whatever map type serde_json uses).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Compact canonical JSON, the input of every fingerprint.
pub fn compact(v: &Value) -> String {
    serde_json::to_string(&sorted(v)).expect("JSON values always serialize")
}

/// Canonical JSON for files: sorted keys, 2-space indentation, trailing newline.
pub fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(&sorted(v)).expect("JSON values always serialize");
    s.push('\n');
    s
}

/// `sha256:<hex>` of the compact canonical JSON of `v`.
pub fn fingerprint(v: &Value) -> String {
    format!("sha256:{}", sha256_hex(compact(v).as_bytes()))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": [1, {"d": 1, "c": 2}], "x": null}}"#)
                .unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": null, "y": [1, {"c": 2, "d": 1}]}, "b": 1}"#)
                .unwrap();
        assert_eq!(compact(&a), compact(&b));
        assert_eq!(
            compact(&a),
            r#"{"a":{"x":null,"y":[1,{"c":2,"d":1}]},"b":1}"#
        );
        assert_eq!(
            pretty(&json!({"b": 1, "a": 2})),
            "{\n  \"a\": 2,\n  \"b\": 1\n}\n"
        );
        assert_eq!(
            fingerprint(&json!({})),
            format!("sha256:{}", sha256_hex(b"{}"))
        );
    }
}
