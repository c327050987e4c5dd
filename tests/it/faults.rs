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
    extract_load(
        name,
        "postgres",
        "@postgres.local",
        query,
        "@postgres.local",
        write_mode,
    )
}

/// A pipeline `name`: step `extract`, `<family>.extractor` on the connection `source` running `query` in
/// 1,000-row batches, into step `load`, `postgres.writer`'s table `target` on the connection `target`.
fn extract_load(
    name: &str,
    family: &str,
    source: &str,
    query: &str,
    target: &str,
    write_mode: &str,
) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract
    component: {family}.extractor
    mode: read
    config:
      connection: "{source}"
      batch_size: 1000
      query: "{query}"
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "{target}"
      table: target
      write_mode: {write_mode}
"#
    )
}

/// Waits for the run, which must succeed, and asserts that the target table holds every row exactly once:
/// `expected` is `count|distinct count|min|max` of its `id`, as `sql` returns it.
fn succeeds_with_every_row_once(child: Running, sql: impl Fn(&str) -> String, expected: &str) {
    let o = child.wait_with_output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}{err}");
    assert_eq!(
        sql("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM target"),
        expected,
        "every row exactly once, and the row that was there before"
    );
}

/// The entry of step `id` in a run's `status.json`.
fn step_of(status: &Value, id: &str) -> Value {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step `{id}` in {status}"))
        .clone()
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
fn a_postgres_session_terminated_mid_copy_rolls_back_and_the_retried_writer_loads_every_row_once() {
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
    let copying = format!(
        "FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%FROM STDIN%'",
        db.name
    );
    let terminate = |child: &mut Running| {
        wait_for_copy_in(child, &db);
        let killed = db.sql(&format!(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) {copying}) t"
        ));
        assert_eq!(killed.trim(), "1");
    };

    // Without --retries: the writer fails with a connection error and its transaction rolls back.
    let mut child = spawn(p.path(), &["run", "terminated.yaml"]);
    terminate(&mut child);
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
    std::fs::remove_dir_all(rd).unwrap();

    // With --retries: the writer's next attempt replays the 30,000 rows it had read from its journal, reads
    // on from the still-running extractor, and the target ends with every row exactly once.
    let mut child = spawn(p.path(), &["run", "terminated.yaml", "--retries", "2"]);
    terminate(&mut child);
    succeeds_with_every_row_once(child, |q| db.sql(q), "60001|60001|0|60000");
    let rd = run_dir(p.path(), "default", "terminated");
    let status = json(&rd.join("status.json"));
    let load = step_of(&status, "load");
    assert_eq!(load["attempts"], 2, "{status}");
    assert_eq!(load["rows_written"], 60000, "{status}");
    let events = crate::support::events(&rd);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_retry" && e["step"] == "load"),
        "the retry is in the audit trail"
    );
    assert!(
        !rd.join(".journal").exists(),
        "the input journal is gone with the step"
    );
}

