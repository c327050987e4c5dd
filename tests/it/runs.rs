//! Issue 5 through the real binary: the run index and `osiris runs`, `--retries`, step failure semantics,
//! shared outputs (bounded tee), bounded memory of a linear chain, terminal progress, `connections doctor`.

use crate::run::{data, project};
use crate::support::{Running, code, events, json, jsonl, osiris, run_dir, text};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn events_of(rd: &Path, name: &str) -> Vec<Value> {
    events(rd)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

fn step<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .expect("status.json has steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("step {id} in {status}"))
}

/// extract (CSV) -> write (CSV), with the given extractor config lines.
fn chain(name: &str, extract_cfg: &str, out: &str) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
{extract_cfg}
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: {out}
"#
    )
}

#[test]
fn runs_list_and_show_cover_succeeded_and_failed_runs() {
    let p = project(&[
        (
            "ok.yaml",
            &chain("good", "      path: data/orders.csv", "out/a.csv"),
        ),
        (
            "bad.yaml",
            &chain("broken", "      path: data/nowhere.csv", "out/b.csv"),
        ),
    ]);
    let o = osiris(p.path()).args(["run", "ok.yaml"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    let o = osiris(p.path()).args(["run", "bad.yaml"]).output();
    assert_eq!(code(&o), 4, "{:?}", text(&o));

    let o = osiris(p.path())
        .args(["runs", "list", "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{stdout}");
    assert_eq!(runs[0]["pipeline"], "broken", "newest first");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["failed_step"], "extract");
    assert_eq!(runs[1]["status"], "succeeded");
    assert_eq!(runs[1]["rows_read"], 20);
    let ok_id = runs[1]["run_id"].as_str().unwrap().to_string();
    let bad_id = runs[0]["run_id"].as_str().unwrap().to_string();

    let o = osiris(p.path())
        .args(["runs", "list", "--status", "failed", "--format", "json"])
        .output();
    let v: Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["run_id"], bad_id.as_str());
    let o = osiris(p.path())
        .args(["runs", "list", "--pipeline", "good"])
        .output();
    let (stdout, _) = text(&o);
    assert_eq!(code(&o), 0);
    assert!(stdout.contains(&ok_id), "{stdout}");
    assert!(!stdout.contains(&bad_id), "{stdout}");
    assert!(stdout.contains("succeeded"), "{stdout}");

    // show: status, per-step table, files.
    let o = osiris(p.path()).args(["runs", "show", &ok_id]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    for part in [
        ok_id.as_str(),
        "succeeded",
        "extract",
        "write",
        "filesystem.csv_writer",
        "events.jsonl",
        "artifacts/extract/cleaned_config.json",
        "run_logs/default/good/",
    ] {
        assert!(stdout.contains(part), "{part} in:\n{stdout}");
    }
    let o = osiris(p.path())
        .args(["runs", "show", &bad_id[..10], "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "a unique prefix is enough: {stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 4);
    assert_eq!(step(&v, "extract")["status"], "failed");
    assert_eq!(step(&v, "write")["status"], "not_started");
    assert!(
        v["error"].as_str().unwrap().contains("nowhere.csv"),
        "{stdout}"
    );
    let rd = p.path().join(v["run_dir"].as_str().unwrap());
    assert!(rd.join("status.json").is_file());

    let o = osiris(p.path())
        .args(["runs", "show", "run-000000000000"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 2, "{stderr}");
    assert!(stderr.contains("runs list"), "{stderr}");
}

/// The first retry's backoff is asserted here; that it doubles, in
/// `retries_back_off_doubling_and_give_up_after_the_last_attempt`.
#[test]
fn retries_a_failed_extractor_and_rereads_secrets() {
    // The connection's base_dir comes from the secrets file and first names a directory that does not exist.
    // When the runner reports the retry, the test fixes the secrets file: the second attempt succeeds only if
    // the secrets were read again.
    let p = project(&[
        (
            "p.yaml",
            &chain(
                "retried",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                "out/result.csv",
            ),
        ),
        (
            "osiris_connections.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n",
        ),
        (
            "secrets.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      base_dir: not-there-yet\n",
        ),
    ]);
    let dir = p.path().to_path_buf();
    let watcher = std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            let seen = std::fs::read_dir(dir.join("run_logs/default/retried"))
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| std::fs::read_to_string(e.unwrap().path().join("events.jsonl")).ok())
                .is_some_and(|t| t.contains("\"step_retry\""));
            if seen {
                std::fs::write(
                    dir.join("secrets.yaml"),
                    "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      base_dir: input-files\n",
                )
                .unwrap();
                std::fs::create_dir_all(dir.join("input-files")).unwrap();
                std::fs::copy(data("orders.csv"), dir.join("input-files/orders.csv")).unwrap();
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    let o = osiris(p.path())
        .args([
            "run",
            "p.yaml",
            "--secrets-file",
            "secrets.yaml",
            "--retries",
            "3",
        ])
        .output();
    let (stdout, stderr) = text(&o);
    assert!(watcher.join().unwrap(), "no step_retry event appeared");
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/result.csv"))
            .unwrap()
            .lines()
            .count(),
        21
    );
    let rd = run_dir(p.path(), "default", "retried");
    let retries = events_of(&rd, "step_retry");
    assert!(!retries.is_empty());
    let first = &retries[0];
    assert_eq!(first["step"], "extract");
    assert_eq!(first["attempt"], 2);
    assert_eq!(first["max_attempts"], 4);
    assert_eq!(first["delay_ms"], 500);
    assert!(
        first["error"].as_str().unwrap().contains("CSV-OPEN"),
        "{first}"
    );
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "succeeded");
    let attempts = step(&status, "extract")["attempts"].as_u64().unwrap();
    assert_eq!(attempts as usize, retries.len() + 1);
    assert_eq!(step(&status, "write")["attempts"], 1);
    assert_eq!(events_of(&rd, "step_complete").len(), 2);
}

/// Issue 15: the doubling was checked only when the test above happened to need a third attempt (almost never).
/// Here every attempt fails: two retries after 500 and 1000 ms, each waited out in full, then the run gives up
/// with the last error.
#[test]
fn retries_back_off_doubling_and_give_up_after_the_last_attempt() {
    let p = project(&[
        (
            "p.yaml",
            &chain(
                "hopeless",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                "out/result.csv",
            ),
        ),
        (
            "osiris_connections.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: never-there\n",
        ),
    ]);
    let o = osiris(p.path())
        .args(["run", "p.yaml", "--retries", "2"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("gave up after 3 attempts (--retries 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("CSV-OPEN"), "the last error: {stderr}");
    let rd = run_dir(p.path(), "default", "hopeless");
    let retries = events_of(&rd, "step_retry");
    let seen: Vec<(u64, u64, u64)> = retries
        .iter()
        .map(|r| {
            assert_eq!(r["step"], "extract", "{r}");
            assert!(r["error"].as_str().unwrap().contains("CSV-OPEN"), "{r}");
            (
                r["attempt"].as_u64().unwrap(),
                r["max_attempts"].as_u64().unwrap(),
                r["delay_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, 3, 500), (3, 3, 1000)], "{retries:?}");
    // Each delay is waited out before the next attempt fails: the events are at least that far apart.
    let at = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().unwrap())
            .unwrap_or_else(|err| panic!("ts of {e}: {err}"))
    };
    let gap = at(&retries[1]) - at(&retries[0]);
    assert!(
        gap >= chrono::TimeDelta::milliseconds(500),
        "the second attempt started {gap} after the first retry was announced"
    );
    let failed = events_of(&rd, "step_error");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let gap = at(&failed[0]) - at(&retries[1]);
    assert!(
        gap >= chrono::TimeDelta::milliseconds(1000),
        "the third attempt started {gap} after the second retry was announced"
    );
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "failed");
    assert_eq!(step(&status, "extract")["attempts"], 3);
    assert!(!p.path().join("out/result.csv").exists());
}

#[test]
fn a_writer_that_is_not_transactional_is_not_retried() {
    let p = project(&[(
        "p.yaml",
        // The target directory is a file: the writer fails every time.
        &chain(
            "noretry",
            "      path: data/orders.csv",
            "data/orders.csv/out.csv",
        ),
    )]);
    let o = osiris(p.path())
        .args(["run", "p.yaml", "--retries", "2"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stderr}");
    assert!(stderr.contains("step `write`"), "{stderr}");
    assert!(stderr.contains("not retried"), "{stderr}");
    assert!(stderr.contains("capabilities.transactions"), "{stderr}");
    let rd = run_dir(p.path(), "default", "noretry");
    assert!(events_of(&rd, "step_retry").is_empty());
    assert_eq!(step(&json(&rd.join("status.json")), "write")["attempts"], 1);
}

#[test]
fn a_failing_branch_stops_the_run_and_cancels_the_running_branch() {
    // `bad` fails after a while (a value deep in the file does not parse as the inferred integer type);
    // `slow` never ends on its own. The run must stop with exit 4 naming the failing step, cancel `slow`,
    // and never start the steps after it.
    let mut bad = String::from("id,v\n");
    for i in 0..200_000 {
        bad.push_str(&format!("{i},{}\n", i * 3));
    }
    bad.push_str("200000,not-a-number\n");
    let pipeline = r#"oml_version: "0.1.0"
name: branches
steps:
  - id: good-extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: slow
    component: duckdb.processor
    mode: transform
    needs: [good-extract]
    config:
      query: "SELECT SUM(range) AS s FROM range(1000000000000)"
  - id: good-write
    component: filesystem.csv_writer
    mode: write
    needs: [slow]
    config:
      path: out/good.csv
  - id: bad-extract
    component: filesystem.csv_extractor
    mode: read
    needs: []
    config:
      path: data/bad.csv
  - id: bad-write
    component: filesystem.csv_writer
    mode: write
    needs: [bad-extract]
    config:
      path: out/bad.csv
"#;
    let p = project(&[("p.yaml", pipeline), ("data/bad.csv", &bad)]);
    let mut child = osiris(p.path()).args(["run", "p.yaml"]).spawn();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!(
                "the run did not stop after a step failed: the running branch was not cancelled"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output();
    let (_, stderr) = text(&out);
    assert_eq!(code(&out), 4, "{stderr}");
    for part in [
        "step `bad-extract`",
        "filesystem.csv_extractor",
        "osiris-csv",
        "not-a-number",
    ] {
        assert!(stderr.contains(part), "{part} in:\n{stderr}");
    }
    let rd = run_dir(p.path(), "default", "branches");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "failed");
    assert_eq!(status["failed_step"], "bad-extract");
    assert_eq!(step(&status, "slow")["status"], "cancelled");
    assert_eq!(step(&status, "good-write")["status"], "not_started");
    assert!(
        events_of(&rd, "step_start")
            .iter()
            .all(|e| e["step"] != "good-write"),
        "no new step starts after a failure"
    );
    assert!(
        events_of(&rd, "step_cancelled")
            .iter()
            .any(|e| e["step"] == "slow")
    );
    assert!(
        !p.path().join("out/bad.csv").exists(),
        "the writer of the failed stream rolled back"
    );
    assert!(!p.path().join("out/good.csv").exists());
}

#[test]
fn a_shared_output_is_read_once_and_each_reader_gets_all_of_it() {
    let pipeline = r#"oml_version: "0.1.0"
name: fanout
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
      batch_size: 3
  - id: write-a
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/a.csv
  - id: write-b
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/b.csv
"#;
    let p = project(&[("p.yaml", pipeline)]);
    let o = osiris(p.path())
        .args(["run", "p.yaml", "--max-parallel", "1"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    assert!(
        !stderr.contains("rows/s"),
        "no progress when stderr is not a terminal: {stderr}"
    );
    let a = std::fs::read_to_string(p.path().join("out/a.csv")).unwrap();
    let b = std::fs::read_to_string(p.path().join("out/b.csv")).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 21);
    let rd = run_dir(p.path(), "default", "fanout");
    let reads: Vec<Value> = jsonl(&rd.join("metrics.jsonl"))
        .into_iter()
        .filter(|m| m["metric"] == "rows_read" && m["step"] == "extract")
        .collect();
    assert_eq!(reads.len(), 1, "the source is read once: {reads:?}");
    assert_eq!(reads[0]["value"], 20);
    let status = json(&rd.join("status.json"));
    assert_eq!(step(&status, "extract")["rows_read"], 20);
    assert_eq!(step(&status, "write-a")["rows_written"], 20);
    assert_eq!(step(&status, "write-b")["rows_written"], 20);
    let log = std::fs::read_to_string(rd.join("osiris.log")).unwrap();
    assert!(
        !log.contains("collected in memory"),
        "teed, not collected:\n{log}"
    );
}

#[test]
fn readers_that_depend_on_each_other_still_share_an_output() {
    // `joined` reads `extract` and `per-customer`, which reads `extract` too: the two readers cannot start
    // together, so the runner collects `extract` once instead of teeing it (and does not hang).
    let pipeline = r#"oml_version: "0.1.0"
name: diamond
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: per-customer
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config:
      query: "SELECT customer, COUNT(*) AS n FROM df_extract GROUP BY 1"
  - id: joined
    component: duckdb.processor
    mode: transform
    needs: [extract, per-customer]
    config:
      query: "SELECT e.id, c.n FROM df_extract e JOIN df_per_customer c USING (customer) ORDER BY e.id"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [joined]
    config:
      path: out/joined.csv
"#;
    let p = project(&[("p.yaml", pipeline)]);
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    let out = std::fs::read_to_string(p.path().join("out/joined.csv")).unwrap();
    assert_eq!(out.lines().count(), 21, "{out}");
    let rd = run_dir(p.path(), "default", "diamond");
    let reads = jsonl(&rd.join("metrics.jsonl"))
        .into_iter()
        .filter(|m| m["metric"] == "rows_read" && m["step"] == "extract")
        .count();
    assert_eq!(reads, 1);
}

/// Peak RSS (KiB) of a child, from `wait4` (its own rusage, not that of other tests' children).
fn wait_peak_rss_kib(child: &mut Running) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: `rusage` is plain integers, for which all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our unreaped child; status and usage are valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss)
}

#[test]
fn a_linear_chain_streams_two_million_rows_in_bounded_memory() {
    const ROWS: usize = 2_000_000;
    const BOUND_MIB: i64 = 200;
    let p = project(&[(
        "p.yaml",
        &chain(
            "big",
            "      path: data/big.csv\n      batch_size: 20000",
            "out/big.csv",
        ),
    )]);
    {
        let f = std::fs::File::create(p.path().join("data/big.csv")).unwrap();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        writeln!(w, "id,customer,amount,note").unwrap();
        for i in 0..ROWS {
            writeln!(
                w,
                "{i},customer-{:08},{}.{:02},row {i:09} of a generated file that is larger than the memory bound by far",
                i % 99_991,
                i % 10_007,
                i % 100
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(p.path().join("data/big.csv"))
        .unwrap()
        .len();
    assert!(
        size > (BOUND_MIB as u64) << 20,
        "the input ({size} bytes) must be larger than the bound"
    );
    let mut child = osiris(p.path())
        .args(["run", "p.yaml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let (exit, peak_kib) = wait_peak_rss_kib(&mut child);
    assert_eq!(exit, 0);
    assert!(
        peak_kib < BOUND_MIB * 1024,
        "peak RSS {} MiB for a {} MiB input: memory grows with rows",
        peak_kib / 1024,
        size >> 20
    );
    let status = json(&run_dir(p.path(), "default", "big").join("status.json"));
    assert_eq!(status["rows_read"], ROWS as u64);
    assert_eq!(status["rows_written"], ROWS as u64);
    let out = std::fs::metadata(p.path().join("out/big.csv"))
        .unwrap()
        .len();
    assert!(out > (BOUND_MIB as u64) << 20, "{out}");
}

#[test]
fn progress_shows_rows_per_step_on_a_terminal() {
    // `script` gives the run a pseudo-terminal for stdout and stderr.
    let p = project(&[(
        "p.yaml",
        &chain("tty", "      path: data/orders.csv", "out/a.csv"),
    )]);
    let o = osiris(p.path())
        .args(["run", "p.yaml"])
        .on_a_terminal()
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("extract") && l.contains("rows/s"))
        .unwrap_or_else(|| panic!("a progress line for `extract`:\n{stdout}"));
    assert!(line.contains("20 rows"), "{line}");
    assert!(stdout.contains("write"), "{stdout}");
}

#[test]
fn connections_doctor_checks_filesystem_connections() {
    let p = project(&[(
        "osiris_connections.yaml",
        "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n    gone:\n      base_dir: no-such-dir\n",
    )]);
    let o = osiris(p.path())
        .args(["connections", "doctor", "@filesystem.local"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("@filesystem.local"), "{stdout}");
    assert!(stdout.contains("ok"), "{stdout}");

    let o = osiris(p.path())
        .args(["connections", "doctor", "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_ne!(
        code(&o),
        0,
        "a failed check exits non-zero: {stdout}\n{stderr}"
    );
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let checks = v["connections"].as_array().unwrap();
    let gone = checks
        .iter()
        .find(|c| c["reference"] == "@filesystem.gone")
        .unwrap();
    assert_eq!(gone["ok"], false);
    assert_eq!(gone["code"], "not_found");
    assert!(gone["error"].as_str().unwrap().contains("no-such-dir"));
    let local = checks
        .iter()
        .find(|c| c["reference"] == "@filesystem.local")
        .unwrap();
    assert_eq!(local["ok"], true);

    let o = osiris(p.path())
        .args(["connections", "doctor", "@filesystem.nope"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 5, "{stderr}");
    assert!(stderr.contains("`gone`"), "lists the aliases: {stderr}");
}

/// Issue 21: `connections list` said `missing $MYSQL_PASSWORD` for `${MYSQL_PASSWORD:-}`, although the default
/// (empty) applies when the variable is unset. A reference without a default is still missing.
#[test]
fn connections_list_counts_a_reference_with_a_default_as_ready() {
    let p = project(&[(
        "osiris_connections.yaml",
        "version: \"1.0\"\nconnections:\n  mysql:\n    local:\n      default: true\n      host: 127.0.0.1\n      user: root\n      password: ${OSIRIS_IT_UNSET_PASSWORD:-}\n      database: shop\n    strict:\n      host: 127.0.0.1\n      user: root\n      password: ${OSIRIS_IT_UNSET_PASSWORD}\n      database: shop\n",
    )]);
    let o = osiris(p.path())
        .args(["connections", "list", "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let conn = |r: &str| -> Value {
        v["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["reference"] == r)
            .unwrap_or_else(|| panic!("{r} in {stdout}"))
            .clone()
    };
    let local = conn("@mysql.local");
    assert_eq!(local["ready"], true, "{local}");
    assert_eq!(local["missing_env"], serde_json::json!([]), "{local}");
    let password = local["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "password")
        .unwrap()
        .clone();
    assert_eq!(
        password["env"],
        serde_json::json!([{"name": "OSIRIS_IT_UNSET_PASSWORD", "set": false, "default": true}])
    );
    let strict = conn("@mysql.strict");
    assert_eq!(strict["ready"], false, "{strict}");
    assert_eq!(
        strict["missing_env"],
        serde_json::json!(["OSIRIS_IT_UNSET_PASSWORD"])
    );

    let o = osiris(p.path()).args(["connections", "list"]).output();
    let (stdout, _) = text(&o);
    let line = |r: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(r))
            .unwrap_or_else(|| panic!("{r} in {stdout}"))
            .to_string()
    };
    assert!(line("@mysql.local").ends_with("(ready)"), "{stdout}");
    assert!(
        line("@mysql.strict").ends_with("(missing $OSIRIS_IT_UNSET_PASSWORD)"),
        "{stdout}"
    );
}

/// Issue 21: a failed step first logged `WARN step `write` failed: ... step=""`: the line about a step carries
/// its id, and a line about the whole run has no empty `step` field.
#[test]
fn a_failed_step_is_logged_with_its_step_id() {
    let p = project(&[(
        "p.yaml",
        &chain("fails", "      path: data/orders.csv", "out/a.csv"),
    )]);
    // The writer's target is a directory: it fails.
    std::fs::create_dir_all(p.path().join("out/a.csv")).unwrap();
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stdout}\n{stderr}");
    assert!(
        !stderr.contains("step=\"\""),
        "an empty step field:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("failed: no new step starts"))
        .unwrap_or_else(|| panic!("the failure line in:\n{stderr}"));
    assert!(line.ends_with(" step=\"write\""), "{line}");
}

/// Issue 21: when a writer failed half-way, status.json said its extractor `succeeded` with `rows_read: null`.
/// The extractor was cut short by the failure (`cancelled`) and carries the rows it did read.
#[test]
fn status_tells_the_outcome_and_rows_of_an_extractor_cut_short_by_a_failed_writer() {
    use crate::dbutil::{MY_PORT, MyDb, server};
    if !server(
        "MariaDB",
        MY_PORT,
        "status_tells_the_outcome_and_rows_of_an_extractor_cut_short_by_a_failed_writer",
    ) {
        return;
    }
    let my = MyDb::new();
    // Row 12 is already there: the third batch of five rows fails with a duplicate key.
    my.sql("CREATE TABLE t (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2), created_at VARCHAR(40)) ENGINE=InnoDB; INSERT INTO t VALUES (12, 'x', 0, '')");
    let p = crate::dbutil::project(None, Some(&my));
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::copy(data("orders.csv"), p.path().join("data/orders.csv")).unwrap();
    std::fs::write(
        p.path().join("p.yaml"),
        r#"oml_version: "0.1.0"
name: cut-short
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
      batch_size: 5
  - id: load
    component: mysql.writer
    mode: write
    needs: [extract]
    config:
      connection: "@mysql.local"
      table: t
      batch_size: 5
"#,
    )
    .unwrap();
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stdout}\n{stderr}");
    let status = json(&run_dir(p.path(), "default", "cut-short").join("status.json"));
    assert_eq!(status["status"], "failed");
    let load = step(&status, "load");
    assert_eq!(load["status"], "failed", "{status}");
    let extract = step(&status, "extract");
    assert_eq!(extract["status"], "cancelled", "{status}");
    let read = extract["rows_read"]
        .as_u64()
        .unwrap_or_else(|| panic!("rows_read is a number: {status}"));
    assert!(
        (10..20).contains(&read),
        "rows handed to the writer: {status}"
    );
    assert_eq!(my.sql("SELECT COUNT(*) FROM t"), "1", "rolled back");
    // Nothing claims the extractor finished.
    assert!(
        events_of(&run_dir(p.path(), "default", "cut-short"), "step_complete")
            .iter()
            .all(|e| e["step"] != "extract"),
        "no step_complete for `extract`"
    );
}

/// Issue 21 (item 10): `mysql.extractor` streams: its first batch reaches the reader while MariaDB is still
/// producing the rest of the result (seen in the server's process list), and its spec says so.
#[test]
fn mysql_extractor_streams_as_its_spec_says() {
    use crate::dbutil::{MY_PORT, MyDb, server};
    assert_spec_streams("mysql.extractor");
    if !server(
        "MariaDB",
        MY_PORT,
        "mysql_extractor_streams_as_its_spec_says",
    ) {
        return;
    }
    let my = MyDb::new();
    my.sql("CREATE TABLE seq (id INT PRIMARY KEY); INSERT INTO seq SELECT seq FROM seq_1_to_40");
    let running = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND INFO LIKE '%SLEEP(0.1)%' AND ID <> CONNECTION_ID()",
        my.name
    );
    assert_first_batch_arrives_while_the_query_runs(
        &osiris_plugin_mysql::OCP_ENTRY,
        "mysql.extractor",
        serde_json::json!({
            "host": "127.0.0.1", "port": MY_PORT, "user": "root", "database": my.name, "ssl_mode": "disabled",
        }),
        "SELECT id, REPEAT('x', 40000) AS pad, SLEEP(0.1) AS s FROM seq",
        || my.sql(&running),
    );
}

/// Issue 21 (item 10): `postgres.extractor` (and `supabase.extractor`, the same engine) streams too.
#[test]
fn postgres_extractor_streams_as_its_spec_says() {
    use crate::dbutil::{PG_PORT, PgDb, server};
    assert_spec_streams("postgres.extractor");
    assert_spec_streams("supabase.extractor");
    if !server(
        "PostgreSQL",
        PG_PORT,
        "postgres_extractor_streams_as_its_spec_says",
    ) {
        return;
    }
    let pg = PgDb::new();
    assert_first_batch_arrives_while_the_query_runs(
        &osiris_plugin_postgres::OCP_ENTRY,
        "postgres.extractor",
        serde_json::json!({
            "host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "database": pg.name, "sslmode": "disable",
        }),
        "SELECT g AS id, repeat('x', 40000) AS pad, pg_sleep(0.1)::text AS s FROM generate_series(1, 40) g",
        || {
            pg.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query LIKE '%pg_sleep(0.1)%' AND state = 'active' AND pid <> pg_backend_pid()",
            )
        },
    );
}

/// `components spec NAME` says `streaming: true`.
fn assert_spec_streams(component: &str) {
    let o = osiris(Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["components", "spec", component, "--format", "json"])
        .output();
    let spec: Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(
        spec["capabilities"]["streaming"], true,
        "{component}: {}",
        spec["capabilities"]
    );
}

/// Runs `query` (40 wide rows taking 0.1 s each on the server: 4 s in all) through `component` in batches of 2,
/// and checks that the first batch arrives while `running()` still counts the query on the server.
fn assert_first_batch_arrives_while_the_query_runs(
    entry: &'static osiris_plugin_sdk::StaticEntry,
    component: &str,
    connection: Value,
    query: &str,
    running: impl Fn() -> String,
) {
    use osiris_plugin_sdk::Streams;
    use osiris_plugin_sdk::host::Module;
    use osiris_plugin_sdk::testing::TestContext;
    let m = Module::from_static(entry).unwrap();
    let ctx = TestContext::with_connection(connection);
    let mut out = m
        .run(
            component,
            "e",
            &serde_json::json!({"query": query, "batch_size": 2}),
            ctx.clone(),
            Streams::new(),
        )
        .unwrap();
    let mut reader = out.remove("df").unwrap();
    let first = reader.next().expect("a first batch").unwrap();
    assert_eq!(first.num_rows(), 2);
    assert_eq!(
        running().trim(),
        "1",
        "{component}: the query still runs when the first batch arrives"
    );
    assert_eq!(
        ctx.metric_total("rows_read"),
        0.0,
        "{component}: not read to the end yet"
    );
    drop(reader);
}
