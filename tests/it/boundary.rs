//! The data boundary (issue 13): what a plugin hands the host is checked before anything uses it. Batches from a
//! loaded plugin are validated on import, a stream error without a message is an error (not a panic of the
//! host), a plugin built with `panic = "abort"` is refused from its metadata before any of its functions runs,
//! and encoded forms of secrets are masked in what a run writes.
//!
//! Test plugins: `rogue` (a hand-written module that breaks the Arrow format on demand) and `abort` (built with
//! `panic = "abort"`), see tests/plugins/README.md.

use crate::support::{build_test_plugin, osiris, repo_root, test_plugin_entry};
use osiris_plugin_sdk::host::LoadErrorKind;
use osiris_plugin_sdk::testing::{self, TestContext};
use osiris_plugin_sdk::{ErrorKind, PluginError, Streams};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Output;

use osiris_plugins::package;

const ROGUE: &str = "osiris-test-rogue 0.1.0";

fn rogue() -> osiris_plugin_sdk::host::Module {
    let path = build_test_plugin("rogue");
    testing::load_cdylib(&path, &test_plugin_entry("rogue"))
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

/// Runs `test.rogue` with `emit` and pulls its output once.
fn pull(emit: &str) -> Result<usize, PluginError> {
    let module = rogue();
    assert!(
        module.validates_batches(),
        "a loaded plugin's batches are validated"
    );
    let mut outputs = module.run(
        "test.rogue",
        "s1",
        &json!({ "emit": emit }),
        TestContext::new(),
        Streams::new(),
    )?;
    let mut df = outputs.remove("df").unwrap();
    let first = df
        .next()
        .expect("a batch or an error")
        .map_err(|e| PluginError::from_arrow(&e))?;
    assert!(
        df.next().is_none(),
        "one batch, or the stream ends after the error"
    );
    Ok(first.num_rows())
}

#[test]
fn a_valid_batch_from_a_hand_written_plugin_passes_validation() {
    assert_eq!(pull("ok").unwrap(), 3);
}

#[test]
fn malformed_batches_from_a_loaded_plugin_fail_with_a_code_naming_the_plugin() {
    for (emit, column, why) in [
        ("bad_offsets", "`name` (Utf8)", "offset"),
        ("bad_utf8", "`name` (Utf8)", "UTF8"),
        ("bad_null_count", "`id` (Int64)", "null_count"),
        ("bad_child_length", "", "length"),
    ] {
        let err = pull(emit).expect_err(emit);
        assert_eq!(err.code, "OCP-INVALID-BATCH", "{emit}: {err:?}");
        assert_eq!(err.kind, ErrorKind::Data, "{emit}: not retried");
        assert!(
            err.message.starts_with(&format!(
                "plugin `{ROGUE}` produced an invalid batch on its output `df`: "
            )),
            "{emit}: {err}"
        );
        assert!(
            err.message.contains(column),
            "{emit}: names the column: {err}"
        );
        assert!(err.message.contains(why), "{emit}: says why: {err}");
        assert!(
            err.help.as_deref().unwrap().contains("bug in the plugin"),
            "{err:?}"
        );
    }
}

#[test]
fn a_stream_error_without_a_message_is_an_error_not_a_panic() {
    let err = pull("null_error").unwrap_err();
    assert_eq!(err.code, "OCP-STREAM-ERROR", "{err:?}");
    assert_eq!(
        err.message,
        format!(
            "plugin `{ROGUE}` failed to produce the next batch (C stream error 5 (EIO)) and gave no error message"
        )
    );
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused_when_loaded() {
    let path = build_test_plugin("abort");
    let err = testing::load_cdylib(&path, &test_plugin_entry("abort")).unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::PanicStrategy, "{err}");
    assert_eq!(
        err.message,
        format!(
            "plugin `osiris-test-abort 0.1.0` (`{}`) was built with `panic = \"abort\"`: its first panic would abort the whole osiris process, so it is not loaded",
            path.display()
        )
    );
    assert!(
        err.help.as_deref().unwrap().contains("panic = \"unwind\""),
        "{err:?}"
    );
}

/// One scratch project with a signed plugin directory.
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    markers: PathBuf,
}

