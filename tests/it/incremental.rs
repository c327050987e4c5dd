//! Incremental and resumable loads on the real MariaDB and PostgreSQL (issue 16, ADR 0018): only changed rows
//! are read, the mark moves only when the writers committed, `--full-refresh` and `osiris state`, and
//! `--resume` after a run killed in the middle of a chunked load.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, server};
use crate::support::{Running, code, events, json, osiris, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn both(test: &str) -> Option<(MyDb, PgDb, tempfile::TempDir)> {
    if !server("MariaDB", MY_PORT, test) || !server("PostgreSQL", PG_PORT, test) {
        return None;
    }
    let (my, pg) = (MyDb::new(), PgDb::new());
    let p = project(Some(&pg), Some(&my));
    Some((my, pg, p))
}

/// The newest run directory of `pipeline`.
fn newest_run(project: &Path, pipeline: &str) -> PathBuf {
    let base = project.join("run_logs/default").join(pipeline);
    let dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Two runs in the same second: their directory names sort by run id, so order by the start time.
    crate::support::newest(dirs)
}

/// `rows_read` of step `step` in the newest run's status.json.
fn rows_read(project: &Path, pipeline: &str, step: &str) -> u64 {
    let status = json(&newest_run(project, pipeline).join("status.json"));
    status["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["id"] == step))
        .and_then(|s| s["rows_read"].as_u64())
        .unwrap_or_else(|| panic!("no rows_read for `{step}` in {status}"))
}

fn run(project: &Path, args: &[&str]) -> std::process::Output {
    osiris(project).args(args).output()
}

/// `id|val` lines of a table, ordered by id, from either server.
fn my_rows(my: &MyDb, table: &str) -> String {
    my.sql(&format!(
        "SELECT CONCAT(id, '|', val) FROM {table} ORDER BY id"
    ))
}
fn pg_rows(pg: &PgDb, table: &str) -> String {
    pg.sql(&format!("SELECT id || '|' || val FROM {table} ORDER BY id"))
}

/// `src` in MariaDB: `n` rows `(id, updated_at, val)` one `unit` apart from 2026-01-01, indexed on
/// `updated_at`; an empty `tgt` of the same columns in PostgreSQL.
fn src_and_tgt(my: &MyDb, pg: &PgDb, unit: &str, n: u32) {
    my.sql(&format!(
        "CREATE TABLE src (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, val VARCHAR(40), KEY (updated_at));
         INSERT INTO src SELECT seq, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq {unit}, CONCAT('v', seq) FROM seq_1_to_{n}"
    ));
    pg.sql("CREATE TABLE tgt (id int PRIMARY KEY, updated_at timestamp, val text)");
}

const INCREMENTAL: &str = r#"oml_version: "0.1.0"
name: orders-incr
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.local"
      table: src
      incremental:
        cursor: updated_at
        primary_key: id
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.local"
      table: tgt
      write_mode: upsert
      primary_key: id
"#;

#[test]
fn an_incremental_run_reads_only_changed_rows_and_its_mark_moves_only_when_the_writer_committed() {
    let Some((my, pg, p)) = both("incremental_mysql_to_postgres") else {
        return;
    };
    let dir = p.path();
    src_and_tgt(&my, &pg, "SECOND", 100);
    std::fs::write(dir.join("p.yaml"), INCREMENTAL).unwrap();

    // First run: every row, and a mark at the greatest cursor value.
    ok(&run(dir, &["run", "p.yaml"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 100);
    let state_file = dir.join(".osiris/state/default/orders-incr/extract.json");
    let state = json(&state_file);
    assert_eq!(state["value"][0], "2026-01-01 00:01:40.000000", "{state}");
    assert_eq!(state["kinds"][0], "timestamp");
    assert_eq!(state["rows"], 100);
    let ev = events(&newest_run(dir, "orders-incr"));
    let window = ev
        .iter()
        .find(|e| e["event"] == "incremental_window")
        .unwrap();
    assert_eq!(window["from"], Value::Null, "{window}");
    let advanced = ev.iter().find(|e| e["event"] == "state_advanced").unwrap();
    assert_eq!(advanced["to"][0], "2026-01-01 00:01:40.000000");

    // Two updates and three inserts: only those five rows are read, and the target equals the source.
    my.sql(
        "UPDATE src SET val = 'changed', updated_at = TIMESTAMP '2026-02-01 00:00:00' + INTERVAL id SECOND WHERE id IN (5, 6);
         INSERT INTO src VALUES (101, '2026-02-02', 'v101'), (102, '2026-02-02 00:00:01', 'v102'), (103, '2026-02-02 00:00:02', 'v103')",
    );
    ok(&run(dir, &["run", "p.yaml"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 5);
    assert_eq!(pg_rows(&pg, "tgt"), my_rows(&my, "src"));
    let ev = events(&newest_run(dir, "orders-incr"));
    let window = ev
        .iter()
        .find(|e| e["event"] == "incremental_window")
        .unwrap();
    assert_eq!(window["op"], ">");
    assert_eq!(window["from"][0], "2026-01-01 00:01:40.000000");
    assert_eq!(json(&state_file)["value"][0], "2026-02-02 00:00:02.000000");

    // A run whose writer's session is ended mid-load: exit 4, the target and the mark as before.
    my.sql(
        "INSERT INTO src SELECT 1000 + seq, TIMESTAMP '2026-03-01 00:00:00' + INTERVAL seq SECOND, CONCAT('n', seq) FROM seq_1_to_20000",
    );
    pg.sql(
        "CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
         CREATE TRIGGER pause BEFORE INSERT ON tgt FOR EACH STATEMENT EXECUTE FUNCTION pause()",
    );
    let before_state = std::fs::read(&state_file).unwrap();
    let before_rows = pg_rows(&pg, "tgt");
    let mut child = osiris(dir).args(["run", "p.yaml"]).spawn();
    let inserting = format!(
        "FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'INSERT INTO%' AND wait_event = 'PgSleep'",
        pg.name
    );
    wait_until(&mut child, "the writer's INSERT is under way", || {
        pg.sql(&format!("SELECT count(*) {inserting}")) == "1"
    });
    assert_eq!(
        pg.sql(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {inserting}) t"
        )),
        "1"
    );
    let o = child.wait_with_output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    assert_eq!(
        std::fs::read(&state_file).unwrap(),
        before_state,
        "the mark did not move"
    );
    assert_eq!(pg_rows(&pg, "tgt"), before_rows, "the target is as before");
    let ev = events(&newest_run(dir, "orders-incr"));
    let kept = ev.iter().find(|e| e["event"] == "state_kept").unwrap();
    assert!(
        kept["reason"].as_str().unwrap().contains("`load`"),
        "{kept}"
    );
    assert!(!ev.iter().any(|e| e["event"] == "state_advanced"));

    // The next run reads the same window again and brings the target level.
    pg.sql("DROP TRIGGER pause ON tgt");
    ok(&run(dir, &["run", "p.yaml"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 20_000);
    assert_eq!(pg_rows(&pg, "tgt"), my_rows(&my, "src"));

    // `osiris state show` names the mark; `--full-refresh` reads every row; `state reset` forgets the mark.
    let o = run(dir, &["state", "show", "orders-incr", "--format", "json"]);
    ok(&o);
    let shown: Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(shown["states"][0]["value"][0], "2026-03-01 05:33:20.000000");
    ok(&run(dir, &["run", "p.yaml", "--full-refresh"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 20_103);
    let ev = events(&newest_run(dir, "orders-incr"));
    let window = ev
        .iter()
        .find(|e| e["event"] == "incremental_window")
        .unwrap();
    assert_eq!(window["full_refresh"], true);
    assert_eq!(window["from"], Value::Null);
    let o = run(dir, &["state", "reset", "orders-incr", "--step", "extract"]);
    ok(&o);
    assert!(
        text(&o)
            .0
            .contains("removed .osiris/state/default/orders-incr/extract.json")
    );
    assert!(!state_file.exists());
}

#[test]
fn lookback_reads_late_rows_again_and_upsert_keeps_them_unique() {
    let Some((my, pg, p)) = both("incremental_lookback") else {
        return;
    };
    let dir = p.path();
    src_and_tgt(&my, &pg, "MINUTE", 10);
    std::fs::write(
        dir.join("p.yaml"),
        INCREMENTAL.replace(
            "        primary_key: id\n  - id: load",
            "        primary_key: id\n        lookback: 5m\n  - id: load",
        ),
    )
    .unwrap();
    ok(&run(dir, &["run", "p.yaml"]));
    // A row arrives late, stamped two minutes before the mark (00:10): the lookback window (from 00:05)
    // catches it, with the rows of 00:05..00:10 read again and upserted over themselves.
    my.sql("INSERT INTO src VALUES (11, '2026-01-01 00:08:00', 'late')");
    ok(&run(dir, &["run", "p.yaml"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 7);
    assert_eq!(pg_rows(&pg, "tgt"), my_rows(&my, "src"));
    assert_eq!(pg.sql("SELECT count(*) FROM tgt"), "11");
}

/// Waits (20 ms steps, at most 60 s) until `done`, failing when the run ends first.
fn wait_until(child: &mut Running, what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {what}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const CHUNKED: &str = r#"oml_version: "0.1.0"
name: chunked
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.local"
      table: src
      chunk_by: id
      chunk_rows: 5000
      batch_size: 1000
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.local"
      table: tgt
      commit: per_chunk
"#;

#[test]
fn resume_after_a_kill_in_the_middle_of_a_chunked_load_loads_every_row_once() {
    let Some((my, pg, p)) = both("resume_chunked") else {
        return;
    };
    let dir = p.path();
    my.sql(
        "CREATE TABLE src (id INT PRIMARY KEY, val VARCHAR(40));
         INSERT INTO src SELECT seq, CONCAT('v', seq) FROM seq_1_to_60000",
    );
    // Each chunk's COPY waits 0.4 s, so the run is still loading when it is killed.
    pg.sql(
        "CREATE TABLE tgt (id int, val text);
         CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$;
         CREATE TRIGGER pause BEFORE INSERT ON tgt FOR EACH STATEMENT EXECUTE FUNCTION pause()",
    );
    std::fs::write(dir.join("p.yaml"), CHUNKED).unwrap();
    let mut child = osiris(dir).args(["run", "p.yaml"]).spawn();
    let committed = |dir: &Path| -> usize {
        let base = dir.join("run_logs/default/chunked");
        let Some(rd) = std::fs::read_dir(&base)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        else {
            return 0;
        };
        std::fs::read_to_string(rd.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"chunk_committed\""))
            .count()
    };
    wait_until(&mut child, "three chunks were committed", || {
        committed(dir) >= 3
    });
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up
    let o = child.wait_with_output();
    assert_eq!(code(&o), -1, "killed by the signal");
    let loaded: u64 = pg.sql("SELECT count(*) FROM tgt").parse().unwrap();
    assert!(
        (15_000..60_000).contains(&loaded) && loaded.is_multiple_of(5_000),
        "whole chunks were committed before the kill: {loaded}"
    );
    let killed = newest_run(dir, "chunked");
    let run_id = events(&killed)[0]["run_id"].as_str().unwrap().to_string();

    // The resumed run continues after the last committed chunk: every row once, the rest read only.
    pg.sql("DROP TRIGGER pause ON tgt");
    ok(&run(dir, &["run", "p.yaml", "--resume", &run_id]));
    assert_eq!(
        pg.sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM tgt"),
        "60000|60000|1|60000"
    );
    assert_eq!(pg_rows(&pg, "tgt"), my_rows(&my, "src"));
    let resumed = newest_run(dir, "chunked");
    assert_eq!(rows_read(dir, "chunked", "extract"), 60_000 - loaded);
    let ev = events(&resumed);
    let r = ev.iter().find(|e| e["event"] == "run_resumed").unwrap();
    assert_eq!(r["from_run_id"], run_id.as_str());
    let chunks: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "chunk_committed")
        .collect();
    assert_eq!(chunks.first().unwrap()["chunk"], loaded / 5_000 + 1);
    assert_eq!(chunks.last().unwrap()["through"], 60_000);

    // A run that succeeded has nothing to resume.
    let done_id = events(&resumed)[0]["run_id"].as_str().unwrap().to_string();
    let o = run(dir, &["run", "p.yaml", "--resume", &done_id]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 2, "{out}{err}");
    assert!(
        err.contains("error[RUN-E012]") && err.contains("it succeeded"),
        "{err}"
    );
}

#[test]
fn a_state_that_cannot_be_used_stops_the_run_before_any_step() {
    let Some((my, pg, p)) = both("incremental_bad_state") else {
        return;
    };
    let dir = p.path();
    my.sql(
        "CREATE TABLE src (id INT PRIMARY KEY, updated_at DATETIME(6) NOT NULL, val VARCHAR(40))",
    );
    pg.sql("CREATE TABLE tgt (id int PRIMARY KEY, updated_at timestamp, val text)");
    std::fs::write(dir.join("p.yaml"), INCREMENTAL).unwrap();
    let state_dir = dir.join(".osiris/state/default/orders-incr");
    std::fs::create_dir_all(&state_dir).unwrap();
    // Kept for another cursor: the step's cursor changed since.
    std::fs::write(
        state_dir.join("extract.json"),
        r#"{"version": 1, "pipeline": "orders-incr", "profile": "default", "step": "extract", "cursor": ["id"],
            "kinds": ["integer"], "value": [7], "run_id": "run-x", "updated_at": "2026-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let o = run(dir, &["run", "p.yaml"]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 2, "{out}{err}");
    assert!(err.contains("error[RUN-E011]"), "{err}");
    assert!(
        err.contains("cursor (id) but the step's cursor is now (updated_at)"),
        "{err}"
    );
    assert!(
        err.contains("osiris state reset orders-incr --step extract"),
        "{err}"
    );
    let ev = events(&newest_run(dir, "orders-incr"));
    assert!(
        !ev.iter().any(|e| e["event"] == "step_start"),
        "no step ran"
    );
}

#[test]
fn a_column_added_to_the_source_between_incremental_runs_is_added_or_refused_as_configured() {
    let Some((my, pg, p)) = both("incremental_new_column") else {
        return;
    };
    let dir = p.path();
    src_and_tgt(&my, &pg, "SECOND", 10);
    let pipeline = |evolution: &str| {
        INCREMENTAL.replace(
            "      write_mode: upsert\n",
            &format!("      write_mode: upsert\n      schema_evolution: {evolution}\n"),
        )
    };
    std::fs::write(dir.join("p.yaml"), pipeline("fail")).unwrap();
    ok(&run(dir, &["run", "p.yaml"]));
    let state_file = dir.join(".osiris/state/default/orders-incr/extract.json");
    let mark = std::fs::read(&state_file).unwrap();

    my.sql(
        "ALTER TABLE src ADD COLUMN region VARCHAR(8);
         UPDATE src SET region = 'eu', updated_at = '2026-02-01' + INTERVAL id SECOND WHERE id <= 3",
    );
    // `fail`: the new column is named, nothing changes, and the mark stays.
    let o = run(dir, &["run", "p.yaml"]);
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    assert!(err.contains("`region`"), "{err}");
    assert_eq!(std::fs::read(&state_file).unwrap(), mark);
    assert_eq!(pg.sql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'tgt' AND column_name = 'region'"), "0");

    // `add_columns`: the column is added and filled by the rows read again.
    std::fs::write(dir.join("p.yaml"), pipeline("add_columns")).unwrap();
    ok(&run(dir, &["run", "p.yaml"]));
    assert_eq!(rows_read(dir, "orders-incr", "extract"), 3);
    assert_eq!(
        pg.sql("SELECT string_agg(id || ':' || coalesce(region, '-'), ',' ORDER BY id) FROM tgt"),
        "1:eu,2:eu,3:eu,4:-,5:-,6:-,7:-,8:-,9:-,10:-"
    );
}
