//! `osiris compile`, `osiris oml validate` and `osiris upgrade` through the binary.
//!
//! Golden files: `tests/data/compile/ok/<name>.yaml` compiles to the files under `ok/<name>/`;
//! `err/<name>.yaml` fails with exit 2 and the diagnostics in `err/<name>.stderr`. Optional `<name>.args` holds
//! extra command-line arguments, one per line. Refresh with `UPDATE_EXPECT=1`.

use crate::support::{osiris, repo_root};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data")
        .join(rel)
}

fn update() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1")
}

fn args_of(yaml: &Path) -> Vec<String> {
    let f = yaml.with_extension("args");
    std::fs::read_to_string(f)
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn yamls(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

fn compile_into(yaml: &Path, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let tmp = tempfile::tempdir().unwrap();
    let out = osiris(tmp.path())
        .arg("compile")
        .arg(yaml)
        .args(["--out", "out"])
        .args(args_of(yaml))
        .args(extra)
        .output();
    (tmp, out)
}

#[test]
fn golden_ok_pipelines_compile_to_the_expected_files() {
    let mut failures = Vec::new();
    for yaml in yamls("compile/ok") {
        let (tmp, out) = compile_into(&yaml, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            yaml.display(),
            show(&out)
        );
        assert_eq!(
            text(&out.stdout).trim(),
            "out",
            "the compile directory is printed on stdout"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("build/pipelines/LATEST")).unwrap(),
            "out"
        );
        let got = files(&tmp.path().join("out"));
        for (rel, bytes) in &got {
            let t = text(bytes);
            assert!(
                !t.contains(&*tmp.path().to_string_lossy()),
                "{rel} holds an absolute path"
            );
            assert!(
                !t.contains(env!("CARGO_MANIFEST_DIR")),
                "{rel} holds an absolute path"
            );
        }
        let expected_dir = yaml.with_extension("");
        if update() {
            let _ = std::fs::remove_dir_all(&expected_dir);
            for (rel, bytes) in &got {
                let p = expected_dir.join(rel);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, bytes).unwrap();
            }
            continue;
        }
        let want = if expected_dir.is_dir() {
            files(&expected_dir)
        } else {
            BTreeMap::new()
        };
        if want != got {
            let names: Vec<&String> = want.keys().chain(got.keys()).collect();
            let differing: Vec<&&String> = names
                .iter()
                .filter(|n| want.get(**n) != got.get(**n))
                .collect();
            failures.push(format!("{}: files differ: {differing:?}", yaml.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(refresh with UPDATE_EXPECT=1 if the change is intended)",
        failures.join("\n")
    );
}

#[test]
fn golden_err_pipelines_report_every_problem() {
    let mut failures = Vec::new();
    let dir = data("compile/err");
    for yaml in yamls("compile/err") {
        let name = yaml.file_name().unwrap().to_string_lossy().to_string();
        let out = osiris(&dir)
            .arg("compile")
            .arg(&name)
            .args(args_of(&yaml))
            .output();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", show(&out));
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing on stdout on failure: {}",
            show(&out)
        );
        let stderr = text(&out.stderr);
        // `oml validate` runs the same checks and prints the same diagnostics.
        let v = osiris(&dir)
            .args(["oml", "validate"])
            .arg(&name)
            .args(args_of(&yaml))
            .output();
        assert_eq!(v.status.code(), Some(2), "{name}: {}", show(&v));
        assert_eq!(
            format!("{}\n{}", text(&v.stderr).trim_end(), text(&v.stdout)),
            stderr,
            "{name}: validate and compile differ"
        );
        let expected = yaml.with_extension("stderr");
        if update() {
            std::fs::write(&expected, &stderr).unwrap();
        } else if std::fs::read_to_string(&expected).unwrap_or_default() != stderr {
            failures.push(format!("{name}: diagnostics differ:\n{stderr}"));
        }
    }
    assert!(
        !dir.join("build").exists(),
        "a failed compile writes nothing"
    );
    assert!(
        failures.is_empty(),
        "{}\n(refresh with UPDATE_EXPECT=1 if the change is intended)",
        failures.join("\n")
    );
}

#[test]
fn output_is_byte_identical_across_runs_directories_and_key_order() {
    let yaml = data("compile/ok/csv_duckdb_csv.yaml");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(b.path().join("nested/deeper")).unwrap();
    let run = |cwd: &Path, file: &Path| {
        let o = osiris(cwd).arg("compile").arg(file).output();
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let rel = text(&o.stdout).trim().to_string();
        assert!(
            rel.starts_with("build/pipelines/default/orders-summary/"),
            "{rel}"
        );
        assert_eq!(
            std::fs::read_to_string(cwd.join("build/pipelines/LATEST")).unwrap(),
            rel
        );
        (rel.clone(), files(&cwd.join(&rel)))
    };
    let first = run(a.path(), &yaml);
    let again = run(a.path(), &yaml);
    let elsewhere = run(&b.path().join("nested/deeper"), &yaml);
    let reordered = run(b.path(), &data("compile/determinism/orders_reordered.yaml"));
    assert_eq!(first, again);
    assert_eq!(first, elsewhere);
    assert_eq!(first, reordered);
    let name = first.0.rsplit('/').next().unwrap().to_string();
    let (short, hash) = name.split_once('-').unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(&hash[..7], short);
    let manifest = text(&first.1["manifest.yaml"]);
    assert!(
        manifest.contains(&format!("manifest_hash: {hash}")),
        "{manifest}"
    );
    assert!(!manifest.contains("generated_at"));
}

/// Compact canonical JSON as ADR 0004 defines it (keys sorted by code point, no whitespace), written here
/// independently of the compiler's own code.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&m[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        scalar => scalar.to_string(),
    }
}

