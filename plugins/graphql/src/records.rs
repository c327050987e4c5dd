//! From a GraphQL response to Arrow: walking dot paths, flattening records into columns, inferring column
//! types from the first page and building one record batch per page.
//!
//! Type rules (documented in docs/components/graphql.md): a column whose non-null values on the first page are
//! all booleans is `bool`, all integers `int64`, all numbers `float64`; anything else (strings, mixed kinds,
//! lists, objects when not flattened, or only nulls) is `utf8`, non-strings written as JSON text. Later pages
//! must fit: an `int64` column refuses a fraction or a string, and so on, with an error naming the column.

use crate::ordered::Json;
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use osiris_plugin_sdk::{ErrorKind, PluginError};
use serde_json::Value;
use std::sync::Arc;

/// One record: column name -> value, in first-seen order.
pub type Row = Vec<(String, Value)>;

/// The values at a dot path. A segment ending in `[*]` steps into every element of a list.
/// A missing key is an error naming the segment; `null` along the way yields nothing.
pub fn walk<'a>(root: &'a Json, path: &str, what: &str) -> Result<Vec<&'a Json>, PluginError> {
    let mut current = vec![root];
    let mut walked = String::new();
    for raw in path.split('.') {
        let (name, each) = match raw.strip_suffix("[*]") {
            Some(n) => (n, true),
            None => (raw, false),
        };
        if name.is_empty() {
            return Err(
                PluginError::config(format!("`{what}` `{path}` has an empty segment")).with_help(
                    "write segments separated by single dots, e.g. data.products.edges[*].node",
                ),
            );
        }
        let mut next = Vec::new();
        for v in current {
            match v {
                Json::Null => {}
                Json::Object(m) => match v.get(name) {
                    Some(Json::Null) => {}
                    Some(child) if each => match child {
                        Json::Array(items) => next.extend(items.iter()),
                        other => {
                            return Err(PluginError::data(format!(
                                "`{what}` `{path}`: `{walked}{name}` is {}, not a list, so `[*]` cannot step into it",
                                kind(other)
                            )));
                        }
                    },
                    Some(child) => next.push(child),
                    None => {
                        let keys: Vec<String> = m.iter().map(|(k, _)| format!("`{k}`")).collect();
                        return Err(PluginError::data(format!(
                            "`{what}` `{path}`: the response has no `{walked}{name}`{}",
                            if keys.is_empty() {
                                String::new()
                            } else {
                                format!(" (keys there: {})", keys.join(", "))
                            }
                        ))
                        .with_help(format!(
                            "point `{what}` at a path present in the response (it starts at the top, e.g. data.items)"
                        )));
                    }
                },
                other => {
                    return Err(PluginError::data(format!(
                        "`{what}` `{path}`: `{}` is {}, not an object",
                        walked.trim_end_matches('.'),
                        kind(other)
                    )));
                }
            }
        }
        current = next;
        walked.push_str(raw);
        walked.push('.');
    }
    Ok(current)
}

pub fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The records at `data_path`: a list yields one record per element, an object one record.
pub fn records(response: &Json, data_path: &str, flatten: bool) -> Result<Vec<Row>, PluginError> {
    let mut rows = Vec::new();
    for v in walk(response, data_path, "data_path")? {
        match v {
            Json::Array(items) => {
                for item in items {
                    rows.push(record(item, data_path, flatten)?);
                }
            }
            other => rows.push(record(other, data_path, flatten)?),
        }
    }
    Ok(rows)
}

fn record(v: &Json, data_path: &str, flatten: bool) -> Result<Row, PluginError> {
    match v {
        Json::Object(m) => {
            let mut row = Vec::new();
            put(&mut row, "", m, flatten);
            Ok(row)
        }
        Json::Null => Ok(Vec::new()),
        other => Err(PluginError::data(format!(
            "`data_path` `{data_path}` leads to {}, but records must be objects",
            kind(other)
        ))
        .with_help(
            "point `data_path` at a list of objects or at an object, e.g. data.users.nodes",
        )),
    }
}

