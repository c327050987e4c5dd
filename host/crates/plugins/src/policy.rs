//! The pre-load checks, in their fixed order: ABI, target, host version, allowlist, signature, spec hashes, and
//! (only where the library is loaded or explicitly checked) the library hash.
//! Everything here reads files; nothing here loads a library.

use super::codes::Code;
use super::image::LibraryBytes;
use super::package::{
    MANIFEST_FILE, Manifest, SIGNATURE_FILE, check_component_name, check_plugin_name, host_target,
    is_plain_file_name, sha256_hex,
};
use super::signing::{self, SigCheck, TrustedKey};
use std::path::{Path, PathBuf};

/// ABI majors of the plugin SDK this host can call.
pub fn supported_abis() -> Vec<u32> {
    osiris_plugin_sdk::host::SUPPORTED_ABI_VERSIONS.to_vec()
}

/// This host's version.
pub fn host_version() -> semver::Version {
    semver::Version::parse(env!("CARGO_PKG_VERSION")).expect("the package version is semver")
}

/// The trust settings, from `plugins:` in osiris.yaml under the machine-wide policy (see [`super::config`]).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub enabled: bool,
    /// Which setting disables plugins, when `enabled` is false.
    pub disabled_by: Option<String>,
    /// `plugins.dirs`, already resolved against the project directory.
    pub dirs: Vec<PathBuf>,
    pub allowlist: Option<Allowlist>,
    /// The machine policy's allowlist and its file: a plugin must pass it as well.
    pub machine_allowlist: Option<(PathBuf, Allowlist)>,
    /// Refuse a plugin without a signature: true unless `allow_unsigned: true` (and the machine allows it).
    pub require_signatures: bool,
    /// The machine policy's keys first, then the project's.
    pub trusted_keys: Vec<TrustedKey>,
    /// The machine policy file in force, if any.
    pub machine_policy: Option<PathBuf>,
    /// Settings that were ignored or changed meaning, as warnings (`PLUGIN-W003`).
    pub notes: Vec<String>,
}

/// `plugins.allowlist`: `name` (any version), `name==1.2.3`, `name>=2.0.0`, `name>=1.0,<2.0`.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    pub entries: Vec<AllowEntry>,
}

#[derive(Debug, Clone)]
pub struct AllowEntry {
    pub text: String,
    pub name: String,
    /// `None` when the entry is malformed: it then matches nothing (fail closed).
    pub req: Result<semver::VersionReq, String>,
}

impl Allowlist {
    pub fn parse(entries: &[String]) -> Allowlist {
        Allowlist {
            entries: entries.iter().map(|e| AllowEntry::parse(e)).collect(),
        }
    }

    /// Problems in the configured entries (reported by `plugins doctor` and `plugins list`).
    pub fn problems(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|e| {
                e.req
                    .as_ref()
                    .err()
                    .map(|why| format!("`plugins.allowlist` entry `{}` is invalid: {why}", e.text))
            })
            .collect()
    }

    /// `Ok(entry)` when allowed; `Err(entries for this name)` otherwise.
    pub fn admits(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<&AllowEntry, Vec<&AllowEntry>> {
        let same: Vec<&AllowEntry> = self.entries.iter().filter(|e| e.name == name).collect();
        same.iter()
            .find(|e| e.req.as_ref().is_ok_and(|r| r.matches(version)))
            .copied()
            .ok_or(same)
    }

    /// The entry that pins `name` to exactly `version` (`name==1.2.3`), if any.
    pub fn exact_pin(&self, name: &str, version: &semver::Version) -> Option<&AllowEntry> {
        self.entries.iter().find(|e| {
            e.name == name
                && e.req.as_ref().is_ok_and(|r| {
                    r.comparators.len() == 1 && {
                        let c = &r.comparators[0];
                        c.op == semver::Op::Exact
                            && c.major == version.major
                            && c.minor == Some(version.minor)
                            && c.patch == Some(version.patch)
                            && c.pre == version.pre
                    }
                })
        })
    }
}

