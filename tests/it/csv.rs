//! CSV components through the real binary: extractor -> writer round trips.

use crate::support::{code, json, jsonl, osiris, run_dir, text};
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
    osiris(dir).args(["run", "copy.yaml"]).output()
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

/// Issue 21 (3): `""` is an empty string and an unquoted empty field a null, both ways through the CLI.
#[test]
fn empty_string_and_null_stay_apart_through_a_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let input = "id,s,t\n1,\"\",a\n2,,b\n3,x,\n";
    std::fs::write(tmp.path().join("in.csv"), input).unwrap();
    copy_pipeline(tmp.path(), "in.csv", "", "same.csv", "");
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/same.csv")).unwrap(),
        input
    );

    // Writer `nullstr`: nulls get a marker, the empty string no longer needs quotes.
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "",
        "marked.csv",
        "      nullstr: \"\\\\N\"",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/marked.csv")).unwrap(),
        "id,s,t\n1,,a\n2,\\N,b\n3,x,\\N\n"
    );
    // ... and the extractor reads that marker back with `null_values`.
    copy_pipeline(
        tmp.path(),
        "out/marked.csv",
        "      null_values: [\"\\\\N\"]",
        "back.csv",
        "",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/back.csv")).unwrap(),
        input
    );

    // Extractor `allow_quoted_nulls`: `""` is a null too (and written back as one).
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "      allow_quoted_nulls: true",
        "nulls.csv",
        "      quoting: all",
    );
    let o = run_copy(tmp.path());
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out/nulls.csv")).unwrap(),
        "\"id\",\"s\",\"t\"\n\"1\",,\"a\"\n\"2\",,\"b\"\n\"3\",\"x\",\n"
    );

    // `quoting: none` cannot write an empty string that would read back as a null.
    copy_pipeline(tmp.path(), "in.csv", "", "none.csv", "      quoting: none");
    let o = run_copy(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(err.contains("row 1 column `s` equals `nullstr`"), "{err}");
    assert!(!tmp.path().join("out/none.csv").exists());
}

/// Issue 21 (3): PostgreSQL `''` and NULL -> CSV -> PostgreSQL keep their difference, on the real server.
#[test]
fn postgres_empty_string_and_null_survive_csv() {
    use crate::dbutil::{PG_PORT, PgDb, ok, project, run_pipeline, server};
    if !server(
        "PostgreSQL",
        PG_PORT,
        "postgres_empty_string_and_null_survive_csv",
    ) {
        return;
    }
    let pg = PgDb::new();
    pg.sql(
        "CREATE TABLE src (id int PRIMARY KEY, s text, n int);
         INSERT INTO src VALUES (1, '', 10), (2, NULL, NULL), (3, 'x', 30), (4, ' ', 40);",
    );
    let p = project(Some(&pg), None);
    let o = run_pipeline(
        p.path(),
        "to_csv",
        "  - id: extract\n    component: postgres.extractor\n    mode: read\n    config:\n      connection: \"@postgres.local\"\n      query: SELECT id, s, n FROM src ORDER BY id\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [extract]\n    config:\n      path: out.csv\n",
    );
    ok(&o);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,s,n\n1,\"\",10\n2,,\n3,x,30\n4, ,40\n"
    );
    let o = run_pipeline(
        p.path(),
        "from_csv",
        "  - id: read\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: out.csv\n  - id: load\n    component: postgres.writer\n    mode: write\n    needs: [read]\n    config:\n      connection: \"@postgres.local\"\n      table: back\n      create_if_missing: true\n",
    );
    ok(&o);
    assert_eq!(
        pg.sql(
            "SELECT id, s IS NULL, '[' || coalesce(s, '') || ']', n IS NULL FROM back ORDER BY id"
        ),
        "1|f|[]|f\n2|t|[]|t\n3|f|[x]|f\n4|f|[ ]|f"
    );
}

