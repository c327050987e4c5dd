//! The SDK's driver compliance kit on both CSV components, through the entry the cdylib exports
//! (`Module::from_static(&OCP_ENTRY)`: the same header, shims and checks as a loaded plugin).

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::{self, Case, Compliance, checks};
use osiris_plugin_sdk::{ErrorKind, Streams};
use serde_json::json;
use std::sync::Arc;

/// Stands for a credential a filesystem connection might carry: it must never show up in a log or error.
const SECRET: &str = "csv-connection-token-5f3a";

fn module() -> Arc<Module> {
    Arc::new(Module::from_static(&osiris_plugin_csv::OCP_ENTRY).expect("the CSV plugin loads"))
}

#[test]
fn csv_extractor_is_compliant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(
        &path,
        "id,name\n1,ada\n2,grace\n3,edsger\n4,barbara\n5,tony\n",
    )
    .unwrap();
    let missing = dir.path().join("no_such_dir").join("people.csv");
    let connection = json!({"base_dir": dir.path().to_str().unwrap(), "token": SECRET});

    let report = Compliance::new(
        module(),
        "filesystem.csv_extractor",
        // Two rows per batch: three batches, so cancelling after the first one is exercised too.
        json!({"path": "people.csv", "batch_size": 2}),
    )
    .connection(connection)
    .bad_config(json!({"path": 42}))
    .unreachable(Case::new(json!({"path": missing.to_str().unwrap()})).expect([ErrorKind::Io]))
    .secrets([SECRET])
    .run();
    // Every check ran (none skipped for want of a case).
    report.assert_all_passed(&[]);
}

fn people() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![Some("ada"), None, Some("edsger")])),
        ],
    )
    .unwrap()
}

fn inputs() -> Streams {
    testing::single_input(vec![people(), people()])
}

#[test]
fn csv_writer_is_compliant() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    let missing = dir.path().join("no_such_dir").join("out.csv");
    let connection = json!({"base_dir": dir.path().to_str().unwrap(), "token": SECRET});

    let report = Compliance::new(
        module(),
        "filesystem.csv_writer",
        json!({"path": "out.csv"}),
    )
    .connection(connection)
    .inputs(inputs)
    .bad_config(json!({"path": 42}))
    // A missing directory the writer is told not to create: the file system's "unreachable service".
    .unreachable(
        Case::new(json!({"path": missing.to_str().unwrap(), "create_dirs": false}))
            .expect([ErrorKind::Io]),
    )
    .secrets([SECRET])
    .run();
    // A writer returns no stream: there is no first batch to cancel after.
    report.assert_all_passed(&[checks::CANCEL_DURING]);
    // The valid run really wrote the file (the cancelled runs left it as it was).
    let written = std::fs::read_to_string(&target).unwrap();
    assert_eq!(written.lines().count(), 7, "{written}");
}