fn put(row: &mut Row, prefix: &str, m: &[(String, Json)], flatten: bool) {
    for (k, v) in m {
        let name = format!("{prefix}{k}");
        match v {
            Json::Object(inner) if flatten => put(row, &format!("{name}."), inner, flatten),
            other => row.push((name, other.to_value())),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Null,
    Bool,
    Int,
    Float,
    Text,
}

fn ty_of(v: &Value) -> Ty {
    match v {
        Value::Null => Ty::Null,
        Value::Bool(_) => Ty::Bool,
        Value::Number(n) if n.is_i64() => Ty::Int,
        Value::Number(_) => Ty::Float,
        _ => Ty::Text,
    }
}

fn unify(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (x, Ty::Null) | (Ty::Null, x) => x,
        (x, y) if x == y => x,
        (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => Ty::Float,
        _ => Ty::Text,
    }
}

/// Column names in first-seen order and their types, from the first page's records.
pub fn infer(rows: &[Row]) -> SchemaRef {
    let mut cols: Vec<(String, Ty)> = Vec::new();
    for row in rows {
        for (name, v) in row {
            let t = ty_of(v);
            match cols.iter_mut().find(|(n, _)| n == name) {
                Some((_, have)) => *have = unify(*have, t),
                None => cols.push((name.clone(), t)),
            }
        }
    }
    // A nested object that was null on some records and an object on others: its columns are `name.x`, so the
    // all-null `name` column is dropped.
    let nested: Vec<String> = cols.iter().map(|(n, _)| n.clone()).collect();
    cols.retain(|(n, t)| *t != Ty::Null || !nested.iter().any(|o| o.starts_with(&format!("{n}."))));
    let fields: Vec<Field> = cols
        .into_iter()
        .map(|(n, t)| {
            let dt = match t {
                Ty::Bool => DataType::Boolean,
                Ty::Int => DataType::Int64,
                Ty::Float => DataType::Float64,
                Ty::Null | Ty::Text => DataType::Utf8,
            };
            Field::new(n, dt, true)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

fn mismatch(column: &str, want: &str, v: &Value, page: u64) -> PluginError {
    PluginError::new(
        ErrorKind::Data,
        "GRAPHQL-TYPE",
        format!(
            "page {page}: column `{column}` was inferred as {want} from the first page, but a record has {} here",
            value_kind(v)
        ),
    )
    .with_help(
        "column types come from the first page; make the API return consistent types, or select the field \
         as a string in the query",
    )
}

/// One record batch holding `rows`, which must fit `schema` (built from the first page).
pub fn batch(schema: &SchemaRef, rows: &[Row], page: u64) -> Result<RecordBatch, PluginError> {
    for row in rows {
        for (name, v) in row {
            if !v.is_null() && schema.index_of(name).is_err() {
                return Err(PluginError::new(
                    ErrorKind::Data,
                    "GRAPHQL-COLUMN",
                    format!(
                        "page {page}: a record has field `{name}`, which no record of the first page had"
                    ),
                )
                .with_help(
                    "columns come from the first page; a nested object that was null on every record of the \
                     first page adds columns later: set `flatten_result: false` to keep it as one JSON column",
                ));
            }
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let name = field.name();
        let value = |row: &Row| -> Option<Value> {
            row.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_null())
        };
        let array: ArrayRef = match field.data_type() {
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(rows.len());
                for row in rows {
                    match value(row) {
                        None => b.append_null(),
                        Some(Value::Bool(x)) => b.append_value(x),
                        Some(v) => return Err(mismatch(name, "bool", &v, page)),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(rows.len());
                for row in rows {
                    match value(row) {
                        None => b.append_null(),
                        Some(v) => match v.as_i64() {
                            Some(x) => b.append_value(x),
                            None => return Err(mismatch(name, "int64", &v, page)),
                        },
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Float64 => {
                let mut b = Float64Builder::with_capacity(rows.len());
                for row in rows {
                    match value(row) {
                        None => b.append_null(),
                        Some(v) => match v.as_f64() {
                            Some(x) => b.append_value(x),
                            None => return Err(mismatch(name, "float64", &v, page)),
                        },
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::new();
                for row in rows {
                    match value(row) {
                        None => b.append_null(),
                        Some(Value::String(s)) => b.append_value(s),
                        Some(v) => b.append_value(v.to_string()),
                    }
                }
                Arc::new(b.finish())
            }
        };
        columns.push(array);
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options)
        .map_err(|e| PluginError::internal(format!("building a record batch failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use serde_json::json;

    fn records(v: Value, path: &str, flatten: bool) -> Result<Vec<Row>, PluginError> {
        super::records(&serde_json::from_value(v).unwrap(), path, flatten)
    }

    #[test]
    fn walks_lists_and_flattens_nested_objects() {
        let r = json!({"data": {"p": {"edges": [
            {"node": {"id": 1, "owner": {"login": "a"}, "tags": ["x"], "ok": true, "w": 1}},
            {"node": {"id": 2, "owner": null, "tags": [], "ok": false, "w": 1.5}}
        ]}}});
        let rows = records(r, "data.p.edges[*].node", true).unwrap();
        assert_eq!(rows.len(), 2);
        let s = infer(&rows);
        let types: Vec<(String, DataType)> = s
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("id".into(), DataType::Int64),
                ("ok".into(), DataType::Boolean),
                ("owner.login".into(), DataType::Utf8),
                ("tags".into(), DataType::Utf8),
                ("w".into(), DataType::Float64),
            ]
        );
        let b = batch(&s, &rows, 1).unwrap();
        assert_eq!(b.column(0).as_primitive::<Int64Type>().value(1), 2);
        assert_eq!(b.column(3).as_string::<i32>().value(0), "[\"x\"]");
        assert!(b.column(2).is_null(1));
    }

    #[test]
    fn later_pages_must_fit_the_first() {
        let first = records(json!({"data": [{"n": 1}]}), "data", true).unwrap();
        let s = infer(&first);
        let later = records(json!({"data": [{"n": "x"}]}), "data", true).unwrap();
        let e = batch(&s, &later, 2).unwrap_err();
        assert!(
            e.message.contains("`n`") && e.message.contains("page 2"),
            "{e}"
        );
        let extra = records(json!({"data": [{"m": 1}]}), "data", true).unwrap();
        assert!(batch(&s, &extra, 2).unwrap_err().message.contains("`m`"));
    }

    #[test]
    fn a_missing_path_names_the_segment_and_the_keys_there() {
        let e = records(json!({"data": {"users": []}}), "data.user", true).unwrap_err();
        assert!(
            e.message.contains("`data.user`") && e.message.contains("`users`"),
            "{e}"
        );
    }
}
