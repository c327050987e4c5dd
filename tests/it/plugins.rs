//! The plugin host through the real binary and real cdylibs (tests/plugins/*): discovery, the trust checks that
//! run before any plugin code, signatures, conflicts, and the `osiris plugins` commands (issue: OCP plugin host).
//!
//! Each test plugin's library constructor appends to `$OSIRIS_TEST_MARKER_DIR/<crate>.loaded` when the library
//! is loaded: absent after a refusal proves no plugin code ran; present after a load proves the real path ran.
//!
//! Commands that need only specs (`components list`, `compile`) verify a plugin without its library and never
//! load it; `plugins list` and a run that uses a plugin's component check the library hash and load it (issue:
//! verify cheaply, load lazily; ADR 0007).

use crate::support::{build_test_plugin, repo_root, test_plugin_entry};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[allow(dead_code)]
#[path = "../../host/src/plugins/package.rs"]
pub(crate) mod package;

use package::PackageInput;

const ECHO: &str = "osiris-test-echo";

/// One scratch project: `osiris.yaml`, a plugin directory, a marker directory, an isolated HOME.
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    plugins: PathBuf,
    markers: PathBuf,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let plugins = root.join("plugins");
        let markers = root.join("markers");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::create_dir_all(&markers).unwrap();
        Project {
            _tmp: tmp,
            root,
            plugins,
            markers,
        }
    }

    fn config(&self, yaml: &str) {
        std::fs::write(self.root.join("osiris.yaml"), yaml).unwrap();
    }

    /// `osiris ARGS` in the project, with only this project's plugin directories.
    fn osiris(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_osiris"));
        cmd.current_dir(&self.root).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("OSIRIS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", &self.root)
            .env("XDG_DATA_HOME", self.root.join("xdg"))
            .env("OSIRIS_TEST_MARKER_DIR", &self.markers)
            .env("NO_COLOR", "1")
            .output()
            .expect("the osiris binary runs")
    }

    fn with_dir(&self, args: &[&str]) -> Output {
        let dir = self.plugins.display().to_string();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--plugin-dir", dir.as_str()]);
        self.osiris(&all)
    }

    fn loaded(&self, crate_name: &str) -> bool {
        self.markers.join(format!("{crate_name}.loaded")).exists()
    }

    /// `plugins list --format json`, as rows.
    fn plugins_list(&self) -> Vec<Value> {
        let out = self.with_dir(&["plugins", "list", "--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&out)))
    }

    /// `components list --format json`, as rows; asserts exit 0.
    fn components(&self) -> Vec<Value> {
        let out = self.with_dir(&["components", "list", "--format", "json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "components list must not fail because of a plugin: {}",
            stderr(&out)
        );
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// Creates a key pair with `osiris plugins keygen`; returns (secret key path, public key base64).
    fn keygen(&self, file: &str) -> (PathBuf, String) {
        let key = self.root.join(file);
        let out = self.osiris(&["plugins", "keygen", "--out", key.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let public = std::fs::read_to_string(self.root.join(format!("{file}.pub")))
            .unwrap()
            .trim()
            .to_string();
        (key, public)
    }

    fn sign(&self, package: &Path, key: &Path, key_id: &str) {
        let out = self.osiris(&[
            "plugins",
            "sign",
            package.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--key-id",
            key_id,
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The input for packaging the `echo` test plugin (component `test.echo`) as built by this test run.
fn echo_input() -> PackageInput {
    PackageInput {
        name: ECHO.to_string(),
        version: "0.1.0".to_string(),
        entry: test_plugin_entry("echo"),
        abi_version: osiris_plugin_sdk::ABI_VERSION,
        sdk_version: Some(osiris_plugin_sdk::SDK_VERSION.to_string()),
        target: None,
        library: build_test_plugin("echo"),
        requires: Some(format!(">={}", env!("CARGO_PKG_VERSION"))),
        specs: vec![(
            "test.echo".to_string(),
            repo_root().join("tests/plugins/echo/spec.yaml"),
        )],
    }
}

fn package_echo(p: &Project, dir_name: &str, tweak: impl FnOnce(&mut PackageInput)) -> PathBuf {
    let mut input = echo_input();
    tweak(&mut input);
    let dir = p.plugins.join(dir_name);
    package::write_package(&dir, &input).unwrap();
    dir
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row `{name}` in {rows:#?}"))
}

fn trust_config(public: &str, id: &str, scope: Option<&str>, require: bool) -> String {
    let scope = scope
        .map(|s| format!("\n      scope: \"{s}\""))
        .unwrap_or_default();
    format!(
        "plugins:\n  require_signatures: {require}\n  trusted_keys:\n    - id: {id}\n      public_key: \"{public}\"{scope}\n"
    )
}

/// Asserts the refusal: `plugins list` shows it rejected with `code`, no plugin code ran, and
/// `components list` still succeeds with every built-in and without the plugin's component.
fn assert_refused(p: &Project, plugin: &str, code: &str, reason_has: &[&str]) {
    let rows = p.plugins_list();
    let r = row(&rows, plugin);
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["code"], code, "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    for part in reason_has {
        assert!(
            reason.contains(part),
            "reason should mention `{part}`: {reason}"
        );
    }
    let comps = p.components();
    assert!(
        comps
            .iter()
            .any(|c| c["name"] == "filesystem.csv_extractor"),
        "built-ins still listed"
    );
    assert!(
        !comps.iter().any(|c| c["source"] == plugin),
        "no component of a refused plugin: {comps:#?}"
    );
    let out = p.with_dir(&["components", "list"]);
    assert!(
        stderr(&out).contains(code),
        "the refusal is reported on stderr: {}",
        stderr(&out)
    );
    assert!(
        !p.loaded("osiris-test-echo"),
        "a refused plugin's code must not run"
    );
}

#[test]
fn a_plugin_component_is_listed_from_its_verified_spec_and_plugins_list_loads_it() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    let comps = p.components();
    let echo = row(&comps, "test.echo");
    assert_eq!(echo["source"], ECHO);
    assert_eq!(echo["runnable"], true);
    assert_eq!(echo["library_check"], "at_load", "{echo:#}");
    assert_eq!(
        row(&comps, "filesystem.csv_extractor").get("library_check"),
        None,
        "built-ins carry no library check"
    );
    assert!(
        !p.loaded("osiris-test-echo"),
        "components list needs only the spec: the library is not loaded"
    );
    let rows = p.plugins_list();
    assert!(
        p.loaded("osiris-test-echo"),
        "plugins list loads the library for real"
    );
    let r = row(&rows, ECHO);
    assert_eq!(r["status"], "loaded", "{r:#}");
    assert_eq!(r["code"], Value::Null);
    assert_eq!(r["components"], serde_json::json!(["test.echo"]));
    assert_eq!(r["signature"]["status"], "missing");
    assert!(
        r["path"]
            .as_str()
            .unwrap()
            .ends_with(std::env::consts::DLL_SUFFIX),
        "{r:#}"
    );
    assert_eq!(r["dir"].as_str().unwrap(), p.plugins.display().to_string());
}

#[test]
fn a_signed_plugin_loads_under_require_signatures() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, public) = p.keygen("acme.key");
    p.sign(&dir, &key, "acme-2026");
    p.config(&trust_config(
        &public,
        "acme-2026",
        Some("osiris-test-*"),
        true,
    ));
    let rows = p.plugins_list();
    let r = row(&rows, ECHO);
    assert_eq!(r["status"], "loaded", "{r:#}");
    assert_eq!(
        r["signature"],
        serde_json::json!({"status": "valid", "key_id": "acme-2026"})
    );
    assert!(p.loaded("osiris-test-echo"));
    let out = p.osiris(&[
        "plugins",
        "verify",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["signature"]["status"], "valid");
}

/// A pipeline: CSV -> CSV, no plugin component.
fn csv_only_pipeline() -> &'static str {
    r#"oml_version: "0.1.0"
name: copy-orders
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
      path: out/copy.csv
"#
}

/// The project's `data/orders.csv`, and the two pipelines: `echo.yaml` (uses `test.echo`), `copy.yaml` (does not).
fn write_pipelines(p: &Project) {
    std::fs::create_dir_all(p.root.join("data")).unwrap();
    std::fs::copy(
        repo_root().join("tests/data/run/orders.csv"),
        p.root.join("data/orders.csv"),
    )
    .unwrap();
    std::fs::write(p.root.join("echo.yaml"), echo_pipeline()).unwrap();
    std::fs::write(p.root.join("copy.yaml"), csv_only_pipeline()).unwrap();
}

/// Issue "verify cheaply, load lazily": one byte of a signed plugin's library changes. Listing components reads
/// only the signed spec (the component is listed, no plugin code runs); a run that uses the component is refused
/// with PLUGIN-E010 before the library is loaded; a run that does not use it never reads it; `plugins list` and
/// `plugins verify` check the library and refuse it.
#[test]
fn a_library_changed_after_signing_is_refused_where_it_would_be_loaded() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, public) = p.keygen("k");
    p.sign(&dir, &key, "acme");
    p.config(&trust_config(&public, "acme", None, true));
    write_pipelines(&p);
    let lib = dir.join(format!(
        "{}osiris_test_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let mut bytes = std::fs::read(&lib).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&lib, &bytes).unwrap();
    let actual = package::sha256_hex(&bytes);

    // components list: listed from the signed spec, library not loaded, nothing refused
    let comps = p.components();
    let echo = row(&comps, "test.echo");
    assert_eq!(echo["source"], ECHO, "{echo:#}");
    assert_eq!(echo["library_check"], "at_load", "{echo:#}");
    let out = p.with_dir(&["components", "list"]);
    assert!(
        !stderr(&out).contains("PLUGIN-E010"),
        "components list does not read the library: {}",
        stderr(&out)
    );
    assert!(!p.loaded("osiris-test-echo"), "no plugin code ran");

    // a run that uses it: refused before loading, naming the step's component and the hash
    let out = p.with_dir(&["run", "echo.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    for part in ["PLUGIN-E010", "test.echo", &actual, "reinstall"] {
        assert!(err.contains(part), "run error lacks `{part}`: {err}");
    }
    assert!(!p.root.join("out/result.csv").exists());
    assert!(
        !p.loaded("osiris-test-echo"),
        "the changed library never ran"
    );

    // a run that does not use it: succeeds, and the plugin is not loaded
    let out = p.with_dir(&["run", "copy.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(p.root.join("out/copy.csv"))
            .unwrap()
            .lines()
            .count(),
        std::fs::read_to_string(p.root.join("data/orders.csv"))
            .unwrap()
            .lines()
            .count()
    );
    assert!(!p.loaded("osiris-test-echo"));

    // plugins list and plugins verify check the library
    let rows = p.plugins_list();
    let r = row(&rows, ECHO);
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["code"], "PLUGIN-E010", "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains(&actual) && reason.contains("reinstall"),
        "{reason}"
    );
    assert!(!p.loaded("osiris-test-echo"));
    let out = p.osiris(&[
        "plugins",
        "verify",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["code"], "PLUGIN-E010");
}

/// The same package with its library intact: the run that uses the plugin loads it, the other run does not.
#[test]
fn a_run_loads_only_the_plugins_its_pipeline_uses() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    write_pipelines(&p);
    let out = p.with_dir(&["run", "copy.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        !p.loaded("osiris-test-echo"),
        "a pipeline without plugin components loads no plugin"
    );
    let out = p.with_dir(&["run", "echo.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(p.loaded("osiris-test-echo"));
}

#[test]
fn a_spec_changed_after_signing_is_refused_without_loading() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let spec = dir.join("test.echo.spec.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{text}\n# changed\n")).unwrap();
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E010",
        &["test.echo.spec.yaml", "reinstall"],
    );
}

/// The registry refuses the plugin's (hashed) spec: PLUGIN-E013 everywhere, and its library is never loaded,
/// not even by `plugins list` (specs are validated before any library is read).
#[test]
fn a_plugin_shipping_an_invalid_spec_is_refused_before_loading() {
    let p = Project::new();
    let spec = p.root.join("bad.spec.yaml");
    let text = std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    std::fs::write(&spec, format!("{text}bogus_key: 1\n")).unwrap();
    package_echo(&p, "echo", |i| {
        i.specs = vec![("test.echo".into(), spec.clone())]
    });
    assert_refused(&p, ECHO, "PLUGIN-E013", &["SPEC-E011", "bogus_key"]);
}

#[test]
fn refuses_a_manifest_changed_after_signing() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, public) = p.keygen("k");
    p.sign(&dir, &key, "acme");
    p.config(&trust_config(&public, "acme", None, false));
    // widen the host range after signing: the signature covers it
    let text = std::fs::read_to_string(dir.join(package::MANIFEST_FILE)).unwrap();
    let changed = text.replace(
        &format!("requires = \">={}\"", env!("CARGO_PKG_VERSION")),
        "requires = \"*\"",
    );
    assert_ne!(text, changed);
    std::fs::write(dir.join(package::MANIFEST_FILE), changed).unwrap();
    assert_refused(&p, ECHO, "PLUGIN-E007", &["does not match"]);
    assert_eq!(
        row(&p.plugins_list(), ECHO)["signature"]["status"],
        "invalid"
    );
}

#[test]
fn refuses_an_unsigned_plugin_when_signatures_are_required() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    p.config("plugins:\n  require_signatures: true\n");
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E006",
        &["not signed", "osiris plugins sign"],
    );
}

#[test]
fn refuses_a_plugin_signed_by_an_untrusted_key() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, _) = p.keygen("mallory.key");
    let (_, trusted) = p.keygen("acme.key");
    p.sign(&dir, &key, "mallory");
    p.config(&trust_config(&trusted, "acme", None, false));
    assert_refused(&p, ECHO, "PLUGIN-E008", &["`mallory`", "trusted_keys"]);
    let r = p.plugins_list();
    assert_eq!(
        row(&r, ECHO)["signature"],
        serde_json::json!({"status": "untrusted", "key_id": "mallory"})
    );
}

#[test]
fn refuses_a_key_used_outside_its_scope() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, public) = p.keygen("acme.key");
    p.sign(&dir, &key, "acme");
    p.config(&trust_config(&public, "acme", Some("acme-*"), false));
    assert_refused(&p, ECHO, "PLUGIN-E009", &["acme-*", ECHO]);
}

