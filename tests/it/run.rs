//! `osiris run` and `osiris quickstart` through the real binary: run directory, exit codes, redaction.

use crate::support::{code, events, files, json, jsonl, osiris, run_dir, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/run")
        .join(name)
}

#[test]
fn quickstart_runs_end_to_end_and_leaves_a_complete_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let o = osiris(tmp.path()).args(["quickstart", "qs"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let project = tmp.path().join("qs");

    let expected = std::fs::read_to_string(data("quickstart_summary.csv")).unwrap();
    let got = std::fs::read_to_string(project.join("output/summary.csv")).unwrap();
    assert_eq!(got, expected);
    assert!(stdout.contains("output/summary.csv"), "{stdout}");
    assert!(
        stdout.contains(expected.lines().nth(1).unwrap()),
        "preview of the output:\n{stdout}"
    );
    assert!(
        stdout.contains("run_logs/default/orders-summary/"),
        "{stdout}"
    );

    let rd = run_dir(&project, "default", "orders-summary");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["exit_code"], 0);
    assert_eq!(status["steps_total"], 3);
    assert_eq!(status["steps_completed"], 3);
    assert_eq!(status["rows_read"], 20);
    assert_eq!(status["rows_written"], expected.lines().count() as u64 - 1);
    let run_id = status["run_id"].as_str().unwrap().to_string();
    assert!(rd.file_name().unwrap().to_string_lossy().contains(&run_id));
    for k in ["started_at", "ended_at", "duration_ms"] {
        assert!(!status[k].is_null(), "status.json has {k}");
    }

    let events = events(&rd);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"run_start"));
    assert_eq!(names.last(), Some(&"run_end"));
    assert_eq!(names.iter().filter(|n| **n == "step_start").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "step_complete").count(), 3);
    for e in &events {
        assert_eq!(e["run_id"], run_id.as_str());
        assert!(e["ts"].is_string());
    }
    let extract = events
        .iter()
        .find(|e| e["event"] == "step_complete" && e["step"] == "extract-orders")
        .unwrap();
    assert_eq!(extract["rows_read"], 20);
    let write = events
        .iter()
        .find(|e| e["event"] == "step_complete" && e["step"] == "write-summary")
        .unwrap();
    assert_eq!(write["rows_written"], status["rows_written"]);
    assert_eq!(events.last().unwrap()["status"], "succeeded");

    let metrics = jsonl(&rd.join("metrics.jsonl"));
    assert!(
        metrics.iter().any(|m| m["metric"] == "rows_read"
            && m["step"] == "extract-orders"
            && m["value"] == 20)
    );
    assert!(
        metrics
            .iter()
            .any(|m| m["metric"] == "rows_written" && m["step"] == "write-summary")
    );
    assert!(rd.join("osiris.log").is_file());
    assert!(rd.join("manifest.yaml").is_file());
    for step in ["extract-orders", "aggregate", "write-summary"] {
        assert!(
            rd.join(format!("cfg/{step}.json")).is_file(),
            "cfg/{step}.json"
        );
        let cleaned = json(&rd.join(format!("artifacts/{step}/cleaned_config.json")));
        assert!(cleaned.is_object());
    }
    let index = jsonl(&project.join(".osiris/index/runs.jsonl"));
    assert_eq!(index.len(), 1);
    assert_eq!(index[0]["run_id"], run_id.as_str());
    assert_eq!(index[0]["status"], "succeeded");

    // A second quickstart in the same directory reuses the project and runs again.
    let o = osiris(tmp.path()).args(["quickstart", "qs"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(jsonl(&project.join(".osiris/index/runs.jsonl")).len(), 2);
}

/// Writes a project: osiris.yaml (defaults), data/orders.csv, and the files given.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    std::fs::write(
        tmp.path().join("osiris.yaml"),
        "run:\n  logs_dir: run_logs\n",
    )
    .unwrap();
    std::fs::copy(data("orders.csv"), tmp.path().join("data/orders.csv")).unwrap();
    for (name, text) in files {
        let p = tmp.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    tmp
}

pub fn pipeline(name: &str, extract_cfg: &str, query: &str) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
{extract_cfg}
  - id: aggregate
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config:
      query: "{query}"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [aggregate]
    config:
      path: out/result.csv
