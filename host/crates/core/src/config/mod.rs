//! `osiris.yaml`: project configuration. A missing file means defaults; an unknown key or a wrong type is a
//! configuration error naming the file, line and column, with did-you-mean.

pub mod plugins;

use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::exit::{Exit, Fail};
use plugins::PluginsConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The project configuration file's name.
pub const CONFIG_FILE: &str = "osiris.yaml";

/// The `osiris.yaml` that governs `cwd`: the first one found walking up from `cwd` to the filesystem root (as
/// cargo finds `Cargo.toml` and git finds `.git`). One in `cwd` itself is returned as the relative
/// `osiris.yaml`, one in a parent as an absolute path; `None` when there is none.
pub fn find_project_config(cwd: &Path) -> Option<PathBuf> {
    if cwd.join(CONFIG_FILE).is_file() {
        return Some(PathBuf::from(CONFIG_FILE));
    }
    cwd.ancestors()
        .skip(1)
        .map(|d| d.join(CONFIG_FILE))
        .find(|p| p.is_file())
}

/// The whole of `osiris.yaml`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProjectConfig {
    pub plugins: PluginsConfig,
    pub validation: ValidationConfig,
    pub discovery: DiscoveryConfig,
    pub run: RunConfig,
    pub compile: CompileConfig,
    pub llm: LlmConfig,
}

/// `llm:` (`osiris chat`): which model endpoint to ask. Environment variables (`OSIRIS_LLM_*`) win over it.
/// The key is never written here: `api_key` holds a reference to an environment variable (`"${OPENAI_API_KEY}"`),
/// which `osiris-llm` resolves (and refuses a literal).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    pub provider: Option<LlmProvider>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub max_retries: Option<u32>,
}

/// The API an endpoint speaks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    /// OpenAI-compatible Chat Completions (`{base_url}/chat/completions`): OpenAI, vLLM, llama.cpp, Ollama.
    #[default]
    Openai,
    /// Anthropic Messages (`{base_url}/messages`).
    Anthropic,
}

/// `validation:`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ValidationConfig {
    pub mode: ValidationMode,
}

/// What happens to validation findings that are not errors by themselves.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ValidationMode {
    /// Report them and go on.
    #[default]
    Warn,
    /// Treat them as errors.
    Strict,
    /// Do not check.
    Off,
}

/// `discovery:`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    pub cache_ttl_seconds: u64,
    /// Whether an LLM front end (`osiris mcp`'s `discovery_run`) may return sample rows when its caller asks
    /// for them. Off by default: a model then sees tables, columns and types, never row data. `osiris
    /// discovery run` on the command line is not affected.
    pub llm_samples: bool,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            cache_ttl_seconds: 3600,
            llm_samples: false,
        }
    }
}

/// `run:`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub logs_dir: PathBuf,
    pub max_parallel: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            logs_dir: PathBuf::from("run_logs"),
            max_parallel: 4,
        }
    }
}

/// `compile:`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CompileConfig {
    pub build_dir: PathBuf,
}

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            build_dir: PathBuf::from("build"),
        }
    }
}

impl ProjectConfig {
    /// Reads `path` (a missing file gives defaults). A file that cannot be read or does not match the format
    /// fails with exit code 5 and a `CONF-E00x` diagnostic.
    pub fn load(path: &Path) -> Result<ProjectConfig, Fail> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProjectConfig::default());
            }
            Err(e) => {
                let d = Diagnostic::error(
                    Code::CONF_E001,
                    format!("cannot read `{}`: {e}", path.display()),
                )
                .file(path.display().to_string())
                .help("check the file's permissions, or name another file with `--config FILE`");
                return Err(Fail::new(Exit::Config, d.render(None)));
            }
        };
        Self::parse(&path.display().to_string(), &text)
            .map_err(|d| Fail::new(Exit::Config, d.render(Some(&text))))
    }

    /// Parses the text of an `osiris.yaml`; `file` labels the diagnostic.
    pub fn parse(file: &str, text: &str) -> Result<ProjectConfig, Box<Diagnostic>> {
        if text.trim().is_empty() {
            return Ok(ProjectConfig::default());
        }
        let cfg: Option<ProjectConfig> =
            serde_yaml::from_str(text).map_err(|e| friendly(file, &e))?;
        Ok(cfg.unwrap_or_default())
    }
}