/// Issue 21 (4): timestamps with a named time zone (`UTC`), from each database, to CSV.
#[test]
fn timezone_aware_timestamps_from_each_database_to_csv() {
    use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, run_pipeline, server};
    let name = "timezone_aware_timestamps_from_each_database_to_csv";
    if !server("PostgreSQL", PG_PORT, name) || !server("MariaDB", MY_PORT, name) {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    my.sql(
        "CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMP NULL);
         INSERT INTO ev VALUES (1, '2024-01-02 03:04:05'), (2, NULL);",
    );
    let p = project(Some(&pg), Some(&my));
    let to_csv = |id: &str, extract: String| {
        let o = run_pipeline(
            p.path(),
            id,
            &format!(
                "{extract}  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [extract]\n    config:\n      path: {id}.csv\n"
            ),
        );
        ok(&o);
        std::fs::read_to_string(p.path().join(format!("{id}.csv"))).unwrap()
    };

    let mysql = to_csv(
        "mysql",
        "  - id: extract\n    component: mysql.extractor\n    mode: read\n    config:\n      connection: \"@mysql.local\"\n      query: SELECT id, at FROM ev ORDER BY id\n".into(),
    );
    assert_eq!(mysql, "id,at\n1,2024-01-02T03:04:05Z\n2,\n");

    let postgres = to_csv(
        "postgres",
        "  - id: extract\n    component: postgres.extractor\n    mode: read\n    config:\n      connection: \"@postgres.local\"\n      query: SELECT timestamptz '2024-01-02 03:04:05.5+02' AS at, now() AS now\n".into(),
    );
    let mut lines = postgres.lines();
    assert_eq!(lines.next(), Some("at,now"));
    let row = lines.next().unwrap();
    let (at, now) = row.split_once(',').unwrap();
    assert_eq!(at, "2024-01-02T01:04:05.500Z");
    assert!(now.ends_with('Z') && now.len() >= 20, "{row}");

    // DuckDB's TIMESTAMPTZ, through duckdb.processor (linked into the binary) on a PostgreSQL input.
    let duck = to_csv(
        "duckdb",
        "  - id: src\n    component: postgres.extractor\n    mode: read\n    config:\n      connection: \"@postgres.local\"\n      query: SELECT 1 AS id\n  - id: extract\n    component: duckdb.processor\n    mode: transform\n    needs: [src]\n    config:\n      query: SELECT id, TIMESTAMPTZ '2024-01-02 03:04:05+00' AS at FROM df_src\n".into(),
    );
    assert_eq!(duck, "id,at\n1,2024-01-02T03:04:05Z\n");
}

/// Issue 21 (7): a row with the wrong number of fields far past the inference sample is reported with its
/// line and field counts, and `ignore_errors` / `max_bad_rows` skip and count such rows.
#[test]
fn ragged_row_at_line_15000_is_reported_or_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = String::from("id,name\n");
    for i in 2..=20_000 {
        if i == 15_000 {
            input.push_str("14999,too,many\n");
        } else {
            input.push_str(&format!("{},n{i}\n", i - 1));
        }
    }
    std::fs::write(tmp.path().join("in.csv"), &input).unwrap();

    copy_pipeline(tmp.path(), "in.csv", "", "out.csv", "");
    let o = run_copy(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(err.contains("CSV-PARSE"), "{err}");
    assert!(
        err.contains("line 15000: expected 2 fields (the header has 2), got 3"),
        "{err}"
    );
    assert!(err.contains("ignore_errors"), "a help line: {err}");
    assert!(!err.contains("dtype"), "no unrelated hint: {err}");
    assert!(!tmp.path().join("out/out.csv").exists());

    // One run directory per run: the next run's is the only one.
    std::fs::remove_dir_all(tmp.path().join("run_logs")).unwrap();
    copy_pipeline(
        tmp.path(),
        "in.csv",
        "      ignore_errors: true\n      max_bad_rows: 1",
        "out.csv",
        "",
    );
    let o = run_copy(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(code(&o), 0, "{err}");
    let out = std::fs::read_to_string(tmp.path().join("out/out.csv")).unwrap();
    assert_eq!(out.lines().count(), 20_000 - 1);
    assert!(!out.contains("too,many"));
    let rd = run_dir(tmp.path(), "default", "copy");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["rows_read"], 20_000 - 2);
    let metrics = jsonl(&rd.join("metrics.jsonl"));
    assert!(
        metrics
            .iter()
            .any(|m| m["metric"] == "rows_rejected" && m["step"] == "read" && m["value"] == 1),
        "{metrics:?}"
    );

    // A second bad row is one more than `max_bad_rows` allows.
    input.push_str("x\n");
    std::fs::write(tmp.path().join("in.csv"), &input).unwrap();
    let o = run_copy(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(
        err.contains("more than 1 rows have the wrong number of fields"),
        "{err}"
    );
    assert!(err.contains("line 20001"), "{err}");
}

/// Issue 21 (10): a run that fails after its source handed rows on says so everywhere. The summary line and
/// status.json's `rows_read` said 0 while the failed source's step entry said how many it had handed on.
#[test]
fn a_run_failed_mid_file_reports_the_rows_its_source_handed_on() {
    let tmp = tempfile::tempdir().unwrap();
    let mut input = String::from("id,name\n");
    for i in 1..=30_000 {
        if i == 25_000 {
            input.push_str("x\n");
        } else {
            input.push_str(&format!("{i},n{i}\n"));
        }
    }
    std::fs::write(tmp.path().join("in.csv"), &input).unwrap();
    copy_pipeline(tmp.path(), "in.csv", "", "out.csv", "");
    let o = run_copy(tmp.path());
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    let status = json(&run_dir(tmp.path(), "default", "copy").join("status.json"));
    let read = &status["steps"][0];
    assert_eq!(
        (&read["id"], &read["status"]),
        (&"read".into(), &"failed".into()),
        "{status}"
    );
    let handed_on = read["rows_read"].as_f64().unwrap();
    assert!(handed_on > 0.0 && handed_on < 25_000.0, "{status}");
    assert_eq!(status["rows_read"], read["rows_read"], "{status}");
    assert!(
        err.contains(&format!(
            "run failed `copy`: 0/2 steps, {handed_on} rows read"
        )),
        "{err}"
    );
}

/// Issue 21 (3): in a one-column file a null is an empty line (the writer cannot quote it: `""` is the empty
/// string). The extractor skipped empty lines, so NULL -> CSV -> extractor lost the row.
#[test]
fn a_one_column_null_survives_a_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    for (newline, eol) in [("lf", "\n"), ("crlf", "\r\n")] {
        let input = ["s", "a", "", "\"\"", "b", ""].join(eol);
        std::fs::write(tmp.path().join("in.csv"), &input).unwrap();
        copy_pipeline(
            tmp.path(),
            "in.csv",
            "",
            "one.csv",
            &format!("      newline: {newline}"),
        );
        let _ = std::fs::remove_dir_all(tmp.path().join("run_logs"));
        let o = run_copy(tmp.path());
        assert_eq!(code(&o), 0, "{:?}", text(&o));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("out/one.csv")).unwrap(),
            input,
            "{newline}"
        );
        let status = json(&run_dir(tmp.path(), "default", "copy").join("status.json"));
        assert_eq!(status["rows_read"], 4, "{newline}: {status}");
    }
}

