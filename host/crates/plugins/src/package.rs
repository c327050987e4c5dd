//! The OCP package format on disk (see docs/adr/0005-ocp-package-and-trust.md).
//!
//! A plugin is a directory `<plugin-dir>/<name>/` holding:
//! - the library (`lib<crate>.so`, `.dylib`, `.dll`),
//! - `osiris-plugin.toml`, the sidecar manifest read by the host without loading the library,
//! - one copy of each component's `spec.yaml` (file names listed in the manifest),
//! - optionally `osiris-plugin.sig`, an ed25519 signature over the canonical statement (see `signing`).
//!
//! This file depends only on external crates (serde, toml, sha2, hex) so the integration tests can include it
//! with `#[path]` and build packages from freshly compiled test plugins through the same code.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// File name of the sidecar manifest inside a package directory.
pub const MANIFEST_FILE: &str = "osiris-plugin.toml";
/// File name of the detached signature inside a package directory.
pub const SIGNATURE_FILE: &str = "osiris-plugin.sig";

/// The sidecar manifest, `osiris-plugin.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin (package) name, e.g. `acme-shopify`; what the allowlist and key scopes match.
    pub name: String,
    /// Plugin version (semver).
    pub version: String,
    /// ABI major of the plugin SDK the library was built against.
    pub abi_version: u32,
    /// Version of the SDK crate the library was built with (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<String>,
    /// Target triple the library was built for, e.g. `x86_64-unknown-linux-gnu`.
    pub target: String,
    /// File name of the library inside the package directory (no path separators).
    pub library: String,
    /// Name of the exported entry symbol (the `entry:` of `export_ocp!`).
    pub entry: String,
    /// Lower-case hex SHA-256 of the library file.
    pub library_sha256: String,
    /// Host versions this plugin runs on.
    #[serde(default, skip_serializing_if = "OsirisReq::is_empty")]
    pub osiris: OsirisReq,
    /// The components this plugin provides.
    #[serde(default)]
    pub components: Vec<ComponentEntry>,
}

/// `[osiris]`: the host version range, either `requires` (a semver requirement) or min/max (inclusive),
/// the same meaning as `x-runtime.min_osiris_version` / `max_osiris_version` in a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsirisReq {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_osiris_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_osiris_version: Option<String>,
}

impl OsirisReq {
    pub fn is_empty(&self) -> bool {
        self.requires.is_none()
            && self.min_osiris_version.is_none()
            && self.max_osiris_version.is_none()
    }

    /// The range as one semver requirement string (`*` when unconstrained).
    pub fn as_requirement(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.requires {
            parts.push(r.trim().to_string());
        }
        if let Some(min) = &self.min_osiris_version {
            parts.push(format!(">={}", min.trim()));
        }
        if let Some(max) = &self.max_osiris_version {
            parts.push(format!("<={}", max.trim()));
        }
        if parts.is_empty() {
            "*".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// `[[components]]`: one component and the copy of its spec shipped in the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentEntry {
    pub name: String,
    /// File name of the spec copy inside the package directory.
    pub spec: String,
    /// Lower-case hex SHA-256 of that spec file.
    pub spec_sha256: String,
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The target triple of this host, in the form plugin manifests use.
pub fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => {
            let env = if cfg!(target_env = "musl") {
                "musl"
            } else {
                "gnu"
            };
            format!("{arch}-unknown-linux-{env}")
        }
        "macos" => format!("{arch}-apple-darwin"),
        "windows" => format!("{arch}-pc-windows-msvc"),
        os => format!("{arch}-unknown-{os}"),
    }
}

/// True when `file_name` looks like a shared library on any platform.
pub fn is_library_name(file_name: &str) -> bool {
    file_name.ends_with(".so")
        || file_name.contains(".so.")
        || file_name.ends_with(".dylib")
        || file_name.ends_with(".dll")
}

/// Longest plugin name accepted.
pub const PLUGIN_NAME_MAX: usize = 64;
/// Longest component name accepted.
pub const COMPONENT_NAME_MAX: usize = 128;

/// The one grammar for a plugin (package) name, wherever one is read (manifest, allowlist, `plugins remove`,
/// `plugins pack`): 1 to 64 characters of `a-z`, `0-9`, `-` and `_`, starting with a letter or digit. Such a
/// name is always a single, normal path component: never empty, `.`, `..`, absolute, or holding a separator.
pub fn check_plugin_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok && name.len() <= PLUGIN_NAME_MAX && name.chars().all(ok_char) {
        Ok(())
    } else {
        Err(format!(
            "plugin name `{}` is not valid: a plugin name is 1 to {PLUGIN_NAME_MAX} characters of `a-z`, `0-9`, `-` \
             and `_`, starting with a letter or digit (e.g. `acme-shopify`)",
            name.escape_debug()
        ))
    }
}