"#
    )
}

#[test]
fn failing_step_exits_4_naming_step_component_and_plugin_and_records_status() {
    let p = project(&[(
        "p.yaml",
        &pipeline(
            "broken",
            "      path: data/orders.csv",
            "SELECT customer, no_such_column FROM df",
        ),
    )]);
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("step `aggregate`"), "{stderr}");
    assert!(stderr.contains("duckdb.processor"), "{stderr}");
    assert!(stderr.contains("osiris-duckdb"), "{stderr}");
    assert!(stderr.contains("no_such_column"), "{stderr}");
    assert!(
        stderr.contains("LINE 1:"),
        "DuckDB's position is kept: {stderr}"
    );
    assert!(
        !p.path().join("out/result.csv").exists(),
        "no output after a failed run"
    );

    let rd = run_dir(p.path(), "default", "broken");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "failed");
    assert_eq!(status["exit_code"], 4);
    assert_eq!(status["failed_step"], "aggregate");
    assert_eq!(status["steps_total"], 3);
    assert!(status["steps_completed"].as_u64().unwrap() < 3);
    let events = events(&rd);
    let err = events
        .iter()
        .find(|e| e["event"] == "step_error")
        .expect("a step_error event");
    assert_eq!(err["step"], "aggregate");
    assert!(err["error"].as_str().unwrap().contains("no_such_column"));
    assert_eq!(events.last().unwrap()["event"], "run_end");
    assert_eq!(events.last().unwrap()["status"], "failed");
    let index = jsonl(&p.path().join(".osiris/index/runs.jsonl"));
    assert_eq!(index[0]["status"], "failed");
}

#[test]
fn missing_connection_exits_5_naming_family_and_alias() {
    let p = project(&[
        (
            "p.yaml",
            &pipeline(
                "noconn",
                "      connection: \"@filesystem.archive\"\n      path: orders.csv",
                "SELECT * FROM df",
            ),
        ),
        (
            "osiris_connections.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n",
        ),
    ]);
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 5, "{stderr}");
    assert!(stderr.contains("@filesystem.archive"), "{stderr}");
    assert!(
        stderr.contains("`local`"),
        "lists the defined aliases: {stderr}"
    );
    let status = json(&run_dir(p.path(), "default", "noconn").join("status.json"));
    assert_eq!(status["exit_code"], 5);
    assert_eq!(status["status"], "failed");

    // A variable the connection needs but nobody set: names family, alias, field and variable.
    std::fs::write(
        p.path().join("osiris_connections.yaml"),
        "version: \"1.0\"\nconnections:\n  filesystem:\n    archive:\n      base_dir: data\n      password: ${OSIRIS_IT_NEVER_SET}\n",
    )
    .unwrap();
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 5, "{stderr}");
    for part in ["@filesystem.archive", "`password`", "OSIRIS_IT_NEVER_SET"] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
}

#[test]
fn connection_base_dir_resolves_relative_paths() {
    let p = project(&[
        (
            "p.yaml",
            &pipeline(
                "withconn",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                "SELECT COUNT(*) AS n FROM df_extract",
            ),
        ),
        (
            "osiris_connections.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n",
        ),
    ]);
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/result.csv")).unwrap(),
        "n\n20\n"
    );
}

/// `needs:` on a writer is an ordering: a step that reads what an earlier writer wrote starts after it and
/// does not wait for the writer's (non-existent) output stream.
#[test]
fn a_reader_that_needs_a_writer_starts_after_it_commits() {
    let p = project(&[(
        "p.yaml",
        r#"oml_version: "0.1.0"
name: two-stage
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config: { path: data/orders.csv }
  - id: stage
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config: { path: staged/orders.csv }
  - id: reread
    component: filesystem.csv_extractor
    mode: read
    needs: [stage]
    config: { path: staged/orders.csv }
  - id: count
    component: duckdb.processor
    mode: transform
    needs: [reread]
    config: { query: "SELECT COUNT(*) AS n FROM df" }
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [count]
    config: { path: out/result.csv }
"#,
    )]);
    let o = osiris(p.path())
        .args(["run", "p.yaml", "--max-parallel", "4"])
        .output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    // The staged file existed, complete, when `reread` opened it.
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/result.csv")).unwrap(),
        "n\n20\n"
    );
}

