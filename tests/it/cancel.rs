//! Issue 21 item 5: a database server that accepts TCP and never answers, SIGINT/SIGTERM ending blocked steps,
//! and (item 10) the rows a cancelled run reports. Everything goes through the real `osiris` binary; the silent
//! server is a `TcpListener` of the test that accepts and never writes a byte.

use crate::dbutil::{PG_PORT, PgDb, server};
use crate::support::{Running, code, json, jsonl, osiris, run_dir, text};
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How soon after a signal a blocked run must have ended. osiris gives a blocked step 1 s
/// (`runner::cancel::GRACE`); the rest is headroom for process exit and the test's own polling on a loaded
/// 2-core CI machine. Far below the 600 s `connect_timeout` and the 600 s server-side sleep the runs are
/// blocked on, so a signal that only takes effect when the block ends still fails the test.
const PROMPT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1 that accepts connections, keeps them open and never answers.
struct Silent {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        // The thread (and the sockets it keeps) lives until the test process ends.
        std::thread::spawn(move || {
            let open: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
            for s in listener.incoming().flatten() {
                open.lock().unwrap().push(s);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Silent { port, accepted }
    }

    /// Waits until a client connected (and is now waiting for an answer).
    fn wait_for_client(&self, child: &mut Running) {
        let t = Instant::now();
        while self.accepted.load(Ordering::SeqCst) == 0 {
            assert!(
                child.try_wait().unwrap().is_none(),
                "osiris ended before it connected"
            );
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "osiris never connected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A project whose `@postgres.silent` and `@mysql.silent` point at `port`, with `connect_timeout` seconds.
fn project(port: u16, connect_timeout: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("osiris.yaml"),
        "run:\n  logs_dir: run_logs\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("osiris_connections.yaml"),
        format!(
            "version: \"1.0\"\nconnections:\n  postgres:\n    silent:\n      host: 127.0.0.1\n      port: {port}\n      user: postgres\n      database: app\n      connect_timeout: {connect_timeout}\n  mysql:\n    silent:\n      host: 127.0.0.1\n      port: {port}\n      user: root\n      database: app\n      connect_timeout: {connect_timeout}\n"
        ),
    )
    .unwrap();
    tmp
}

/// `family.extractor` on `@family.silent` into a CSV file.
fn pipeline(dir: &Path, family: &str) -> String {
    let name = format!("{family}-silent");
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        format!(
            r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract
    component: {family}.extractor
    mode: read
    config:
      connection: "@{family}.silent"
      query: "SELECT 1 AS n"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/n.csv
"#
        ),
    )
    .unwrap();
    format!("{name}.yaml")
}

fn spawn(dir: &Path, args: &[&str]) -> Running {
    osiris(dir).args(args).spawn()
}

/// Sends `signal` (`INT`, `TERM`) and waits for the process; returns its output and how long it took to end.
fn signal_and_wait(mut child: Running, signal: &str) -> (Output, Duration) {
    let st = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output();
            panic!(
                "osiris did not end within 30 s of SIG{signal}:\n{}",
                text(&out).1
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = t.elapsed();
    (child.wait_with_output(), waited)
}

/// The run's status.json, and `runs show` of it must find it.
fn cancelled_status(dir: &Path, pipeline: &str) -> Value {
    let rd = run_dir(dir, "default", pipeline);
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "cancelled", "{status}");
    assert_eq!(status["exit_code"], 130, "{status}");
    let id = status["run_id"].as_str().unwrap().to_string();
    let shown = osiris(dir)
        .args(["runs", "show", &id, "--format", "json"])
        .output();
    let (out, err) = text(&shown);
    assert_eq!(code(&shown), 0, "runs show {id}: {out}{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["status"], "cancelled", "{shown}");
    status
}

#[test]
fn postgres_server_that_never_answers_times_out_naming_host_port_and_limit() {
    let silent = Silent::start();
    let p = project(silent.port, 2);
    let file = pipeline(p.path(), "postgres");
    let t = Instant::now();
    let o = osiris(p.path()).args(["run", &file]).output();
    let took = t.elapsed();
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(took >= Duration::from_millis(1900), "took {took:?}: {err}");
    let at = format!("127.0.0.1:{}", silent.port);
    assert!(err.contains("[timeout]"), "{err}");
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("timed out after 2 s"), "{err}");
    assert!(err.contains("connect_timeout"), "{err}");
    let status = json(&run_dir(p.path(), "default", "postgres-silent").join("status.json"));
    assert_eq!(status["status"], "failed");

    // The connection check and discovery end the same way.
    let t = Instant::now();
    let o = osiris(p.path())
        .args(["connections", "doctor", "@postgres.silent"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(out.contains("timeout") && out.contains(&at), "{out}");
    assert!(out.contains("timed out after 2 s"), "{out}");
    let t = Instant::now();
    let o = osiris(p.path())
        .args(["discovery", "run", "@postgres.silent"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 4, "{out}{err}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        err.contains(&at) && err.contains("timed out after 2 s"),
        "{err}"
    );
}

#[test]
fn mysql_server_that_never_answers_times_out_after_connect_timeout() {
    let silent = Silent::start();
    let p = project(silent.port, 2);
    let file = pipeline(p.path(), "mysql");
    let t = Instant::now();
    let o = osiris(p.path()).args(["run", &file]).output();
    let took = t.elapsed();
    let (_, err) = text(&o);
    assert_eq!(code(&o), 4, "{err}");
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(err.contains("[timeout]"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", silent.port)) && err.contains("timed out after 2 s"),
        "{err}"
    );
}

/// A run blocked connecting to a silent server ends promptly after `signal` ([`PROMPT`]), as cancelled.
fn signal_ends_a_run_blocked_on_a_silent_server(family: &str, signal: &str) {
    let silent = Silent::start();
    let p = project(silent.port, 600);
    let file = pipeline(p.path(), family);
    let mut child = spawn(p.path(), &["run", &file]);
    silent.wait_for_client(&mut child);
    std::thread::sleep(Duration::from_millis(300));
    let (out, waited) = signal_and_wait(child, signal);
    let (_, err) = text(&out);
    assert_eq!(code(&out), 130, "{err}");
    assert!(
        waited < PROMPT,
        "SIG{signal} took {waited:?} to end the run:\n{err}"
    );
    assert!(err.contains("cancelled"), "{err}");
    cancelled_status(p.path(), &format!("{family}-silent"));
    assert!(!p.path().join("out/n.csv").exists());
}

#[test]
fn sigint_ends_a_run_blocked_on_a_silent_postgres_server() {
    signal_ends_a_run_blocked_on_a_silent_server("postgres", "INT");
}

#[test]
fn sigterm_ends_a_run_blocked_on_a_silent_postgres_server_as_cancelled() {
    signal_ends_a_run_blocked_on_a_silent_server("postgres", "TERM");
}

#[test]
fn sigint_ends_a_run_blocked_on_a_silent_mysql_server() {
    signal_ends_a_run_blocked_on_a_silent_server("mysql", "INT");
}

#[test]
fn doctor_and_discovery_end_on_ctrl_c_while_a_server_does_not_answer() {
    for args in [
        &["connections", "doctor", "@postgres.silent"][..],
        &["discovery", "run", "@postgres.silent"][..],
    ] {
        let silent = Silent::start();
        let p = project(silent.port, 600);
        let mut child = spawn(p.path(), args);
        silent.wait_for_client(&mut child);
        std::thread::sleep(Duration::from_millis(200));
        let (out, waited) = signal_and_wait(child, "INT");
        let (stdout, err) = text(&out);
        assert_eq!(code(&out), 130, "{args:?}: {stdout}{err}");
        assert!(waited < PROMPT, "{args:?}: {waited:?}");
        assert!(err.contains("cancelled (Ctrl-C)"), "{args:?}: {err}");
    }
}

/// Issue 21 item 10: after Ctrl-C mid-stream the summary, status.json and metrics.jsonl report the rows read so
/// far. The source stalls after 30,000 rows (a server-side sleep), so the run is cancelled while the extractor
/// waits for rows and the writer waits for the extractor: neither returns by itself.
#[test]
fn a_run_cancelled_mid_stream_reports_the_rows_read_so_far() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "a_run_cancelled_mid_stream_reports_the_rows_read_so_far",
    ) {
        return;
    }
    let db = PgDb::new();
    let p = crate::dbutil::project(Some(&db), None);
    std::fs::write(
        p.path().join("stall.yaml"),
        r#"oml_version: "0.1.0"
name: stall
steps:
  - id: extract
    component: postgres.extractor
    mode: read
    config:
      connection: "@postgres.local"
      batch_size: 1000
      query: "SELECT g FROM generate_series(1, 1000000) g, LATERAL pg_sleep(CASE WHEN g > 30000 THEN 600 ELSE 0 END) s"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/rows.csv
"#,
    )
    .unwrap();
    let mut child = spawn(p.path(), &["run", "stall.yaml"]);
    // Wait until the server sleeps inside the query (the rows before it are on their way).
    let t = Instant::now();
    loop {
        let sleeping = db.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event = 'PgSleep' AND query LIKE 'COPY%'",
            db.name
        ));
        if sleeping.trim() == "1" {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was cancelled"
        );
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the query never stalled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (out, waited) = signal_and_wait(child, "INT");
    let (_, err) = text(&out);
    assert_eq!(code(&out), 130, "{err}");
    assert!(waited < PROMPT, "took {waited:?}:\n{err}");
    let status = cancelled_status(p.path(), "stall");
    let read = status["rows_read"].as_f64().unwrap();
    assert!(read > 0.0 && read <= 30_000.0, "{status}");
    assert_eq!(read % 1000.0, 0.0, "whole batches of 1000: {status}");
    let extract = &status["steps"][0];
    assert_eq!(extract["id"], "extract");
    assert_eq!(extract["status"], "cancelled");
    assert_eq!(extract["rows_read"], status["rows_read"], "{status}");
    // Nothing was written: the writer leaves its target untouched when cancelled.
    assert_eq!(status["rows_written"], 0, "{status}");
    assert!(!p.path().join("out/rows.csv").exists());
    // metrics.jsonl says the same.
    let rd = run_dir(p.path(), "default", "stall");
    let metrics: f64 = jsonl(&rd.join("metrics.jsonl"))
        .iter()
        .filter(|m| m["step"] == "extract" && m["metric"] == "rows_read")
        .map(|m| m["value"].as_f64().unwrap())
        .sum();
    assert_eq!(metrics, read);
    // And the summary line.
    assert!(
        err.contains(&format!(
            "run cancelled `stall`: 0/2 steps, {read} rows read, 0 rows written"
        )),
        "{err}"
    );
}