impl AllowEntry {
    pub fn parse(text: &str) -> AllowEntry {
        let t = text.trim();
        let split = t
            .find(['=', '>', '<', '~', '^', '!', '*', ' ', ','])
            .unwrap_or(t.len());
        let name = t[..split].trim().to_string();
        let rest = t[split..].trim();
        let req = if name.is_empty() {
            Err("it has no plugin name; write `name`, `name==1.2.3` or `name>=2.0.0`".to_string())
        } else if let Err(why) = check_plugin_name(&name) {
            Err(why)
        } else if rest.is_empty() {
            Ok(semver::VersionReq::STAR)
        } else if rest.contains("!=") || rest.contains("~=") {
            Err("`!=` and `~=` are not supported; use `==`, `>=`, `>`, `<=`, `<`, separated by commas".to_string())
        } else {
            // Python-style `==1.2.3` is semver's exact `=1.2.3`.
            let converted: Vec<String> = rest
                .split(',')
                .map(|p| {
                    let p = p.trim();
                    match p.strip_prefix("==") {
                        Some(v) => format!("={}", v.trim()),
                        None => p.to_string(),
                    }
                })
                .collect();
            semver::VersionReq::parse(&converted.join(", "))
                .map_err(|e| format!("`{rest}` is not a version range ({e})"))
        };
        AllowEntry {
            text: text.to_string(),
            name,
            req,
        }
    }
}

/// A refusal: code and the full message (what was checked, both sides, the fix).
pub type Refusal = (Code, String);

/// One pre-load check as `plugins doctor` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckLine {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// A spec file whose SHA-256 matched the manifest: `(component, spec file path, text)`.
pub type VerifiedSpec = (String, PathBuf, String);

/// What loading a package needs, each file read once: the library bytes that were hashed (and are the ones
/// loaded) and the verified spec files.
#[derive(Debug, Clone)]
pub struct PackageFiles {
    pub library_path: PathBuf,
    /// On Linux a sealed memfd: the file [`crate::load`] hands to the loader.
    pub library: LibraryBytes,
    pub library_sha256: String,
    /// In manifest order.
    pub specs: Vec<VerifiedSpec>,
}

