//! `osiris-compiler`: OML plan -> run manifest: `manifest.yaml`, `cfg/<step>.json`, `plan.json`,
//! `fingerprints.json`. Depends on `osiris-core`, `osiris-registry` and `osiris-oml`; may not run anything,
//! read the environment or print.
//!
//! See docs/adr/0004-manifest-and-fingerprints.md for the format and what each fingerprint covers.
//!
//! Invariant: [`build`] is a pure function of the plan: no clock, no working directory, no environment, no
//! hash-map order; every map on the way to the output is sorted. The same plan gives the same bytes.
//! Invariant: cfg files carry `connection: "@family.alias"` references, never connection fields resolved
//! from a connection; inline secrets never get this far (the validator rejects them).

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod canonical;

use osiris_core::exit::{Exit, Fail};
use osiris_oml::Plan;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const API_VERSION: &str = "osiris.v1";
pub const COMPILER: &str = concat!("osiris/", env!("CARGO_PKG_VERSION"));

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    pipeline: PipelineSection<'a>,
    meta: Meta<'a>,
    steps: Vec<StepSection<'a>>,
}

#[derive(Serialize)]
struct PipelineSection<'a> {
    id: &'a str,
    name: &'a str,
    version: &'a str,
    fingerprints: Fingerprints,
}

#[derive(Serialize, Clone)]
pub struct Fingerprints {
    pub oml_fp: String,
    pub params_fp: String,
    pub registry_fp: String,
    pub compiler_fp: String,
}

#[derive(Serialize)]
struct Meta<'a> {
    oml_version: &'a str,
    profile: &'a str,
    compiler: &'a str,
    manifest_hash: String,
    manifest_short: String,
}

#[derive(Serialize)]
struct StepSection<'a> {
    id: &'a str,
    component: &'a str,
    driver: &'a str,
    mode: &'a str,
    cfg_path: String,
    needs: &'a [String],
    inputs: &'a BTreeMap<String, String>,
}

/// The compiled files, by path relative to the compile directory.
#[derive(Debug, Clone)]
pub struct Output {
    pub slug: String,
    pub profile: String,
    pub manifest_hash: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Output {
    /// `pipelines/<profile>/<slug>/<hash[:7]>-<hash>` under the build directory.
    pub fn default_dir(&self, build_dir: &Path) -> PathBuf {
        build_dir
            .join("pipelines")
            .join(&self.profile)
            .join(&self.slug)
            .join(format!(
                "{}-{}",
                &self.manifest_hash[..7],
                self.manifest_hash
            ))
    }
}

/// Pipeline name -> directory-safe id: lower case, runs of other characters become one `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s = out.trim_matches('-').to_string();
    if s.is_empty() {
        "pipeline".to_string()
    } else {
        s
    }
}

/// The fingerprints of a plan.
pub fn fingerprints(plan: &Plan) -> Fingerprints {
    let components: BTreeMap<&str, Value> = plan
        .components
        .iter()
        .map(|(name, (version, fp))| {
            (
                name.as_str(),
                json!({"version": version, "fingerprint": fp}),
            )
        })
        .collect();
    Fingerprints {
        oml_fp: canonical::fingerprint(&plan.resolved_oml),
        params_fp: canonical::fingerprint(
            &serde_json::to_value(&plan.params).expect("params serialize"),
        ),
        registry_fp: canonical::fingerprint(&json!({ "components": components })),
        compiler_fp: canonical::fingerprint(
            &json!({ "compiler": COMPILER, "manifest": API_VERSION }),
        ),
    }
}

