//! Faults that happen in production, injected into real runs (issue 20): osiris itself killed with SIGKILL
//! mid-load, a full disk under `filesystem.csv_writer`, two runs of one pipeline at once, a PostgreSQL session
//! terminated mid-COPY and a MariaDB connection killed mid-read. Each ends with the target byte-identical to
//! before (or exactly the complete result) and a run status that says what happened.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, server};
use crate::support::{Running, code, json, jsonl, osiris, run_dir, text};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &Path, args: &[&str]) -> Running {
    osiris(dir).args(args).spawn()
}

/// A fresh PostgreSQL database prepared with `setup` and a project whose `@postgres.local` is it; `None` when
/// the server is down and the test may skip (it fails instead under `OSIRIS_REQUIRE_DATABASES=1`).
fn pg_project(test: &str, setup: &str) -> Option<(PgDb, tempfile::TempDir)> {
    if !server("PostgreSQL", PG_PORT, test) {
        return None;
    }
    let db = PgDb::new();
    db.sql(setup);
    let p = crate::dbutil::project(Some(&db), None);
    Some((db, p))
}

/// Waits for every run; each must exit 0.
fn all_succeed(children: Vec<Running>) {
    for c in children {
        let o = c.wait_with_output();
        let (out, err) = text(&o);
        assert_eq!(code(&o), 0, "{out}{err}");
    }
}

/// Polls `done` every 20 ms until it holds; fails after `limit` or when the child ended first.
fn wait_until(child: &mut Running, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {what}"
        );
        assert!(t.elapsed() < limit, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn runs_json(dir: &Path) -> Vec<Value> {
    let o = osiris(dir)
        .args(["runs", "list", "--format", "json"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "runs list: {out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["runs"].as_array().unwrap().clone()
}

/// A pipeline `name`: `postgres.extractor` running `query` (1,000-row batches) into `postgres.writer`'s table
/// `target` with `write_mode`.
fn pg_to_pg(name: &str, query: &str, write_mode: &str) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract
    component: postgres.extractor
    mode: read
    config:
      connection: "@postgres.local"
      batch_size: 1000
      query: "{query}"
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.local"
      table: target
      write_mode: {write_mode}
"#
    )
}

/// Waits until a session of `db` is inside a `COPY ... FROM STDIN` (the writer loading).
fn wait_for_copy_in(child: &mut Running, db: &PgDb) {
    wait_until(
        child,
        "the writer started its COPY",
        Duration::from_secs(60),
        || {
            db.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%FROM STDIN%'",
            db.name
        ))
        .trim()
            == "1"
        },
    );
}

/// A PostgreSQL extractor that streams 30,000 rows, then stalls inside the server, feeding a PostgreSQL
/// writer: when the stall begins the writer's COPY holds those rows in its open transaction.
const STALLING_QUERY: &str = "SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 1000000) g, LATERAL pg_sleep(CASE WHEN g > 30000 THEN 600 ELSE 0 END) s";