/// Checks the manifest's own consistency (fields present and safe), before any policy check: the plugin and
/// component names follow the one name grammar ([`check_plugin_name`], [`check_component_name`]; refused with
/// `PLUGIN-E017`), file names are plain names inside the package directory. A pure function of the manifest
/// (`dir` only labels the message).
pub fn validate_manifest(dir: &Path, m: &Manifest) -> Result<(), Refusal> {
    let manifest = dir.join(MANIFEST_FILE);
    let bad = |why: String| {
        Err((
            Code::ManifestInvalid,
            format!("`{}`: {why}", manifest.display()),
        ))
    };
    if let Err(why) = check_plugin_name(&m.name) {
        return Err((
            Code::NameInvalid,
            format!(
                "`{}`: `name`: {why}: the package is refused (nothing of it is installed or loaded); ask its \
                 publisher for a package with a valid name",
                manifest.display()
            ),
        ));
    }
    for (field, value) in [
        ("version", &m.version),
        ("target", &m.target),
        ("entry", &m.entry),
    ] {
        if value.trim().is_empty() {
            return bad(format!("`{field}` is empty"));
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad(format!(
                "`{field}` = `{}` contains whitespace or control characters",
                value.escape_debug()
            ));
        }
    }
    if semver::Version::parse(&m.version).is_err() {
        return bad(format!(
            "`version` = `{}` is not a semantic version like `1.2.3`",
            m.version
        ));
    }
    if !is_plain_file_name(&m.library) || reserved_file(&m.library) {
        return bad(format!(
            "`library` = `{}` must be a file name inside the package directory",
            m.library.escape_debug()
        ));
    }
    if !is_hex64(&m.library_sha256) {
        return bad("`library_sha256` must be 64 hex characters".to_string());
    }
    if m.components.is_empty() {
        return bad(
            "`[[components]]` is empty: a plugin provides at least one component".to_string(),
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &m.components {
        if let Err(why) = check_component_name(&c.name) {
            return Err((
                Code::NameInvalid,
                format!(
                    "`{}`: plugin {} {}: {why}: the package is refused; ask its publisher for a fixed package",
                    manifest.display(),
                    m.name,
                    m.version
                ),
            ));
        }
        if !seen.insert(c.name.as_str()) {
            return bad(format!("component `{}` is listed twice", c.name));
        }
        if !is_plain_file_name(&c.spec) || reserved_file(&c.spec) || c.spec == m.library {
            return bad(format!(
                "component `{}`: `spec` = `{}` must be a file name inside the package directory",
                c.name,
                c.spec.escape_debug()
            ));
        }
        if !is_hex64(&c.spec_sha256) {
            return bad(format!(
                "component `{}`: `spec_sha256` must be 64 hex characters",
                c.name
            ));
        }
    }
    semver::VersionReq::parse(&m.osiris.as_requirement()).map_err(|e| {
        (
            Code::ManifestInvalid,
            format!(
                "`{}`: `[osiris]` range `{}` is not a semver requirement ({e})",
                manifest.display(),
                m.osiris.as_requirement()
            ),
        )
    })?;
    Ok(())
}

/// The manifest and signature file names cannot double as a library or spec.
fn reserved_file(s: &str) -> bool {
    s == MANIFEST_FILE || s == SIGNATURE_FILE
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Check 1: the plugin's ABI major is one this host supports.
pub fn check_abi(m: &Manifest) -> Result<String, Refusal> {
    let supported = supported_abis();
    if supported.contains(&m.abi_version) {
        return Ok(format!("abi {} supported", m.abi_version));
    }
    let list: Vec<String> = supported.iter().map(u32::to_string).collect();
    let host = host_version();
    let fix = if supported.iter().all(|s| *s < m.abi_version) {
        format!(
            "upgrade osiris to a release that supports plugin ABI {}, or install a build of {} made with an SDK for ABI {}",
            m.abi_version,
            m.name,
            list.join("/")
        )
    } else {
        format!(
            "rebuild {} against osiris-plugin-sdk for ABI {}, or install a newer build of it",
            m.name,
            list.join("/")
        )
    };
    Err((
        Code::AbiMismatch,
        format!(
            "plugin {} {} was built for plugin ABI {}; this is osiris {host}, which supports ABI {}: {fix}",
            m.name,
            m.version,
            m.abi_version,
            list.join(", ")
        ),
    ))
}

/// Check 1b: the library was built for this platform.
pub fn check_target(m: &Manifest) -> Result<String, Refusal> {
    let host = host_target();
    if m.target == host {
        return Ok(format!("target {host}"));
    }
    Err((
        Code::TargetMismatch,
        format!(
            "plugin {} {} was built for `{}`; this host is `{host}`: install the {host} build of {}",
            m.name, m.version, m.target, m.name
        ),
    ))
}

/// Check 2: this host's version is inside the plugin's `[osiris]` range.
pub fn check_host_version(m: &Manifest) -> Result<String, Refusal> {
    let host = host_version();
    let req_text = m.osiris.as_requirement();
    let req = semver::VersionReq::parse(&req_text).map_err(|e| {
        (
            Code::ManifestInvalid,
            format!(
                "plugin {} {}: `[osiris]` range `{req_text}` is invalid ({e})",
                m.name, m.version
            ),
        )
    })?;
    if req.matches(&host) {
        return Ok(format!("osiris {host} matches `{req_text}`"));
    }
    Err((
        Code::HostVersion,
        format!(
            "plugin {} {} requires osiris {req_text}; this is osiris {host}: install an osiris matching `{req_text}`, \
             or install a version of {} that supports osiris {host}",
            m.name, m.version, m.name
        ),
    ))
}

/// Check 3: the allowlist, when one is configured.
pub fn check_allowlist(m: &Manifest, allow: Option<&Allowlist>) -> Result<String, Refusal> {
    let Some(allow) = allow else {
        return Ok("no allowlist configured".to_string());
    };
    let version = semver::Version::parse(&m.version).map_err(|_| {
        (
            Code::ManifestInvalid,
            format!("plugin {}: version `{}` is not semver", m.name, m.version),
        )
    })?;
    match allow.admits(&m.name, &version) {
        Ok(e) => Ok(format!("allowed by `{}`", e.text)),
        Err(same) if same.is_empty() => Err((
            Code::NotAllowlisted,
            format!(
                "plugin {} {} is not on `plugins.allowlist` (no entry for `{}`): add `{}=={}` to `plugins.allowlist` in \
                 osiris.yaml, or remove the plugin",
                m.name, m.version, m.name, m.name, m.version
            ),
        )),
        Err(same) => {
            let texts: Vec<String> = same.iter().map(|e| format!("`{}`", e.text)).collect();
            Err((
                Code::NotAllowlisted,
                format!(
                    "plugin {} {} is not allowed by `plugins.allowlist` (entries for it: {}): install an allowed version \
                     of {}, or change the entry to admit {}",
                    m.name,
                    m.version,
                    texts.join(", "),
                    m.name,
                    m.version
                ),
            ))
        }
    }
}

/// Check 3b: the machine policy's allowlist, when it has one (it holds for every project on the machine).
pub fn check_machine_allowlist(
    m: &Manifest,
    machine: Option<&(PathBuf, Allowlist)>,
) -> Result<String, Refusal> {
    let Some((file, allow)) = machine else {
        return Ok("no machine allowlist".to_string());
    };
    let version = semver::Version::parse(&m.version).map_err(|_| {
        (
            Code::ManifestInvalid,
            format!("plugin {}: version `{}` is not semver", m.name, m.version),
        )
    })?;
    match allow.admits(&m.name, &version) {
        Ok(e) => Ok(format!(
            "allowed by `{}` in the machine policy `{}`",
            e.text,
            file.display()
        )),
        Err(_) => Err((
            Code::NotAllowlisted,
            format!(
                "plugin {} {} is not on the allowlist of the machine policy `{}`, which holds for every project on \
                 this machine (a project's own allowlist cannot widen it): ask the machine's administrator to add \
                 `{}=={}`, or remove the plugin",
                m.name,
                m.version,
                file.display(),
                m.name,
                m.version
            ),
        )),
    }
}

/// Check 4a: signature (see [`signing::check`]).
pub fn check_signature(dir: &Path, m: &Manifest, s: &Settings) -> SigCheck {
    signing::check(dir, m, &s.trusted_keys, s.require_signatures)
}

/// Check 4b (needs no library): reads every spec file and compares its SHA-256 with the manifest. The manifest's
/// hashes are covered by the signature (check 4a), so a spec that passes is the one the publisher signed.
pub fn read_and_hash_specs(dir: &Path, m: &Manifest) -> Result<Vec<VerifiedSpec>, Refusal> {
    let who = format!("{} {}", m.name, m.version);
    let mut specs = Vec::with_capacity(m.components.len());
    for c in &m.components {
        let path = dir.join(&c.spec);
        let bytes = std::fs::read(&path).map_err(|e| {
            (Code::ManifestInvalid, format!("plugin {who}: cannot read spec `{}` of component `{}`: {e}: reinstall the plugin", path.display(), c.name))
        })?;
        let sha = sha256_hex(&bytes);
        if !sha.eq_ignore_ascii_case(&c.spec_sha256) {
            return Err((
                Code::HashMismatch,
                format!(
                    "spec `{}` of component `{}` in plugin {who} has sha256 {sha}, but its manifest says {}: the file \
                     changed after packaging; reinstall the plugin from its publisher",
                    path.display(),
                    c.name,
                    c.spec_sha256.to_ascii_lowercase()
                ),
            ));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            (
                Code::ManifestInvalid,
                format!("plugin {who}: spec `{}` is not UTF-8 text", path.display()),
            )
        })?;
        // The registry files a spec under its own `name:`; every check before it (builtin conflicts, the
        // families a key allows) saw the manifest's name, so the two must be the same component.
        if let Some(named) = spec_name(&text)
            && named != c.name
        {
            return Err((
                Code::SpecInvalid,
                format!(
                    "plugin {who}: the manifest lists component `{}` with spec `{}`, whose `name:` is `{named}`: a \
                     spec must describe the component the manifest names; report this to its publisher",
                    c.name,
                    path.display()
                ),
            ));
        }
        specs.push((c.name.clone(), path, text));
    }
    Ok(specs)
}

/// The top-level `name:` of a spec text, when it has one (a spec without one is refused by the registry).
fn spec_name(text: &str) -> Option<String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    doc.get("name")?.as_str().map(str::to_string)
}

/// Check 4c (only where the library is about to be loaded, or checked on request): reads the library once and
/// compares its SHA-256 with the manifest. The returned bytes are the ones later loaded (on Linux already in the
/// sealed memfd the loader opens, see [`crate::image`]); `specs` are the spec
/// files check 4b verified, which the loaded module is cross-checked against.
pub fn read_and_hash_library(
    dir: &Path,
    m: &Manifest,
    specs: Vec<VerifiedSpec>,
) -> Result<PackageFiles, Refusal> {
    let who = format!("{} {}", m.name, m.version);
    let library_path = dir.join(&m.library);
    let library = LibraryBytes::read(&library_path).map_err(|e| {
        (
            Code::ManifestInvalid,
            format!(
                "plugin {who}: cannot read its library `{}`: {e}: reinstall the plugin",
                library_path.display()
            ),
        )
    })?;
    let library_sha256 = sha256_hex(&library);
    if !library_sha256.eq_ignore_ascii_case(&m.library_sha256) {
        return Err((
            Code::HashMismatch,
            format!(
                "library `{}` of plugin {who} has sha256 {library_sha256}, but its manifest says {}: the file changed \
                 after packaging (corrupted or tampered); reinstall the plugin from its publisher",
                library_path.display(),
                m.library_sha256.to_ascii_lowercase()
            ),
        ));
    }
    Ok(PackageFiles {
        library_path,
        library,
        library_sha256,
        specs,
    })
}

/// Checks 4b and 4c together: every file of the package against the manifest (`plugins sign`).
pub fn read_and_hash(dir: &Path, m: &Manifest) -> Result<PackageFiles, Refusal> {
    let specs = read_and_hash_specs(dir, m)?;
    read_and_hash_library(dir, m, specs)
}

/// Rollback protection: a plugin name is never loaded at a lower version than the highest copy of it whose
/// signature verifies against a trusted, in-scope key, wherever that copy is in the search order, unless
/// `plugins.allowlist` pins the lower version exactly (`name==1.2.3`). `others` are the other copies found
/// (shadowed by `winner`), as `(package directory, manifest)`. Reads their signature files, never a library.
/// `Ok(Some(note))`: the winner is older but pinned; `Err`: refused with `PLUGIN-E020`.
pub fn check_rollback(
    winner: &Manifest,
    winner_dir: &Path,
    others: &[(&Path, &Manifest)],
    s: &Settings,
) -> Result<Option<String>, Refusal> {
    let Ok(version) = semver::Version::parse(&winner.version) else {
        return Ok(None);
    };
    let mut newest: Option<(semver::Version, &Path, String)> = None;
    for (dir, m) in others {
        let Ok(v) = semver::Version::parse(&m.version) else {
            continue;
        };
        if v <= version || newest.as_ref().is_some_and(|(n, _, _)| v <= *n) {
            continue;
        }
        let sig = signing::check(dir, m, &s.trusted_keys, false);
        if sig.status == signing::SigStatus::Valid && sig.refusal.is_none() {
            newest = Some((v, *dir, sig.key_id.unwrap_or_default()));
        }
    }
    let Some((v, dir, key)) = newest else {
        return Ok(None);
    };
    if let Some(pin) = s
        .allowlist
        .as_ref()
        .and_then(|a| a.exact_pin(&winner.name, &version))
    {
        return Ok(Some(format!(
            "{} {version} is older than the validly signed {v} in `{}`, and is loaded because `plugins.allowlist` \
             pins it exactly (`{}`)",
            winner.name,
            dir.display(),
            pin.text
        )));
    }
    Err((
        Code::Rollback,
        format!(
            "plugin {} {version} in `{}` is older than {} {v} in `{}` (signed by trusted key `{key}`): osiris never \
             loads an older build of a plugin than the newest validly signed one it finds (rollback protection): \
             remove the older copy, or pin it with `{}=={version}` in `plugins.allowlist` if you need this version",
            winner.name,
            winner_dir.display(),
            winner.name,
            dir.display(),
            winner.name
        ),
    ))
}

/// Why the plugin directory `dir` is unsafe to load from, if it is: others can write to it (mode `o+w`, sticky
/// bit or not: they could add a package; or it is owned by a user other than this one or root), or an ancestor is writable by others without the sticky bit (they
/// could rename it away and put another in its place).
#[cfg(unix)]
pub fn dir_writable_by_others(dir: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let md = std::fs::metadata(dir).ok()?;
    if let Some(why) = foreign_owner(dir, &md) {
        return Some(why);
    }
    let mode = md.permissions().mode();
    if mode & 0o002 != 0 {
        return Some(format!(
            "plugin directory `{}` is writable by every user (mode {:o}): anyone on this machine could add or \
             replace a plugin there; run `chmod o-w {}` (and keep it owned by you or root)",
            dir.display(),
            mode & 0o7777,
            dir.display()
        ));
    }
    ancestor_writable_by_others(dir)
}

#[cfg(not(unix))]
pub fn dir_writable_by_others(_dir: &Path) -> Option<String> {
    None
}

/// Why `path` is owned by someone who is neither this user nor root (that user can change it), as ssh and git
/// refuse such files.
#[cfg(unix)]
fn foreign_owner(path: &Path, md: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = md.uid();
    (owner != me && owner != 0).then(|| {
        format!(
            "`{}` is owned by user {owner}, neither you (uid {me}) nor root: that user could change what is \
             loaded; run `chown -R {me} {}` if you trust its content, or reinstall the plugin",
            path.display(),
            path.display()
        )
    })
}

#[cfg(unix)]
fn ancestor_writable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let canonical = std::fs::canonicalize(path).ok()?;
    for a in canonical.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(a) else {
            continue;
        };
        let mode = md.permissions().mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Some(format!(
                "`{}` is inside `{}`, which every user can write (mode {:o}, no sticky bit): anyone could replace \
                 the plugin; move it, or run `chmod o-w {}`",
                path.display(),
                a.display(),
                mode & 0o7777,
                a.display()
            ));
        }
    }
    None
}

