//! `plugins:` of osiris.yaml and the machine-wide policy (their types live in `osiris_core::config::plugins`)
//! translated into the checked [`Settings`]. The machine policy holds for every project on the machine: a
//! project can tighten it but never loosen it.

use super::policy::{Allowlist, Settings};
use super::signing::TrustedKey;
pub use osiris_core::config::plugins::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The key a `trusted_keys` entry describes.
fn key(k: &TrustedKeyConfig) -> TrustedKey {
    TrustedKey::new(
        &k.id,
        &k.public_key,
        k.scope.as_deref(),
        k.families.as_deref(),
    )
}

/// The checked settings for `cfg`. `base` is the project root (the directory of osiris.yaml): relative `dirs`
/// are resolved against it. `machine` is the machine-wide policy, which the result never loosens.
pub fn settings(cfg: &PluginsConfig, base: &Path, machine: Option<&Machine>) -> Settings {
    let mut notes = Vec::new();
    let mp = machine.map(|m| &m.policy.plugins);
    let policy_file = machine
        .map(|m| m.path.display().to_string())
        .unwrap_or_default();
    let mut disabled_by = None;
    if !cfg.enabled {
        disabled_by = Some("`plugins.enabled: false` in osiris.yaml".to_string());
    } else if mp.and_then(|p| p.enabled) == Some(false) {
        disabled_by = Some(format!(
            "`plugins.enabled: false` in the machine policy `{policy_file}`"
        ));
    }
    if cfg.require_signatures == Some(false) && !cfg.allow_unsigned {
        notes.push(
            "`plugins.require_signatures: false` no longer admits unsigned plugins (they are refused by \
             default): write `plugins.allow_unsigned: true` to load unsigned plugins you built yourself, or \
             remove the key"
                .to_string(),
        );
    }
    let mut allow_unsigned = cfg.allow_unsigned;
    if allow_unsigned && cfg.require_signatures == Some(true) {
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
        .map(|p| p.trusted_keys.iter().map(key).collect())
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
    for k in &cfg.trusted_keys {
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
            trusted_keys.push(key(k));
        }
    }
    Settings {
        enabled: disabled_by.is_none(),
        disabled_by,
        dirs: cfg
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
        allowlist: cfg.allowlist.as_ref().map(|a| Allowlist::parse(a)),
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
    Ok(settings(&project, &base, machine.as_ref()))
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
        let s = settings(&read(&p).unwrap(), dir.path(), None);
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
