//! Issue 17 through the real binary: every event a run emits is an envelope (ADR 0015) that validates against
//! the envelope schema and the JSON Schema its `schema_ref` names (`host/crates/runner/schemas/events/`), and a
//! failed compile or run leaves its redacted envelope in `.osiris/dlq/<topic>/<id>.json`, which
//! `osiris runs dlq list` lists and `osiris runs replay` runs again.

use crate::run::project;
use crate::support::{code, json, jsonl, osiris, run_dir, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

const SECRET: &str = "dlq-s3cr3t-pa55word";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/runner/schemas/events")
}

fn validator(file: &str) -> jsonschema::Validator {
    let path = schemas_dir().join(file);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        jsonschema::draft202012::meta::is_valid(&v),
        "{} is a JSON Schema",
        path.display()
    );
    jsonschema::draft202012::options()
        .build(&v)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validates `e` as an envelope and its payload against the schema its `schema_ref` names; returns its type.
fn check(e: &Value, where_: &str) -> String {
    let envelope = validator("envelope.v1.json");
    let errors: Vec<String> = envelope.iter_errors(e).map(|x| x.to_string()).collect();
    assert!(errors.is_empty(), "{where_}: {e}\n{errors:#?}");
    let kind = e["type"].as_str().unwrap().to_string();
    let r = e["schema_ref"].as_str().unwrap();
    assert_eq!(r, format!("osiris/events/{kind}.v1"));
    let file = format!(
        "{}.v1.json",
        r.trim_start_matches("osiris/events/")
            .trim_end_matches(".v1")
    );
    let payload = validator(&file);
    let errors: Vec<String> = payload
        .iter_errors(&e["payload"])
        .map(|x| format!("{} at {}", x, x.instance_path().as_str()))
        .collect();
    assert!(errors.is_empty(), "{where_}: payload of {e}\n{errors:#?}");
    kind
}

fn chain(name: &str, path: &str) -> String {
    format!(
        "oml_version: \"0.1.0\"\nname: {name}\nsteps:\n  - id: extract\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: {path}\n  - id: shape\n    component: duckdb.processor\n    mode: transform\n    needs: [extract]\n    config:\n      query: SELECT * FROM df_extract\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [shape]\n    config:\n      path: out/{name}.csv\n"
    )
}

fn connections() -> String {
    format!(
        "version: \"1.0\"\nconnections:\n  mysql:\n    main:\n      host: 127.0.0.1\n      user: app\n      password: {SECRET}\n      database: shop\n  filesystem:\n    local:\n      default: true\n      base_dir: input\n"
    )
}