#[test]
fn refuses_a_host_version_out_of_range() {
    let p = Project::new();
    package_echo(&p, "echo", |i| i.requires = Some(">=99.0, <100.0".into()));
    let host = env!("CARGO_PKG_VERSION");
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E004",
        &[">=99.0, <100.0", &format!("this is osiris {host}")],
    );
}

#[test]
fn refuses_a_plugin_not_on_the_allowlist() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    p.config("plugins:\n  allowlist: [\"shopify-osiris==1.2.3\", \"osiris-test-echo>=2.0.0\"]\n");
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E005",
        &["osiris-test-echo>=2.0.0", "0.1.0"],
    );
    // and the seed's exact-pin syntax admits it
    p.config("plugins:\n  allowlist: [\"shopify-osiris==1.2.3\", \"osiris-test-echo==0.1.0\"]\n");
    assert_eq!(row(&p.plugins_list(), ECHO)["status"], "loaded");
}

#[test]
fn refuses_an_abi_mismatch_before_loading() {
    let p = Project::new();
    let abi = osiris_plugin_sdk::ABI_VERSION + 1;
    package_echo(&p, "echo", |i| i.abi_version = abi);
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E002",
        &[
            &format!("plugin ABI {abi}"),
            &format!("supports ABI {}", abi - 1),
        ],
    );
}