/// A PostgreSQL server of this test's own (initdb into a temporary directory, run as the `postgres` user on a
/// free loopback port), so it can be restarted without disturbing the tests that share the system server.
/// `None` where it cannot be started (no PostgreSQL binaries, not root); fails instead under
/// `OSIRIS_REQUIRE_DATABASES=1`.
struct OwnPg {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl OwnPg {
    #[allow(clippy::disallowed_macros)] // eprintln!: the visible notice of a skipped test
    fn start() -> Option<OwnPg> {
        let required = std::env::var("OSIRIS_REQUIRE_DATABASES").as_deref() == Ok("1");
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        });
        let Some(bin) = bin else {
            assert!(
                !required,
                "no PostgreSQL server binaries under /usr/lib/postgresql"
            );
            eprintln!("note: skipped: no PostgreSQL server binaries to start a private server");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let owned = Command::new("chown")
            .args(["postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !owned {
            assert!(
                !required,
                "cannot hand a directory to the postgres user (not root?)"
            );
            eprintln!("note: skipped: a private PostgreSQL server needs root");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPg { dir, bin, port };
        pg.as_postgres(
            "initdb",
            &[
                "-D",
                &pg.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        pg.ctl(&["start"]);
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) {
        let o = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `pg_ctl <action>`, waiting for it to finish; `restart` uses `-m immediate` (a crash, then recovery).
    fn ctl(&self, action: &[&str]) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args: Vec<&str> = vec!["-D", &data, "-w", "-l", &log, "-o", &opts];
        args.extend_from_slice(action);
        self.as_postgres("pg_ctl", &args);
    }

    fn sql(&self, sql: &str) -> String {
        let o = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-qAtX",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim_end().to_string()
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

#[test]
fn a_postgres_server_restarted_mid_load_is_retried_and_the_target_ends_with_every_row_once() {
    if !server("MariaDB", MY_PORT, "postgres_restarted_mid_load") {
        return;
    }
    let Some(pg) = OwnPg::start() else { return };
    pg.sql("CREATE TABLE target (id bigint); INSERT INTO target VALUES (0)");
    let my = MyDb::new();
    let p = crate::dbutil::project(None, Some(&my));
    let conns = std::fs::read_to_string(p.path().join("osiris_connections.yaml")).unwrap();
    std::fs::write(
        p.path().join("osiris_connections.yaml"),
        format!(
            "{conns}  postgres:\n    own:\n      host: 127.0.0.1\n      port: {}\n      user: postgres\n      database: postgres\n      sslmode: disable\n",
            pg.port
        ),
    )
    .unwrap();
    // The source pauses for 5 s inside MariaDB after 30,000 rows: the writer's COPY holds them then.
    std::fs::write(
        p.path().join("restarted.yaml"),
        extract_load(
            "restarted",
            "mysql",
            "@mysql.local",
            "SELECT seq AS id FROM seq_1_to_60000 WHERE seq <> 30001 OR SLEEP(5) = 0",
            "@postgres.own",
            "append",
        ),
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "restarted.yaml", "--retries", "4"]);
    wait_until(
        &mut child,
        "the writer started its COPY",
        Duration::from_secs(60),
        || {
            pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%FROM STDIN%'")
                .trim()
                == "1"
        },
    );
    // A crash and a restart of the server while the COPY holds uncommitted rows.
    pg.ctl(&["-m", "immediate", "restart"]);
    succeeds_with_every_row_once(child, |q| pg.sql(q), "60001|60001|0|60000");
    let status = json(&run_dir(p.path(), "default", "restarted").join("status.json"));
    let load = step_of(&status, "load");
    assert!(load["attempts"].as_u64().unwrap() >= 2, "{status}");
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
        extract_load(
            "killed",
            "mysql",
            "@mysql.local",
            "SELECT seq AS id FROM seq_1_to_1000000 WHERE seq < 20000 OR SLEEP(600) = 0",
            "@postgres.local",
            "append",
        ),
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

#[test]
fn a_mariadb_connection_killed_mid_read_is_retried_by_reading_again_and_loads_every_row_once() {
    if !server("MariaDB", MY_PORT, "mariadb_killed_mid_read_retried") {
        return;
    }
    let my = MyDb::new();
    // The source sleeps in the server at row 20,001 for as long as `ctl.pause` says when it gets there.
    my.sql("CREATE TABLE ctl (pause INT); INSERT INTO ctl VALUES (600)");
    let pg = PgDb::new();
    pg.sql("CREATE TABLE target (id bigint); INSERT INTO target VALUES (-1)");
    let p = crate::dbutil::project(Some(&pg), Some(&my));
    std::fs::write(
        p.path().join("killed.yaml"),
        extract_load(
            "killed",
            "mysql",
            "@mysql.local",
            "SELECT seq AS id FROM seq_1_to_40000 WHERE seq <> 20001 OR SLEEP((SELECT pause FROM ctl)) = 0",
            "@postgres.local",
            "append",
        ),
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "killed.yaml", "--retries", "2"]);
    let sleeping = || {
        my.sql("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE '%seq_1_to_40000%' AND INFO NOT LIKE '%PROCESSLIST%' AND STATE = 'User sleep'")
    };
    wait_until(
        &mut child,
        "the source query paused after 20,000 rows",
        Duration::from_secs(60),
        || !sleeping().trim().is_empty(),
    );
    // The writer holds those rows in its open COPY when the source's connection is killed; the next read of
    // the source does not pause.
    wait_for_copy_in(&mut child, &pg);
    my.sql("UPDATE ctl SET pause = 0");
    let id = sleeping().trim().to_string();
    my.sql(&format!("KILL CONNECTION {id}"));
    succeeds_with_every_row_once(child, |q| pg.sql(q), "40001|40001|-1|40000");
    let rd = run_dir(p.path(), "default", "killed");
    let status = json(&rd.join("status.json"));
    let step = |id: &str| step_of(&status, id);
    assert_eq!(step("extract")["attempts"], 2, "{status}");
    assert_eq!(step("load")["attempts"], 2, "{status}");
    assert_eq!(step("extract")["rows_read"], 40000, "{status}");
    assert_eq!(status["rows_written"], 40000, "{status}");
    let log = std::fs::read_to_string(rd.join("osiris.log")).unwrap();
    assert!(
        log.contains("its stream failed") && log.contains("reads it again from the start"),
        "the log tells what happened: {log}"
    );
    let events = crate::support::events(&rd);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_rerun" && e["step"] == "extract" && e["reader"] == "load"),
        "the rerun is in the audit trail: {events:?}"
    );
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

/// A TCP proxy on loopback in front of a database server that forwards faithfully until `stall_after` bytes
/// came back from the server, then stops forwarding in both directions while keeping every connection open:
/// what a stalled network or a wedged middlebox looks like to a client (no error, no FIN, no RST).
struct StallProxy {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Whether the stall began (a run that failed before it would prove nothing).
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl StallProxy {
    fn start(upstream: u16, stall_after: usize) -> StallProxy {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let from_server = Arc::new(AtomicUsize::new(0));
        let (stop2, stalled2) = (stop.clone(), stalled.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                // client -> server and server -> client, each on its own thread.
                for (mut from, mut to, counts) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        false,
                    ),
                    (server, client, true),
                ] {
                    let (stop, stalled, seen) =
                        (stop2.clone(), stalled2.clone(), from_server.clone());
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if counts && seen.fetch_add(n, Ordering::Relaxed) + n > stall_after {
                                stalled.store(true, Ordering::Relaxed);
                            }
                            // Stalled: hold the connection open, forward nothing, until the test ends.
                            while stalled.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                                std::thread::sleep(Duration::from_millis(50));
                            }
                            if stop.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        });
        StallProxy {
            port,
            stop,
            stalled,
        }
    }

    fn stalled(&self) -> bool {
        self.stalled.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so it sees `stop`.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Adds `@<family>.stalling` (`fields`, then `read_timeout: 2`, through a [`StallProxy`] in front of the
/// server on `upstream`) to the project `p`, runs `extract` (the `<family>.extractor` reading `query` through
/// it) into `postgres.writer`'s table `target` on `@postgres.local`, and asserts that the run fails on its own
/// within a bound far below the 600 s the stalled query would otherwise wait, naming the extractor, the stall
/// and the setting.
fn fails_within_read_timeout(p: &Path, family: &str, upstream: u16, fields: &str, query: &str) {
    let proxy = StallProxy::start(upstream, 256 * 1024);
    let file = p.join("osiris_connections.yaml");
    let conns = std::fs::read_to_string(&file).unwrap();
    let alias = format!(
        "  {family}:\n    stalling:\n      host: 127.0.0.1\n      port: {}\n{fields}      read_timeout: 2\n",
        proxy.port
    );
    std::fs::write(&file, conns.replacen(&format!("  {family}:\n"), &alias, 1)).unwrap();
    std::fs::write(
        p.join("stall.yaml"),
        extract_load(
            "stall",
            family,
            &format!("@{family}.stalling"),
            query,
            "@postgres.local",
            "append",
        ),
    )
    .unwrap();
    let mut child = spawn(p, &["run", "stall.yaml"]);
    let t = Instant::now();
    let limit = Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            panic!("the run still hangs {} s after it started", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output();
    let (out, err) = text(&o);
    assert!(proxy.stalled(), "the stall began: {out}{err}");
    assert_eq!(code(&o), 4, "a failed step: {out}{err}");
    let status = json(&run_dir(p, "default", "stall").join("status.json"));
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["failed_step"], "extract", "{status}");
    let e = status["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("no answer from the server for 2 s") && e.contains("read_timeout"),
        "names the stall and the setting: {e}"
    );
    assert!(
        e.contains(&format!("127.0.0.1:{}", proxy.port)),
        "names the server: {e}"
    );
}

const BEFORE: &str =
    "CREATE TABLE target (id bigint, note text); INSERT INTO target VALUES (-1, 'before')";

#[test]
fn a_network_stall_during_a_mariadb_extraction_fails_the_run_after_read_timeout() {
    if !server("MariaDB", MY_PORT, "mariadb_network_stall")
        || !server("PostgreSQL", PG_PORT, "mariadb_network_stall")
    {
        return;
    }
    let my = MyDb::new();
    let pg = PgDb::new();
    pg.sql(BEFORE);
    let p = crate::dbutil::project(Some(&pg), Some(&my));
    fails_within_read_timeout(
        p.path(),
        "mysql",
        MY_PORT,
        &format!("      user: root\n      database: {}\n", my.name),
        "SELECT seq AS id, REPEAT('x', 100) AS note FROM seq_1_to_1000000",
    );
    assert_eq!(
        pg.sql("SELECT count(*), string_agg(note, ',') FROM target"),
        "1|before",
        "the writer committed nothing"
    );
}

#[test]
fn a_network_stall_during_a_postgres_extraction_fails_the_run_after_read_timeout() {
    let Some((db, p)) = pg_project("postgres_network_stall", BEFORE) else {
        return;
    };
    fails_within_read_timeout(
        p.path(),
        "postgres",
        PG_PORT,
        &format!(
            "      user: postgres\n      database: {}\n      sslmode: disable\n",
            db.name
        ),
        "SELECT g AS id, repeat('x', 100) AS note FROM generate_series(1, 1000000) g",
    );
    assert_eq!(
        db.sql("SELECT count(*), string_agg(note, ',') FROM target"),
        "1|before",
        "the writer committed nothing"
    );
}
