//! `plugins:` in osiris.yaml, and its translation into the checked [`Settings`].

use super::policy::{Allowlist, Settings};
use super::signing::TrustedKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    #[serde(default)]
    pub require_signatures: bool,
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
            require_signatures: false,
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

impl PluginsConfig {
    /// `base` is the directory of osiris.yaml: relative `dirs` are resolved against it.
    pub fn settings(&self, base: &Path) -> Settings {
        Settings {
            enabled: self.enabled,
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
            require_signatures: self.require_signatures,
            trusted_keys: self
                .trusted_keys
                .iter()
                .map(|k| {
                    TrustedKey::new(
                        &k.id,
                        &k.public_key,
                        k.scope.as_deref(),
                        k.families.as_deref(),
                    )
                })
                .collect(),
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

/// The settings for the osiris.yaml at `path`.
pub fn settings_for(path: &Path) -> Result<Settings, String> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    Ok(read(path)?.settings(&base))
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
        assert!(c.require_signatures);
        assert_eq!(c.trusted_keys[0].scope.as_deref(), Some("acme-*"));
        let s = settings_for(&p).unwrap();
        assert_eq!(s.dirs, vec![dir.path().join("vendor/plugins")]);
        assert!(s.trusted_keys[0].key.is_err());
        assert_eq!(
            read(&dir.path().join("missing.yaml")).unwrap(),
            PluginsConfig::default()
        );
    }
}