#[test]
fn osiris_killed_mid_load_leaves_the_target_unchanged_and_the_run_listed_as_crashed() {
    let Some((db, p)) = pg_project(
        "osiris_killed_mid_load",
        "CREATE TABLE target (id bigint, note text); INSERT INTO target VALUES (1, 'before'), (2, 'before')",
    ) else {
        return;
    };
    std::fs::write(
        p.path().join("stalled.yaml"),
        pg_to_pg("stalled_load", STALLING_QUERY, "append"),
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "stalled.yaml"]);
    wait_until(
        &mut child,
        "the extractor stalled mid-stream",
        Duration::from_secs(60),
        || {
            db.sql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event = 'PgSleep'",
                db.name
            ))
            .trim()
                == "1"
        },
    );
    // The writer is inside its COPY, holding the first rows uncommitted.
    wait_for_copy_in(&mut child, &db);
    // While it runs, the run is listed as running.
    let running = runs_json(p.path());
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0]["status"], "running", "{running:?}");
    child.kill().unwrap(); // SIGKILL: no handler, no clean-up
    let _ = child.wait();

    assert_eq!(
        db.sql("SELECT count(*), string_agg(note, ',' ORDER BY id) FROM target"),
        "2|before,before",
        "no committed half-load"
    );
    let runs = runs_json(p.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "crashed", "{runs:?}");
    let id = runs[0]["run_id"].as_str().unwrap().to_string();
    // Recorded for good: the index is valid JSON lines, one per run; `runs show` and `--status` see it.
    let index = jsonl(&p.path().join(".osiris/index/runs.jsonl"));
    assert_eq!(index.len(), 1);
    assert_eq!(index[0]["status"], "crashed");
    let shown = osiris(p.path())
        .args(["runs", "show", &id, "--format", "json"])
        .output();
    let (out, err) = text(&shown);
    assert_eq!(code(&shown), 0, "{out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["status"], "crashed", "{shown}");
    let only = osiris(p.path())
        .args(["runs", "list", "--status", "crashed", "--format", "json"])
        .output();
    let only: Value = serde_json::from_str(&text(&only).0).unwrap();
    assert_eq!(only["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn two_runs_of_one_pipeline_at_once_keep_their_own_directories_and_one_index_line_each() {
    let Some((db, p)) = pg_project(
        "two_runs_at_once",
        "CREATE TABLE target (id bigint, note text)",
    ) else {
        return;
    };
    std::fs::write(
        p.path().join("twice.yaml"),
        pg_to_pg(
            "twice",
            "SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 200000) g",
            "append",
        ),
    )
    .unwrap();
    let children: Vec<Running> = (0..3)
        .map(|_| spawn(p.path(), &["run", "twice.yaml"]))
        .collect();
    all_succeed(children);
    // append is one transaction per run: each run's rows arrive whole, so three runs give each row thrice.
    assert_eq!(
        db.sql("SELECT count(*), count(DISTINCT id), min(c), max(c) FROM (SELECT id, count(*) c FROM target GROUP BY id) x"),
        "200000|200000|3|3"
    );
    let index = jsonl(&p.path().join(".osiris/index/runs.jsonl"));
    assert_eq!(index.len(), 3, "{index:?}");
    let mut dirs: Vec<&str> = index
        .iter()
        .map(|r| r["run_dir"].as_str().unwrap())
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    assert_eq!(dirs.len(), 3, "each run has its own directory: {dirs:?}");
    for r in &index {
        assert_eq!(r["status"], "succeeded", "{r}");
        assert!(
            p.path()
                .join(r["run_dir"].as_str().unwrap())
                .join("status.json")
                .is_file()
        );
    }
    assert!(
        runs_json(p.path())
            .iter()
            .all(|r| r["status"] == "succeeded"),
        "no run is left listed as running"
    );
}

#[test]
fn concurrent_replaces_of_one_table_take_turns_and_the_last_to_commit_wins() {
    let Some((db, p)) = pg_project(
        "concurrent_replaces",
        "CREATE TABLE target (id bigint, run text); INSERT INTO target VALUES (0, 'before')",
    ) else {
        return;
    };
    for n in 0..3 {
        std::fs::write(
            p.path().join(format!("replace{n}.yaml")),
            pg_to_pg(
                &format!("replace{n}"),
                &format!("SELECT g AS id, 'run{n}' AS run FROM generate_series(1, 100000) g"),
                "replace",
            ),
        )
        .unwrap();
    }
    let children: Vec<Running> = (0..3)
        .map(|n| spawn(p.path(), &["run", &format!("replace{n}.yaml")]))
        .collect();
    all_succeed(children);
    // Exactly one run's rows: never a mix, never two runs' rows side by side.
    assert_eq!(
        db.sql("SELECT count(*), count(DISTINCT run), count(DISTINCT id) FROM target"),
        "100000|1|100000"
    );
}

#[test]
fn a_postgres_session_terminated_mid_copy_rolls_back_and_fails_the_writer_with_a_connection_error()
{
    let Some((db, p)) = pg_project(
        "terminated_mid_copy",
        "CREATE TABLE target (id bigint, note text); INSERT INTO target VALUES (0, 'before')",
    ) else {
        return;
    };
    // The source pauses for 5 s after 30,000 rows: the writer's COPY holds them when its session is ended.
    std::fs::write(
        p.path().join("terminated.yaml"),
        pg_to_pg(
            "terminated",
            "SELECT g AS id, 'row ' || g AS note FROM generate_series(1, 60000) g, LATERAL pg_sleep(CASE WHEN g = 30001 THEN 5 ELSE 0 END) s",
            "append",
        ),
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "terminated.yaml", "--retries", "2"]);
    let copying = format!(
        "FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%FROM STDIN%'",
        db.name
    );
    wait_for_copy_in(&mut child, &db);
    let killed = db.sql(&format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {copying}) t"
    ));
    assert_eq!(killed.trim(), "1");
    let o = child.wait_with_output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    let rd = run_dir(p.path(), "default", "terminated");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["failed_step"], "load", "{status}");
    assert_eq!(
        db.sql("SELECT count(*), string_agg(note, ',') FROM target"),
        "1|before",
        "the terminated COPY committed nothing"
    );
    // Not retried: the writer had already consumed part of its input stream, which cannot be read twice;
    // the log says so instead of leaving the retry count unexplained.
    let log = std::fs::read_to_string(rd.join("osiris.log")).unwrap_or_default()
        + &std::fs::read_to_string(rd.join("events.jsonl")).unwrap_or_default();
    assert!(
        log.contains("already read part of input"),
        "why it was not retried: {log}"
    );
}