fn sha256_hex(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(canonical(v).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256:<hex>` of the canonical JSON of `v`: every fingerprint of ADR 0004.
fn fingerprint(v: &Value) -> String {
    format!("sha256:{}", sha256_hex(v))
}

/// A YAML file as JSON.
fn yaml_file(path: &Path) -> Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Issue 15: the hashes of a compile, recomputed from ADR 0004's formulas and the compiled files themselves
/// (plus the pipeline and the specs it uses) instead of compared with earlier output only: `manifest_hash` (and
/// `manifest_short`, `manifest_fp`), `compiler_fp`, `registry_fp`, `oml_fp` and `params_fp`, for every golden
/// pipeline.
#[test]
fn every_fingerprint_follows_the_formula_of_adr_0004() {
    for yaml in yamls("compile/ok") {
        let name = yaml.file_name().unwrap().to_string_lossy().to_string();
        let (tmp, out) = compile_into(&yaml, &[]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", show(&out));
        let dir = tmp.path().join("out");
        let manifest = yaml_file(&dir.join("manifest.yaml"));
        let meta = &manifest["meta"];
        let fps = &manifest["pipeline"]["fingerprints"];
        let files =
            serde_json::from_slice::<Value>(&std::fs::read(dir.join("fingerprints.json")).unwrap())
                .unwrap()["fingerprints"]
                .clone();

        // manifest_hash: {"manifest": <manifest without its two hash fields>, "cfg": {<step id>: <cfg>}}.
        let mut hashed = manifest.clone();
        let hashed_meta = hashed["meta"].as_object_mut().unwrap();
        assert!(hashed_meta.remove("manifest_hash").is_some(), "{name}");
        assert!(hashed_meta.remove("manifest_short").is_some(), "{name}");
        let steps = manifest["steps"].as_array().unwrap();
        let cfg: serde_json::Map<String, Value> = steps
            .iter()
            .map(|s| {
                let path = dir.join(s["cfg_path"].as_str().unwrap());
                let text = std::fs::read_to_string(&path).unwrap();
                let value: Value = serde_json::from_str(&text).unwrap();
                (s["id"].as_str().unwrap().to_string(), value)
            })
            .collect();
        assert_eq!(
            std::fs::read_dir(dir.join("cfg")).unwrap().count(),
            cfg.len(),
            "{name}: one cfg file per step, each hashed"
        );
        let hash = sha256_hex(&json!({"manifest": hashed, "cfg": cfg}));
        assert_eq!(meta["manifest_hash"], hash.as_str(), "{name}");
        assert_eq!(meta["manifest_short"], &hash[..7], "{name}");
        assert_eq!(files["manifest_fp"], format!("sha256:{hash}"), "{name}");

        // compiler_fp: {"compiler": "osiris/<version>", "manifest": "osiris.v1"}.
        assert_eq!(
            meta["compiler"],
            concat!("osiris/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(manifest["apiVersion"], "osiris.v1");
        let compiler_fp =
            fingerprint(&json!({"compiler": meta["compiler"], "manifest": manifest["apiVersion"]}));
        assert_eq!(fps["compiler_fp"], compiler_fp.as_str(), "{name}");

        // registry_fp: {"components": {name: {"version", "fingerprint"}}} of the components used, where
        // `fingerprint` is that of the spec.
        let components: serde_json::Map<String, Value> = steps
            .iter()
            .map(|s| {
                let component = s["component"].as_str().unwrap();
                let spec =
                    yaml_file(&repo_root().join(format!("components/{component}/spec.yaml")));
                let entry = json!({"version": spec["version"], "fingerprint": fingerprint(&spec)});
                (component.to_string(), entry)
            })
            .collect();
        assert_eq!(
            fps["registry_fp"],
            fingerprint(&json!({ "components": components })),
            "{name}"
        );

        // oml_fp: the pipeline as parsed, parameters substituted (`params`/`profiles` as written); params_fp:
        // the effective parameters. Only params_profiles has parameters: `--profile prod --param
        // since=2025-06-01` (params_profiles.args) over the OML defaults.
        let mut oml = yaml_file(&yaml);
        let params = if name == "params_profiles.yaml" {
            let params = json!({"since": "2025-06-01", "limit": 100000, "region": "eu", "out_dir": "/srv/exports"});
            let steps = oml["steps"].as_array_mut().unwrap();
            steps[0]["config"] = json!({
                "connection": "@mysql.eu",
                "query": "SELECT * FROM orders WHERE created_at >= '2025-06-01' AND region = 'eu' LIMIT 100000",
                "batch_size": 100000,
            });
            steps[1]["config"] = json!({"path": "/srv/exports/orders_eu.csv"});
            params
        } else {
            assert!(
                oml.get("params").is_none(),
                "{name}: parameters to substitute here"
            );
            json!({})
        };
        assert_eq!(fps["oml_fp"], fingerprint(&oml), "{name}");
        assert_eq!(fps["params_fp"], fingerprint(&params), "{name}");

        for fp in ["oml_fp", "params_fp", "registry_fp", "compiler_fp"] {
            assert_eq!(
                files[fp], fps[fp],
                "{name}: fingerprints.json and the manifest agree on {fp}"
            );
        }
    }
}