/// The one grammar for a component name, the same as `name` in a spec: `family.role`, each part a lower-case
/// letter followed by `a-z`, `0-9` or `_` (e.g. `shopify.extractor`), at most 128 characters.
pub fn check_component_name(name: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    match name.split_once('.') {
        Some((family, role))
            if name.len() <= COMPONENT_NAME_MAX && part_ok(family) && part_ok(role) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "component name `{}` is not valid: a component name is `family.role`, each part a lower-case letter \
             followed by `a-z`, `0-9` or `_` (e.g. `shopify.extractor`)",
            name.escape_debug()
        )),
    }
}

/// True when `s` names a component family (the part of a component name before the dot).
pub fn is_family_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.len() < COMPONENT_NAME_MAX
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The family of a component name: `shopify` for `shopify.extractor`.
pub fn component_family(name: &str) -> &str {
    name.split_once('.').map(|(f, _)| f).unwrap_or(name)
}

/// True when `s` is a plain file name: one normal path component (no separator, not `.` or `..`, no control
/// character).
pub fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\'])
        && !s.chars().any(char::is_control)
}

/// Fails when `path` itself is a symbolic link (the directory a command writes into must be the directory named,
/// not one a link points to).
pub fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "`{}` is a symbolic link; osiris does not write through links: use the directory it points to, or \
             replace the link with a directory",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Writes `bytes` as the file `name` directly inside `dir`, never through a symbolic link: the bytes go to a new
/// file created exclusively (`O_CREAT | O_EXCL`, which fails on any existing entry, a link included), which is
/// then renamed onto `name`. A rename replaces the directory entry itself, so an existing `name` that is a link
/// is replaced, and whatever it pointed to is left untouched. `name` must be a plain file name.
pub fn write_file_in(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    if !is_plain_file_name(name) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{}` is not a plain file name", name.escape_debug()),
        ));
    }
    let target = dir.join(name);
    for _ in 0..64 {
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let done = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| {
                drop(f);
                std::fs::rename(&tmp, &target)
            });
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        return Ok(target);
    }
    Err(std::io::Error::other(format!(
        "cannot create a temporary file in `{}`",
        dir.display()
    )))
}

/// What [`write_package`] needs to build a package directory.
#[derive(Debug, Clone)]
pub struct PackageInput {
    pub name: String,
    pub version: String,
    /// The `entry:` symbol of the plugin's `export_ocp!`.
    pub entry: String,
    pub abi_version: u32,
    pub sdk_version: Option<String>,
    /// Defaults to [`host_target`] when `None`.
    pub target: Option<String>,
    /// The built library to copy into the package.
    pub library: PathBuf,
    /// Host version range (`requires`), e.g. `>=0.1, <0.2`.
    pub requires: Option<String>,
    /// `(component name, spec.yaml path)` for every component the library exports.
    pub specs: Vec<(String, PathBuf)>,
}

/// Creates (or refreshes) the package directory `dir`: copies the library and spec files in, and writes the
/// sidecar manifest with their hashes. Returns the manifest written. Does not sign. Every file is written with
/// [`write_file_in`] (never through a link), and `dir` itself must not be a link.
pub fn write_package(dir: &Path, input: &PackageInput) -> std::io::Result<Manifest> {
    refuse_symlink(dir)?;
    std::fs::create_dir_all(dir)?;
    refuse_symlink(dir)?;
    let lib_name = input
        .library
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "library path `{}` has no file name",
                input.library.display()
            ))
        })?
        .to_string();
    let lib_bytes = std::fs::read(&input.library)?;
    write_file_in(dir, &lib_name, &lib_bytes)?;
    let mut components = Vec::new();
    for (component, spec_path) in &input.specs {
        let text = std::fs::read(spec_path)?;
        let file = format!("{component}.spec.yaml");
        write_file_in(dir, &file, &text)?;
        components.push(ComponentEntry {
            name: component.clone(),
            spec: file,
            spec_sha256: sha256_hex(&text),
        });
    }
    let manifest = Manifest {
        name: input.name.clone(),
        version: input.version.clone(),
        abi_version: input.abi_version,
        sdk_version: input.sdk_version.clone(),
        target: input.target.clone().unwrap_or_else(host_target),
        library: lib_name,
        entry: input.entry.clone(),
        library_sha256: sha256_hex(&lib_bytes),
        osiris: OsirisReq {
            requires: input.requires.clone(),
            ..OsirisReq::default()
        },
        components,
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Writes `manifest` as `dir/osiris-plugin.toml`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> std::io::Result<()> {
    let text = toml::to_string_pretty(manifest).map_err(std::io::Error::other)?;
    write_file_in(dir, MANIFEST_FILE, text.as_bytes()).map(|_| ())
}

/// Reads and parses `dir/osiris-plugin.toml`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, String> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    parse_manifest(&text).map_err(|e| format!("`{}` {e}", path.display()))
}

/// Parses the text of an `osiris-plugin.toml` (a pure function of the text; checks only its shape).
pub fn parse_manifest(text: &str) -> Result<Manifest, String> {
    toml::from_str::<Manifest>(text)
        .map_err(|e| format!("is not a valid plugin manifest: {}", e.message()))
}