#[test]
fn refuses_both_plugins_claiming_the_same_component() {
    let p = Project::new();
    let a = package_echo(&p, "echo-a", |i| i.name = "echo-a".into());
    let b = package_echo(&p, "echo-b", |i| i.name = "echo-b".into());
    let rows = p.plugins_list();
    for (name, other) in [("echo-a", &b), ("echo-b", &a)] {
        let r = row(&rows, name);
        assert_eq!(r["status"], "rejected", "{r:#}");
        assert_eq!(r["code"], "PLUGIN-E014");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            reason.contains("`test.echo`") && reason.contains(&other.display().to_string()),
            "both sources named: {reason}"
        );
    }
    assert_refused(&p, "echo-a", "PLUGIN-E014", &["echo-b"]);
}

#[test]
fn refuses_a_plugin_claiming_a_builtin_name() {
    let p = Project::new();
    package_echo(&p, "echo", |i| {
        i.specs[0].0 = "filesystem.csv_extractor".into()
    });
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E015",
        &["`filesystem.csv_extractor`", "built-in"],
    );
    let comps = p.components();
    assert_eq!(row(&comps, "filesystem.csv_extractor")["source"], "builtin");
}

#[test]
fn several_plugins_load_side_by_side_in_one_process() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    package_echo(&p, "echo55", |i| {
        i.name = "osiris-test-arrow55".into();
        i.entry = test_plugin_entry("arrow55");
        i.library = build_test_plugin("arrow55");
        i.specs = vec![(
            "test.echo55".into(),
            repo_root().join("tests/plugins/arrow55/spec.yaml"),
        )];
    });
    let comps = p.components();
    assert_eq!(row(&comps, "test.echo")["source"], ECHO);
    assert_eq!(row(&comps, "test.echo55")["source"], "osiris-test-arrow55");
    let rows = p.plugins_list();
    assert!(rows.iter().all(|r| r["status"] == "loaded"), "{rows:#?}");
    assert!(p.loaded("osiris-test-echo") && p.loaded("osiris-test-arrow55"));
    // one process loaded both: the same pid in both markers
    let pid = |c: &str| std::fs::read_to_string(p.markers.join(format!("{c}.loaded"))).unwrap();
    assert_eq!(pid("osiris-test-echo"), pid("osiris-test-arrow55"));
}

