//! `osiris prompts build-context` (issue 12, part 1) through the binary: the whole first-party catalogue in at
//! most 2,000 cl100k tokens, deterministic bytes, a cache keyed by the spec fingerprints (hit when nothing
//! changed; rebuilt when a plugin spec is added, changed or removed), and no secret or path of the machine in it.

use crate::support::{build_test_plugin, repo_root, test_plugin_entry};
use osiris_plugins::package::{self, PackageInput};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

const PLANTED: &str = "PLANTED-prompts-s3cret-1234";

const BUILTINS: &[&str] = &[
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

struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::write(
            root.join("osiris.yaml"),
            "plugins:\n  allow_unsigned: true\n",
        )
        .unwrap();
        std::fs::write(root.join("no-policy.yaml"), "").unwrap();
        std::fs::write(
            root.join("osiris_connections.yaml"),
            format!("version: \"1.0\"\nconnections:\n  mysql:\n    default:\n      host: db.internal\n      password: {PLANTED}\n"),
        )
        .unwrap();
        Project { _tmp: tmp, root }
    }

    fn osiris(&self, args: &[&str]) -> Output {
        crate::support::osiris(&self.root)
            .home(&self.root)
            .env("XDG_DATA_HOME", self.root.join("xdg"))
            .args(args)
            .output()
    }

    /// `prompts build-context --format json ARGS`: asserts exit 0, returns stdout as JSON and stderr.
    fn build(&self, args: &[&str]) -> (Value, String) {
        let mut all = vec!["prompts", "build-context", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.osiris(&all);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let v =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
        (v, stderr(&out))
    }

    fn context_file(&self) -> Vec<u8> {
        std::fs::read(self.root.join(".osiris_prompts/context.json")).unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    )
}

fn names(v: &Value) -> Vec<String> {
    v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect()
}

/// Issue 12: the whole first-party catalogue fits in 2,000 tokens; the same registry gives the same bytes
/// (another project, a cold cache); a second call is a cache hit.
#[test]
fn first_party_context_fits_2000_tokens_is_deterministic_and_cached() {
    let p = Project::new();
    let (v, err) = p.build(&[]);
    assert_eq!(names(&v), BUILTINS);
    let tokens = v["tokens"].as_u64().unwrap();
    assert!(tokens > 500 && tokens <= 2000, "{tokens} tokens");
    assert_eq!(v["tokenizer"], "cl100k_base");
    assert_eq!(v["cache"], "rebuilt");
    assert_eq!(v["file"], ".osiris_prompts/context.json");
    assert!(
        err.contains(&format!(
            "context: 10 components, {tokens} tokens (cl100k_base), rebuilt"
        )),
        "{err}"
    );
    let bytes = p.context_file();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc, v["context"], "the file is the context printed");
    assert_eq!(doc["oml_version"], "0.1.0");
    // the OML rules the issue lists
    let text = v["text"].as_str().unwrap();
    for rule in [
        "oml_version",
        "needs",
        "inputs",
        "implicit chaining",
        "df_<step_id>",
        "@family.alias",
        "${params.name}",
    ] {
        assert!(text.contains(rule), "rule `{rule}` missing:\n{text}");
    }
    let writer = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "supabase.writer")
        .unwrap();
    assert_eq!(writer["modes"], serde_json::json!(["write"]));
    assert!(
        writer["capabilities"]
            .as_array()
            .unwrap()
            .contains(&Value::from("transactions"))
    );
    assert!(
        writer["secrets"]
            .as_array()
            .unwrap()
            .contains(&Value::from("service_role_key"))
    );
    assert!(writer["examples"].as_array().unwrap().len() <= 2);

    let (again, err) = p.build(&[]);
    assert_eq!(again["cache"], "hit", "{err}");
    assert!(err.contains("cache hit"), "{err}");
    assert_eq!(again["fingerprint"], v["fingerprint"]);
    assert_eq!(p.context_file(), bytes);

    // cold, elsewhere: the same bytes
    let q = Project::new();
    let (cold, _) = q.build(&[]);
    assert_eq!(cold["cache"], "rebuilt");
    assert_eq!(q.context_file(), bytes);
    std::fs::remove_dir_all(p.root.join(".osiris_prompts")).unwrap();
    p.build(&[]);
    assert_eq!(p.context_file(), bytes);

    for s in [PLANTED, "db.internal", p.root.to_str().unwrap()] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(s),
            "`{s}` in the context"
        );
        assert!(!text.contains(s), "`{s}` in the context text");
    }
}

