//! `plugins:` in osiris.yaml, the machine-wide policy (`/etc/osiris/policy.yaml`), and their translation into
//! the checked [`Settings`].
//!
//! The machine policy holds for every project on the machine: a project can tighten it (its own allowlist,
//! disabling plugins) but never loosen it. A plugin must pass both allowlists; `allow_unsigned: false` there
//! overrides a project's `allow_unsigned: true`; its trusted keys are trusted in every project, and a project key
//! may not reuse one of their ids; `project_keys: false` ignores the keys projects list.

use super::policy::{Allowlist, Settings};
use super::signing::TrustedKey;
use crate::diag::Diagnostic;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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

impl TrustedKeyConfig {
    fn key(&self) -> TrustedKey {
        TrustedKey::new(
            &self.id,
            &self.public_key,
            self.scope.as_deref(),
            self.families.as_deref(),
        )
    }
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
fn machine_policy_path() -> (PathBuf, bool) {
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
                "CONF-E001",
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
            .map_err(|e| crate::config::friendly(&file, &e).render(Some(&text)))?
            .unwrap_or_default()
    };
    Ok(Some(Machine { path, policy }))
}

impl PluginsConfig {
    /// `base` is the project root (the directory of osiris.yaml): relative `dirs` are resolved against it.
    /// `machine` is the machine-wide policy, which the result never loosens.
    pub fn settings(&self, base: &Path, machine: Option<&Machine>) -> Settings {
        let mut notes = Vec::new();
        let mp = machine.map(|m| &m.policy.plugins);
        let policy_file = machine
            .map(|m| m.path.display().to_string())
            .unwrap_or_default();
        let mut disabled_by = None;
        if !self.enabled {
            disabled_by = Some("`plugins.enabled: false` in osiris.yaml".to_string());
        } else if mp.and_then(|p| p.enabled) == Some(false) {
            disabled_by = Some(format!(
                "`plugins.enabled: false` in the machine policy `{policy_file}`"
            ));
        }
        if self.require_signatures == Some(false) && !self.allow_unsigned {
            notes.push(
                "`plugins.require_signatures: false` no longer admits unsigned plugins (they are refused by \
                 default): write `plugins.allow_unsigned: true` to load unsigned plugins you built yourself, or \
                 remove the key"
                    .to_string(),
            );
        }
        let mut allow_unsigned = self.allow_unsigned;
        if allow_unsigned && self.require_signatures == Some(true) {
            allow_unsigned = false;
            notes.push(
                "`plugins.allow_unsigned: true` is ignored: `plugins.require_signatures: true` is set as well (the \
                 stricter setting wins); remove one of them"
                    .to_string(),
            );
        }
        if allow_unsigned && mp.and_then(|p| p.allow_unsigned) == Some(false) {
            allow_unsigned = false;
            notes.push(format!(
                "`plugins.allow_unsigned: true` is ignored: the machine policy `{policy_file}` sets \
                 `allow_unsigned: false` (unsigned plugins are refused in every project on this machine)"
            ));
        }
        let mut trusted_keys: Vec<TrustedKey> = mp
            .map(|p| p.trusted_keys.iter().map(TrustedKeyConfig::key).collect())
            .unwrap_or_default();
        let project_keys = mp.and_then(|p| p.project_keys) != Some(false);
        // Families a machine key lists by name stay reserved to the machine's keys in every project.
        let machine_families: Vec<&str> = mp
            .iter()
            .flat_map(|p| &p.trusted_keys)
            .flat_map(|k| k.families.iter().flatten())
            .map(String::as_str)
            .filter(|f| *f != "*")
            .collect();
        for k in &self.trusted_keys {
            let mut k = k.clone();
            if project_keys && let Some(families) = &mut k.families {
                let taken: Vec<String> = families
                    .iter()
                    .filter(|f| machine_families.contains(&f.as_str()))
                    .cloned()
                    .collect();
                if !taken.is_empty() {
                    families.retain(|f| !taken.contains(f));
                    notes.push(format!(
                        "`plugins.trusted_keys` entry `{}`: `families` {} ignored: the machine policy \
                         `{policy_file}` reserves them to its own keys; a project key may provide other families only",
                        k.id,
                        taken
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            let k = &k;
            if !project_keys {
                notes.push(format!(
                    "`plugins.trusted_keys` entry `{}` is ignored: the machine policy `{policy_file}` sets \
                     `project_keys: false` (only its own keys are trusted)",
                    k.id
                ));
            } else if trusted_keys.iter().any(|m| m.id == k.id) {
                notes.push(format!(
                    "`plugins.trusted_keys` entry `{}` is ignored: the machine policy `{policy_file}` defines a key \
                     with this id; give the project's key another id",
                    k.id
                ));
            } else {
                trusted_keys.push(k.key());
            }
        }
        Settings {
            enabled: disabled_by.is_none(),
            disabled_by,
            dirs: self
                .dirs
                .iter()
                .map(|d| {
                    if d.is_absolute() {
                        d.clone()
                    } else {
                        base.join(d)
                    }
                })
                .collect(),
            allowlist: self.allowlist.as_ref().map(|a| Allowlist::parse(a)),
            machine_allowlist: machine.and_then(|m| {
                m.policy
                    .plugins
                    .allowlist
                    .as_ref()
                    .map(|a| (m.path.clone(), Allowlist::parse(a)))
            }),
            require_signatures: !allow_unsigned,
            trusted_keys,
            machine_policy: machine.map(|m| m.path.clone()),
            notes,
        }
    }
}

#[derive(Deserialize, Default)]
struct PluginsOnly {
    #[serde(default)]
    plugins: Option<PluginsConfig>,
}

/// Reads only `plugins:` from the osiris.yaml at `path` (a missing file means defaults).
pub fn read(path: &Path) -> Result<PluginsConfig, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PluginsConfig::default()),
        Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
    };
    super::policy::warn_if_config_writable(path);
    let doc: PluginsOnly = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        format!("`{}{at}`: invalid `plugins:` section: {e}", path.display())
    })?;
    Ok(doc.plugins.unwrap_or_default())
}

/// The settings for the osiris.yaml at `path` under the machine-wide policy. Errors are rendered messages.
pub fn settings_for(path: &Path) -> Result<Settings, String> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let machine = read_machine()?;
    let project = read(path).map_err(|e| format!("error: {e}"))?;
    Ok(project.settings(&base, machine.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("osiris.yaml");
        std::fs::write(
            &p,
            "version: 1\nplugins:\n  enabled: true\n  dirs: [vendor/plugins]\n  allowlist: [\"shopify-osiris==1.2.3\"]\n  \
             require_signatures: true\n  trusted_keys:\n    - id: acme-2026\n      public_key: AAAA\n      scope: \"acme-*\"\n",
        )
        .unwrap();
        let c = read(&p).unwrap();
        assert_eq!(c.require_signatures, Some(true));
        assert_eq!(c.trusted_keys[0].scope.as_deref(), Some("acme-*"));
        let s = read(&p).unwrap().settings(dir.path(), None);
        assert!(
            s.require_signatures,
            "unsigned plugins are refused by default"
        );
        assert_eq!(s.dirs, vec![dir.path().join("vendor/plugins")]);
        assert!(s.trusted_keys[0].key.is_err());
        assert_eq!(
            read(&dir.path().join("missing.yaml")).unwrap(),
            PluginsConfig::default()
        );
    }
}