#[test]
fn a_plugin_that_fails_to_load_is_reported_and_the_rest_still_works() {
    let p = Project::new();
    // badabi's own spec: echo's, renamed
    let spec = p.root.join("badabi.spec.yaml");
    let echo_spec =
        std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    std::fs::write(&spec, echo_spec.replace("test.echo", "test.badabi")).unwrap();
    package_echo(&p, "badabi", |i| {
        i.name = "osiris-test-badabi".into();
        i.entry = test_plugin_entry("badabi");
        i.library = build_test_plugin("badabi");
        i.specs = vec![("test.badabi".into(), spec.clone())];
    });
    package_echo(&p, "echo", |_| {});
    let rows = p.plugins_list();
    let bad = row(&rows, "osiris-test-badabi");
    assert_eq!(bad["status"], "rejected", "{bad:#}");
    assert_eq!(bad["code"], "PLUGIN-E011");
    assert_eq!(row(&rows, ECHO)["status"], "loaded");
    // components list reads specs only: the load failure shows where the library is loaded (above, or a run)
    let comps = p.components();
    assert_eq!(row(&comps, "test.echo")["source"], ECHO);
    let bad = row(&comps, "test.badabi");
    assert_eq!(bad["source"], "osiris-test-badabi");
    assert_eq!(bad["library_check"], "at_load");
}

