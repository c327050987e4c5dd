//! The SDK's driver compliance kit on `duckdb.processor`, through the entry the cdylib exports
//! (`Module::from_static(&OCP_ENTRY)`: the same header, shims and checks as a loaded plugin), like the other
//! first-party plugins. Part of this package's tests, so it links the very DuckDB the workspace builds.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::{self, Compliance, checks};
use serde_json::json;
use std::sync::Arc;

fn module() -> Arc<Module> {
    Arc::new(
        Module::from_static(&osiris_plugin_duckdb::OCP_ENTRY).expect("the DuckDB plugin loads"),
    )
}

/// 5000 rows in batches of 1000: more than one DuckDB vector (2048 rows), so the result streams in several
/// batches and cancelling after the first one is exercised.
fn inputs() -> osiris_plugin_sdk::Streams {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batches = (0..5)
        .map(|b| {
            let ids: Vec<i64> = (b * 1000..(b + 1) * 1000).collect();
            let names: Vec<Option<String>> = ids
                .iter()
                .map(|i| (i % 7 != 0).then(|| format!("n{i}")))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(StringArray::from(names)),
                ],
            )
            .unwrap()
        })
        .collect();
    testing::single_input(batches)
}

#[test]
fn duckdb_processor_is_compliant() {
    let report = Compliance::new(
        module(),
        "duckdb.processor",
        json!({"query": "SELECT id, upper(name) AS name FROM df ORDER BY id"}),
    )
    .inputs(inputs)
    .bad_config(json!({"query": 42}))
    .run();
    report.assert_all_passed(&[
        // No service behind it: nothing can be unreachable.
        checks::UNREACHABLE,
        // A processor owes no metric.
        checks::METRICS,
        // It is given no connection and no secret.
        checks::SECRETS,
    ]);
}