/// One step's cfg file content: `{component, ...config}`. The step's component mode lives in the manifest only,
/// so a config field named `mode` (as `mysql.writer` has) reaches the driver untouched.
pub fn cfg_value(step: &osiris_oml::PlannedStep) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("component".into(), Value::String(step.component.clone()));
    for (k, v) in &step.config {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

/// Builds every output file of a plan in memory.
pub fn build(plan: &Plan) -> Output {
    let slug = slug(&plan.name);
    let fps = fingerprints(plan);
    let cfgs: BTreeMap<String, Value> = plan
        .steps
        .iter()
        .map(|s| (s.id.clone(), cfg_value(s)))
        .collect();
    let steps: Vec<StepSection<'_>> = plan
        .steps
        .iter()
        .map(|s| StepSection {
            id: &s.id,
            component: &s.component,
            driver: &s.driver,
            mode: &s.mode,
            cfg_path: format!("cfg/{}.json", s.id),
            needs: &s.needs,
            inputs: &s.inputs,
        })
        .collect();
    let mut manifest = Manifest {
        api_version: API_VERSION,
        kind: "RunManifest",
        pipeline: PipelineSection {
            id: &slug,
            name: &plan.name,
            version: &plan.oml_version,
            fingerprints: fps.clone(),
        },
        meta: Meta {
            oml_version: &plan.oml_version,
            profile: &plan.profile,
            compiler: COMPILER,
            manifest_hash: String::new(),
            manifest_short: String::new(),
        },
        steps,
    };
    // The hash covers the manifest without its own hash fields, and every cfg file.
    let mut hashed = serde_json::to_value(&manifest).expect("manifest serializes");
    if let Some(meta) = hashed.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("manifest_hash");
        meta.remove("manifest_short");
    }
    let hash = canonical::sha256_hex(
        canonical::compact(&json!({"manifest": hashed, "cfg": cfgs})).as_bytes(),
    );
    manifest.meta.manifest_hash = hash.clone();
    manifest.meta.manifest_short = hash[..7].to_string();

    let mut files = BTreeMap::new();
    let yaml = serde_yaml::to_string(&manifest).expect("manifest serializes");
    files.insert("manifest.yaml".to_string(), yaml.into_bytes());
    for (id, cfg) in &cfgs {
        files.insert(
            format!("cfg/{id}.json"),
            canonical::pretty(cfg).into_bytes(),
        );
    }
    let plan_json = json!({
        "pipeline": slug,
        "steps": plan.steps.iter().map(|s| json!({"id": s.id, "driver": s.driver, "component": s.component, "mode": s.mode, "needs": s.needs})).collect::<Vec<_>>(),
    });
    files.insert(
        "plan.json".to_string(),
        canonical::pretty(&plan_json).into_bytes(),
    );
    let fp_json = json!({"fingerprints": {
        "oml_fp": fps.oml_fp, "params_fp": fps.params_fp, "registry_fp": fps.registry_fp, "compiler_fp": fps.compiler_fp,
        "manifest_fp": format!("sha256:{hash}"), "profile": plan.profile,
    }});
    files.insert(
        "fingerprints.json".to_string(),
        canonical::pretty(&fp_json).into_bytes(),
    );
    Output {
        slug,
        profile: plan.profile.clone(),
        manifest_hash: hash,
        files,
    }
}

