//! `osiris components ...` and `osiris init`, through the real binary (issue 2: component specs and
//! registry, CLI skeleton).

use crate::support::{osiris, repo_root};
use serde_json::Value;
use std::process::Output;

const NAMES: [&str; 10] = [
    "duckdb.processor",
    "filesystem.csv_extractor",
    "filesystem.csv_writer",
    "graphql.extractor",
    "mysql.extractor",
    "mysql.writer",
    "postgres.extractor",
    "postgres.writer",
    "supabase.extractor",
    "supabase.writer",
];

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn spec_fixture(name: &str) -> String {
    repo_root()
        .join("tests/data/specs")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn list_json_has_all_ten_components_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path())
        .args(["components", "list", "--format", "json"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).expect("a JSON array");
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES, "all ten, sorted by name");
    for r in &rows {
        let o = r.as_object().unwrap();
        let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "capabilities",
                "description",
                "modes",
                "name",
                "runnable",
                "source",
                "version"
            ],
            "{r}"
        );
        assert!(semver_like(r["version"].as_str().unwrap()), "{r}");
        assert!(!r["modes"].as_array().unwrap().is_empty(), "{r}");
        assert!(r["capabilities"].is_array(), "{r}");
        assert!(!r["description"].as_str().unwrap().is_empty(), "{r}");
        assert_eq!(r["source"], "builtin");
        // Every first-party plugin is linked into the binary.
        assert_eq!(r["runnable"], Value::Bool(true), "{r}");
    }
    let mysql = rows
        .iter()
        .find(|r| r["name"] == "mysql.extractor")
        .unwrap();
    assert!(
        mysql["modes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("extract"))
    );
    assert!(
        mysql["capabilities"]
            .as_array()
            .unwrap()
            .contains(&Value::from("discover"))
    );
}

fn semver_like(v: &str) -> bool {
    v.split('.').count() == 3
        && v.split('.')
            .all(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
}

#[test]
fn list_filters_by_runnable_and_mode_and_prints_an_aligned_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path())
        .args(["components", "list", "--runnable", "--format", "json"])
        .output();
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    // Every first-party component has a driver linked into the binary.
    assert_eq!(names, NAMES.to_vec(), "{names:?}");
    assert!(
        rows.iter().all(|r| r["runnable"] == Value::Bool(true)),
        "{rows:?}"
    );

    let out = osiris(dir.path())
        .args([
            "components",
            "list",
            "--mode",
            "transform",
            "--format",
            "json",
        ])
        .output();
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| {
        r["modes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("transform"))
    }));

    let out = osiris(dir.path())
        .args(["components", "list", "--mode", "extrct"])
        .output();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `extract`?"),
        "{}",
        stderr(&out)
    );

    let out = osiris(dir.path()).args(["components", "list"]).output();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11, "{text}");
    assert!(lines[0].starts_with("NAME"), "{text}");
    let col = lines[0].find("VERSION").unwrap();
    for l in &lines[1..] {
        assert!(
            l[col..].chars().next().unwrap().is_ascii_digit(),
            "column aligned: {l}"
        );
    }
}

#[test]
fn spec_prints_yaml_as_written_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path())
        .args(["components", "spec", "mysql.extractor", "--format", "json"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["name"], "mysql.extractor");
    assert_eq!(v["configSchema"]["type"], "object");

    let out = osiris(dir.path())
        .args(["components", "spec", "mysql.extractor"])
        .output();
    let on_disk =
        std::fs::read_to_string(repo_root().join("components/mysql.extractor/spec.yaml")).unwrap();
    assert_eq!(stdout(&out), on_disk, "yaml is the file byte for byte");
}

#[test]
fn config_example_prints_the_first_example_as_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path())
        .args(["components", "config-example", "filesystem.csv_extractor"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("# filesystem.csv_extractor: "), "{text}");
    let v: Value = serde_yaml::from_str(&text).expect("YAML");
    assert!(v.get("path").is_some(), "{text}");
}

