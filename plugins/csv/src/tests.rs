//! Driver-level checks; the CLI-level round trips live in tests/it/csv.rs.

use crate::extractor::read_all;
use crate::{CsvExtractor, CsvWriter};
use arrow_array::{Array, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use osiris_plugin_sdk::{Context, ContextBackend, Driver, Level, Streams};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct TestCtx {
    metrics: Mutex<Vec<(String, f64)>>,
    connection: Option<Value>,
}

impl ContextBackend for TestCtx {
    fn log(&self, _level: Level, _message: &str) {}
    fn metric(&self, name: &str, value: f64, _unit: Option<&str>) {
        self.metrics.lock().unwrap().push((name.to_string(), value));
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn connection(&self) -> Option<Value> {
        self.connection.clone()
    }
}

fn ctx() -> (Arc<TestCtx>, Context) {
    let b = Arc::new(TestCtx::default());
    (b.clone(), Context::new(b))
}

#[test]
fn infers_types_and_respects_dtype_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "id,name,amount\n1,a,1.5\n2,\"b, c\",2\n",
    )
    .unwrap();
    let (backend, c) = ctx();
    let cfg = json!({"path": dir.path().join("a.csv"), "dtype": {"id": "utf8"}, "columns": ["amount", "id"]});
    let batches = read_all(&cfg, &c).unwrap();
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "amount"]);
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
    assert_eq!(schema.field(1).data_type(), &DataType::Float64);
    assert!(
        backend
            .metrics
            .lock()
            .unwrap()
            .contains(&("rows_read".to_string(), 2.0))
    );
}

#[test]
fn base_dir_from_connection_and_limit_and_skip_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.csv"), "# preamble\nx\n1\n2\n3\n").unwrap();
    let backend = Arc::new(TestCtx {
        connection: Some(json!({"base_dir": dir.path()})),
        ..Default::default()
    });
    let c = Context::new(backend);
    let batches = read_all(
        &json!({"path": "b.csv", "skip_rows": 1, "limit": 2, "batch_size": 1}),
        &c,
    )
    .unwrap();
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 2);
    let col = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(col.value(0), 1);
}

#[test]
fn unknown_column_is_a_config_error_listing_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "id,name\n1,a\n").unwrap();
    let (_, c) = ctx();
    let err = read_all(
        &json!({"path": dir.path().join("a.csv"), "columns": ["nope"]}),
        &c,
    )
    .unwrap_err();
    assert!(err.contains("`nope`") && err.contains("[CONFIG]"), "{err}");
}

#[test]
fn null_values_and_latin1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("l.csv"), b"name,v\ncaf\xe9,N/A\nx,2\n").unwrap();
    let (_, c) = ctx();
    let cfg =
        json!({"path": dir.path().join("l.csv"), "encoding": "latin-1", "null_values": ["N/A"]});
    let batches = read_all(&cfg, &c).unwrap();
    let names = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(names.value(0), "café");
    let v = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert!(v.is_null(0));
    assert_eq!(v.value(1), 2);
}

fn one_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("z", DataType::Utf8, true),
        Field::new("a", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("q\"x"), None])),
            Arc::new(Int64Array::from(vec![Some(1), Some(2)])),
        ],
    )
    .unwrap()
}

fn input(batches: Vec<Result<RecordBatch, ArrowError>>) -> Streams {
    let schema = one_batch().schema();
    let mut s = Streams::new();
    s.insert(
        "df".into(),
        Box::new(RecordBatchIterator::new(batches, schema)),
    );
    s
}

#[test]
fn writer_keeps_column_order_and_quotes_minimally() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, c) = ctx();
    let out = dir.path().join("sub/out.csv");
    CsvWriter
        .run(
            "w",
            &json!({"path": out, "newline": "crlf"}),
            input(vec![Ok(one_batch())]),
            &c,
        )
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "z,a\r\n\"q\"\"x\",1\r\n,2\r\n"
    );
    assert!(
        backend
            .metrics
            .lock()
            .unwrap()
            .contains(&("rows_written".to_string(), 2.0))
    );
}

#[test]
fn writer_leaves_nothing_when_upstream_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = ctx();
    let out = dir.path().join("out.csv");
    let err = CsvWriter
        .run(
            "w",
            &json!({"path": out}),
            input(vec![
                Ok(one_batch()),
                Err(ArrowError::CsvError("boom".into())),
            ]),
            &c,
        )
        .err()
        .expect("an upstream error fails the writer");
    assert!(err.message.contains("boom"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no output and no temp file"
    );
}

#[test]
fn writer_quoting_none_refuses_fields_that_need_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = ctx();
    let out = dir.path().join("out.csv");
    let err = CsvWriter.run(
        "w",
        &json!({"path": out, "quoting": "none"}),
        input(vec![Ok(one_batch())]),
        &c,
    );
    assert!(
        err.err()
            .expect("quoting none must fail")
            .message
            .contains("column `z`")
    );
    assert!(!out.exists());
}

#[test]
fn gzip_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = ctx();
    let out = dir.path().join("out.csv.gz");
    CsvWriter
        .run(
            "w",
            &json!({"path": out, "compression": "gzip"}),
            input(vec![Ok(one_batch())]),
            &c,
        )
        .unwrap();
    let batches = read_all(&json!({"path": out}), &c).unwrap();
    assert_eq!(batches[0].num_rows(), 2);
    let z = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(z.value(0), "q\"x");
    let _ = CsvExtractor;
}