/// `--format text` writes and prints the prompt text; `--components` selects; an unknown one is exit 2 with a
/// did-you-mean.
#[test]
fn text_format_component_filter_and_unknown_component() {
    let p = Project::new();
    let out = p.osiris(&[
        "prompts",
        "build-context",
        "--format",
        "text",
        "--components",
        "supabase.writer,mysql.extractor",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        std::fs::read_to_string(p.root.join(".osiris_prompts/context.txt")).unwrap(),
        text
    );
    assert!(text.starts_with("OML 0.1.0 pipeline rules:"), "{text}");
    assert!(
        text.contains("\nmysql.extractor mode read")
            && text.contains("\nsupabase.writer mode write"),
        "{text}"
    );
    assert!(!text.contains("postgres.writer"), "{text}");
    assert!(
        stderr(&out).contains("context: 2 components"),
        "{}",
        show(&out)
    );

    let out = p.osiris(&[
        "prompts",
        "build-context",
        "--out",
        "ctx/one.json",
        "--components",
        "duckdb.processor",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let doc: Value =
        serde_json::from_slice(&std::fs::read(p.root.join("ctx/one.json")).unwrap()).unwrap();
    assert_eq!(doc["components"].as_array().unwrap().len(), 1);

    let out = p.osiris(&[
        "prompts",
        "build-context",
        "--components",
        "supabase.wrtier",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("LLM-E001")
            && stderr(&out).contains("did you mean `supabase.writer`"),
        "{}",
        show(&out)
    );
}

fn package_echo(plugins: &Path, spec: &Path) {
    let input = PackageInput {
        name: "osiris-test-echo".to_string(),
        version: "0.1.0".to_string(),
        entry: test_plugin_entry("echo"),
        abi_version: osiris_plugin_sdk::ABI_VERSION,
        sdk_version: Some(osiris_plugin_sdk::SDK_VERSION.to_string()),
        target: None,
        library: build_test_plugin("echo"),
        requires: Some(format!(">={}", env!("CARGO_PKG_VERSION"))),
        specs: vec![("test.echo".to_string(), spec.to_path_buf())],
    };
    let dir = plugins.join("echo");
    let _ = std::fs::remove_dir_all(&dir);
    package::write_package(&dir, &input).unwrap();
}

/// Issue 12: a plugin component that passed its trust checks is in the context; adding, changing or removing
/// a plugin spec rebuilds the context, nothing changed is a hit.
#[test]
fn plugin_specs_added_changed_or_removed_rebuild_the_context() {
    let p = Project::new();
    let plugins = p.root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let dir = plugins.display().to_string();
    let with = ["--plugin-dir", dir.as_str()];
    let (base, _) = p.build(&with);
    assert_eq!(names(&base).len(), BUILTINS.len());

    let spec = p.root.join("echo-spec.yaml");
    let original =
        std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    std::fs::write(&spec, &original).unwrap();
    package_echo(&plugins, &spec);
    let (added, _) = p.build(&with);
    assert_eq!(added["cache"], "rebuilt");
    assert!(
        names(&added).contains(&"test.echo".to_string()),
        "{added:#}"
    );
    let (same, _) = p.build(&with);
    assert_eq!(same["cache"], "hit");

    let changed = original.replacen("default: row_number", "default: line_number", 1);
    assert_ne!(changed, original, "the echo spec has a default to change");
    std::fs::write(&spec, &changed).unwrap();
    package_echo(&plugins, &spec);
    let (rebuilt, _) = p.build(&with);
    assert_eq!(rebuilt["cache"], "rebuilt");
    assert_ne!(rebuilt["fingerprint"], added["fingerprint"]);
    assert!(
        rebuilt["text"]
            .as_str()
            .unwrap()
            .contains("column:str=line_number"),
        "{rebuilt:#}"
    );

    std::fs::remove_dir_all(plugins.join("echo")).unwrap();
    let (removed, _) = p.build(&with);
    assert_eq!(
        removed["cache"], "hit",
        "back to the specs of the first call: its cache entry"
    );
    assert_eq!(removed["fingerprint"], base["fingerprint"]);
    assert!(!names(&removed).contains(&"test.echo".to_string()));

    // --disable-plugins: the built-ins alone
    package_echo(&plugins, &spec);
    let (off, _) = p.build(&["--plugin-dir", dir.as_str(), "--disable-plugins"]);
    assert_eq!(off["fingerprint"], base["fingerprint"]);
}