/// `rows_read` of the `read` step in the newest run of `copy`.
fn rows_read_of_newest(dir: &Path) -> u64 {
    let base = dir.join("run_logs/default/copy");
    let runs: Vec<_> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let status = json(&crate::support::newest(runs).join("status.json"));
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "read")
        .and_then(|s| s["rows_read"].as_u64())
        .unwrap_or_else(|| panic!("{status}"))
}

#[test]
fn incremental_by_modification_time_reads_a_file_again_only_when_it_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("osiris.yaml"), "run:\n  logs_dir: run_logs\n").unwrap();
    let input = dir.join("in.csv");
    std::fs::write(&input, "id,name\n1,a\n2,b\n").unwrap();
    let set_mtime = |secs: u64| {
        let f = std::fs::File::options().write(true).open(&input).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    };
    set_mtime(1_767_225_600); // 2026-01-01 00:00:00 UTC
    copy_pipeline(
        dir,
        "in.csv",
        "      incremental:\n        cursor: _modified_at",
        "out.csv",
        "",
    );
    let ok = |o: std::process::Output| {
        let (out, err) = text(&o);
        assert_eq!(code(&o), 0, "{out}{err}");
    };
    ok(run_copy(dir));
    assert_eq!(rows_read_of_newest(dir), 2);
    assert_eq!(
        std::fs::read_to_string(dir.join("out/out.csv")).unwrap(),
        "id,name,_modified_at\n1,a,2026-01-01T00:00:00Z\n2,b,2026-01-01T00:00:00Z\n"
    );
    let state = json(&dir.join(".osiris/state/default/copy/read.json"));
    assert_eq!(
        state["value"][0], "2026-01-01 00:00:00.000000+00:00",
        "{state}"
    );
    // Not modified since: nothing is read.
    ok(run_copy(dir));
    assert_eq!(rows_read_of_newest(dir), 0);
    // Rewritten later: read again, and the mark follows.
    std::fs::write(&input, "id,name\n1,a\n2,b\n3,c\n").unwrap();
    set_mtime(1_767_312_000); // a day later
    ok(run_copy(dir));
    assert_eq!(rows_read_of_newest(dir), 3);
    let state = json(&dir.join(".osiris/state/default/copy/read.json"));
    assert_eq!(
        state["value"][0], "2026-01-02 00:00:00.000000+00:00",
        "{state}"
    );
}