impl Project {
    /// A project whose `plugins/` holds the test plugin `name` (component `component`), signed with a key the
    /// project trusts under `require_signatures: true`.
    fn with_plugin(name: &str, component: &str) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let markers = root.join("markers");
        std::fs::create_dir_all(&markers).unwrap();
        let p = Project {
            _tmp: tmp,
            root,
            markers,
        };
        let dir = p.root.join("plugins").join(name);
        package::write_package(
            &dir,
            &package::PackageInput {
                name: format!("osiris-test-{name}"),
                version: "0.1.0".to_string(),
                entry: test_plugin_entry(name),
                abi_version: osiris_plugin_sdk::ABI_VERSION,
                sdk_version: Some(osiris_plugin_sdk::SDK_VERSION.to_string()),
                target: None,
                library: build_test_plugin(name),
                requires: Some(format!(">={}", env!("CARGO_PKG_VERSION"))),
                specs: vec![(
                    component.to_string(),
                    repo_root().join(format!("tests/plugins/{name}/spec.yaml")),
                )],
            },
        )
        .unwrap();
        let key = p.root.join("dev.key");
        let out = p.osiris(&["plugins", "keygen", "--out", key.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let public = std::fs::read_to_string(p.root.join("dev.key.pub")).unwrap();
        let out = p.osiris(&[
            "plugins",
            "sign",
            dir.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--key-id",
            "dev",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        std::fs::write(
            p.root.join("osiris.yaml"),
            format!(
                "plugins:\n  require_signatures: true\n  trusted_keys:\n    - id: dev\n      public_key: \"{}\"\n",
                public.trim()
            ),
        )
        .unwrap();
        p
    }

    fn osiris(&self, args: &[&str]) -> Output {
        osiris(&self.root)
            .args(args)
            .env("OSIRIS_TEST_MARKER_DIR", &self.markers)
            .output()
    }

    fn run(&self, pipeline: &str) -> Output {
        std::fs::write(self.root.join("p.yaml"), pipeline).unwrap();
        let plugins = self.root.join("plugins");
        self.osiris(&[
            "run",
            "p.yaml",
            "--out",
            "rundir",
            "--plugin-dir",
            plugins.to_str().unwrap(),
        ])
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `test.rogue` (with `config`) into `filesystem.csv_writer`.
fn rogue_pipeline(config: &str) -> String {
    format!(
        r#"oml_version: "0.1.0"
name: rogue
steps:
  - id: produce
    component: test.rogue
    mode: read
    config: {config}
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [produce]
    config:
      path: out/result.csv
"#
    )
}

#[test]
fn a_run_fails_on_a_batch_with_invalid_utf8_from_a_plugin_and_writes_nothing_of_it() {
    let p = Project::with_plugin("rogue", "test.rogue");
    let out = p.run(&rogue_pipeline("{ emit: ok }"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(p.root.join("out/result.csv")).unwrap(),
        "id,name\n1,ada\n2,bob\n3,cy\n"
    );
    std::fs::remove_dir_all(p.root.join("out")).unwrap();

    let out = p.run(&rogue_pipeline("{ emit: bad_utf8 }"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    for part in [
        "RUN-E004",
        "OCP-INVALID-BATCH",
        "plugin `osiris-test-rogue 0.1.0` produced an invalid batch on its output `df`",
        "column `name` (Utf8)",
    ] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    // The writer never commits a failed stream: no file, so no invalid byte in one.
    assert!(
        !p.root.join("out/result.csv").exists(),
        "{:?}",
        std::fs::read(p.root.join("out/result.csv"))
    );
}

#[test]
fn a_stream_error_without_a_message_fails_the_step_and_the_host_survives() {
    let p = Project::with_plugin("rogue", "test.rogue");
    let out = p.run(&rogue_pipeline("{ emit: null_error }"));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("OCP-STREAM-ERROR"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused_before_any_of_its_functions_runs() {
    let p = Project::with_plugin("abort", "test.abort");
    let out = p.run(
        r#"oml_version: "0.1.0"
name: abort
steps:
  - id: boom
    component: test.abort
    mode: read
    config: {}
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [boom]
    config:
      path: out/result.csv
"#,
    );
    let err = stderr(&out);
    // Not killed by SIGABRT: a clean refusal with the documented code and exit code.
    assert_eq!(out.status.code(), Some(4), "{err}");
    for part in ["PLUGIN-E023", "test.abort", "panic = \"abort\""] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    assert!(
        p.markers.join("osiris-test-abort.loaded").exists(),
        "the library was opened to read its metadata"
    );
    let called = p.markers.join("osiris-test-abort.called");
    assert!(
        !called.exists(),
        "no function of the plugin ran: {:?}",
        std::fs::read_to_string(&called)
    );
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn encoded_forms_of_a_secret_are_masked_in_what_a_run_writes() {
    use base64::Engine as _;
    let p = Project::with_plugin("rogue", "test.rogue");
    let password = "Zx9!p@ss w/rd";
    std::fs::write(
        p.root.join("osiris_connections.yaml"),
        format!(
            "version: \"1.0\"\nconnections:\n  test:\n    main:\n      user: ann\n      password: \"{password}\"\n"
        ),
    )
    .unwrap();
    let out = p.run(&rogue_pipeline(
        "{ connection: \"@test.main\", log_encoded_credentials: true }",
    ));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ann:{password}"));
    let percent = "Zx9%21p%40ss%20w%2Frd";
    let mut files = Vec::new();
    all_files(&p.root.join("rundir"), &mut files);
    let mut logged = false;
    for file in files {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for form in [password, basic.as_str(), percent] {
            assert!(
                !text.contains(form),
                "`{form}` in {}: {text}",
                file.display()
            );
        }
        logged |= text.contains("with Authorization: Basic ***");
    }
    assert!(
        logged,
        "the plugin's log line is in the run directory, masked"
    );
    for form in [password, basic.as_str(), percent] {
        assert!(!err.contains(form), "`{form}` on stderr: {err}");
    }
}