#[test]
fn every_event_of_real_runs_is_an_envelope_that_validates_against_its_schema() {
    let p = project(&[
        ("ok.yaml", &chain("good", "data/orders.csv")),
        ("bad.yaml", &chain("broken", "data/nowhere.csv")),
        (
            "retried.yaml",
            &chain("retried", "orders.csv").replace(
                "      path: orders.csv",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
            ),
        ),
        (
            "unresolved.yaml",
            "oml_version: \"0.1.0\"\nname: unresolved\nsteps:\n  - id: extract\n    component: mysql.extractor\n    mode: read\n    config:\n      connection: \"@mysql.missing\"\n      query: SELECT 1\n",
        ),
        ("osiris_connections.yaml", &connections()),
    ]);
    assert_eq!(code(&osiris(p.path()).args(["run", "ok.yaml"]).output()), 0);
    assert_eq!(
        code(&osiris(p.path()).args(["run", "bad.yaml"]).output()),
        4
    );
    // The extractor's directory does not exist: both attempts fail, with a step_retry between them.
    let o = osiris(p.path())
        .args(["run", "retried.yaml", "--retries", "1"])
        .output();
    assert_eq!(code(&o), 4, "{:?}", text(&o));
    assert_ne!(
        code(&osiris(p.path()).args(["run", "unresolved.yaml"]).output()),
        0
    );

    let mut seen = std::collections::BTreeSet::new();
    for pipeline in ["good", "broken", "retried", "unresolved"] {
        let rd = run_dir(p.path(), "default", pipeline);
        let status = json(&rd.join("status.json"));
        let lines = jsonl(&rd.join("events.jsonl"));
        assert!(!lines.is_empty());
        let mut ids = std::collections::BTreeSet::new();
        for (i, e) in lines.iter().enumerate() {
            seen.insert(check(e, &format!("{pipeline}: events.jsonl:{}", i + 1)));
            assert_eq!(
                e["correlation_id"], status["run_id"],
                "one run, one correlation"
            );
            assert_eq!(e["source"], "runner");
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_string()),
                "ids are unique"
            );
        }
        assert_eq!(lines.first().unwrap()["type"], "run_start");
        assert_eq!(lines.last().unwrap()["type"], "run_end");
        assert_eq!(lines.last().unwrap()["payload"]["status"], status["status"]);
    }
    for kind in [
        "run_start",
        "step_start",
        "step_complete",
        "step_error",
        "step_retry",
        "run_end",
    ] {
        assert!(
            seen.contains(kind),
            "no `{kind}` envelope was checked: {seen:?}"
        );
    }

    // The dead-letter items validate too.
    let items: Vec<PathBuf> = std::fs::read_dir(p.path().join(".osiris/dlq/run"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(items.len(), 3, "one item per failed run: {items:?}");
    for f in &items {
        assert_eq!(check(&json(f), &f.display().to_string()), "run_end");
    }
}

#[test]
fn a_failed_run_and_a_failed_compile_land_in_the_dlq_redacted_and_replay() {
    // The missing file's name holds a secret value: every message naming it must mask it.
    let missing = format!("data/{SECRET}.csv");
    let p = project(&[
        ("bad.yaml", &chain("broken", &missing)),
        (
            "typo.yaml",
            &chain("typo", "data/orders.csv").replace("duckdb.processor", "duckdb.procesor"),
        ),
        ("osiris_connections.yaml", &connections()),
    ]);
    let o = osiris(p.path()).args(["run", "bad.yaml"]).output();
    assert_eq!(code(&o), 4, "{:?}", text(&o));
    let o = osiris(p.path()).args(["compile", "typo.yaml"]).output();
    assert_eq!(code(&o), 2, "{:?}", text(&o));

    // The run's item is its final envelope, redacted, under its own id.
    let rd = run_dir(p.path(), "default", "broken");
    let end = jsonl(&rd.join("events.jsonl")).pop().unwrap();
    let item = p.path().join(format!(
        ".osiris/dlq/run/{}.json",
        end["id"].as_str().unwrap()
    ));
    let text_of = std::fs::read_to_string(&item).unwrap();
    assert!(!text_of.contains(SECRET), "{text_of}");
    let v: Value = serde_json::from_str(&text_of).unwrap();
    assert_eq!(v, end, "the item is the envelope the run emitted");
    assert_eq!(v["payload"]["status"], "failed");
    assert_eq!(v["payload"]["failed_step"], "extract");
    assert!(
        v["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("data/***.csv"),
        "{v}"
    );
    let compile_items: Vec<PathBuf> = std::fs::read_dir(p.path().join(".osiris/dlq/compile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(compile_items.len(), 1);
    let c = json(&compile_items[0]);
    assert_eq!(c["type"], "compile_error");
    assert_eq!(c["source"], "compiler");
    assert_eq!(c["payload"]["pipeline"], "typo.yaml");
    assert!(
        c["payload"]["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "OML-E104"),
        "{c}"
    );

    // dlq list, text and JSON.
    let o = osiris(p.path())
        .args(["runs", "dlq", "list", "--format", "json"])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{stdout}");
    assert_eq!(listed[0]["topic"], "run", "oldest first");
    assert_eq!(listed[0]["id"], end["id"]);
    assert_eq!(listed[1]["topic"], "compile");
    let o = osiris(p.path()).args(["runs", "dlq", "list"]).output();
    let (stdout, _) = text(&o);
    assert!(stdout.contains(end["id"].as_str().unwrap()), "{stdout}");
    assert!(!stdout.contains(SECRET));

    // Replaying before the cause is fixed fails the same way (and adds another item).
    let run_item = end["id"].as_str().unwrap().to_string();
    let o = osiris(p.path())
        .args(["runs", "replay", &run_item])
        .output();
    assert_eq!(code(&o), 4, "{:?}", text(&o));
    // Fixed: the input exists now. The replay re-runs the failed run's manifest and succeeds.
    std::fs::copy(p.path().join("data/orders.csv"), p.path().join(&missing)).unwrap();
    let o = osiris(p.path())
        .args(["runs", "replay", &run_item])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}{stderr}");
    assert!(stderr.contains("replaying"), "{stderr}");
    assert!(p.path().join("out/broken.csv").is_file());

    // The compile item, by its file, after the typo is fixed.
    std::fs::write(p.path().join("typo.yaml"), chain("typo", "data/orders.csv")).unwrap();
    let o = osiris(p.path())
        .args(["runs", "replay"])
        .arg(&compile_items[0])
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "{stdout}{stderr}");
    assert!(stdout.contains("build/"), "the compile directory: {stdout}");

    let o = osiris(p.path())
        .args(["runs", "replay", "run-nope"])
        .output();
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 2, "{stderr}");
    assert!(stderr.contains("RUN-E010"), "{stderr}");
    assert!(stderr.contains("runs dlq list"), "{stderr}");
}