#[test]
fn params_follow_their_precedence() {
    let yaml = data("compile/ok/params_profiles.yaml");
    let cfg = |extra: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = osiris(tmp.path())
            .arg("compile")
            .arg(&yaml)
            .args(["--out", "out"])
            .args(extra);
        for (k, v) in env {
            c = c.env(k, v);
        }
        let o = c.output();
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        serde_json::from_slice(&std::fs::read(tmp.path().join("out/cfg/extract.json")).unwrap())
            .unwrap()
    };
    let q = |v: &serde_json::Value| v["query"].as_str().unwrap().to_string();
    let d = cfg(&[], &[]);
    assert!(q(&d).ends_with("LIMIT 100"), "{d}");
    assert_eq!(
        d["batch_size"], 100,
        "a whole-value placeholder keeps the type of the value"
    );
    let env = cfg(
        &[],
        &[("OSIRIS_PARAM_limit", "7"), ("OSIRIS_PARAM_REGION", "us")],
    );
    assert!(q(&env).ends_with("region = 'us' LIMIT 7"), "{env}");
    assert_eq!(env["connection"], "@mysql.us");
    let profile = cfg(&["--profile", "prod"], &[("OSIRIS_PARAM_limit", "7")]);
    assert!(
        q(&profile).ends_with("LIMIT 100000"),
        "profile beats env: {profile}"
    );
    let cli = cfg(
        &["--profile", "prod", "--param", "limit=5"],
        &[("OSIRIS_PARAM_limit", "7")],
    );
    assert!(q(&cli).ends_with("LIMIT 5"), "--param beats all: {cli}");
    let tmp = tempfile::tempdir().unwrap();
    let o = osiris(tmp.path())
        .arg("compile")
        .arg(&yaml)
        .args(["--param", "limit=ten"])
        .output();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(text(&o.stderr).contains("OML-E052"), "{}", show(&o));
    let o = osiris(tmp.path())
        .arg("compile")
        .arg(&yaml)
        .args(["--profile", "staging"])
        .output();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("OML-E053") && text(&o.stderr).contains("prod"),
        "{}",
        show(&o)
    );
}

