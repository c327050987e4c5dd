//! The plugin host through the real binary and real cdylibs (tests/plugins/*): discovery, the trust checks that
//! run before any plugin code, signatures, conflicts, and the `osiris plugins` commands (issue: OCP plugin host).
//!
//! Each test plugin's library constructor appends to `$OSIRIS_TEST_MARKER_DIR/<crate>.loaded` when the library
//! is loaded: absent after a refusal proves no plugin code ran; present after a load proves the real path ran.
//!
//! Commands that need only specs (`components list`, `compile`) verify a plugin without its library and never
//! load it; `plugins list` and a run that uses a plugin's component check the library hash and load it (issue:
//! verify cheaply, load lazily; ADR 0007).
//!
//! Unsigned plugin code is refused by default (issue 13): a scratch project opts in with
//! `plugins.allow_unsigned: true` where a test is not about signatures, and every command runs under an empty
//! machine policy (`OSIRIS_POLICY_FILE`) so the machine's own `/etc/osiris/policy.yaml` cannot change a result.

use crate::support::{
    Osiris, build_test_plugin, osiris, repo_root, test_plugin_entry, user_plugin_dir,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use osiris_plugins::package::{self, PackageInput};

const ECHO: &str = "osiris-test-echo";

/// The opt-in of tests that load unsigned test plugins and are not about signatures.
const UNSIGNED_OK: &str = "plugins:\n  allow_unsigned: true\n";

/// One scratch project: `osiris.yaml`, a plugin directory, a marker directory, a HOME of its own.
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    plugins: PathBuf,
    markers: PathBuf,
    /// HOME of every command (the user plugin directory is `user_plugin_dir(&home)`).
    home: PathBuf,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let plugins = root.join("plugins");
        let markers = root.join("markers");
        let home = root.join("home");
        for dir in [&plugins, &markers, &home] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(root.join("machine-policy.yaml"), "").unwrap();
        let p = Project {
            _tmp: tmp,
            root,
            plugins,
            markers,
            home,
        };
        p.config(UNSIGNED_OK);
        p
    }

    /// The machine policy every command of this project runs under (empty: none of its own).
    fn machine_policy(&self, yaml: &str) {
        std::fs::write(self.root.join("machine-policy.yaml"), yaml).unwrap();
    }

    fn config(&self, yaml: &str) {
        std::fs::write(self.root.join("osiris.yaml"), yaml).unwrap();
    }

    /// `osiris ARGS` in the project, with only this project's plugin directories.
    fn osiris(&self, args: &[&str]) -> Output {
        self.osiris_in(&self.root, args, &[])
    }

    /// `osiris ARGS` in `cwd` (the project or a directory below it) with extra environment variables.
    fn osiris_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(cwd, args);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.output()
    }

    /// The isolated `osiris ARGS` command in `cwd`, with this project's HOME, marker directory and machine
    /// policy.
    fn command(&self, cwd: &Path, args: &[&str]) -> Osiris {
        osiris(cwd)
            .args(args)
            .home(&self.home)
            .env("OSIRIS_TEST_MARKER_DIR", &self.markers)
            .policy_file(self.root.join("machine-policy.yaml"))
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

    /// `plugins list --load --format json`, as rows: every accepted plugin is loaded, so a refusal seen here
    /// held even where the plugin's code was asked to run.
    fn plugins_list(&self) -> Vec<Value> {
        let out = self.with_dir(&["plugins", "list", "--load", "--format", "json"]);
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

/// `require`: unsigned plugins are refused (the default); otherwise they are allowed (`allow_unsigned: true`).
fn trust_config(public: &str, id: &str, scope: Option<&str>, require: bool) -> String {
    format!(
        "plugins:\n  allow_unsigned: {}\n  trusted_keys:\n{}",
        !require,
        key_entry(public, id, scope, None)
    )
}

/// One entry of `plugins.trusted_keys`; `families` as YAML, e.g. `[test]`.
fn key_entry(public: &str, id: &str, scope: Option<&str>, families: Option<&str>) -> String {
    let scope = scope
        .map(|s| format!("\n      scope: \"{s}\""))
        .unwrap_or_default();
    let families = families
        .map(|f| format!("\n      families: {f}"))
        .unwrap_or_default();
    format!("    - id: {id}\n      public_key: \"{public}\"{scope}{families}\n")
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
    p.config(&format!(
        "plugins:\n  require_signatures: true\n  trusted_keys:\n{}",
        key_entry(&public, "acme-2026", Some("osiris-test-*"), Some("[test]"))
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

/// The registry files a spec under its own `name:`, while the builtin-conflict and key-family checks see the
/// manifest's names: a manifest entry that points at a spec of another name is refused before either.
#[test]
fn a_manifest_component_whose_spec_names_another_component_is_refused() {
    let p = Project::new();
    let spec = repo_root().join("tests/plugins/echo/spec.yaml");
    package_echo(&p, "echo", |i| {
        i.specs = vec![("test.other".into(), spec.clone())]
    });
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E013",
        &[
            "`test.other`",
            "`test.echo`",
            "report this to its publisher",
        ],
    );
    let names: Vec<String> = p
        .components()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !names.iter().any(|n| n == "test.echo" || n == "test.other"),
        "neither name is registered: {names:?}"
    );
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
    p.config(
        "plugins:\n  allow_unsigned: true\n  allowlist: [\"shopify-osiris==1.2.3\", \"osiris-test-echo>=2.0.0\"]\n",
    );
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E005",
        &["osiris-test-echo>=2.0.0", "0.1.0"],
    );
    // and the seed's exact-pin syntax admits it
    p.config(
        "plugins:\n  allow_unsigned: true\n  allowlist: [\"shopify-osiris==1.2.3\", \"osiris-test-echo==0.1.0\"]\n",
    );
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
    // A spec of that name too (a spec naming another component than its manifest entry is refused earlier).
    let spec = p.root.join("csv.spec.yaml");
    let text = std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    std::fs::write(
        &spec,
        text.replacen("name: test.echo", "name: filesystem.csv_extractor", 1),
    )
    .unwrap();
    package_echo(&p, "echo", |i| {
        i.specs = vec![("filesystem.csv_extractor".into(), spec.clone())]
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
    let out = p
        .command(
            &p.root,
            &[
                "plugins",
                "list",
                "--load",
                "--format",
                "json",
                "--plugin-dir",
                p.plugins.to_str().unwrap(),
            ],
        )
        .plugin_path(&env_dir)
        .output();
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
    let out = p.with_dir(&["plugins", "doctor", "--load"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for expected in [
        &format!("{} [--plugin-dir]: searched", p.plugins.display()),
        ".osiris/plugins [project .osiris/plugins]: does not exist, skipped",
        "user data dir",
        "ok   abi:",
        "ok   signature: no signature file",
        "ok   dependencies: system libraries only:",
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

// ---------------------------------------------------------------------------------------------------------------
// Issue 13: plugin trust, hardened (confined installs, scoped component families, rollback, permissions, links).
// ---------------------------------------------------------------------------------------------------------------

/// `osiris ARGS` in the project with extra environment variables.
fn osiris_env(p: &Project, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = p.command(&p.root, args);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.output()
}

/// Every file under `dir` (relative path, content), links as `-> target`: a snapshot to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let path = e.path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            let md = std::fs::symlink_metadata(&path).unwrap();
            if md.file_type().is_symlink() {
                out.push((
                    rel,
                    format!("-> {}", std::fs::read_link(&path).unwrap().display()),
                ));
            } else if md.is_dir() {
                out.push((rel, "<dir>".into()));
                stack.push(path);
            } else {
                out.push((
                    rel,
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Issue 13, finding 1: a package whose manifest `name` is not a plain plugin name (`../x`, an absolute path,
/// `..`, `.`, a separator, upper case, empty) is refused by `plugins install` with PLUGIN-E017, and nothing
/// outside the plugin directory changes (before the fix, `..` deleted and replaced the directory above it).
#[test]
fn install_refuses_a_manifest_name_that_leaves_the_plugin_dir_and_changes_nothing_outside() {
    let p = Project::new();
    let outer = p.root.join("outer");
    let dir = outer.join("plugins");
    std::fs::create_dir_all(outer.join("victim")).unwrap();
    std::fs::write(outer.join("victim/sentinel.txt"), "keep me").unwrap();
    std::fs::write(outer.join("sentinel.txt"), "keep me too").unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "inside").unwrap();
    let absolute = outer.join("victim").display().to_string();
    for (i, name) in [
        "../victim",
        absolute.as_str(),
        "..",
        ".",
        "a/../../victim",
        "Osiris-Test-Echo",
        "",
        "echo\nversion: 9.9.9",
    ]
    .into_iter()
    .enumerate()
    {
        let pkg = p.root.join(format!("src-{i}"));
        let mut input = echo_input();
        input.name = name.to_string();
        package::write_package(&pkg, &input).unwrap();
        let before = snapshot(&outer);
        let out = p.osiris(&[
            "plugins",
            "install",
            pkg.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "name `{name}`: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("PLUGIN-E017"),
            "name `{name}`: {}",
            stderr(&out)
        );
        assert_eq!(snapshot(&outer), before, "name `{name}` changed files");
    }
    assert_eq!(
        std::fs::read_to_string(outer.join("victim/sentinel.txt")).unwrap(),
        "keep me"
    );
    assert!(!p.loaded("osiris-test-echo"), "no plugin code ran");
}

/// Issue 13, finding 1: `install` replaces only an installed package of the same plugin; it refuses (PLUGIN-E018)
/// to delete a directory of that name that is not one, a link to elsewhere, or to write through a linked
/// plugin directory (`.osiris -> elsewhere` in a cloned repository).
#[cfg(unix)]
#[test]
fn install_replaces_only_its_own_package_and_never_writes_through_links() {
    let p = Project::new();
    let pkg = p.root.join("dist/echo");
    package::write_package(&pkg, &echo_input()).unwrap();
    let outer = p.root.join("outer");
    std::fs::create_dir_all(outer.join("precious")).unwrap();
    std::fs::write(outer.join("precious/data.txt"), "keep").unwrap();

    // a directory of the same name that is not a package of this plugin
    let dir = p.root.join("project-plugins");
    std::fs::create_dir_all(dir.join(ECHO)).unwrap();
    std::fs::write(dir.join(ECHO).join("notes.txt"), "mine").unwrap();
    let install = |dir: &Path| {
        p.osiris(&[
            "plugins",
            "install",
            pkg.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ])
    };
    let out = install(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E018"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join(ECHO).join("notes.txt")).unwrap(),
        "mine"
    );

    // a link of the same name, pointing outside
    std::fs::remove_dir_all(dir.join(ECHO)).unwrap();
    std::os::unix::fs::symlink(outer.join("precious"), dir.join(ECHO)).unwrap();
    let before = snapshot(&outer);
    let out = install(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E018"), "{}", stderr(&out));
    assert_eq!(snapshot(&outer), before);

    // the default `.osiris/plugins` reached through a link
    std::os::unix::fs::symlink(&outer, p.root.join(".osiris")).unwrap();
    let out = p.osiris(&["plugins", "install", pkg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E018"), "{}", stderr(&out));
    assert_eq!(snapshot(&outer), before, "nothing written through the link");

    // and a real install, then a reinstall over it, still work
    let dir = p.root.join("ok-plugins");
    for _ in 0..2 {
        let out = install(&dir);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(dir.join(ECHO).join(package::MANIFEST_FILE).is_file());
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "no staging left behind: {left:?}");
    assert!(!p.loaded("osiris-test-echo"));
}

/// Issue 13, finding 1: from a subdirectory of the project, the default plugin directory is an absolute path under
/// the project root; a cloned repository's `.osiris -> elsewhere` must still not redirect `install` or `remove`
/// (PLUGIN-E018), as it does not from the root.
#[cfg(unix)]
#[test]
fn install_and_remove_from_a_subdirectory_never_write_through_a_linked_project_dir() {
    let p = Project::new();
    let pkg = p.root.join("dist/echo");
    package::write_package(&pkg, &echo_input()).unwrap();
    let outer = p.root.join("outer");
    // what `.osiris` points to already holds an installed-looking package `plugins/victim`
    let mut input = echo_input();
    input.name = "victim".into();
    package::write_package(&outer.join("plugins/victim"), &input).unwrap();
    std::os::unix::fs::symlink(&outer, p.root.join(".osiris")).unwrap();
    let sub = p.root.join("pipelines");
    std::fs::create_dir_all(&sub).unwrap();
    let before = snapshot(&outer);
    for args in [
        vec!["plugins", "install", pkg.to_str().unwrap()],
        vec!["plugins", "remove", "victim"],
    ] {
        let out = p.osiris_in(&sub, &args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("PLUGIN-E018"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(snapshot(&outer), before, "{args:?} wrote through the link");
    }
    assert!(!p.loaded("osiris-test-echo"));
}

/// Issue 13, finding 1: `plugins remove` takes a plugin name of the grammar (PLUGIN-E017) and removes only a real
/// package directory of that name, never a link (PLUGIN-E018).
#[cfg(unix)]
#[test]
fn remove_refuses_names_and_links_that_leave_the_plugin_dir() {
    let p = Project::new();
    let outer = p.root.join("outer");
    let dir = outer.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    // a directory outside that looks like a package named `victim`, and `..` itself
    let mut input = echo_input();
    input.name = "victim".into();
    package::write_package(&outer.join("victim"), &input).unwrap();
    std::os::unix::fs::symlink(outer.join("victim"), dir.join("victim")).unwrap();
    let before = snapshot(&outer);
    for (name, code) in [
        ("..", "PLUGIN-E017"),
        ("../victim", "PLUGIN-E017"),
        (outer.join("victim").to_str().unwrap(), "PLUGIN-E017"),
        ("victim", "PLUGIN-E018"),
    ] {
        let out = p.osiris(&["plugins", "remove", name, "--dir", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "`{name}`: {}", stdout(&out));
        assert!(stderr(&out).contains(code), "`{name}`: {}", stderr(&out));
        assert_eq!(snapshot(&outer), before, "`{name}` changed files");
    }
}

/// Issue 13, finding 1: the key id in `osiris-plugin.sig` comes from the package; one that is not a plain
/// identifier (here a terminal escape and a forged diagnostic line) is refused as an invalid signature
/// (PLUGIN-E007) and never printed raw.
#[test]
fn a_key_id_with_control_characters_is_refused_and_never_printed_raw() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (key, public) = p.keygen("acme.key");
    p.sign(&dir, &key, "acme");
    p.config(&trust_config(&public, "acme", None, true));
    let sig = dir.join(package::SIGNATURE_FILE);
    let text = std::fs::read_to_string(&sig).unwrap().replace(
        "key_id = \"acme\"",
        "key_id = \"acme\\u001b[2K\\nerror[PLUGIN-E000]: forged\"",
    );
    assert!(text.contains("forged"), "{text}");
    std::fs::write(&sig, text).unwrap();
    assert_refused(&p, ECHO, "PLUGIN-E007", &["not a plain identifier"]);
    // and `plugins sign` does not write a signature under such an id
    let out = p.osiris(&[
        "plugins",
        "sign",
        dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--key-id",
        "acme corp",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("not a plain identifier"),
        "{}",
        stderr(&out)
    );
    for args in [vec!["plugins", "list"], vec!["plugins", "doctor"]] {
        let out = p.with_dir(&args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!all.contains('\u{1b}'), "{args:?}: {all}");
        assert!(
            !all.lines().any(|l| l.starts_with("error[PLUGIN-E000]")),
            "{args:?}: {all}"
        );
    }
}

/// Issue 13, finding 8: `plugins sign` replaces an `osiris-plugin.sig` that is a symbolic link with a new file;
/// the file it pointed to is untouched, and the new signature verifies.
#[cfg(unix)]
#[test]
fn sign_replaces_a_linked_signature_file_without_writing_through_it() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let target = p.root.join("authorized_keys");
    std::fs::write(&target, "ssh-ed25519 AAAA precious\n").unwrap();
    std::os::unix::fs::symlink(&target, dir.join(package::SIGNATURE_FILE)).unwrap();
    let (key, public) = p.keygen("k");
    p.sign(&dir, &key, "acme");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "ssh-ed25519 AAAA precious\n",
        "the link's target is untouched"
    );
    let md = std::fs::symlink_metadata(dir.join(package::SIGNATURE_FILE)).unwrap();
    assert!(md.is_file(), "the link was replaced by a regular file");
    p.config(&trust_config(&public, "acme", None, true));
    let out = p.osiris(&["plugins", "verify", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// Issue 13, findings 1 and 8: `plugins pack` writes every file of the package as a new file (links in the
/// output directory are replaced, not followed), refuses an output directory that is a link (PLUGIN-E018) and
/// a crate name outside the grammar (PLUGIN-E017).
#[cfg(unix)]
#[test]
fn pack_never_writes_through_links() {
    let p = Project::new();
    let krate = p.root.join("crate");
    std::fs::create_dir_all(&krate).unwrap();
    std::fs::copy(
        repo_root().join("tests/plugins/echo/spec.yaml"),
        krate.join("spec.yaml"),
    )
    .unwrap();
    let cargo_toml = |name: &str| {
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[lib]\nname = \"osiris_test_echo\"\n\
             crate-type = [\"cdylib\", \"rlib\"]\n\n[package.metadata.osiris]\nentry = \"{}\"\n",
            test_plugin_entry("echo")
        )
    };
    std::fs::write(krate.join("Cargo.toml"), cargo_toml(ECHO)).unwrap();
    let library = build_test_plugin("echo");
    let lib_name = library.file_name().unwrap().to_str().unwrap().to_string();
    let out_dir = p.root.join("dist");
    std::fs::create_dir_all(&out_dir).unwrap();
    let victims = p.root.join("victims");
    std::fs::create_dir_all(&victims).unwrap();
    for f in [
        package::MANIFEST_FILE,
        lib_name.as_str(),
        "test.echo.spec.yaml",
    ] {
        std::fs::write(victims.join(f), "precious").unwrap();
        std::os::unix::fs::symlink(victims.join(f), out_dir.join(f)).unwrap();
    }
    let pack = |out: &Path| {
        p.osiris(&[
            "plugins",
            "pack",
            "--manifest-path",
            krate.to_str().unwrap(),
            "--library",
            library.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let out = pack(&out_dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for f in [
        package::MANIFEST_FILE,
        lib_name.as_str(),
        "test.echo.spec.yaml",
    ] {
        assert_eq!(
            std::fs::read_to_string(victims.join(f)).unwrap(),
            "precious",
            "{f}"
        );
        assert!(
            std::fs::symlink_metadata(out_dir.join(f))
                .unwrap()
                .is_file(),
            "{f}"
        );
    }
    let out = p.osiris(&["plugins", "verify", out_dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // an output directory that is a link
    let linked = p.root.join("linked-dist");
    std::os::unix::fs::symlink(&victims, &linked).unwrap();
    let before = snapshot(&victims);
    let out = pack(&linked);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E018"), "{}", stderr(&out));
    assert_eq!(snapshot(&victims), before);

    // the default `<crate>/dist/<name>` reached through a linked `dist` (a cloned crate's `dist -> elsewhere`)
    std::os::unix::fs::symlink(&victims, krate.join("dist")).unwrap();
    let out = p.osiris(&[
        "plugins",
        "pack",
        "--manifest-path",
        krate.to_str().unwrap(),
        "--library",
        library.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E018"), "{}", stderr(&out));
    assert_eq!(snapshot(&victims), before, "nothing written through `dist`");
    std::fs::remove_file(krate.join("dist")).unwrap();

    // a crate name outside the grammar never becomes a package (nor a default `dist/<name>` path)
    std::fs::write(krate.join("Cargo.toml"), cargo_toml("Evil_Name")).unwrap();
    let out = pack(&p.root.join("dist2"));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E017"), "{}", stderr(&out));
    assert!(!p.root.join("dist2").exists());
}

/// Issue 13, finding 2: a key trusted for `acme-*` plugins with `families: [acme]` signs a plugin that claims
/// vendor "test"'s component `test.echo`. The claim is refused with PLUGIN-E019 and the test vendor's own signed
/// plugin keeps its component and loads (before the fix, both were refused as duplicates: a knock-out). The same
/// holds for an unsigned plugin claiming a family a trusted key reserves.
#[test]
fn a_key_cannot_claim_another_vendors_component_family() {
    let p = Project::new();
    let echo = package_echo(&p, "echo", |_| {});
    let evil = package_echo(&p, "evil", |i| i.name = "acme-evil".into());
    let (test_key, test_pub) = p.keygen("test.key");
    let (acme_key, acme_pub) = p.keygen("acme.key");
    p.sign(&echo, &test_key, "test-vendor");
    p.sign(&evil, &acme_key, "acme-vendor");
    p.config(&format!(
        "plugins:\n  require_signatures: true\n  trusted_keys:\n{}{}",
        key_entry(
            &test_pub,
            "test-vendor",
            Some("osiris-test-*"),
            Some("[test]")
        ),
        key_entry(&acme_pub, "acme-vendor", Some("acme-*"), Some("[acme]"))
    ));
    let comps = p.components();
    assert_eq!(row(&comps, "test.echo")["source"], ECHO, "{comps:#?}");
    assert!(!p.loaded("osiris-test-echo"));
    let rows = p.plugins_list();
    let bad = row(&rows, "acme-evil");
    assert_eq!(bad["status"], "rejected", "{bad:#}");
    assert_eq!(bad["code"], "PLUGIN-E019", "{bad:#}");
    let reason = bad["reason"].as_str().unwrap();
    for part in [
        "`test.echo`",
        "`acme-vendor`",
        "`acme`",
        "reserved",
        "`test-vendor`",
    ] {
        assert!(reason.contains(part), "reason lacks {part}: {reason}");
    }
    assert_eq!(row(&rows, ECHO)["status"], "loaded", "{rows:#?}");
    let loads = std::fs::read_to_string(p.markers.join("osiris-test-echo.loaded")).unwrap();
    assert_eq!(
        loads.lines().count(),
        1,
        "only the legitimate copy ran: {loads}"
    );

    // unsigned, and unsigned plugins allowed: the reserved family is still out of reach
    std::fs::remove_dir_all(&evil).unwrap();
    package_echo(&p, "unsigned", |i| i.name = "someone-else".into());
    p.config(&format!(
        "plugins:\n  allow_unsigned: true\n  trusted_keys:\n{}",
        key_entry(
            &test_pub,
            "test-vendor",
            Some("osiris-test-*"),
            Some("[test]")
        )
    ));
    std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();
    let rows = p.plugins_list();
    assert_eq!(
        row(&rows, "someone-else")["code"],
        "PLUGIN-E019",
        "{rows:#?}"
    );
    assert_eq!(row(&rows, ECHO)["status"], "loaded", "{rows:#?}");
    let loads = std::fs::read_to_string(p.markers.join("osiris-test-echo.loaded")).unwrap();
    assert_eq!(loads.lines().count(), 1, "{loads}");

    // a scoped key without `families` may provide no component, and the config problem says so
    std::fs::remove_dir_all(p.plugins.join("unsigned")).unwrap();
    p.config(&format!(
        "plugins:\n  require_signatures: true\n  trusted_keys:\n{}",
        key_entry(&test_pub, "test-vendor", Some("osiris-test-*"), None)
    ));
    let out = p.with_dir(&["plugins", "list"]);
    assert!(stderr(&out).contains("no `families`"), "{}", stderr(&out));
    assert_eq!(row(&p.plugins_list(), ECHO)["code"], "PLUGIN-E019");
}

/// Issue 13, finding 7: an older signed build earlier in the search path (here `--plugin-dir`) would shadow the
/// newer signed one installed further down (`OSIRIS_PLUGIN_PATH`): it is refused with PLUGIN-E020 and never
/// runs, unless `plugins.allowlist` pins that version exactly, which `plugins list` then says. A newer copy
/// that is not validly signed does not count.
#[test]
fn an_older_build_never_shadows_a_newer_validly_signed_one_unless_pinned() {
    let p = Project::new();
    let old = package_echo(&p, "echo", |_| {});
    let newer_dir = p.root.join("installed");
    let newer = newer_dir.join("echo");
    let mut input = echo_input();
    input.version = "0.2.0".into();
    package::write_package(&newer, &input).unwrap();
    let (key, public) = p.keygen("k");
    p.sign(&old, &key, "acme");
    p.sign(&newer, &key, "acme");
    p.config(&trust_config(&public, "acme", None, true));
    let list = || {
        let out = osiris_env(
            &p,
            &[
                "plugins",
                "list",
                "--load",
                "--format",
                "json",
                "--plugin-dir",
                p.plugins.to_str().unwrap(),
            ],
            &[("OSIRIS_PLUGIN_PATH", newer_dir.as_os_str())],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        serde_json::from_str::<Vec<Value>>(&stdout(&out)).unwrap()
    };
    let rows = list();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(rows[0]["version"], "0.1.0");
    assert_eq!(rows[0]["status"], "rejected", "{rows:#?}");
    assert_eq!(rows[0]["code"], "PLUGIN-E020", "{rows:#?}");
    let reason = rows[0]["reason"].as_str().unwrap();
    for part in [
        "0.1.0",
        "0.2.0",
        &newer.display().to_string(),
        "osiris-test-echo==0.1.0",
    ] {
        assert!(reason.contains(part), "reason lacks {part}: {reason}");
    }
    assert_eq!(rows[1]["status"], "shadowed");
    assert!(!p.loaded("osiris-test-echo"), "the older build never ran");

    // pinned exactly: it loads, and the list says why the newer one is not used
    p.config(&format!(
        "{}  allowlist: [\"osiris-test-echo==0.1.0\"]\n",
        trust_config(&public, "acme", None, true)
    ));
    let rows = list();
    assert_eq!(rows[0]["status"], "loaded", "{rows:#?}");
    let note = rows[1]["reason"].as_str().unwrap();
    assert!(
        note.contains("pins it exactly") && note.contains("0.2.0"),
        "{note}"
    );
    assert!(p.loaded("osiris-test-echo"));

    // a newer copy whose signature does not verify is no reason to refuse the older one
    std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();
    p.config(&trust_config(&public, "acme", None, false));
    std::fs::remove_file(newer.join(package::SIGNATURE_FILE)).unwrap();
    let rows = list();
    assert_eq!(rows[0]["status"], "loaded", "{rows:#?}");
}

/// Issue 13, finding 6: a plugin directory, package or package file that every user can write is refused
/// (PLUGIN-E021) before any plugin code runs, and `install` will not install into such a directory.
#[cfg(unix)]
#[test]
fn plugin_files_others_can_write_are_refused() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    chmod(&p.plugins, 0o777);
    let rows = p.plugins_list();
    let r = row(&rows, ECHO);
    assert_eq!(r["code"], "PLUGIN-E021", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("writable by every user"),
        "{r:#}"
    );
    assert!(!p.loaded("osiris-test-echo"));
    let dist = p.root.join("dist");
    package::write_package(&dist.join("echo"), &echo_input()).unwrap();
    let out = p.osiris(&[
        "plugins",
        "install",
        dist.join("echo").to_str().unwrap(),
        "--dir",
        p.plugins.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("PLUGIN-E021"), "{}", stderr(&out));

    chmod(&p.plugins, 0o755);
    let lib = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|f| f.extension().is_some_and(|x| x == "so" || x == "dylib"))
        .unwrap();
    chmod(&lib, 0o666);
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E021",
        &["writable by every user", "chmod"],
    );
    chmod(&lib, 0o644);
    assert_eq!(row(&p.plugins_list(), ECHO)["status"], "loaded");

    // owned by another user (who could rewrite it): refused too, as ssh and git do; needs root to set up
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();
        std::os::unix::fs::chown(&lib, Some(4242), None).unwrap();
        assert_refused(&p, ECHO, "PLUGIN-E021", &["owned by user 4242"]);
        std::os::unix::fs::chown(&lib, Some(0), None).unwrap();
        std::os::unix::fs::chown(&p.plugins, Some(4242), None).unwrap();
        assert_refused(&p, ECHO, "PLUGIN-E021", &["owned by user 4242"]);
    }
}

/// Issue 13, finding 6: like ssh, osiris warns about an `osiris.yaml` (the trust policy) or a secrets file that
/// group or others can write, and stays quiet when only the owner can.
#[cfg(unix)]
#[test]
fn a_config_or_secrets_file_others_can_write_is_warned_about() {
    let p = Project::new();
    p.config("plugins:\n  require_signatures: true\n");
    let conf = p.root.join("osiris.yaml");
    chmod(&conf, 0o664);
    let out = p.with_dir(&["plugins", "list"]);
    let err = stderr(&out);
    assert!(
        err.contains("warning[CONF-W001]: configuration file `")
            && err.contains("osiris.yaml` is writable by group or others (mode 664)")
            && err.contains("chmod go-w"),
        "{err}"
    );
    assert_eq!(err.matches("CONF-W001").count(), 1, "warned once: {err}");
    chmod(&conf, 0o644);
    let out = p.with_dir(&["plugins", "list"]);
    assert!(!stderr(&out).contains("CONF-W001"), "{}", stderr(&out));

    let secrets = p.root.join("secrets.yaml");
    std::fs::write(
        &secrets,
        "version: \"1.0\"\nconnections:\n  mysql:\n    primary:\n      password: hunter2\n",
    )
    .unwrap();
    chmod(&secrets, 0o666);
    let out = p.osiris(&[
        "connections",
        "list",
        "--secrets-file",
        secrets.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "warning[CONF-W002]: secrets file `{}` is writable by group or others (mode 666)",
            secrets.display()
        )),
        "{err}"
    );
    assert!(!err.contains("hunter2") && !stdout(&out).contains("hunter2"));
    chmod(&secrets, 0o600);
    let out = p.osiris(&[
        "connections",
        "list",
        "--secrets-file",
        secrets.to_str().unwrap(),
    ]);
    assert!(!stderr(&out).contains("CONF-W002"), "{}", stderr(&out));
}

// ---------------------------------------------------------------------------------------------------------------
// Issue 13: one policy wherever osiris runs (finding 3), secure by default (finding 4), no unchecked dependency
// (finding 5).

/// The unsigned echo package in the project's own `.osiris/plugins`, as a cloned repository would carry it.
fn package_echo_in_project(p: &Project) -> PathBuf {
    let dir = p.root.join(".osiris/plugins/echo");
    package::write_package(&dir, &echo_input()).unwrap();
    dir
}

/// Issue 13, finding 4: a fresh project (`osiris init`) refuses the unsigned plugin a cloned repository ships in
/// `.osiris/plugins`, and the diagnosis commands never run its constructor.
#[test]
fn a_fresh_project_refuses_unsigned_plugin_code_and_diagnosis_runs_none() {
    let p = Project::new();
    std::fs::remove_file(p.root.join("osiris.yaml")).unwrap();
    let out = p.osiris(&["init", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    package_echo_in_project(&p);
    for args in [
        vec!["plugins", "list", "--format", "json"],
        vec!["plugins", "doctor"],
        vec!["plugins", "list", "--load", "--format", "json"],
        vec!["plugins", "doctor", "--load"],
        vec!["components", "list"],
    ] {
        let out = p.osiris(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            !p.loaded("osiris-test-echo"),
            "{args:?} ran an unsigned plugin's constructor"
        );
    }
    let out = p.osiris(&["plugins", "list", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let r = row(&rows, ECHO);
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["code"], "PLUGIN-E006", "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("allow_unsigned") && reason.contains("osiris plugins sign"),
        "{reason}"
    );
    let out = p.osiris(&["plugins", "doctor"]);
    assert!(
        stdout(&out).contains("unsigned plugins: refused"),
        "{}",
        stdout(&out)
    );
}

/// Issue 13, finding 4: `plugins list` and `plugins doctor` check every file of an accepted plugin but load it
/// only with `--load`.
#[test]
fn plugins_list_and_doctor_check_without_loading_unless_asked() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    let out = p.with_dir(&["plugins", "list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(row(&rows, ECHO)["status"], "accepted", "{rows:#?}");
    let out = p.with_dir(&["plugins", "doctor"]);
    let text = stdout(&out);
    for part in [
        "ok   library hash:",
        "ok   dependencies:",
        "accepted, not loaded",
        "0 loaded, 1 accepted (not loaded)",
    ] {
        assert!(text.contains(part), "doctor lacks `{part}`:\n{text}");
    }
    assert!(!p.loaded("osiris-test-echo"), "no plugin code ran");
    let rows = p.plugins_list();
    assert_eq!(row(&rows, ECHO)["status"], "loaded");
    assert!(p.loaded("osiris-test-echo"), "`--load` loads it for real");
}

/// Issue 13, finding 3: from a subdirectory of the project, osiris finds the project's osiris.yaml by walking
/// up, searches the project's `.osiris/plugins` (not the working directory's) and applies the project's policy
/// (here an allowlist that refuses the plugin: PLUGIN-E005, where defaults would say PLUGIN-E006).
#[test]
fn a_subdirectory_of_the_project_uses_the_project_policy_and_plugin_directory() {
    let p = Project::new();
    p.config("plugins:\n  allow_unsigned: true\n  allowlist: [\"someone-else\"]\n");
    package_echo_in_project(&p);
    // the same plugin in the user directory too: the project's policy refuses it there as well
    package::write_package(&user_plugin_dir(&p.home).join("echo2"), &{
        let mut i = echo_input();
        i.name = "echo-user".into();
        i.specs[0].0 = "test.echo2".into();
        i
    })
    .unwrap();
    let sub = p.root.join("pipelines/nested");
    std::fs::create_dir_all(&sub).unwrap();
    let out = p.osiris_in(
        &sub,
        &["plugins", "list", "--load", "--format", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let r = row(&rows, ECHO);
    assert_eq!(r["code"], "PLUGIN-E005", "{r:#}");
    assert_eq!(
        r["dir"].as_str().unwrap(),
        p.root.join(".osiris/plugins").display().to_string(),
        "the project's plugin directory, not `pipelines/nested/.osiris/plugins`"
    );
    assert_eq!(row(&rows, "echo-user")["code"], "PLUGIN-E005");
    assert!(!p.loaded("osiris-test-echo"));

    // the project admits it: found and loaded from the subdirectory
    p.config(UNSIGNED_OK);
    let out = p.osiris_in(
        &sub,
        &["plugins", "list", "--load", "--format", "json"],
        &[],
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(row(&rows, ECHO)["status"], "loaded", "{rows:#?}");

    // `--config` still wins: another file, whose directory is then the project root
    let other = p.root.join("pipelines/strict.yaml");
    std::fs::write(
        &other,
        "plugins:\n  allowlist: []\n  allow_unsigned: true\n",
    )
    .unwrap();
    let out = p.osiris_in(
        &sub,
        &[
            "--config",
            other.to_str().unwrap(),
            "plugins",
            "list",
            "--format",
            "json",
        ],
        &[],
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(
        rows.iter().all(|r| r["name"] != ECHO),
        "`.osiris/plugins` of the --config file's directory is searched: {rows:#?}"
    );
    assert_eq!(row(&rows, "echo-user")["code"], "PLUGIN-E005");
}

/// Issue 13, finding 3: every relative path of osiris.yaml resolves against the project root when osiris runs
/// in a subdirectory: `plugins.dirs`, `compile.build_dir`, `run.logs_dir`, the connections file and the run
/// index.
#[test]
fn relative_paths_of_the_project_resolve_against_its_root_from_a_subdirectory() {
    let p = Project::new();
    p.config(
        "plugins:\n  allow_unsigned: true\n  dirs: [vendor/plugins]\ncompile:\n  build_dir: out/build\nrun:\n  logs_dir: out/logs\n",
    );
    package::write_package(&p.root.join("vendor/plugins/echo"), &echo_input()).unwrap();
    std::fs::write(
        p.root.join("osiris_connections.yaml"),
        "version: \"1.0\"\nconnections:\n  filesystem:\n    here:\n      default: true\n      base_dir: data\n",
    )
    .unwrap();
    let sub = p.root.join("pipelines");
    std::fs::create_dir_all(sub.join("data")).unwrap();
    std::fs::copy(
        repo_root().join("tests/data/run/orders.csv"),
        sub.join("data/orders.csv"),
    )
    .unwrap();
    std::fs::write(sub.join("echo.yaml"), echo_pipeline()).unwrap();

    let out = p.osiris_in(&sub, &["plugins", "list", "--format", "json"], &[]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let r = row(&rows, ECHO);
    assert_eq!(r["status"], "accepted", "{r:#}");
    assert_eq!(
        r["dir"].as_str().unwrap(),
        p.root.join("vendor/plugins").display().to_string()
    );

    let out = p.osiris_in(&sub, &["connections", "list", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("here"),
        "the project's connections file is read: {}",
        stdout(&out)
    );

    let out = p.osiris_in(&sub, &["compile", "echo.yaml"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        p.root.join("out/build/pipelines/LATEST").is_file(),
        "build_dir resolves against the project root"
    );
    assert!(!sub.join("out/build").exists());
    let out = p.osiris_in(&sub, &["run", "--last-compile"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        p.root.join("out/logs").is_dir(),
        "logs_dir resolves against the project root"
    );
    assert!(!sub.join("out/logs").exists());
    assert!(p.root.join(".osiris/index/runs.jsonl").is_file());
    assert!(p.loaded("osiris-test-echo"));

    // `plugins install` / `remove` default to the project's plugin directory
    let dist = p.root.join("dist/echo");
    package::write_package(&dist, &echo_input()).unwrap();
    let out = p.osiris_in(&sub, &["plugins", "install", dist.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        p.root
            .join(".osiris/plugins/osiris-test-echo/osiris-plugin.toml")
            .is_file()
    );
    assert!(!sub.join(".osiris").exists());
    let out = p.osiris_in(&sub, &["plugins", "remove", ECHO], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!p.root.join(".osiris/plugins/osiris-test-echo").exists());
}

/// Issue 13, finding 3: the machine policy holds for every project: its allowlist narrows the project's, its
/// `allow_unsigned: false` overrides a project's `true`, its keys are trusted everywhere and cannot be
/// redefined by a project, and `project_keys: false` ignores the project's keys.
#[test]
fn the_machine_policy_is_tightened_by_projects_but_never_loosened() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    // allowlist: the project allows everything, the machine only another plugin
    p.machine_policy("plugins:\n  allowlist: [\"corp-approved\"]\n");
    assert_refused(
        &p,
        ECHO,
        "PLUGIN-E005",
        &["machine policy", "machine-policy.yaml"],
    );
    // allow_unsigned: the project says true, the machine false
    p.machine_policy("plugins:\n  allow_unsigned: false\n");
    assert_refused(&p, ECHO, "PLUGIN-E006", &["not signed"]);
    let out = p.with_dir(&["plugins", "list"]);
    assert!(
        stderr(&out).contains("PLUGIN-W003")
            && stderr(&out).contains("allow_unsigned: true` is ignored"),
        "{}",
        stderr(&out)
    );

    // a machine key signs it: trusted in a project that lists no key at all
    let (key, public) = p.keygen("corp.key");
    p.sign(&dir, &key, "corp");
    p.machine_policy(&format!(
        "plugins:\n  allow_unsigned: false\n  trusted_keys:\n    - {{ id: corp, public_key: \"{public}\" }}\n"
    ));
    p.config("");
    assert_eq!(row(&p.plugins_list(), ECHO)["status"], "loaded");
    std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();

    // a project cannot redefine the machine's key id with its own key
    let (_, mallory) = p.keygen("mallory.key");
    p.config(&format!(
        "plugins:\n  trusted_keys:\n    - {{ id: corp, public_key: \"{mallory}\" }}\n"
    ));
    let out = p.with_dir(&["plugins", "list"]);
    assert!(
        stderr(&out).contains("defines a key with this id"),
        "{}",
        stderr(&out)
    );
    let out = p.with_dir(&["plugins", "list", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        row(&rows, ECHO)["signature"]["status"],
        "valid",
        "{rows:#?}"
    );

    // project_keys: false: only the machine's keys count
    std::fs::remove_dir_all(&dir).unwrap();
    let dir2 = package_echo(&p, "echo-b", |_| {});
    let (own, own_public) = p.keygen("own.key");
    p.sign(&dir2, &own, "own");
    p.config(&format!(
        "plugins:\n  trusted_keys:\n    - {{ id: own, public_key: \"{own_public}\" }}\n"
    ));
    assert_eq!(row(&p.plugins_list(), ECHO)["status"], "loaded");
    std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();
    p.machine_policy(&format!(
        "plugins:\n  project_keys: false\n  trusted_keys:\n    - {{ id: corp, public_key: \"{public}\" }}\n"
    ));
    assert_refused(&p, ECHO, "PLUGIN-E008", &["`own`"]);
}

/// Issue 13, findings 2 and 3: a component family a machine-policy key reserves (`families: [test]`) stays
/// reserved in every project: a project key listing the same family does not get it (PLUGIN-W003 says so), and the
/// project-signed plugin claiming `test.echo` is refused with PLUGIN-E019 before any of its code runs.
#[test]
fn a_project_key_cannot_take_a_family_the_machine_policy_reserves() {
    let p = Project::new();
    let dir = package_echo(&p, "echo", |_| {});
    let (_, corp) = p.keygen("corp.key");
    let (own, own_public) = p.keygen("own.key");
    p.sign(&dir, &own, "own");
    p.machine_policy(&format!(
        "plugins:\n  trusted_keys:\n{}",
        key_entry(&corp, "corp", Some("test-*"), Some("[test]"))
    ));
    p.config(&format!(
        "plugins:\n  trusted_keys:\n{}",
        key_entry(&own_public, "own", None, Some("[test]"))
    ));
    assert_refused(&p, ECHO, "PLUGIN-E019", &["test.echo"]);
    let out = p.with_dir(&["plugins", "list"]);
    assert!(
        stderr(&out).contains("PLUGIN-W003") && stderr(&out).contains("reserves"),
        "{}",
        stderr(&out)
    );
}

/// Issue 13, finding 3: a machine policy that cannot be read or parsed fails the command (exit 5) instead of
/// silently not applying.
#[test]
fn an_unreadable_or_invalid_machine_policy_fails_closed() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    p.machine_policy("plugins:\n  alow_unsigned: false\n");
    let out = p.with_dir(&["plugins", "list"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("CONF-E002")
            && err.contains("machine-policy.yaml")
            && err.contains("allow_unsigned"),
        "{err}"
    );
    let missing = p.root.join("nope.yaml");
    let env = [("OSIRIS_POLICY_FILE", missing.to_str().unwrap())];
    let out = p.osiris_in(&p.root, &["plugins", "list"], &env);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("CONF-E001"), "{}", stderr(&out));
    // commands that only need specs go on with the built-ins, and say why no plugin is available
    let dir = p.plugins.display().to_string();
    let out = p.osiris_in(
        &p.root,
        &[
            "components",
            "list",
            "--format",
            "json",
            "--plugin-dir",
            &dir,
        ],
        &env,
    );
    assert!(stderr(&out).contains("CONF-E001"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("test.echo"), "{}", stdout(&out));
    assert!(!p.loaded("osiris-test-echo"));
}

/// Builds, with the C compiler, `libosiris_test_dep.so` (its constructor writes `dep.loaded` into
/// `$OSIRIS_TEST_MARKER_DIR`) into `<dir>/lib`, and a plugin library `libosiris_test_deplugin.so` in `dir`
/// that needs it (`DT_NEEDED`), with `rpath` as its DT_RUNPATH when given. Returns the plugin library's path.
fn build_dep_plugin(dir: &Path, rpath: Option<&Path>) -> PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let src = dir.join("dep.c");
    std::fs::write(
        &src,
        r#"#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void mark(void) {
    const char *d = getenv("OSIRIS_TEST_MARKER_DIR");
    if (!d) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", d, MARKER);
    FILE *f = fopen(path, "a");
    if (f) { fputs("loaded\n", f); fclose(f); }
}
int osiris_test_dep_value(void) { return 42; }
"#,
    )
    .unwrap();
    let cc = |args: &[&str]| {
        let out = Command::new("cc").args(args).output().expect("cc runs");
        assert!(out.status.success(), "cc {args:?}: {}", stderr(&out));
    };
    let dep = lib.join("libosiris_test_dep.so");
    cc(&[
        "-shared",
        "-fPIC",
        "-DMARKER=\"dep.loaded\"",
        "-o",
        dep.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    let plugin_src = dir.join("plugin.c");
    std::fs::write(
        &plugin_src,
        "extern int osiris_test_dep_value(void);\nint osiris_ocp_test_deplugin(void) { return osiris_test_dep_value(); }\n",
    )
    .unwrap();
    let plugin = dir.join("libosiris_test_deplugin.so");
    let lflag = format!("-L{}", lib.display());
    let mut args = vec![
        "-shared",
        "-fPIC",
        "-o",
        plugin.to_str().unwrap(),
        plugin_src.to_str().unwrap(),
        lflag.as_str(),
        "-Wl,--no-as-needed",
        "-losiris_test_dep",
    ];
    let rflag = rpath.map(|r| format!("-Wl,-rpath,{}", r.display()));
    if let Some(r) = &rflag {
        args.push(r);
    }
    cc(&args);
    plugin
}

/// Packages and signs the dependency plugin with a key the project trusts (unsigned plugins refused).
fn package_dep_plugin(p: &Project, library: PathBuf) -> PathBuf {
    let spec = p.root.join("deplugin.spec.yaml");
    let echo_spec =
        std::fs::read_to_string(repo_root().join("tests/plugins/echo/spec.yaml")).unwrap();
    std::fs::write(&spec, echo_spec.replace("test.echo", "test.deplugin")).unwrap();
    let dir = package_echo(p, "deplugin", |i| {
        i.name = "osiris-test-deplugin".into();
        i.entry = "osiris_ocp_test_deplugin".into();
        i.library = library;
        i.specs = vec![("test.deplugin".into(), spec.clone())];
    });
    let (key, public) = p.keygen("dep.key");
    p.sign(&dir, &key, "dep");
    p.config(&trust_config(&public, "dep", None, true));
    dir
}

/// Issue 13, finding 5: a signed plugin whose library pulls in a non-system library (through its RUNPATH) is
/// refused with PLUGIN-E022 before `dlopen`: the dependency's constructor never runs, not even under `--load`
/// or in a run that uses the plugin.
#[test]
fn a_signed_plugin_with_a_bundled_dependency_is_refused_before_any_of_it_runs() {
    let p = Project::new();
    let build = p.root.join("native");
    let library = build_dep_plugin(&build, Some(&build.join("lib")));
    let dir = package_dep_plugin(&p, library);
    let rows = p.plugins_list();
    let r = row(&rows, "osiris-test-deplugin");
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert_eq!(r["code"], "PLUGIN-E022", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("DT_RUNPATH"),
        "{r:#}"
    );
    assert!(
        !p.markers.join("dep.loaded").exists(),
        "the dependency's constructor ran"
    );
    let out = p.osiris(&["plugins", "verify", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("PLUGIN-E022"), "{}", stdout(&out));
    let out = p.with_dir(&["plugins", "doctor", "--load"]);
    assert!(
        stdout(&out).contains("FAIL dependencies: PLUGIN-E022"),
        "{}",
        stdout(&out)
    );
    assert!(!p.markers.join("dep.loaded").exists());
}

/// Issue 13, finding 5: the same kind of plugin without an rpath, its dependency reachable only through
/// `LD_LIBRARY_PATH`: refused (the loader would take it from there), and its constructor never runs.
#[test]
fn a_dependency_found_through_ld_library_path_is_refused_before_it_runs() {
    let p = Project::new();
    let build = p.root.join("native");
    let library = build_dep_plugin(&build, None);
    package_dep_plugin(&p, library);
    let lib = build.join("lib").display().to_string();
    let dir = p.plugins.display().to_string();
    let out = p.osiris_in(
        &p.root,
        &[
            "plugins",
            "list",
            "--load",
            "--format",
            "json",
            "--plugin-dir",
            &dir,
        ],
        &[("LD_LIBRARY_PATH", &lib)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let r = row(&rows, "osiris-test-deplugin");
    assert_eq!(r["code"], "PLUGIN-E022", "{r:#}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("LD_LIBRARY_PATH") && reason.contains("libosiris_test_dep.so"),
        "{reason}"
    );
    assert!(
        !p.markers.join("dep.loaded").exists(),
        "the dependency's constructor ran"
    );
    // without LD_LIBRARY_PATH it is simply not a system library
    let rows = p.plugins_list();
    let r = row(&rows, "osiris-test-deplugin");
    assert_eq!(r["code"], "PLUGIN-E022", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("not a system library"),
        "{r:#}"
    );
}

/// Issue 21 (9): `osiris components list 2>&1 | head -1` with a refused plugin: the refusal printed on a stderr
/// whose reader had gone panicked ("failed printing to stderr", exit 1) instead of the command finishing with
/// its own exit code.
#[test]
fn a_refusal_printed_on_a_closed_stderr_keeps_the_exit_code() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    p.config("plugins:\n  require_signatures: true\n");
    let args = ["components", "list"];
    let open = p.with_dir(&args);
    assert_eq!(open.status.code(), Some(0), "{}", stderr(&open));
    assert!(stderr(&open).contains("PLUGIN-E006"), "{}", stderr(&open));
    let mut child = p
        .command(&p.root, &args)
        .args(["--plugin-dir", &p.plugins.display().to_string()])
        .spawn();
    // The reader of stderr goes before osiris writes to it.
    drop(child.stderr.take());
    let closed = child.wait_with_output();
    assert_eq!(closed.status.code(), Some(0), "{}", stdout(&closed));
    assert!(stdout(&closed).contains("filesystem.csv_extractor"));
}

/// Issue 15: `osiris --version` was checked to take under 2 s, standing for "does no work". Checked instead: where
/// `plugins list --load` loads a plugin found through `OSIRIS_PLUGIN_PATH` (its library marks the load), and next
/// to an osiris.yaml that does not parse and a machine policy that does not exist (either stops any other
/// command), `--version` loads nothing, reads neither, and prints the version alone.
#[test]
fn version_reads_no_project_or_policy_and_loads_no_plugin() {
    let p = Project::new();
    package_echo(&p, "echo", |_| {});
    let plugins = p.plugins.display().to_string();
    let policy = p.root.join("machine-policy.yaml");
    let missing_policy = p.root.join("no-such-policy.yaml");
    let run = |args: &[&str], policy: &Path| {
        p.command(&p.root, args)
            .plugin_path(&plugins)
            .policy_file(policy)
            .output()
    };
    let assert_version = |out: &Output| {
        assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
        assert_eq!(
            stdout(out),
            format!("osiris {}\n", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(stderr(out), "", "nothing on stderr");
        assert!(!p.loaded("osiris-test-echo"), "--version loaded a plugin");
    };

    let out = run(&["plugins", "list", "--load", "--format", "json"], &policy);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(p.loaded("osiris-test-echo"), "the setup shows a load");
    std::fs::remove_file(p.markers.join("osiris-test-echo.loaded")).unwrap();
    assert_version(&run(&["--version"], &policy));

    let out = run(&["plugins", "list"], &missing_policy);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-policy.yaml"),
        "{}",
        stderr(&out)
    );
    p.config("run: [\n");
    let out = run(&["plugins", "list"], &policy);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("osiris.yaml"), "{}", stderr(&out));
    assert_version(&run(&["--version"], &missing_policy));
}