/// Rewrites a serde error ("unknown field `x`, expected one of `a`, `b`") as a diagnostic with a position,
/// did-you-mean and the allowed keys.
pub(crate) fn friendly(file: &str, e: &serde_yaml::Error) -> Box<Diagnostic> {
    let raw = e.to_string();
    // serde_yaml appends " at line L column C"; the position goes into the diagnostic instead
    let msg = raw.split(" at line ").next().unwrap_or(&raw).to_string();
    let (path, detail) = match msg.split_once(": ") {
        Some((p, d)) if !p.contains(' ') => (Some(p.to_string()), d.to_string()),
        _ => (None, msg.clone()),
    };
    let within = path
        .as_deref()
        .map(|p| format!(" in `{p}`"))
        .unwrap_or_default();
    let (code, message, help) = if let Some(rest) = detail.strip_prefix("unknown field `") {
        let (key, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let help = match did_you_mean(key, expected.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None if expected.is_empty() => format!("remove `{key}`"),
            None => format!(
                "remove `{key}`; known keys here: {}",
                expected
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        (
            Code::CONF_E002,
            format!("unknown key `{key}`{within}"),
            help,
        )
    } else if let Some(rest) = detail.strip_prefix("unknown variant `") {
        let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let mut help = match did_you_mean(value, expected.iter().copied()) {
            Some(m) => format!("did you mean `{m}`? "),
            None => String::new(),
        };
        help.push_str(&format!(
            "allowed values: {}",
            expected
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        (
            Code::CONF_E003,
            format!("`{value}` is not an allowed value{within}"),
            help,
        )
    } else {
        (
            Code::CONF_E003,
            format!("invalid configuration{within}: {detail}"),
            "see the comments in the `osiris.yaml` written by `osiris init` for the format"
                .to_string(),
        )
    };
    let d = Diagnostic::error(code, message).help(help);
    Box::new(match e.location() {
        Some(l) => d.at(file, l.line(), l.column()).label("here", 1),
        None => d.file(file),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ProjectConfig::load(&dir.path().join("osiris.yaml")).unwrap();
        assert_eq!(cfg, ProjectConfig::default());
        assert_eq!(cfg.run.max_parallel, 4);
        assert_eq!(cfg.compile.build_dir, PathBuf::from("build"));
        assert!(cfg.plugins.enabled);
        assert_eq!(
            ProjectConfig::parse("o.yaml", "# nothing\n").unwrap(),
            ProjectConfig::default()
        );
    }

    #[test]
    fn the_project_is_the_nearest_osiris_yaml_up_from_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(find_project_config(&sub), None);
        std::fs::write(dir.path().join(CONFIG_FILE), "").unwrap();
        assert_eq!(
            find_project_config(&sub),
            Some(dir.path().join(CONFIG_FILE))
        );
        std::fs::write(dir.path().join("a").join(CONFIG_FILE), "").unwrap();
        assert_eq!(
            find_project_config(&sub),
            Some(dir.path().join("a").join(CONFIG_FILE)),
            "the nearest wins"
        );
        assert_eq!(
            find_project_config(&dir.path().join("a")),
            Some(PathBuf::from(CONFIG_FILE))
        );
    }

    #[test]
    fn reads_every_section() {
        let text = "\
plugins: { enabled: false, dirs: [plugins], allowlist: [\"a==1.2.3\"], require_signatures: true,
           trusted_keys: [{ id: k, public_key: AAAA, scope: \"acme-*\" }] }
validation: { mode: strict }
discovery: { cache_ttl_seconds: 60, llm_samples: true }
run: { logs_dir: logs, max_parallel: 2 }
compile: { build_dir: out }
";
        let cfg = ProjectConfig::parse("o.yaml", text).unwrap();
        assert!(!cfg.plugins.enabled);
        assert_eq!(cfg.plugins.dirs, vec![PathBuf::from("plugins")]);
        assert_eq!(cfg.validation.mode, ValidationMode::Strict);
        assert_eq!(cfg.discovery.cache_ttl_seconds, 60);
        assert!(cfg.discovery.llm_samples);
        assert!(!ProjectConfig::default().discovery.llm_samples);
        assert_eq!(cfg.run.logs_dir, PathBuf::from("logs"));
        assert_eq!(cfg.compile.build_dir, PathBuf::from("out"));
    }

    #[test]
    fn unknown_keys_and_values_are_friendly() {
        let d = ProjectConfig::parse("o.yaml", "run:\n  log_dir: x\n").unwrap_err();
        assert_eq!(d.code, "CONF-E002");
        assert_eq!(d.message, "unknown key `log_dir` in `run`");
        assert_eq!(d.help.as_deref(), Some("did you mean `logs_dir`?"));
        assert_eq!((d.line, d.column), (Some(2), Some(3)));
        let d = ProjectConfig::parse("o.yaml", "validation:\n  mode: strcit\n").unwrap_err();
        assert_eq!(d.code, "CONF-E003");
        assert!(
            d.help
                .as_deref()
                .unwrap()
                .starts_with("did you mean `strict`?"),
            "{d:?}"
        );
        let d = ProjectConfig::parse("o.yaml", "compil: {}\n").unwrap_err();
        assert_eq!(d.help.as_deref(), Some("did you mean `compile`?"));
    }
}
