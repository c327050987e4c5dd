//! `plugins:` in osiris.yaml, the machine-wide policy (`/etc/osiris/policy.yaml`), as written; the plugin host
//! (`osiris-plugins`) turns them into its checked settings.
//!
//! The machine policy holds for every project on the machine: a project can tighten it (its own allowlist,
//! disabling plugins) but never loosen it. A plugin must pass both allowlists; `allow_unsigned: false` there
//! overrides a project's `allow_unsigned: true`; its trusted keys are trusted in every project, and a project key
//! may not reuse one of their ids; `project_keys: false` ignores the keys projects list.

use crate::codes::Code;
use crate::diag::Diagnostic;
use serde::Deserialize;
use std::path::PathBuf;

/// Where the machine-wide policy is read unless `OSIRIS_POLICY_FILE` names another file.
pub const MACHINE_POLICY_FILE: &str = "/etc/osiris/policy.yaml";

/// `plugins:` as written in osiris.yaml.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Absent: every plugin name is allowed. Present (even empty): only the listed ones.
    #[serde(default)]
    pub allowlist: Option<Vec<String>>,
    /// Load plugins that carry no signature. Off by default: unsigned plugin code is refused (`PLUGIN-E006`).
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Before `allow_unsigned`: `true` is the default now; `false` no longer admits unsigned plugins (warning).
    #[serde(default)]
    pub require_signatures: Option<bool>,
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKeyConfig>,
}

fn yes() -> bool {
    true
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            enabled: true,
            dirs: Vec::new(),
            allowlist: None,
            allow_unsigned: false,
            require_signatures: None,
            trusted_keys: Vec::new(),
        }
    }
}

/// One entry of `plugins.trusted_keys`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeyConfig {
    pub id: String,
    /// Base64 of the 32-byte ed25519 public key (the content of `FILE.pub` from `osiris plugins keygen`).
    pub public_key: String,
    /// Plugin-name pattern this key may sign (`acme-*`); absent: any name.
    #[serde(default)]
    pub scope: Option<String>,
    /// Component families its plugins may provide (`[acme]`: `acme.*`); see `signing::TrustedKey::families`.
    #[serde(default)]
    pub families: Option<Vec<String>>,
}

/// `plugins:` of the machine-wide policy file. Every key is optional; an absent key leaves the decision to the
/// project.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MachinePlugins {
    /// `false`: no plugin is loaded on this machine.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Every project's plugins must also be on this list.
    #[serde(default)]
    pub allowlist: Option<Vec<String>>,
    /// `false`: a project's `allow_unsigned: true` is ignored.
    #[serde(default)]
    pub allow_unsigned: Option<bool>,
    /// Trusted in every project.
    #[serde(default)]
    pub trusted_keys: Vec<TrustedKeyConfig>,
    /// `false`: the `trusted_keys` of projects are ignored; only the keys above are trusted.
    #[serde(default)]
    pub project_keys: Option<bool>,
}

/// The machine-wide policy file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MachinePolicy {
    #[serde(default)]
    pub plugins: MachinePlugins,
}

/// The machine policy in force: its file and content.
#[derive(Debug, Clone)]
pub struct Machine {
    pub path: PathBuf,
    pub policy: MachinePolicy,
}

/// The machine policy file to read: `OSIRIS_POLICY_FILE` when set (it must then exist), else
/// [`MACHINE_POLICY_FILE`] (optional).
pub fn machine_policy_path() -> (PathBuf, bool) {
    match std::env::var_os("OSIRIS_POLICY_FILE").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from(MACHINE_POLICY_FILE), false),
    }
}

/// Reads the machine-wide policy. `Ok(None)`: there is none. An unreadable or invalid file is an error
/// (`CONF-E001`..`E003`, naming the file): a policy that cannot be read must not silently stop applying.
pub fn read_machine() -> Result<Option<Machine>, String> {
    let (path, explicit) = machine_policy_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => {
            let d = Diagnostic::error(
                Code::CONF_E001,
                format!("cannot read the machine policy `{}`: {e}", path.display()),
            )
            .file(path.display().to_string())
            .help(if explicit {
                "`OSIRIS_POLICY_FILE` names this file: fix the path or unset the variable"
            } else {
                "ask the machine's administrator to make it readable"
            });
            return Err(d.render(None));
        }
    };
    let file = path.display().to_string();
    let policy = if text.trim().is_empty() {
        MachinePolicy::default()
    } else {
        serde_yaml::from_str::<Option<MachinePolicy>>(&text)
            .map_err(|e| super::friendly(&file, &e).render(Some(&text)))?
            .unwrap_or_default()
    };
    Ok(Some(Machine { path, policy }))
}
