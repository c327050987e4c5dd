//! Issue 17 through the real binary: `osiris runs view` (the run's state machine and its artifacts) and
//! `osiris runs report` (one self-contained HTML page per run) for succeeded, failed and cancelled runs, and the
//! page in a real headless browser.

use crate::run::project;
use crate::support::{code, json, osiris, run_dir, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A secret the project's connections file holds: no report may show it.
const SECRET: &str = "s3cr3t-report-pa55word";

/// extract (CSV) -> aggregate (DuckDB) -> write (CSV), and a second source joined in.
fn pipeline(name: &str, path: &str) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: {name}
steps:
  - id: extract-orders
    component: filesystem.csv_extractor
    mode: read
    config:
      path: {path}
  - id: extract-again
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: aggregate
    component: duckdb.processor
    mode: transform
    needs: [extract-orders, extract-again]
    config:
      query: SELECT customer, COUNT(*) AS n FROM df_extract_orders GROUP BY customer
  - id: write-summary
    component: filesystem.csv_writer
    mode: write
    needs: [aggregate]
    config:
      path: out/{name}.csv
"#
    )
}

const STEPS: [&str; 4] = [
    "extract-orders",
    "extract-again",
    "aggregate",
    "write-summary",
];

fn with_secret(files: &[(&str, &str)]) -> tempfile::TempDir {
    let conns = format!(
        "version: \"1.0\"\nconnections:\n  mysql:\n    main:\n      host: 127.0.0.1\n      user: app\n      password: {SECRET}\n      database: shop\n"
    );
    let mut all: Vec<(&str, &str)> = files.to_vec();
    all.push(("osiris_connections.yaml", &conns));
    project(&all)
}

fn run_id_of(dir: &Path, pipeline: &str) -> String {
    let status = json(&run_dir(dir, "default", pipeline).join("status.json"));
    status["run_id"].as_str().unwrap().to_string()
}