#[test]
fn validation_mode_flag_beats_env_beats_project_config() {
    let yaml = data("oml/config_warnings.yaml");
    let tmp = tempfile::tempdir().unwrap();
    let check = |extra: &[&str], env: Option<&str>| -> (i32, String) {
        let mut c = osiris(tmp.path())
            .args(["oml", "validate"])
            .arg(&yaml)
            .args(extra);
        if let Some(e) = env {
            c = c.env("OSIRIS_VALIDATION", e);
        }
        let o = c.output();
        (o.status.code().unwrap(), text(&o.stderr))
    };
    let (code, err) = check(&[], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning[OML-W026]") && err.contains("config_warnings.yaml:12:7"),
        "{err}"
    );
    assert_eq!(check(&[], Some("strict")).0, 2);
    assert_eq!(check(&["--mode", "warn"], Some("strict")).0, 0);
    let (code, err) = check(&["--mode", "off"], None);
    assert_eq!((code, err.as_str()), (0, ""));
    std::fs::write(
        tmp.path().join("osiris.yaml"),
        "validation:\n  mode: strict\n",
    )
    .unwrap();
    let (code, err) = check(&[], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("error[OML-E026]"), "{err}");
    assert_eq!(check(&[], Some("warn")).0, 0, "env beats osiris.yaml");
    assert_eq!(
        check(&[], Some("loud")).0,
        2,
        "an invalid OSIRIS_VALIDATION is a usage error"
    );
    // Issue 21: a config the component's schema refuses is an error in warn mode too; only off skips it.
    let errors = data("oml/config_errors.yaml");
    for mode in ["warn", "strict"] {
        let o = osiris(tmp.path())
            .args(["oml", "validate"])
            .arg(&errors)
            .args(["--mode", mode])
            .output();
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{mode}: {err}");
        assert!(
            err.contains("error[OML-E022]") && err.contains("config_errors.yaml:10:17"),
            "{mode}: {err}"
        );
        assert!(!err.contains("OML-W022"), "{err}");
    }
    let o = osiris(tmp.path())
        .args(["oml", "validate"])
        .arg(&errors)
        .args(["--mode", "off"])
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // Inline secrets are errors in every mode, and their values are never printed.
    for mode in ["off", "warn", "strict"] {
        let o = osiris(data("compile/err"))
            .args(["oml", "validate", "inline_secrets.yaml", "--mode", mode])
            .output();
        let all = show(&o);
        assert_eq!(o.status.code(), Some(2), "{all}");
        assert!(all.contains("OML-E040"), "{all}");
        for secret in ["s3cr3t-Pa55", "eyJhbGciOiJIUzI1NiJ9", "AKIA1234567890"] {
            assert!(!all.contains(secret), "secret shown in mode {mode}: {all}");
        }
    }
}

#[test]
fn json_diagnostics_are_data() {
    let o = osiris(data("compile/err"))
        .args([
            "oml",
            "validate",
            "cycle.yaml",
            "unknown_needs.yaml",
            "--format",
            "json",
        ])
        .output();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let d = &v["files"][0]["diagnostics"][0];
    assert_eq!(v["files"][0]["file"], "cycle.yaml");
    assert_eq!(d["code"], "OML-E031");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(7), Some(5))
    );
    assert_eq!(d["step"], "a");
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("`a` -> `b` -> `c` -> `a`")
    );
    assert!(d["help"].is_string());
    assert_eq!(v["files"][1]["errors"], 2);

    let tmp = tempfile::tempdir().unwrap();
    let o = osiris(tmp.path())
        .arg("compile")
        .arg(data("compile/ok/seeds_data_flow.yaml"))
        .args(["--format", "json"])
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["warnings"], 1);
    assert_eq!(v["diagnostics"][0]["code"], "OML-W017");
    let dir = v["dir"].as_str().unwrap();
    assert!(tmp.path().join(dir).join("manifest.yaml").is_file());
    assert_eq!(&dir[dir.len() - 64..], v["manifest_hash"].as_str().unwrap());
}