#[test]
fn the_higher_precedence_directory_wins_and_the_other_copy_is_shadowed() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    let second = p.root.join("more-plugins");
    package::write_package(&second.join("echo"), &echo_input()).unwrap();
    let env_dir = second.display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_osiris"));
    let out = cmd
        .current_dir(&p.root)
        .args([
            "plugins",
            "list",
            "--format",
            "json",
            "--plugin-dir",
            p.plugins.to_str().unwrap(),
        ])
        .env("OSIRIS_PLUGIN_PATH", &env_dir)
        .env("HOME", &p.root)
        .env("XDG_DATA_HOME", p.root.join("xdg"))
        .env("OSIRIS_TEST_MARKER_DIR", &p.markers)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0]["status"], "loaded");
    assert_eq!(rows[0]["dir"], p.plugins.display().to_string());
    assert_eq!(rows[1]["status"], "shadowed");
    assert_eq!(rows[1]["code"], "PLUGIN-W001");
    assert_eq!(rows[1]["dir"], env_dir);
    assert!(
        rows[1]["reason"].as_str().unwrap().contains("--plugin-dir"),
        "{:#}",
        rows[1]
    );
}

#[test]
fn disabled_plugins_are_listed_but_never_loaded() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    let dir = p.plugins.display().to_string();
    let out = p.osiris(&[
        "--disable-plugins",
        "plugins",
        "list",
        "--format",
        "json",
        "--plugin-dir",
        &dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(row(&rows, ECHO)["status"], "disabled");
    assert_eq!(row(&rows, ECHO)["code"], "PLUGIN-W002");
    p.config("plugins:\n  enabled: false\n");
    let comps = p.components();
    assert!(!comps.iter().any(|c| c["name"] == "test.echo"));
    assert!(!p.loaded("osiris-test-echo"));
}

#[test]
fn doctor_shows_every_directory_file_and_check() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    package_echo(&p, "old", |i| {
        i.name = "old-echo".into();
        i.requires = Some("<0.0.1".into());
    });
    std::fs::write(p.plugins.join("stray.so"), b"not a plugin").unwrap();
    std::fs::write(p.plugins.join("README.txt"), b"hello").unwrap();
    let out = p.with_dir(&["plugins", "doctor"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        &format!("{} [--plugin-dir]: searched", p.plugins.display()),
        ".osiris/plugins [./.osiris/plugins]: does not exist, skipped",
        "user data dir",
        "ok   abi:",
        "ok   signature: no signature file",
        "ok   spec hashes: 1 spec file(s) match the manifest",
        "ok   library hash:",
        "ok   load:",
        "accepted, loaded",
        "rejected PLUGIN-E004",
        "stray.so",
        "PLUGIN-E001",
        "README.txt: ignored",
    ] {
        assert!(
            text.contains(expected),
            "doctor output lacks `{expected}`:\n{text}"
        );
    }
}

#[test]
fn inspect_reads_metadata_without_loading() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let out = p.osiris(&[
        "plugins",
        "inspect",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["name"], ECHO);
    assert_eq!(v["library"]["matches"], true);
    assert_eq!(v["components"][0]["name"], "test.echo");
    assert!(
        v["statement"]
            .as_str()
            .unwrap()
            .starts_with("osiris-ocp-signature-v1\nname: osiris-test-echo\n")
    );
    assert!(!p.loaded("osiris-test-echo"));
}

fn echo_pipeline() -> &'static str {
    r#"oml_version: "0.1.0"
name: echo-orders
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: number
    component: test.echo
    mode: transform
    needs: [extract]
    config:
      column: n
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [number]
    config:
      path: out/result.csv
"#
}