fn view_json(dir: &Path, id: &str) -> Value {
    let o = osiris(dir)
        .args(["runs", "view", id, "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn states(v: &Value) -> Vec<&str> {
    v["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect()
}

/// Writes the report of run `id` to `<dir>/<id>.html` and returns the page.
fn report(dir: &Path, id: &str) -> (PathBuf, String) {
    let file = dir.join(format!("reports/{id}.html"));
    let o = osiris(dir)
        .args(["runs", "report", id, "--html"])
        .arg(&file)
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}{stderr}");
    assert!(stdout.contains(&format!("{id}.html")), "{stdout}");
    let page = std::fs::read_to_string(&file).unwrap();
    (file, page)
}

/// Nothing in the page is fetched: no external script, style, image, font or frame.
fn assert_self_contained(page: &str) {
    for bad in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "<link",
        "@import",
        "url(http",
        "<iframe",
    ] {
        assert!(!page.contains(bad), "the page references `{bad}`");
    }
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<style>") && page.contains("<script>"));
}

#[test]
fn runs_view_tells_each_runs_state_machine_and_where_its_files_are() {
    let p = with_secret(&[
        ("ok.yaml", &pipeline("good", "data/orders.csv")),
        ("bad.yaml", &pipeline("broken", "data/nowhere.csv")),
        (
            "unresolved.yaml",
            "oml_version: \"0.1.0\"\nname: unresolved\nsteps:\n  - id: extract\n    component: mysql.extractor\n    mode: read\n    config:\n      connection: \"@mysql.missing\"\n      query: SELECT 1\n",
        ),
    ]);
    assert_eq!(code(&osiris(p.path()).args(["run", "ok.yaml"]).output()), 0);
    assert_eq!(
        code(&osiris(p.path()).args(["run", "bad.yaml"]).output()),
        4
    );
    let o = osiris(p.path()).args(["run", "unresolved.yaml"]).output();
    assert_ne!(code(&o), 0, "{:?}", text(&o));

    let ok = run_id_of(p.path(), "good");
    let v = view_json(p.path(), &ok);
    assert_eq!(v["state"], "SUCCEEDED");
    assert_eq!(states(&v), ["NEW", "COMPILED", "RUNNING", "SUCCEEDED"]);
    for s in v["states"].as_array().unwrap() {
        assert!(s["at"].is_string(), "each state reached has a time: {v}");
    }
    let rd = p.path().join(v["run_dir"].as_str().unwrap());
    for f in [
        "status.json",
        "events.jsonl",
        "metrics.jsonl",
        "manifest.yaml",
    ] {
        let path = v["files"][f]
            .as_str()
            .unwrap_or_else(|| panic!("{f} in {v}"));
        assert!(p.path().join(path).is_file(), "{path}");
    }
    assert!(v["artifacts"].as_array().unwrap().iter().any(|a| {
        a.as_str()
            .unwrap()
            .ends_with("artifacts/aggregate/cleaned_config.json")
    }));
    assert!(rd.is_dir());

    // The seeds' text form: the path through the states, then the files.
    let o = osiris(p.path()).args(["runs", "view", &ok[..10]]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    for part in [
        "NEW -> COMPILED -> RUNNING -> SUCCEEDED",
        "events.jsonl",
        "artifacts/extract-orders/cleaned_config.json",
        ok.as_str(),
    ] {
        assert!(stdout.contains(part), "{part} in:\n{stdout}");
    }

    let bad = run_id_of(p.path(), "broken");
    let v = view_json(p.path(), &bad);
    assert_eq!(states(&v), ["NEW", "COMPILED", "RUNNING", "FAILED"]);
    assert_eq!(v["failed_step"], "extract-orders");
    assert!(v["error"].as_str().unwrap().contains("RUN-E004"), "{v}");

    // A connection that does not resolve stops the run before any step starts: it never was RUNNING.
    let un = run_id_of(p.path(), "unresolved");
    let v = view_json(p.path(), &un);
    assert_eq!(states(&v), ["NEW", "COMPILED", "FAILED"], "{v}");
    let o = osiris(p.path()).args(["runs", "view", &un]).output();
    let (stdout, _) = text(&o);
    assert!(
        stdout.contains("NEW -> COMPILED -> (RUNNING) -> FAILED"),
        "{stdout}"
    );

    let o = osiris(p.path())
        .args(["runs", "view", "run-000000000000"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 2, "{stderr}");
    assert!(stderr.contains("RUN-E007"), "{stderr}");
}

/// Starts `p.yaml` (a DuckDB step that never ends on its own) and cancels it with SIGINT once that step runs.
fn cancelled_run(dir: &Path) {
    let mut child = osiris(dir).args(["run", "slow.yaml"]).spawn();
    let t = Instant::now();
    loop {
        let started = std::fs::read_dir(dir.join("run_logs/default/slow"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path().join("events.jsonl")).ok())
            .is_some_and(|t| t.contains("\"spin\""));
        if started {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the slow step did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    while child.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(90), "no end after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(code(&child.wait_with_output()), 130);
}

const SLOW: &str = r#"oml_version: "0.1.0"
name: slow
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: spin
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config:
      query: "SELECT SUM(range) AS s FROM range(1000000000000)"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [spin]
    config:
      path: out/slow.csv
"#;

#[test]
fn runs_report_writes_one_self_contained_page_for_succeeded_failed_and_cancelled_runs() {
    let p = with_secret(&[
        ("ok.yaml", &pipeline("good", "data/orders.csv")),
        ("bad.yaml", &pipeline("broken", "data/nowhere.csv")),
        ("slow.yaml", SLOW),
    ]);
    assert_eq!(code(&osiris(p.path()).args(["run", "ok.yaml"]).output()), 0);
    assert_eq!(
        code(&osiris(p.path()).args(["run", "bad.yaml"]).output()),
        4
    );
    cancelled_run(p.path());

    // Succeeded: every step in the DAG and the timeline, its rows, the manifest, the environment.
    let ok = run_id_of(p.path(), "good");
    let (_, page) = report(p.path(), &ok);
    assert_self_contained(&page);
    assert!(page.contains("data-status=\"succeeded\""));
    for s in STEPS {
        assert!(
            page.contains(&format!("<g class=\"node ok\" data-step=\"{s}\"")),
            "DAG node {s}"
        );
        assert!(
            page.contains(&format!("class=\"bar ok\" data-step=\"{s}\"")),
            "timeline bar {s}"
        );
    }
    for edge in [
        ("extract-orders", "aggregate"),
        ("extract-again", "aggregate"),
        ("aggregate", "write-summary"),
    ] {
        assert!(
            page.contains(&format!("data-from=\"{}\" data-to=\"{}\"", edge.0, edge.1)),
            "edge {edge:?}"
        );
    }
    let status = json(&run_dir(p.path(), "default", "good").join("status.json"));
    assert!(page.contains(status["manifest_hash"].as_str().unwrap()));
    for fp in ["oml_fp", "params_fp", "registry_fp", "compiler_fp"] {
        assert!(page.contains(&format!("<th>{fp}</th>")), "fingerprint {fp}");
    }
    assert!(page.contains("id=\"manifest-text\""));
    assert!(
        page.contains(&format!(
            "<td id=\"osiris-version\">{}</td>",
            env!("CARGO_PKG_VERSION")
        )),
        "osiris version"
    );
    assert!(page.contains("osiris-csv"), "the plugins that ran");
    assert!(
        page.contains("built-in (linked into the binary)"),
        "signature"
    );
    // Rows per step: the extractor read the 20 orders.
    assert!(
        page.contains("<tr data-step=\"extract-orders\">"),
        "steps table"
    );
    assert!(page.contains("<td class=\"n\">20</td>"), "rows read");
    assert!(page.contains("Retries (0)"));
    assert!(!page.contains(SECRET));

    // Failed: the error with its code, the driver's code and the help; the steps that never ran are drawn.
    let bad = run_id_of(p.path(), "broken");
    let (_, page) = report(p.path(), &bad);
    assert_self_contained(&page);
    assert!(page.contains("data-status=\"failed\""));
    assert!(page.contains("<span class=\"code\" id=\"error-code\">RUN-E004</span>"));
    assert!(page.contains("id=\"driver-code\">CSV-"), "driver code");
    assert!(page.contains("nowhere.csv"));
    assert!(page.contains("<b>help:</b>"), "the help line");
    assert!(page.contains("<g class=\"node failed\" data-step=\"extract-orders\""));
    assert!(page.contains("<g class=\"node pending\" data-step=\"write-summary\""));
    assert!(page.contains("id=\"final-state\">FAILED<"));

    // Cancelled.
    let slow = run_id_of(p.path(), "slow");
    let (_, page) = report(p.path(), &slow);
    assert_self_contained(&page);
    assert!(page.contains("data-status=\"cancelled\""));
    assert!(page.contains("<g class=\"node cancelled\" data-step=\"spin\""));
    assert!(page.contains("id=\"final-state\">CANCELLED<"));

    // Every value passes the redactor: a secret that reached the run directory (a line written before the
    // value was known as a secret) is masked in the page.
    let rd = run_dir(p.path(), "default", "good");
    let mut events = std::fs::read_to_string(rd.join("events.jsonl")).unwrap();
    events.push_str(&format!(
        "{{\"ts\":\"2026-01-01T00:00:00Z\",\"run_id\":\"{ok}\",\"event\":\"step_retry\",\"step\":\"extract-orders\",\"attempt\":2,\"max_attempts\":2,\"delay_ms\":500,\"error\":\"login with {SECRET} refused\"}}\n"
    ));
    std::fs::write(rd.join("events.jsonl"), events).unwrap();
    let (_, page) = report(p.path(), &ok);
    assert!(!page.contains(SECRET), "the secret reached the report");
    assert!(page.contains("login with *** refused"));
    assert!(page.contains("Retries (1)"));

    // Default place: report.html in the run directory, which `runs view` then lists.
    let o = osiris(p.path()).args(["runs", "report", &ok]).output();
    assert_eq!(code(&o), 0, "{:?}", text(&o));
    assert!(rd.join("report.html").is_file());
    assert!(view_json(p.path(), &ok)["files"]["report.html"].is_string());

    // A run whose directory is gone cannot be reported.
    std::fs::remove_dir_all(run_dir(p.path(), "default", "broken")).unwrap();
    let o = osiris(p.path()).args(["runs", "report", &bad]).output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 2, "{stderr}");
    assert!(stderr.contains("RUN-E009"), "{stderr}");
}

/// Debian's `chromium` (or `OSIRIS_BROWSER`), if there is one.
fn browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("OSIRIS_BROWSER") {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs the browser headless on `page` with `args`; returns (stdout, stderr), killing it after 90 s.
fn headless(browser: &Path, profile: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .env("HOME", profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the browser starts");
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the browser did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
#[allow(clippy::disallowed_macros)] // eprintln!: the visible notice of a skip (not osiris output)
fn the_report_loads_in_a_headless_browser_without_console_errors_and_draws_every_step() {
    let Some(browser) = browser() else {
        let required = std::env::var_os("OSIRIS_REQUIRE_BROWSER").is_some()
            || std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !required,
            "no headless browser (chromium) found, and OSIRIS_REQUIRE_BROWSER/CI requires one: apt-get install chromium"
        );
        eprintln!(
            "NOTICE: the_report_loads_in_a_headless_browser skipped: no `chromium` on PATH (apt-get install chromium, or set OSIRIS_BROWSER)"
        );
        return;
    };
    let p = with_secret(&[
        ("ok.yaml", &pipeline("good", "data/orders.csv")),
        ("bad.yaml", &pipeline("broken", "data/nowhere.csv")),
    ]);
    assert_eq!(code(&osiris(p.path()).args(["run", "ok.yaml"]).output()), 0);
    assert_eq!(
        code(&osiris(p.path()).args(["run", "bad.yaml"]).output()),
        4
    );
    let profile = tempfile::tempdir().unwrap();
    for (pipeline, status) in [("good", "succeeded"), ("broken", "failed")] {
        let id = run_id_of(p.path(), pipeline);
        let (file, _) = report(p.path(), &id);
        let (dom, log) = headless(&browser, profile.path(), &file, &["--dump-dom"]);
        // Chromium logs every console message (and every uncaught exception) as `...:CONSOLE(...)`.
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "console output: {console:#?}");
        // The page's script ran to its end and counted the steps it found drawn.
        assert!(
            dom.contains("data-ready=\"1\""),
            "the script did not run:\n{dom}"
        );
        assert!(
            dom.contains(&format!("data-steps-drawn=\"{}\"", STEPS.len())),
            "{dom}"
        );
        assert!(dom.contains(&format!("data-status=\"{status}\"")));
        for s in STEPS {
            assert!(
                dom.contains(&format!("data-step=\"{s}\"")),
                "DAG node {s} in the DOM"
            );
        }
        let shot = profile.path().join(format!("{pipeline}.png"));
        let (_, log) = headless(
            &browser,
            profile.path(),
            &file,
            &[&format!("--screenshot={}", shot.display())],
        );
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot: {e}\n{log}"));
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        assert!(
            png.len() > 10_000,
            "a screenshot of a page, not an empty one"
        );
    }
}