#[test]
fn no_secret_value_reaches_compiled_files() {
    let tmp = tempfile::tempdir().unwrap();
    let o = osiris(tmp.path())
        .arg("compile")
        .arg(data("oml/env_secrets.yaml"))
        .args(["--out", "out", "--mode", "strict"])
        .env("MYSQL_PASSWORD", "TopSecret-4711")
        .env("MYSQL_USER", "reader-4711")
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let all = files(&tmp.path().join("out"));
    for (rel, bytes) in &all {
        assert!(!text(bytes).contains("4711"), "{rel} holds a secret");
    }
    let cfg: serde_json::Value = serde_json::from_slice(&all["cfg/extract.json"]).unwrap();
    assert_eq!(
        cfg["password"], "${MYSQL_PASSWORD}",
        "references stay references"
    );

    let o = osiris(tmp.path())
        .arg("compile")
        .arg(data("compile/ok/mysql_duckdb_supabase.yaml"))
        .args(["--out", "out2"])
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let cfg: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("out2/cfg/write_users.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["connection"], "@supabase.main");
    for field in ["key", "password", "service_role_key", "host", "user"] {
        assert!(
            cfg.get(field).is_none(),
            "connection field `{field}` must not be materialised: {cfg}"
        );
    }
}

#[test]
fn an_unwritable_output_directory_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("blocker"), "a file, not a directory").unwrap();
    let o = osiris(tmp.path())
        .arg("compile")
        .arg(data("compile/ok/csv_duckdb_csv.yaml"))
        .args(["--out", "blocker/out"])
        .output();
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("OML-E060") && text(&o.stderr).contains("blocker/out"),
        "{}",
        show(&o)
    );
    let o = osiris(tmp.path())
        .arg("compile")
        .arg("missing.yaml")
        .output();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(text(&o.stderr).contains("OML-E001"), "{}", show(&o));
}

#[test]
fn upgrade_rewrites_old_forms_once() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("legacy.yaml");
    let original = std::fs::read_to_string(data("oml/legacy_pipeline.yaml")).unwrap();
    std::fs::write(&f, &original).unwrap();

    let before = osiris(tmp.path())
        .args(["compile", "legacy.yaml", "--mode", "strict"])
        .output();
    assert_eq!(
        before.status.code(),
        Some(2),
        "the old form does not compile strictly: {}",
        show(&before)
    );

    let dry = osiris(tmp.path()).args(["upgrade", "legacy.yaml"]).output();
    assert_eq!(dry.status.code(), Some(0), "{}", show(&dry));
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        original,
        "without --write the file is left alone"
    );
    let diff = text(&dry.stdout);
    assert!(
        diff.contains("-    depends_on: [extract-orders]\n+    needs: [extract-orders]\n"),
        "{diff}"
    );
    assert!(
        diff.contains(
            "+        FROM df_extract_orders   -- the predecessor's name for the single input\n"
        ),
        "{diff}"
    );
    assert!(
        diff.contains("-    mode: extract\n+    mode: read\n"),
        "{diff}"
    );
    assert!(
        diff.contains("-    mode: load\n+    mode: write\n"),
        "{diff}"
    );

    let w = osiris(tmp.path())
        .args(["upgrade", "legacy.yaml", "--write"])
        .output();
    assert_eq!(w.status.code(), Some(0), "{}", show(&w));
    let upgraded = std::fs::read_to_string(&f).unwrap();
    assert!(
        upgraded.contains("# Written for the predecessor"),
        "comments stay"
    );

    let again = osiris(tmp.path())
        .args(["upgrade", "legacy.yaml", "--write"])
        .output();
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
    assert!(again.stdout.is_empty(), "{}", show(&again));
    assert!(text(&again.stderr).contains("nothing to upgrade"));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), upgraded, "idempotent");

    let after = osiris(tmp.path())
        .args(["compile", "legacy.yaml", "--mode", "strict"])
        .output();
    assert_eq!(after.status.code(), Some(0), "{}", show(&after));
    assert!(
        after.stderr.iter().all(|b| *b != b'['),
        "no diagnostics left: {}",
        show(&after)
    );
}