#[test]
fn a_plugin_component_runs_in_a_pipeline_like_a_builtin_and_a_refusal_fails_only_that_pipeline() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    std::fs::create_dir_all(p.root.join("data")).unwrap();
    std::fs::copy(
        repo_root().join("tests/data/run/orders.csv"),
        p.root.join("data/orders.csv"),
    )
    .unwrap();
    std::fs::write(p.root.join("p.yaml"), echo_pipeline()).unwrap();
    let out = p.with_dir(&["run", "p.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let result = std::fs::read_to_string(p.root.join("out/result.csv")).unwrap();
    let input = std::fs::read_to_string(p.root.join("data/orders.csv")).unwrap();
    let header = result.lines().next().unwrap();
    assert!(
        header.starts_with("id,customer,amount") && header.ends_with(",n"),
        "{result}"
    );
    assert_eq!(result.lines().count(), input.lines().count(), "{result}");

    // Refused now: the pipeline that needs it fails, naming the component; osiris itself still works.
    p.config("plugins:\n  require_signatures: true\n");
    std::fs::remove_dir_all(p.root.join("out")).unwrap();
    let out = p.with_dir(&["run", "p.yaml"]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("test.echo"), "{err}");
    assert!(
        err.contains("PLUGIN-E006"),
        "the refusal is reported: {err}"
    );
    assert!(!p.root.join("out/result.csv").exists());
    let comps = p.components();
    assert!(comps.iter().any(|c| c["name"] == "filesystem.csv_writer"));
}