#[test]
fn validate_all_builtin_specs_passes_at_every_level() {
    let dir = tempfile::tempdir().unwrap();
    for level in ["basic", "enhanced", "strict"] {
        let out = osiris(dir.path())
            .args(["components", "validate", "--all", "--level", level])
            .output();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{level}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            stdout(&out).lines().filter(|l| l.starts_with("ok")).count(),
            10,
            "{}",
            stdout(&out)
        );
    }
    let out = osiris(dir.path())
        .args(["components", "validate", "mysql.writer"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_spec_with_three_mistakes_gets_one_report_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let file = spec_fixture("broken.yaml");
    let out = osiris(dir.path())
        .args(["components", "validate", &file])
        .output();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // wrong type: `version: 1.0`
    assert!(
        err.contains("error[SPEC-E012]: `version` must be a string, found a number `1.0`"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {file}:4:10")), "{err}");
    // misspelled mode
    assert!(
        err.contains("error[SPEC-E013]: `extrakt` is not an allowed value for item 1 of `modes`"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {file}:8:5")), "{err}");
    assert!(err.contains("help: did you mean `extract`?"), "{err}");
    // dangling secret pointer
    assert!(
        err.contains(
            "error[SPEC-E030]: secret pointer `/pasword` does not name a field of `configSchema`"
        ),
        "{err}"
    );
    assert!(err.contains(&format!("--> {file}:27:5")), "{err}");
    assert!(err.contains("help: did you mean `/password`?"), "{err}");
    assert_eq!(
        err.matches("error[").count(),
        3,
        "exactly three problems: {err}"
    );
    assert_eq!(err.matches("= help: ").count(), 3, "each with a fix: {err}");
    assert!(err.contains("4 | version: 1.0"), "source snippet: {err}");
    assert!(
        err.contains("1 spec checked at level `enhanced`: 3 errors, 0 warnings"),
        "{err}"
    );

    // the same as data
    let out = osiris(dir.path())
        .args(["components", "validate", &file, "--format", "json"])
        .output();
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let diags = v[0]["diagnostics"].as_array().unwrap();
    let at: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        at,
        [
            ("SPEC-E012".to_string(), 4, 10),
            ("SPEC-E013".to_string(), 8, 5),
            ("SPEC-E030".to_string(), 27, 5)
        ]
    );
    assert_eq!(v[0]["ok"], Value::Bool(false));

    // basic level: the schema only, the dangling pointer is a semantic rule
    let out = osiris(dir.path())
        .args(["components", "validate", &file, "--level", "basic"])
        .output();
    assert_eq!(
        stderr(&out).matches("error[").count(),
        2,
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_good_third_party_spec_file_validates_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path())
        .args([
            "components",
            "validate",
            &spec_fixture("good.yaml"),
            "--level",
            "strict",
        ])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("ok       demo.extractor"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn unknown_component_exits_2_with_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["components", "spec", "mysql.extractr"][..],
        &["components", "config-example", "mysql.extractr"],
        &["components", "validate", "mysql.extractr"],
    ] {
        let out = osiris(dir.path()).args(args).output();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("unknown component `mysql.extractr`"), "{err}");
        assert!(err.contains("did you mean `mysql.extractor`?"), "{err}");
    }
}

#[test]
fn init_writes_a_project_and_refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path()).args(["init", "proj"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let proj = dir.path().join("proj");
    for f in [
        "osiris.yaml",
        "osiris_connections.yaml",
        "pipelines/quickstart.yaml",
        "data/orders.csv",
        ".gitignore",
    ] {
        assert!(proj.join(f).is_file(), "{f} written");
        assert!(stdout(&out).contains(f), "{f} reported: {}", stdout(&out));
    }
    let conns = std::fs::read_to_string(proj.join("osiris_connections.yaml")).unwrap();
    assert!(
        conns.contains("version: \"1.0\"") && conns.contains("base_dir: ."),
        "{conns}"
    );
    let gitignore = std::fs::read_to_string(proj.join(".gitignore")).unwrap();
    for entry in ["run_logs/", "build/", ".osiris/", ".env"] {
        assert!(gitignore.lines().any(|l| l == entry), "{entry}");
    }
    let pipeline = std::fs::read_to_string(proj.join("pipelines/quickstart.yaml")).unwrap();
    assert!(pipeline.contains("FROM df_extract_orders"), "{pipeline}");

    // a user edit must survive a second init
    std::fs::write(proj.join("data/orders.csv"), "id\n1\n").unwrap();
    let out = osiris(dir.path()).args(["init", "proj"]).output();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("refusing to overwrite existing files")
            && err.contains("orders.csv")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(proj.join("data/orders.csv")).unwrap(),
        "id\n1\n"
    );

    let out = osiris(dir.path())
        .args(["init", "proj", "--force"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(proj.join("data/orders.csv"))
            .unwrap()
            .lines()
            .count(),
        21
    );

    // the written osiris.yaml is accepted by every command that reads it
    let out = osiris(&proj)
        .args(["components", "list", "--format", "json"])
        .output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// `--version` prints the version and nothing else; that it reads no project, no policy and loads no plugin is
/// `plugins::version_reads_no_project_or_policy_and_loads_no_plugin`.
#[test]
fn help_lists_the_exit_codes_and_version_prints_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let out = osiris(dir.path()).args(["--help"]).output();
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("Exit codes:") && text.contains("5    configuration or secrets missing"),
        "{text}"
    );
    let out = osiris(dir.path()).args(["--version"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("osiris {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(stderr(&out), "");
}