/// A project on a throw-away PostgreSQL database, with `data/orders.csv` (20 rows) and table `t` holding one
/// row, for the pipelines of issue 21 below.
fn orders_to_postgres() -> Option<(crate::dbutil::PgDb, tempfile::TempDir)> {
    use crate::dbutil::{PG_PORT, PgDb, project, server};
    if !server(
        "PostgreSQL",
        PG_PORT,
        "issue 21: config errors stop the run",
    ) {
        return None;
    }
    let pg = PgDb::new();
    pg.sql("CREATE TABLE t (id bigint, customer text, amount numeric, created_at text); INSERT INTO t VALUES (0, 'before', 0, '')");
    let p = project(Some(&pg), None);
    std::fs::create_dir_all(p.path().join("data")).unwrap();
    std::fs::copy(data("run/orders.csv"), p.path().join("data/orders.csv")).unwrap();
    Some((pg, p))
}

/// Runs `oml validate`, `compile` and `run` on `file` in every mode that checks configs, and asserts that each
/// refuses it with exit 2 and an OML-E022 naming all of `wants`.
fn refused_everywhere(dir: &Path, file: &str, wants: &[&str]) {
    for mode in [None, Some("warn"), Some("strict")] {
        for cmd in [&["oml", "validate"][..], &["compile"], &["run"]] {
            let mut args: Vec<&str> = cmd.to_vec();
            args.push(file);
            if let Some(m) = mode {
                args.extend(["--mode", m]);
            }
            let o = osiris(dir).args(&args).output();
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
            assert!(err.contains("error[OML-E022]"), "{args:?}: {err}");
            for w in wants {
                assert!(err.contains(w), "{args:?}: `{w}` in\n{err}");
            }
        }
    }
}

/// Issue 21: `write_mod: replace` (meant `write_mode`) on postgres.writer, whose schema allows no other field,
/// ran with warning OML-W022 and appended instead of replacing. It is an error with the did-you-mean in every
/// mode that checks, for `oml validate`, `compile` and `run`, and nothing is written.
#[test]
fn an_unknown_config_field_is_refused_and_nothing_is_written() {
    let Some((pg, p)) = orders_to_postgres() else {
        return;
    };
    std::fs::write(
        p.path().join("p.yaml"),
        r#"oml_version: "0.1.0"
name: typo
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: load
    component: postgres.writer
    mode: write
    config:
      connection: "@postgres.local"
      table: t
      write_mod: replace
"#,
    )
    .unwrap();
    refused_everywhere(
        p.path(),
        "p.yaml",
        &[
            "p.yaml:15:7",
            "unknown field `write_mod`",
            "did you mean `write_mode`?",
        ],
    );
    assert_eq!(
        pg.sql("SELECT count(*) || ':' || min(customer) FROM t"),
        "1:before"
    );
    assert!(!p.path().join("run_logs").exists(), "no run started");
    assert!(!p.path().join("build").exists(), "nothing compiled");
}

/// Issue 21: a missing required field, a value of the wrong type and a value out of range in a csv_writer
/// validated as "ok, 1 warning", and the run failed only after an upstream postgres.writer had committed its
/// rows. Each is an error before any step runs: the table is unchanged and no file is written.
#[test]
fn schema_violations_stop_the_run_before_an_upstream_writer_commits() {
    let Some((pg, p)) = orders_to_postgres() else {
        return;
    };
    for (what, config, wants) in [
        (
            "missing",
            "      create_dirs: true\n",
            &["p_missing.yaml:20:5", "missing required field `path`"][..],
        ),
        (
            "type",
            "      path: out/orders.csv\n      header: no\n",
            &["p_type.yaml:22:15", "`header`", "boolean"],
        ),
        (
            "length",
            "      path: out/orders.csv\n      delimiter: \";;\"\n",
            &["p_length.yaml:22:18", "`delimiter`"],
        ),
    ] {
        let file = format!("p_{what}.yaml");
        std::fs::write(
            p.path().join(&file),
            format!(
                r#"oml_version: "0.1.0"
name: bad-{what}
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.local"
      table: t
  - id: export
    component: filesystem.csv_writer
    mode: write
    needs: [extract]
    config:
{config}"#
            ),
        )
        .unwrap();
        refused_everywhere(p.path(), &file, wants);
        assert_eq!(
            pg.sql("SELECT count(*) || ':' || min(customer) FROM t"),
            "1:before",
            "{what}: the upstream writer did not run"
        );
        assert!(!p.path().join("out").exists(), "{what}: no file written");
        assert!(
            !p.path().join("run_logs").exists(),
            "{what}: no run started"
        );
    }
}