#[test]
fn a_mariadb_connection_killed_mid_read_is_a_connection_error_and_the_target_stays_as_it_was() {
    if !server("MariaDB", MY_PORT, "mariadb_killed_mid_read") {
        return;
    }
    let my = MyDb::new();
    let pg = PgDb::new();
    pg.sql("CREATE TABLE target (id bigint); INSERT INTO target VALUES (-1)");
    let p = crate::dbutil::project(Some(&pg), Some(&my));
    // A source that sends rows, then sleeps inside the server.
    std::fs::write(
        p.path().join("killed.yaml"),
        r#"oml_version: "0.1.0"
name: killed
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.local"
      batch_size: 1000
      query: "SELECT seq AS id FROM seq_1_to_1000000 WHERE seq < 20000 OR SLEEP(600) = 0"
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.local"
      table: target
      write_mode: append
"#,
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "killed.yaml"]);
    let find = || {
        my.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%seq_1_to_1000000%' AND INFO NOT LIKE '%PROCESSLIST%'")
    };
    wait_until(
        &mut child,
        "the source query started",
        Duration::from_secs(60),
        || !find().trim().is_empty(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let id = find().trim().to_string();
    my.sql(&format!("KILL CONNECTION {id}"));
    let t = Instant::now();
    let o = child.wait_with_output();
    assert!(t.elapsed() < Duration::from_secs(30));
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "a failed step: {out}{err}");
    let status = json(&run_dir(p.path(), "default", "killed").join("status.json"));
    assert_eq!(status["status"], "failed");
    assert_eq!(status["failed_step"], "extract", "{status}");
    let e = status["error"].as_str().unwrap().to_lowercase();
    assert!(
        e.contains("connection") || e.contains("server") || e.contains("lost"),
        "names a connection error: {e}"
    );
    assert_eq!(pg.sql("SELECT count(*), min(id) FROM target"), "1|-1");
}

/// A 1 MiB tmpfs at a fresh directory, unmounted on drop. `None` when this process may not mount (not root).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        st.success().then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_no_partial_output_file_and_says_no_space_left_with_the_path() {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("osiris.yaml"), "run:\n  logs_dir: run_logs\n").unwrap();
    let Some(_disk) = Tmpfs::mount(&p.path().join("out"), "1m") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root and must mount the small filesystem this test fills"
        );
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"note: not root: a_full_disk_leaves_no_partial_output_file_... skipped (it mounts a tmpfs)\n",
        );
        return;
    };
    // An earlier, complete output that a failed write must not replace or truncate.
    std::fs::write(p.path().join("out/rows.csv"), "id\n1\n").unwrap();
    let mut rows = String::from("id,note\n");
    for i in 0..60_000 {
        rows.push_str(&format!(
            "{i},a note long enough to fill a small disk quickly\n"
        ));
    }
    std::fs::write(p.path().join("rows.csv"), rows).unwrap();
    std::fs::write(
        p.path().join("full.yaml"),
        r#"oml_version: "0.1.0"
name: full
steps:
  - id: read
    component: filesystem.csv_extractor
    mode: read
    config:
      path: rows.csv
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [read]
    config:
      path: out/rows.csv
"#,
    )
    .unwrap();
    let o = osiris(p.path()).args(["run", "full.yaml"]).output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    assert!(
        err.contains("No space left on device") && err.contains("out/rows.csv"),
        "names the cause and the path: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/rows.csv")).unwrap(),
        "id\n1\n",
        "the earlier output is intact"
    );
    let left: Vec<String> = std::fs::read_dir(p.path().join("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["rows.csv".to_string()], "no temporary file left");
}