/// Check 0 (files only): neither the package directory nor any of its files (manifest, signature, library,
/// specs) may be writable by every user or owned by a user other than this one or root, nor sit in a directory
/// others can write without the sticky bit (`PLUGIN-E021`). Group-writable files are accepted (shared groups are
/// common).
#[cfg(unix)]
pub fn check_permissions(pkg: &Path, m: &Manifest) -> Result<String, Refusal> {
    use std::os::unix::fs::PermissionsExt as _;
    let who = format!("{} {}", m.name, m.version);
    let refuse = |why: String| {
        Err((
            Code::WritableByOthers,
            format!("plugin {who} is refused: {why}"),
        ))
    };
    if let Some(why) = ancestor_writable_by_others(pkg) {
        return refuse(why);
    }
    let mut files: Vec<PathBuf> = vec![
        pkg.to_path_buf(),
        pkg.join(MANIFEST_FILE),
        pkg.join(SIGNATURE_FILE),
        pkg.join(&m.library),
    ];
    files.extend(m.components.iter().map(|c| pkg.join(&c.spec)));
    for f in &files {
        let Ok(md) = std::fs::metadata(f) else {
            continue;
        };
        if let Some(why) = foreign_owner(f, &md) {
            return refuse(why);
        }
        let mode = md.permissions().mode();
        if mode & 0o002 != 0 {
            return refuse(format!(
                "`{}` is writable by every user (mode {:o}): anyone on this machine could change what is loaded; \
                 run `chmod -R o-w {}`, then reinstall the plugin from its publisher",
                f.display(),
                mode & 0o7777,
                pkg.display()
            ));
        }
    }
    Ok("package directory and files writable only by their owner and group".to_string())
}

