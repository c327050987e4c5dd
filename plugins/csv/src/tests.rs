//! Driver-level checks; the CLI-level round trips live in tests/it/csv.rs.

use crate::extractor::read_all;
use crate::{CsvExtractor, CsvWriter};
use arrow_array::{Array, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use osiris_plugin_sdk::testing::TestContext;
use osiris_plugin_sdk::{Context, Driver, Streams};
use serde_json::{Value, json};
use std::sync::Arc;

fn ctx() -> (Arc<TestContext>, Context) {
    let t = TestContext::new();
    let c = t.context();
    (t, c)
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
    assert_eq!(backend.metric_total("rows_read"), 2.0);
}

#[test]
fn base_dir_from_connection_and_limit_and_skip_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.csv"), "# preamble\nx\n1\n2\n3\n").unwrap();
    let c = TestContext::with_connection(json!({"base_dir": dir.path()})).context();
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
    assert_eq!(backend.metric_total("rows_written"), 2.0);
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

/// Writes `text` gzip-compressed to `path`.
fn write_gz(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap();
}

fn discover_dir(dir: &std::path::Path, samples: u64) -> Value {
    let (_, c) = ctx();
    CsvExtractor
        .discover(&json!({"path": dir, "samples": samples}), &c)
        .unwrap()
}

fn entry<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no tables: {v:#}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {v:#}"))
}

#[test]
fn discover_directory_describes_every_csv_file_like_a_run_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = "id,name,amount,day,ok\n1,Ada,1.5,2024-01-02,true\n2,\"Grace, H\",,2024-02-03,false\n3,Linus,7,2024-03-04,true\n";
    std::fs::write(dir.path().join("a.csv"), a).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write_gz(&dir.path().join("sub/z.csv.gz"), "k,v\nx,10\ny,20\n");
    std::fs::write(dir.path().join("t.tsv"), "p\tq\n1\tone\n").unwrap();
    std::fs::write(dir.path().join("broken.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a csv").unwrap();
    std::fs::write(dir.path().join(".hidden.csv"), "h\n1\n").unwrap();

    let v = discover_dir(dir.path(), 2);
    let names: Vec<&str> = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.csv", "broken.csv", "sub/z.csv.gz", "t.tsv"]);

    // The same types a run produces (same inference code), and the database discoverers' shape.
    let t = entry(&v, "a.csv");
    let (_, c) = ctx();
    let run_schema = read_all(&json!({"path": dir.path().join("a.csv")}), &c).unwrap()[0].schema();
    let cols = t["columns"].as_array().unwrap();
    assert_eq!(cols.len(), run_schema.fields().len());
    for (col, field) in cols.iter().zip(run_schema.fields()) {
        assert_eq!(col["name"], field.name().as_str());
        assert_eq!(col["arrow_type"], field.data_type().to_string());
        assert_eq!(col["nullable"], true);
    }
    let types: Vec<&str> = cols
        .iter()
        .map(|c| c["source_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["int64", "utf8", "float64", "date32", "bool"]);
    assert_eq!(t["kind"], "file");
    assert_eq!(t["primary_key"], json!([]));
    assert_eq!(t["row_count_estimate"], 3);
    assert_eq!(t["row_count_exact"], true);
    assert_eq!(t["size_bytes"], a.len());
    assert_eq!(t["compression"], "none");
    assert_eq!(
        t["samples"],
        json!([
            {"id": 1, "name": "Ada", "amount": 1.5, "day": "2024-01-02", "ok": true},
            {"id": 2, "name": "Grace, H", "amount": null, "day": "2024-02-03", "ok": false}
        ])
    );
    assert!(t.get("error").is_none(), "{t:#}");

    let z = entry(&v, "sub/z.csv.gz");
    assert_eq!(z["compression"], "gzip");
    assert_eq!(z["columns"][1]["arrow_type"], "Int64");
    assert_eq!(z["row_count_estimate"], 2);
    assert_eq!(z["samples"][1], json!({"k": "y", "v": 20}));

    let tsv = entry(&v, "t.tsv");
    assert_eq!(tsv["delimiter"], "\t");
    assert_eq!(tsv["columns"].as_array().unwrap().len(), 2);

    let b = entry(&v, "broken.csv");
    assert_eq!(b["error"]["code"], "CSV-PARSE", "{b:#}");
    let msg = b["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("broken.csv") && msg.contains("line 3"),
        "{msg}"
    );
    assert_eq!(b["columns"], json!([]));
    assert_eq!(b["row_count_estimate"], Value::Null);

    // --samples 0: no rows read back.
    let none = discover_dir(dir.path(), 0);
    assert_eq!(entry(&none, "a.csv")["samples"], json!([]));
    assert_eq!(entry(&none, "a.csv")["row_count_estimate"], 3);
}

#[test]
fn discover_estimates_big_files_from_a_sample_without_reading_them_whole() {
    const ROWS: usize = 40_000;
    let mut text = String::from("id,name,score\n");
    for i in 0..ROWS {
        text.push_str(&format!("{i},name-{i},{}.5\n", i % 1000));
    }
    // A last line a run would fail on: discovery never gets there.
    text.push_str("1,2,3,4,5,6\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.csv"), &text).unwrap();
    write_gz(&dir.path().join("big.csv.gz"), &text);
    let (_, c) = ctx();
    let whole = read_all(&json!({"path": dir.path().join("big.csv")}), &c);
    assert!(whole.is_err(), "a run reads the bad last line");

    let v = discover_dir(dir.path(), 3);
    for name in ["big.csv", "big.csv.gz"] {
        let t = entry(&v, name);
        assert!(t.get("error").is_none(), "{name}: {t:#}");
        assert_eq!(t["row_count_exact"], false, "{name}");
        assert_eq!(t["inferred_from_rows"], 10_000, "{name}");
        let estimate = t["row_count_estimate"].as_f64().unwrap();
        let off = (estimate - ROWS as f64).abs() / ROWS as f64;
        assert!(off < 0.1, "{name}: estimate {estimate} vs {ROWS} rows");
        assert_eq!(t["samples"].as_array().unwrap().len(), 3, "{name}");
        assert_eq!(t["samples"][2]["name"], "name-2");
    }
}

#[test]
fn discover_one_file_fails_when_it_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.csv"), "x\n1\n").unwrap();
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    let (_, c) = ctx();
    let v = CsvExtractor
        .discover(&json!({"path": dir.path().join("ok.csv")}), &c)
        .unwrap();
    assert_eq!(v["tables"][0]["name"], "ok.csv");
    assert_eq!(v["tables"][0]["samples"], json!([{"x": 1}]));
    let e = CsvExtractor
        .discover(&json!({"path": dir.path().join("empty.csv")}), &c)
        .unwrap_err();
    assert_eq!(e.code, "CSV-EMPTY");
    // In a directory the same file is an entry with its error.
    let v = discover_dir(dir.path(), 1);
    assert_eq!(entry(&v, "empty.csv")["error"]["code"], "CSV-EMPTY");
    assert_eq!(entry(&v, "ok.csv")["row_count_estimate"], 1);
}

/// Issue 21 (4): named time zones are formatted (they failed without arrow's `chrono-tz`).
#[test]
fn writer_formats_timestamps_with_named_time_zones() {
    use arrow_array::TimestampMicrosecondArray;
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = ctx();
    let us = 1_704_164_645_000_000; // 2024-01-02T03:04:05Z
    let utc = TimestampMicrosecondArray::from(vec![Some(us), None]).with_timezone("UTC");
    let berlin =
        TimestampMicrosecondArray::from(vec![Some(us), Some(us)]).with_timezone("Europe/Berlin");
    let batch = RecordBatch::try_from_iter(vec![
        ("utc", Arc::new(utc) as Arc<dyn Array>),
        ("berlin", Arc::new(berlin) as Arc<dyn Array>),
    ])
    .unwrap();
    let schema = batch.schema();
    let mut s = Streams::new();
    s.insert(
        "df".into(),
        Box::new(RecordBatchIterator::new(vec![Ok(batch)], schema)),
    );
    let out = dir.path().join("tz.csv");
    CsvWriter
        .run("w", &json!({"path": out}), s, &c)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "utc,berlin\n2024-01-02T03:04:05Z,2024-01-02T04:04:05+01:00\n,2024-01-02T04:04:05+01:00\n"
    );
}

/// Issue 21 (3): the extractor reads `""` as the empty string and an unquoted empty field as null.
#[test]
fn extractor_tells_quoted_empty_from_null() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.csv"), "s,n\n\"\",1\n,\n\"\"\"\",3\n").unwrap();
    let (_, c) = ctx();
    let read = |extra: Value| {
        let mut cfg = json!({"path": dir.path().join("e.csv")});
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let batches = read_all(&cfg, &c).unwrap();
        let s = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect::<Vec<_>>();
        let n = batches[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .iter()
            .collect::<Vec<_>>();
        (s, n)
    };
    let (s, n) = read(json!({}));
    assert_eq!(s, [Some(String::new()), None, Some("\"".to_string())]);
    assert_eq!(n, [Some(1), None, Some(3)]);
    let (s, _) = read(json!({"allow_quoted_nulls": true}));
    assert_eq!(s, [None, None, Some("\"".to_string())]);
    let (s, n) = read(json!({"null_values": []}));
    assert_eq!(
        s,
        [
            Some(String::new()),
            Some(String::new()),
            Some("\"".to_string())
        ]
    );
    assert_eq!(
        n,
        [Some(1), None, Some(3)],
        "an empty number is still no number"
    );
}