#[test]
fn planted_secrets_never_reach_the_run_directory_or_the_terminal() {
    const IN_FILE: &str = "pl4nted-in-connections-file-91c2";
    const IN_ENV_VAR: &str = "pl4nted-via-env-substitution-5d7e";
    const IN_SECRETS_FILE: &str = "pl4nted-in-secrets-file-a0b4";
    const IN_CONN_ENV: &str = "pl4nted-in-osiris-conn-env-3f81";
    const SHADOWED: &str = "pl4nted-overridden-by-secrets-file-77aa";
    let all = [IN_FILE, IN_ENV_VAR, IN_SECRETS_FILE, IN_CONN_ENV, SHADOWED];
    // The failing query quotes every secret, so DuckDB's error (with its `LINE 1:` excerpt) carries them.
    let query = format!(
        "SELECT no_such_column, '{IN_FILE}', '{IN_ENV_VAR}', '{IN_SECRETS_FILE}', '{IN_CONN_ENV}', '{SHADOWED}' FROM df"
    );
    let p = project(&[
        (
            "p.yaml",
            &pipeline(
                "leaky",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                &query,
            ),
        ),
        (
            "osiris_connections.yaml",
            &format!(
                "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n      password: {IN_FILE}\n      api_token: ${{OSIRIS_IT_PLANTED}}\n      service_key: {SHADOWED}\n"
            ),
        ),
        (
            "secrets.yaml",
            &format!(
                "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      secret: {IN_SECRETS_FILE}\n      service_key: short-lived-replacement\n"
            ),
        ),
    ]);
    let o = osiris(p.path())
        .args(["run", "p.yaml", "--secrets-file", "secrets.yaml"])
        .env("OSIRIS_IT_PLANTED", IN_ENV_VAR)
        .env("OSIRIS_CONN__FILESYSTEM__LOCAL__DB_PASSWORD", IN_CONN_ENV)
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("***"),
        "the masked error is shown: {stderr}"
    );
    for s in all {
        assert!(!stdout.contains(s), "{s} on stdout:\n{stdout}");
        assert!(!stderr.contains(s), "{s} on stderr:\n{stderr}");
    }
    let rd = run_dir(p.path(), "default", "leaky");
    let written = files(&rd);
    assert!(written.len() >= 8, "{written:?}");
    for f in written
        .iter()
        .chain([p.path().join(".osiris/index/runs.jsonl")].iter())
    {
        let bytes = std::fs::read(f).unwrap();
        let t = String::from_utf8_lossy(&bytes);
        for s in all {
            assert!(!t.contains(s), "{s} in {}:\n{t}", f.display());
        }
    }
    // `connections list` masks literal secrets too.
    let o = osiris(p.path())
        .args(["connections", "list", "--secrets-file", "secrets.yaml"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    assert!(stdout.contains("@filesystem.local"), "{stdout}");
    assert!(
        stdout.contains("OSIRIS_IT_PLANTED"),
        "the variable name is shown: {stdout}"
    );
    for s in all {
        assert!(!stdout.contains(s), "{s} in connections list:\n{stdout}");
    }
}

#[test]
fn runs_a_compiled_manifest_directory_and_last_compile() {
    let p = project(&[(
        "p.yaml",
        &pipeline(
            "precompiled",
            "      path: data/orders.csv",
            "SELECT customer FROM df GROUP BY 1 ORDER BY 1",
        ),
    )]);
    let o = osiris(p.path()).args(["compile", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    let dir = stdout.trim().lines().last().unwrap().to_string();
    let o = osiris(p.path())
        .args(["run", &dir, "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).expect("--format json prints JSON");
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["rows_written"], 5);
    let o = osiris(p.path())
        .args(["run", "--last-compile", "--out", "my-run"])
        .output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert_eq!(
        json(&p.path().join("my-run/status.json"))["status"],
        "succeeded"
    );
    let o = osiris(p.path())
        .args(["run", "--last-compile", "--dry-run"])
        .output();
    let (stdout, _) = text(&o);
    assert_eq!(code(&o), 0);
    assert!(stdout.contains("osiris-duckdb"), "{stdout}");
}

#[test]
fn ctrl_c_cancels_a_running_step_and_records_the_run_as_cancelled() {
    let p = project(&[(
        "p.yaml",
        &pipeline(
            "slow",
            "      path: data/orders.csv",
            "SELECT SUM(range) AS s FROM range(1000000000000)",
        ),
    )]);
    let mut child = osiris(p.path()).args(["run", "p.yaml"]).spawn();
    // Wait until the long query runs.
    let started = std::time::Instant::now();
    loop {
        let running = std::fs::read_dir(p.path().join("run_logs/default/slow"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path().join("events.jsonl")).ok())
            .is_some_and(|t| t.contains("\"step\":\"aggregate\"") && t.contains("step_start"));
        if running {
            break;
        }
        assert!(started.elapsed().as_secs() < 60, "the query never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was cancelled"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if deadline.elapsed().as_secs() > 30 {
            let _ = child.kill();
            panic!("the run did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output();
    let (_, stderr) = text(&out);
    assert_eq!(code(&out), 130, "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    let rd = run_dir(p.path(), "default", "slow");
    let status = json(&rd.join("status.json"));
    assert_eq!(status["status"], "cancelled");
    assert_eq!(status["exit_code"], 130);
    assert!(!p.path().join("out/result.csv").exists());
    // Issue 5: the run index includes cancelled runs.
    let index = jsonl(&p.path().join(".osiris/index/runs.jsonl"));
    assert_eq!(index.len(), 1);
    assert_eq!(index[0]["status"], "cancelled");
    assert_eq!(index[0]["run_id"], status["run_id"]);
}

/// Issue 21 (item 1, for connections): a misspelt connection field (`base_dri`, `sslmod: require`) would silently
/// use the field's default (a whole directory elsewhere, or no TLS); it is refused before any step runs, with a
/// did-you-mean, in a run and in a dry run.
#[test]
fn a_misspelt_connection_field_is_refused_before_any_step_runs() {
    let p = project(&[
        (
            "p.yaml",
            &pipeline(
                "typo",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                "SELECT * FROM df",
            ),
        ),
        (
            "pg.yaml",
            "oml_version: \"0.1.0\"\nname: pgtypo\nsteps:\n  - id: extract\n    component: postgres.extractor\n    mode: read\n    config:\n      connection: \"@postgres.main\"\n      query: SELECT 1 AS x\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [extract]\n    config:\n      path: out/pg.csv\n",
        ),
        (
            "osiris_connections.yaml",
            "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dri: data\n  postgres:\n    main:\n      host: 127.0.0.1\n      database: postgres\n      user: postgres\n      sslmod: require\n",
        ),
    ]);
    let cases: [(&str, &[&str], &[&str]); 4] = [
        (
            "p.yaml",
            &["run", "p.yaml"],
            &[
                "`base_dri`",
                "did you mean `base_dir`?",
                "@filesystem.local",
            ],
        ),
        (
            "p.yaml",
            &["run", "p.yaml", "--dry-run"],
            &["`base_dri`", "did you mean `base_dir`?"],
        ),
        (
            "pg.yaml",
            &["run", "pg.yaml"],
            &["`sslmod`", "did you mean `sslmode`?", "@postgres.main"],
        ),
        (
            "pg.yaml",
            &["run", "pg.yaml", "--dry-run"],
            &["`sslmod`", "did you mean `sslmode`?"],
        ),
    ];
    for (file, args, parts) in cases {
        let o = osiris(p.path()).args(args).output();
        let (_, stderr) = text(&o);
        assert_eq!(code(&o), 5, "{file} {args:?}: {stderr}");
        assert!(stderr.contains("RUN-E008"), "{args:?}: {stderr}");
        for part in parts {
            assert!(stderr.contains(part), "{args:?}: missing {part}: {stderr}");
        }
    }
    assert!(!p.path().join("out/result.csv").exists());
    assert!(!p.path().join("out/pg.csv").exists());

    // Spelt right, the same project runs.
    std::fs::write(
        p.path().join("osiris_connections.yaml"),
        "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n",
    )
    .unwrap();
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
}