#[cfg(not(unix))]
pub fn check_permissions(_pkg: &Path, _m: &Manifest) -> Result<String, Refusal> {
    Ok("file permissions not checked on this platform".to_string())
}

pub use osiris_core::perms::{
    CONFIG_WRITABLE, SECRETS_WRITABLE, warn_if_config_writable, warn_if_secrets_writable,
    warn_if_writable, writable_file_warning,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn allowlist_accepts_the_seed_syntax() {
        let a = Allowlist::parse(&[
            "shopify-osiris==1.2.3".to_string(),
            "hubspot-osiris>=2.0.0".to_string(),
            "acme".to_string(),
            "range>=1.0, <2.0".to_string(),
        ]);
        assert!(a.problems().is_empty(), "{:?}", a.problems());
        assert!(a.admits("shopify-osiris", &v("1.2.3")).is_ok());
        assert!(a.admits("shopify-osiris", &v("1.2.4")).is_err());
        assert!(a.admits("hubspot-osiris", &v("2.5.0")).is_ok());
        assert!(a.admits("hubspot-osiris", &v("1.9.0")).is_err());
        assert!(a.admits("acme", &v("0.0.1")).is_ok());
        assert!(a.admits("range", &v("1.5.0")).is_ok());
        assert!(a.admits("range", &v("2.0.0")).is_err());
        assert!(a.admits("other", &v("1.0.0")).unwrap_err().is_empty());
    }

    #[test]
    fn malformed_allowlist_entries_match_nothing() {
        let a = Allowlist::parse(&[
            "x!=1.0".to_string(),
            "==1.0".to_string(),
            "y>=banana".to_string(),
        ]);
        assert_eq!(a.problems().len(), 3);
        assert!(a.admits("x", &v("2.0.0")).is_err());
        assert!(a.admits("y", &v("2.0.0")).is_err());
    }

    #[test]
    fn allowlist_names_follow_the_grammar_and_exact_pins_are_found() {
        let a = Allowlist::parse(&[
            "../x==1.0.0".to_string(),
            "Acme".to_string(),
            "acme==1.2.3".to_string(),
            "acme>=1.0".to_string(),
            "beta=1.0.0".to_string(),
        ]);
        assert_eq!(a.problems().len(), 2, "{:?}", a.problems());
        assert!(a.admits("../x", &v("1.0.0")).is_err());
        assert_eq!(
            a.exact_pin("acme", &v("1.2.3")).map(|e| e.text.as_str()),
            Some("acme==1.2.3")
        );
        assert!(a.exact_pin("acme", &v("1.5.0")).is_none(), ">= is no pin");
        assert!(a.exact_pin("beta", &v("1.0.0")).is_some());
    }

    #[test]
    fn manifest_names_outside_the_grammar_are_refused_with_their_own_code() {
        let m = |name: &str, component: &str| Manifest {
            name: name.into(),
            version: "1.0.0".into(),
            abi_version: 1,
            sdk_version: None,
            target: host_target(),
            library: "libx.so".into(),
            entry: "osiris_ocp_x".into(),
            library_sha256: "ab".repeat(32),
            osiris: Default::default(),
            components: vec![super::super::package::ComponentEntry {
                name: component.into(),
                spec: "x.spec.yaml".into(),
                spec_sha256: "cd".repeat(32),
            }],
        };
        let dir = Path::new("pkg");
        assert!(validate_manifest(dir, &m("acme-x", "acme.extractor")).is_ok());
        for name in [
            "../x",
            "/abs",
            "..",
            ".",
            "",
            "a/b",
            "Acme",
            "-x",
            "x y",
            "a".repeat(65).as_str(),
        ] {
            let (code, msg) = validate_manifest(dir, &m(name, "acme.extractor")).unwrap_err();
            assert_eq!(code, Code::NameInvalid, "{name}: {msg}");
        }
        for comp in [
            "acme",
            "acme.",
            ".x",
            "acme.x.y",
            "Acme.x",
            "acme.x/..",
            "acme.1x",
        ] {
            let (code, msg) = validate_manifest(dir, &m("acme-x", comp)).unwrap_err();
            assert_eq!(code, Code::NameInvalid, "{comp}: {msg}");
        }
    }
}
