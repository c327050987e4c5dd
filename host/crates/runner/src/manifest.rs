//! Reading a compiled manifest directory (`manifest.yaml` + `cfg/<step>.json`). The runner reads nothing else
//! about the pipeline: never OML.

use osiris_core::codes::Code;
use osiris_core::exit::{Exit, Fail};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub pipeline: Pipeline,
    #[serde(default)]
    pub meta: Meta,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pipeline {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub version: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub manifest_hash: String,
    #[serde(default)]
    pub manifest_short: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    pub id: String,
    pub component: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub mode: String,
    pub cfg_path: String,
    #[serde(default)]
    pub needs: Vec<String>,
    /// alias -> upstream step id.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
}

/// A manifest with its step configs, checked for internal consistency.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub text: String,
    /// step id -> (cfg file text, parsed config).
    pub configs: BTreeMap<String, (String, Value)>,
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> Fail {
    Fail::new(
        Exit::Validation,
        format!(
            "error[{}]: {}: {msg}\n  = help: recompile the pipeline with `osiris compile <pipeline.yaml>`",
            Code::RUN_E001,
            path.display()
        ),
    )
}

impl Compiled {
    /// Loads `dir/manifest.yaml` and every `cfg_path` it names.
    pub fn load(dir: &Path) -> Result<Compiled, Fail> {
        let path = dir.join("manifest.yaml");
        let text =
            std::fs::read_to_string(&path).map_err(|e| bad(&path, format!("cannot read: {e}")))?;
        let manifest: Manifest = serde_yaml::from_str(&text).map_err(|e| match e.location() {
            Some(l) => bad(
                &path,
                format!(
                    "not a run manifest (line {}, column {}): {e}",
                    l.line(),
                    l.column()
                ),
            ),
            None => bad(&path, format!("not a run manifest: {e}")),
        })?;
        if !manifest.kind.is_empty() && manifest.kind != "RunManifest" {
            return Err(bad(
                &path,
                format!("`kind` is `{}`, expected `RunManifest`", manifest.kind),
            ));
        }
        let mut ids = BTreeSet::new();
        for s in &manifest.steps {
            if !ids.insert(s.id.as_str()) {
                return Err(bad(&path, format!("step `{}` appears twice", s.id)));
            }
        }
        let mut seen = BTreeSet::new();
        for s in &manifest.steps {
            for up in s.needs.iter().chain(s.inputs.values()) {
                if !ids.contains(up.as_str()) {
                    return Err(bad(
                        &path,
                        format!("step `{}` depends on unknown step `{up}`", s.id),
                    ));
                }
                if !seen.contains(up.as_str()) {
                    return Err(bad(
                        &path,
                        format!("step `{}` comes before its dependency `{up}`", s.id),
                    ));
                }
            }
            seen.insert(s.id.as_str());
        }
        let mut configs = BTreeMap::new();
        for s in &manifest.steps {
            if Path::new(&s.cfg_path).is_absolute() || s.cfg_path.contains("..") {
                return Err(bad(
                    &path,
                    format!(
                        "step `{}`: `cfg_path` must stay inside the manifest directory",
                        s.id
                    ),
                ));
            }
            let cfg_file = dir.join(&s.cfg_path);
            let cfg_text = std::fs::read_to_string(&cfg_file)
                .map_err(|e| bad(&cfg_file, format!("cannot read: {e}")))?;
            let cfg: Value = serde_json::from_str(&cfg_text)
                .map_err(|e| bad(&cfg_file, format!("invalid JSON: {e}")))?;
            if !cfg.is_object() {
                return Err(bad(&cfg_file, "expected a JSON object"));
            }
            configs.insert(s.id.clone(), (cfg_text, cfg));
        }
        Ok(Compiled {
            dir: dir.to_path_buf(),
            manifest,
            text,
            configs,
        })
    }

    /// The config handed to the driver: the cfg file without its `component` key.
    pub fn driver_config(&self, step: &str) -> Value {
        let mut v = self
            .configs
            .get(step)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("component");
        }
        v
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.manifest.steps.iter().find(|s| s.id == id)
    }

    /// Upstream steps of `step`, each once, in first-mention order, with the alias its stream is passed
    /// under: the first alias other than `df` (`df` only when it is the sole alias).
    pub fn upstreams(&self, step: &Step) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (alias, up) in &step.inputs {
            match out.iter_mut().find(|(u, _)| u == up) {
                Some(entry) => {
                    if entry.1 == "df" {
                        entry.1 = alias.clone();
                    }
                }
                None => out.push((up.clone(), alias.clone())),
            }
        }
        if step.inputs.is_empty() {
            // A manifest without `inputs`: every step in `needs` that produces data feeds this one, as
            // `df_<id>`. A writer produces none: a `needs` naming one is an ordering, not a stream (waiting for
            // a writer's output would never end).
            out = step
                .needs
                .iter()
                .filter(|u| {
                    self.step(u)
                        .is_none_or(|up| !matches!(up.mode.as_str(), "write" | "load"))
                })
                .map(|u| (u.clone(), input_alias(u)))
                .collect();
        }
        out
    }

    /// Order-only dependencies: `needs` entries that pass no data.
    pub fn all_deps(&self, step: &Step) -> BTreeSet<String> {
        step.needs
            .iter()
            .chain(step.inputs.values())
            .cloned()
            .collect()
    }
}

/// `df_<id>` with every char outside [0-9A-Za-z_] turned into `_` (a leading digit gets a `_` prefix).
pub fn input_alias(step_id: &str) -> String {
    let mut s: String = step_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    format!("df_{s}")
}
