//! The read window the host asks an extractor for: incremental loads (`incremental:`) and chunked loads
//! (`chunk_by:`) both come down to "rows whose key columns compare greater than these values, in this order".
//!
//! The host computes the window from the state file (or the run being resumed) and passes it under the
//! reserved config key [`KEY`], which no spec's `configSchema` admits, so a pipeline can never set it:
//!
//! ```json
//! {"_window": {"where": [{"columns": ["updated_at"], "op": ">", "values": ["2026-12-01 10:00:00.000000"]}],
//!              "order_by": ["id"]}}
//! ```
//!
//! A value is a JSON number (written as is) or a string (written as a quoted literal the server converts to the
//! column's type, which keeps an index range scan on the column). Several columns compare as a row value,
//! `(a, b) > ('x', 'y')`, which both MySQL/MariaDB and PostgreSQL evaluate lexicographically.

use osiris_plugin_sdk::PluginError;
use serde_json::{Map, Value};

/// The reserved config key the host passes the window under.
pub const KEY: &str = "_window";

/// How a database spells literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL/MariaDB: backslash escapes in strings; timestamps without a zone suffix (sessions run in UTC).
    Mysql,
    /// PostgreSQL: standard-conforming strings.
    Postgres,
}

/// `base` restricted to the window in `config`, or `base` unchanged when there is none. `quote` quotes an
/// identifier the way the database does.
pub fn apply(
    base: &str,
    config: &Map<String, Value>,
    dialect: Dialect,
    quote: fn(&str) -> String,
) -> Result<String, PluginError> {
    let Some(w) = config.get(KEY) else {
        return Ok(base.to_string());
    };
    let bad =
        |why: &str| PluginError::internal(format!("the host's read window is malformed: {why}"));
    let mut conds: Vec<String> = Vec::new();
    for c in w
        .get("where")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cols: Vec<&str> = c
            .get("columns")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`columns` is not a list"))?
            .iter()
            .map(|v| v.as_str().ok_or_else(|| bad("a column is not a string")))
            .collect::<Result<_, _>>()?;
        let values = c
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`values` is not a list"))?;
        if cols.is_empty() || cols.len() != values.len() {
            return Err(bad("`columns` and `values` differ in length"));
        }
        let op = match c.get("op").and_then(Value::as_str) {
            Some(op @ (">" | ">=")) => op,
            _ => return Err(bad("`op` is neither `>` nor `>=`")),
        };
        let lits = values
            .iter()
            .map(|v| {
                literal(v, dialect).ok_or_else(|| bad("a value is neither a number nor a string"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let qcols: Vec<String> = cols.iter().map(|c| quote(c)).collect();
        if cols.len() == 1 {
            conds.push(format!("{} {op} {}", qcols[0], lits[0]));
        } else {
            conds.push(format!("({}) {op} ({})", qcols.join(", "), lits.join(", ")));
        }
    }
    let order: Vec<String> = w
        .get("order_by")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            v.as_str()
                .map(quote)
                .ok_or_else(|| bad("an `order_by` column is not a string"))
        })
        .collect::<Result<_, _>>()?;
    if conds.is_empty() && order.is_empty() {
        return Ok(base.to_string());
    }
    // A derived table keeps `query` as written; both servers merge it into the outer query, so the condition
    // still reaches an index on the cursor column.
    let mut sql = format!("SELECT * FROM ({base}) AS osiris_window");
    if !conds.is_empty() {
        sql.push_str(&format!(" WHERE {}", conds.join(" AND ")));
    }
    if !order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order.join(", ")));
    }
    Ok(sql)
}

/// A JSON number as written, a string as a quoted literal.
fn literal(v: &Value, dialect: Dialect) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => {
            let s = match dialect {
                // Sessions run with time_zone '+00:00'; MariaDB refuses a zone suffix in a DATETIME literal.
                Dialect::Mysql => s.strip_suffix("+00:00").unwrap_or(s),
                Dialect::Postgres => s,
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push('\'');
            for ch in s.chars() {
                match ch {
                    '\'' => out.push_str("''"),
                    '\\' if dialect == Dialect::Mysql => out.push_str("\\\\"),
                    '\0' => return None,
                    c => out.push(c),
                }
            }
            out.push('\'');
            Some(out)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(s: &str) -> String {
        format!("\"{s}\"")
    }

    fn cfg(w: Value) -> Map<String, Value> {
        json!({ "table": "t", KEY: w }).as_object().unwrap().clone()
    }

    #[test]
    fn no_window_leaves_the_query_alone() {
        let m = json!({"table": "t"}).as_object().unwrap().clone();
        assert_eq!(
            apply("SELECT 1", &m, Dialect::Postgres, q).unwrap(),
            "SELECT 1"
        );
    }

    #[test]
    fn one_column_and_order() {
        let m = cfg(
            json!({"where": [{"columns": ["u"], "op": ">", "values": ["2026-01-01 00:00:00+00:00"]}],
                           "order_by": ["id"]}),
        );
        assert_eq!(
            apply("SELECT * FROM t", &m, Dialect::Postgres, q).unwrap(),
            "SELECT * FROM (SELECT * FROM t) AS osiris_window WHERE \"u\" > '2026-01-01 00:00:00+00:00' ORDER BY \"id\""
        );
        assert_eq!(
            apply("SELECT * FROM t", &m, Dialect::Mysql, q).unwrap(),
            "SELECT * FROM (SELECT * FROM t) AS osiris_window WHERE \"u\" > '2026-01-01 00:00:00' ORDER BY \"id\""
        );
    }

    #[test]
    fn several_columns_compare_as_a_row_and_conditions_combine() {
        let m = cfg(json!({"where": [
            {"columns": ["a", "b"], "op": ">=", "values": [1, "x'y\\"]},
            {"columns": ["id"], "op": ">", "values": [42]}
        ]}));
        assert_eq!(
            apply("B", &m, Dialect::Mysql, q).unwrap(),
            "SELECT * FROM (B) AS osiris_window WHERE (\"a\", \"b\") >= (1, 'x''y\\\\') AND \"id\" > 42"
        );
        assert_eq!(
            apply("B", &m, Dialect::Postgres, q).unwrap(),
            "SELECT * FROM (B) AS osiris_window WHERE (\"a\", \"b\") >= (1, 'x''y\\') AND \"id\" > 42"
        );
    }

    #[test]
    fn malformed_windows_are_refused() {
        for w in [
            json!({"where": [{"columns": ["a"], "op": "<", "values": [1]}]}),
            json!({"where": [{"columns": ["a", "b"], "op": ">", "values": [1]}]}),
            json!({"where": [{"columns": ["a"], "op": ">", "values": [true]}]}),
            json!({"where": [{"columns": ["a"], "op": ">", "values": ["nul\u{0}"]}]}),
        ] {
            assert!(
                apply("B", &cfg(w.clone()), Dialect::Postgres, q).is_err(),
                "{w}"
            );
        }
    }
}
