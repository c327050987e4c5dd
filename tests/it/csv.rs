//! CSV components through the real binary: extractor -> writer round trips.

use crate::run::{code, json, osiris, run_dir, text};
use std::path::Path;

/// A project whose one pipeline copies `input` to `out/<output>` with the given extra configs.
fn copy_pipeline(dir: &Path, input: &str, extract_extra: &str, output: &str, write_extra: &str) {
    std::fs::write(dir.join("osiris.yaml"), "").unwrap();
    let p = format!(
        r#"oml_version: "0.1.0"
name: copy
steps:
  - id: read
    component: filesystem.csv_extractor
    mode: read
    config:
      path: {input}
{extract_extra}
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [read]
    config:
      path: out/{output}
{write_extra}
"#
    );
    std::fs::write(dir.join("copy.yaml"), p).unwrap();
}

fn run_copy(dir: &Path) -> std::process::Output {
    osiris(dir, &["run", "copy.yaml"], &[])
}

#[test]
fn quoting_round_trip_keeps_fields_and_column_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = "zeta,alpha,mid\n\"a, comma\",1,\"say \"\"hi\"\"\"\n\"two\nlines\",2,\n";
    std::fs::write(tmp.path().join("in.csv"), input).unwrap();
    copy_pipeline(tmp.path(), "in.csv", "", "copy.csv", "");
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    // Same bytes: column order kept (not sorted), minimal quoting, empty field stays empty.
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/copy.csv")).unwrap(),
        input
    );
    let status = json(&run_dir(tmp.path(), "default", "copy").join("status.json"));
    assert_eq!(status["rows_read"], 2);
    assert_eq!(status["rows_written"], 2);
}

#[test]
fn writer_options_all_quoting_crlf_and_tab() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("in.csv"), "id,name\n1,a\n2,b\n").unwrap();
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "",
        "t.tsv",
        "      delimiter: \"\\t\"\n      quoting: all\n      newline: crlf\n      header: false",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/t.tsv")).unwrap(),
        "\"1\"\t\"a\"\r\n\"2\"\t\"b\"\r\n"
    );
}

#[test]
fn gzip_in_and_out_and_dtype_override() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = "zip;city\n00123;Springfield\n04567;Shelbyville\n";
    std::fs::write(tmp.path().join("in.csv"), plain).unwrap();
    let st = std::process::Command::new("gzip")
        .arg("-n")
        .arg(tmp.path().join("in.csv"))
        .status()
        .expect("gzip runs");
    assert!(st.success() && tmp.path().join("in.csv.gz").is_file());

    // Without dtype the zip codes are inferred as integers and lose their leading zeros.
    copy_pipeline(
        tmp.path(),
        "in.csv.gz",
        "      delimiter: \";\"",
        "inferred.csv",
        "",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/inferred.csv")).unwrap(),
        "zip,city\n123,Springfield\n4567,Shelbyville\n"
    );

    // dtype keeps them as text; gzip output is a real gzip stream.
    copy_pipeline(
        tmp.path(),
        "in.csv.gz",
        "      delimiter: \";\"\n      dtype:\n        zip: utf8",
        "typed.csv.gz",
        "      compression: gzip",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    let gz = std::fs::read(tmp.path().join("out/typed.csv.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(tmp.path().join("out/typed.csv.gz"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "zip,city\n00123,Springfield\n04567,Shelbyville\n"
    );
}

#[test]
fn columns_limit_skip_rows_and_null_values() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("in.csv"),
        "exported by x\nc,b,a\n1,N/A,x\n2,5,y\n3,6,z\n",
    )
    .unwrap();
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "      skip_rows: 1\n      columns: [a, c, b]\n      limit: 2\n      null_values: [\"N/A\"]\n      batch_size: 1",
        "sub.csv",
        "",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    // Columns stay in file order; N/A became null (an empty field); two rows only.
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/sub.csv")).unwrap(),
        "c,b,a\n1,,x\n2,5,y\n"
    );
}

#[test]
fn failing_upstream_leaves_no_output_file() {
    let tmp = tempfile::tempdir().unwrap();
    // Many good rows, then one that is not an integer: the extractor fails while the writer is writing.
    let mut input = String::from("id,v\n");
    for i in 0..5000 {
        input.push_str(&format!("{i},{i}\n"));
    }
    input.push_str("oops,1\n");
    std::fs::write(tmp.path().join("in.csv"), input).unwrap();
    std::fs::create_dir_all(tmp.path().join("out")).unwrap();
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "      dtype:\n        id: int64\n      batch_size: 100",
        "never.csv",
        "",
    );
    let o = run_copy(tmp.path());
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stderr}");
    assert!(
        stderr.contains("step `read`"),
        "the failing step is the extractor: {stderr}"
    );
    assert!(stderr.contains("filesystem.csv_extractor"), "{stderr}");
    assert!(stderr.contains("oops"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path().join("out")).unwrap().collect();
    assert!(left.is_empty(), "no output and no temporary file: {left:?}");
    let status = json(&run_dir(tmp.path(), "default", "copy").join("status.json"));
    assert_eq!(status["failed_step"], "read");
}

#[test]
fn missing_input_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    copy_pipeline(tmp.path(), "nope.csv", "", "x.csv", "");
    let o = run_copy(tmp.path());
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stderr}");
    assert!(
        stderr.contains("nope.csv") && stderr.contains("not found"),
        "{stderr}"
    );
}