/// Writes the files into `dir` (created if needed). Stale `cfg/*.json` files from an earlier compile into the
/// same directory are removed. `shown` is how the directory is named in messages.
pub fn write(out: &Output, dir: &Path, shown: &str) -> Result<(), Fail> {
    let fail = |what: &str, path: &str, e: std::io::Error| {
        Fail::new(
            Exit::Compile,
            format!(
                "error[OML-E060]: cannot {what} `{path}`: {e}\n   = help: choose a writable output directory with --out DIR, or fix the permissions of `{shown}`"
            ),
        )
    };
    std::fs::create_dir_all(dir.join("cfg"))
        .map_err(|e| fail("create the output directory", shown, e))?;
    if let Ok(entries) = std::fs::read_dir(dir.join("cfg")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".json") && !out.files.contains_key(&format!("cfg/{name}")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for (rel, bytes) in &out.files {
        let path = dir.join(rel);
        write_atomic(&path, bytes).map_err(|e| fail("write", &format!("{shown}/{rel}"), e))?;
    }
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`, so that a reader (a run of
/// the same pipeline started at the same moment, which compiles to the same directory) sees the old file or
/// the new one, never a half-written one.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Records `dir` (as shown relative to the project directory) in `<build_dir>/pipelines/LATEST`.
pub fn write_latest(build_dir: &Path, dir_shown: &str) -> Result<(), Fail> {
    let pipelines = build_dir.join("pipelines");
    let shown = pipelines.join("LATEST");
    std::fs::create_dir_all(&pipelines)
        .and_then(|_| write_atomic(&shown, dir_shown.as_bytes()))
        .map_err(|e| {
            Fail::new(
                Exit::Compile,
                format!("error[OML-E060]: cannot write `{}`: {e}\n   = help: make the build directory writable", shown.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use osiris_oml::Mode;
    use osiris_oml::check::tests::run;

    const OML: &str = r#"oml_version: "0.1.0"
name: Orders Summary!
steps:
  - id: extract-orders
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", table: orders}
  - id: aggregate
    component: duckdb.processor
    mode: transform
    config: {query: "SELECT 1 FROM df"}
  - id: write-summary
    component: filesystem.csv_writer
    mode: write
    config: {path: out.csv}
"#;

    #[test]
    fn slugs() {
        assert_eq!(slug("Orders Summary!"), "orders-summary");
        assert_eq!(slug("mysql_to_supabase"), "mysql-to-supabase");
        assert_eq!(slug("***"), "pipeline");
    }

    #[test]
    fn builds_the_manifest_in_the_agreed_shape() {
        let plan = run(OML, Mode::Strict, &[]).plan.unwrap();
        let out = build(&plan);
        let manifest = String::from_utf8(out.files["manifest.yaml"].clone()).unwrap();
        let keys: Vec<&str> = manifest
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["apiVersion", "kind", "pipeline", "meta", "steps"],
            "{manifest}"
        );
        assert!(
            manifest.contains("  id: orders-summary\n  name: Orders Summary!\n"),
            "{manifest}"
        );
        assert!(
            manifest.contains(&format!("manifest_short: {}", &out.manifest_hash[..7])),
            "{manifest}"
        );
        let cfg = String::from_utf8(out.files["cfg/extract-orders.json"].clone()).unwrap();
        assert_eq!(
            cfg,
            "{\n  \"batch_size\": 10000,\n  \"component\": \"mysql.extractor\",\n  \"connection\": \"@mysql.default\",\n  \"table\": \"orders\"\n}\n"
        );
        assert_eq!(
            out.default_dir(Path::new("build")),
            Path::new(&format!(
                "build/pipelines/default/orders-summary/{}-{}",
                &out.manifest_hash[..7],
                out.manifest_hash
            ))
        );
        let parsed: serde_json::Value = serde_yaml::from_str(&manifest).unwrap();
        assert_eq!(
            parsed["steps"][1]["inputs"],
            json!({"df": "extract-orders", "df_extract_orders": "extract-orders"})
        );
        assert_eq!(parsed["steps"][2]["needs"], json!(["aggregate"]));
    }

    fn registry_with_duckdb(duckdb_spec: &str) -> osiris_registry::Registry {
        use osiris_registry::{Registry, Source};
        let mut reg = Registry::default();
        for (label, text) in [
            (
                "components/filesystem.csv_extractor/spec.yaml",
                include_str!("../../../../components/filesystem.csv_extractor/spec.yaml"),
            ),
            (
                "components/filesystem.csv_writer/spec.yaml",
                include_str!("../../../../components/filesystem.csv_writer/spec.yaml"),
            ),
            ("components/duckdb.processor/spec.yaml", duckdb_spec),
        ] {
            reg.load_spec_text(label, text, Source::Builtin)
                .unwrap_or_else(|e| panic!("{label}: {e:?}"));
        }
        reg
    }

    #[test]
    fn editing_a_used_spec_changes_the_registry_fingerprint_and_the_hash() {
        const PIPE: &str = "oml_version: \"0.1.0\"\nname: p\nsteps:\n  - id: e\n    component: filesystem.csv_extractor\n    mode: read\n    config: {path: a.csv}\n  - id: t\n    component: duckdb.processor\n    mode: transform\n    config: {query: SELECT 1}\n";
        let original = include_str!("../../../../components/duckdb.processor/spec.yaml");
        let edited = original.replacen("title:", "title: Edited", 1);
        assert_ne!(original, edited);
        let env = |_: &str| None;
        let opts = osiris_oml::Options {
            mode: Mode::Strict,
            profile: "default",
            profile_explicit: false,
            params: &[],
            env: &env,
        };
        let a = osiris_oml::check("p.yaml", PIPE, &registry_with_duckdb(original), &opts);
        let b = osiris_oml::check("p.yaml", PIPE, &registry_with_duckdb(&edited), &opts);
        let (pa, pb) = (a.plan.expect("plan"), b.plan.expect("plan"));
        let (fa, fb) = (fingerprints(&pa), fingerprints(&pb));
        assert_eq!(fa.oml_fp, fb.oml_fp);
        assert_ne!(fa.registry_fp, fb.registry_fp);
        assert_ne!(build(&pa).manifest_hash, build(&pb).manifest_hash);
        // A spec the pipeline does not use does not matter.
        let mut reg = registry_with_duckdb(original);
        reg.load_spec_text(
            "components/mysql.writer/spec.yaml",
            include_str!("../../../../components/mysql.writer/spec.yaml"),
            osiris_registry::Source::Builtin,
        )
        .unwrap();
        let c = osiris_oml::check("p.yaml", PIPE, &reg, &opts).plan.unwrap();
        assert_eq!(fingerprints(&c).registry_fp, fa.registry_fp);
    }

    #[test]
    fn output_changes_with_params_and_not_with_key_order() {
        let a = build(&run(OML, Mode::Strict, &[]).plan.unwrap());
        let reordered = OML.replace(
            "{connection: \"@mysql.default\", table: orders}",
            "{table: orders, connection: \"@mysql.default\"}",
        );
        let b = build(&run(&reordered, Mode::Strict, &[]).plan.unwrap());
        assert_eq!(a.files, b.files);
        let renamed = OML.replace("path: out.csv", "path: other.csv");
        let c = build(&run(&renamed, Mode::Strict, &[]).plan.unwrap());
        assert_ne!(a.manifest_hash, c.manifest_hash);
    }
}
