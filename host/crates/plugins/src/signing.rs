//! ed25519 signatures over a canonical statement, key files, and trust decisions.
//!
//! The statement is a fixed byte string built from manifest fields, never the TOML text (so formatting or
//! key order in `osiris-plugin.toml` cannot change what is signed):
//!
//! ```text
//! osiris-ocp-signature-v1
//! name: <name>
//! version: <version>
//! target: <target>
//! abi: <abi_version>
//! entry: <entry symbol>
//! osiris: <host version requirement>
//! library-sha256: <hex>
//! component: <component name> <spec sha256 hex>      (one line per component, sorted by name)
//! ```
//!
//! every line ending in `\n`. Verification uses `verify_strict` (rejects malleable and small-order signatures).
//! Keys come only from `plugins.trusted_keys` in `osiris.yaml`, never from a plugin directory.

use super::codes::Code;
use super::package::{
    Manifest, SIGNATURE_FILE, check_component_name, check_plugin_name, component_family,
    is_family_name, sha256_hex, write_file_in,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATEMENT_VERSION: &str = "osiris-ocp-signature-v1";
pub const ALGORITHM: &str = "ed25519";

/// The canonical bytes a signature covers.
pub fn statement(m: &Manifest) -> Vec<u8> {
    let mut comps: Vec<(&str, &str)> = m
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.spec_sha256.as_str()))
        .collect();
    comps.sort();
    let mut s = String::new();
    s.push_str(STATEMENT_VERSION);
    s.push('\n');
    for (k, v) in [
        ("name", m.name.as_str()),
        ("version", m.version.as_str()),
        ("target", m.target.as_str()),
        ("abi", &m.abi_version.to_string()),
        ("entry", m.entry.as_str()),
        ("osiris", &m.osiris.as_requirement()),
        ("library-sha256", &m.library_sha256.to_ascii_lowercase()),
    ] {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push('\n');
    }
    for (name, sha) in comps {
        s.push_str("component: ");
        s.push_str(name);
        s.push(' ');
        s.push_str(&sha.to_ascii_lowercase());
        s.push('\n');
    }
    s.into_bytes()
}

/// `osiris-plugin.sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Statement format, `osiris-ocp-signature-v1`.
    pub format: String,
    pub algorithm: String,
    pub key_id: String,
    /// Base64 of the 64-byte ed25519 signature.
    pub signature: String,
}

/// Key id derived from a public key: the first 16 hex characters of its SHA-256.
pub fn default_key_id(public: &VerifyingKey) -> String {
    sha256_hex(public.as_bytes())[..16].to_string()
}

pub fn encode_public(public: &VerifyingKey) -> String {
    B64.encode(public.as_bytes())
}

/// Parses a base64 32-byte ed25519 public key.
pub fn parse_public_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = B64
        .decode(b64.trim())
        .map_err(|e| format!("not valid base64 ({e})"))?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "an ed25519 public key is 32 bytes, this one is {}",
            bytes.len()
        )
    })?;
    VerifyingKey::from_bytes(&arr).map_err(|_| "not a valid ed25519 public key".to_string())
}

/// Reads a secret key file (base64 of the 32-byte seed).
pub fn read_secret_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret key `{}`: {e}", path.display()))?;
    let bytes = B64.decode(text.trim()).map_err(|_| {
        format!(
            "`{}` is not a secret key file (expected base64 of 32 bytes)",
            path.display()
        )
    })?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "`{}` is not a secret key file (expected 32 bytes, found {})",
            path.display(),
            bytes.len()
        )
    })?;
    Ok(SigningKey::from_bytes(&arr))
}

/// Generates a key pair: `out` (secret, mode 0600) and `out.pub`. Refuses to overwrite an existing key.
pub fn keygen(out: &Path) -> Result<(PathBuf, VerifyingKey), String> {
    let public_path = pub_path(out);
    for p in [out, public_path.as_path()] {
        // `symlink_metadata`: a dangling link counts as existing (it is never written through).
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(format!(
                "`{}` already exists; choose another --out or remove the old key first",
                p.display()
            ));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| format!("cannot get random bytes from the operating system: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let encoded = format!("{}\n", B64.encode(key.to_bytes()));
    write_private(out, encoded.as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", out.display()))?;
    let public = key.verifying_key();
    {
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&public_path)
            .and_then(|mut f| f.write_all(format!("{}\n", encode_public(&public)).as_bytes()))
            .map_err(|e| format!("cannot write `{}`: {e}", public_path.display()))?;
    }
    Ok((public_path, public))
}

pub fn pub_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Warns when a secret key file is readable by group or others.
#[cfg(unix)]
pub fn secret_key_permission_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "secret key `{}` is readable by other users (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
pub fn secret_key_permission_problem(_path: &Path) -> Option<String> {
    None
}

/// True when `id` can be a key id: 1 to 128 characters, no whitespace or control character (it is printed in
/// messages and `plugins list`).
pub fn is_plain_key_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && !id.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Signs the manifest's statement and returns the signature file content.
pub fn sign(m: &Manifest, key: &SigningKey, key_id: &str) -> SignatureFile {
    let sig = key.sign(&statement(m));
    SignatureFile {
        format: STATEMENT_VERSION.to_string(),
        algorithm: ALGORITHM.to_string(),
        key_id: key_id.to_string(),
        signature: B64.encode(sig.to_bytes()),
    }
}

/// Writes `dir/osiris-plugin.sig` without following a link: an existing `osiris-plugin.sig` that is a symbolic
/// link is replaced by the new file, and what it pointed to is left untouched (see [`write_file_in`]).
pub fn write_signature(dir: &Path, sig: &SignatureFile) -> std::io::Result<PathBuf> {
    let text = toml::to_string(sig).map_err(std::io::Error::other)?;
    write_file_in(dir, SIGNATURE_FILE, text.as_bytes())
}

/// Parses the text of an `osiris-plugin.sig` (a pure function of the text; checks only its shape).
pub fn parse_signature_file(text: &str) -> Result<SignatureFile, String> {
    toml::from_str(text).map_err(|e| e.message().trim().to_string())
}

/// One entry of `plugins.trusted_keys`, parsed.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub id: String,
    /// The key, or why the configured value is unusable.
    pub key: Result<VerifyingKey, String>,
    /// Plugin-name pattern (e.g. `acme-*`); `None` trusts the key for every plugin name.
    pub scope: Option<String>,
    /// Component families its plugins may provide (`acme` allows `acme.*`; `*`: any family no other key
    /// reserves). `None`: `*` for a key without `scope`, nothing for a key with one.
    pub families: Option<Vec<String>>,
}

/// True when the plugin name `name` matches `pattern`: characters of the plugin-name grammar, where `*` stands
/// for any run of them (possibly empty). Never matches a name outside the grammar, so never one with a `/`.
pub fn scope_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    scope_problem(pattern).is_none()
        && check_plugin_name(name).is_ok()
        && go(pattern.as_bytes(), name.as_bytes())
}

/// Why `pattern` is not a usable key scope.
pub fn scope_problem(pattern: &str) -> Option<String> {
    let ok = !pattern.is_empty()
        && pattern.len() <= 2 * super::package::PLUGIN_NAME_MAX
        && pattern
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '*'));
    (!ok).then(|| {
        format!(
            "scope `{}` is not a plugin-name pattern: use the characters of plugin names (`a-z`, `0-9`, `-`, `_`) \
             and `*` for any run of them, e.g. `acme-*`",
            pattern.escape_debug()
        )
    })
}

impl TrustedKey {
    pub fn new(
        id: &str,
        public_key: &str,
        scope: Option<&str>,
        families: Option<&[String]>,
    ) -> TrustedKey {
        TrustedKey {
            id: id.to_string(),
            key: parse_public_key(public_key),
            scope: scope.map(str::to_string),
            families: families.map(<[String]>::to_vec),
        }
    }

    fn covers(&self, plugin: &str) -> bool {
        match &self.scope {
            None => check_plugin_name(plugin).is_ok(),
            Some(s) => scope_matches(s, plugin),
        }
    }

    /// The families this key may provide, as configured or defaulted (see [`TrustedKey::families`]).
    pub fn allowed_families(&self) -> Vec<String> {
        match (&self.families, &self.scope) {
            (Some(f), _) => f.clone(),
            (None, None) => vec!["*".to_string()],
            (None, Some(_)) => Vec::new(),
        }
    }

    /// The families this key reserves: those it lists by name (not `*`).
    fn reserved(&self) -> impl Iterator<Item = &str> {
        self.families
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|f| *f != "*" && is_family_name(f))
    }

    /// Problems of this entry, for `PLUGIN-W003`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(why) = &self.key {
            out.push(format!(
                "`plugins.trusted_keys` entry `{}`: `public_key` is unusable: {why}",
                self.id
            ));
        }
        if let Some(scope) = &self.scope
            && let Some(why) = scope_problem(scope)
        {
            out.push(format!(
                "`plugins.trusted_keys` entry `{}`: {why}; the key trusts nothing",
                self.id
            ));
        }
        for f in self.families.iter().flatten() {
            if f != "*" && !is_family_name(f) {
                out.push(format!(
                    "`plugins.trusted_keys` entry `{}`: `families` entry `{}` is not a component family (the part of \
                     a component name before the dot, e.g. `acme` for `acme.extractor`), or `*`; it allows nothing",
                    self.id,
                    f.escape_debug()
                ));
            }
        }
        if self.scope.is_some() && self.families.is_none() {
            out.push(format!(
                "`plugins.trusted_keys` entry `{}` has a `scope` but no `families`: its plugins may provide no \
                 component; list the component families it may ship, e.g. `families: [acme]`",
                self.id
            ));
        }
        out
    }
}

/// Check 4a': every component the plugin claims is in a family its signer may provide. `signer` is the trusted
/// key whose signature verified (`None` for an unsigned plugin). A family a trusted key lists by name is
/// reserved to the keys listing it: no other key, and no unsigned plugin, may provide a component of it, so a
/// plugin outside its vendor's families is refused here (`PLUGIN-E019`) and never knocks out the vendor's own
/// plugin as a duplicate.
pub fn check_component_scope(
    m: &Manifest,
    signer: Option<&TrustedKey>,
    trusted: &[TrustedKey],
) -> Result<(), (Code, String)> {
    let who = format!("{} {}", m.name, m.version);
    let allowed = signer.map(TrustedKey::allowed_families);
    for c in &m.components {
        check_component_name(&c.name).map_err(|why| (Code::NameInvalid, why))?;
        let family = component_family(&c.name);
        let listed = allowed
            .as_ref()
            .is_some_and(|a| a.iter().any(|f| f == family));
        if listed {
            continue;
        }
        let owners: Vec<&str> = trusted
            .iter()
            .filter(|k| k.key.is_ok() && k.reserved().any(|f| f == family))
            .map(|k| k.id.as_str())
            .collect();
        let wildcard = allowed.as_ref().is_none_or(|a| a.iter().any(|f| f == "*"));
        if owners.is_empty() && wildcard {
            continue;
        }
        let owners_text = if owners.is_empty() {
            String::new()
        } else {
            format!(
                " (family `{family}` is reserved to key(s) {}, which list it in `families`)",
                owners
                    .iter()
                    .map(|o| format!("`{o}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let msg = match signer {
            Some(k) => {
                let a = k.allowed_families();
                let list = if a.is_empty() {
                    "none".to_string()
                } else {
                    a.iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "plugin {who} claims component `{}`, but its signing key `{}` may provide only the component \
                     families {list}{owners_text}: the plugin is refused and the other plugins keep their \
                     components; add `{family}` to the key's `families` in `plugins.trusted_keys` only if this \
                     publisher may ship `{family}.*` components, or remove the plugin",
                    c.name, k.id
                )
            }
            None => format!(
                "plugin {who} is unsigned and claims component `{}`{owners_text}: the plugin is refused and the \
                 other plugins keep their components; install a build signed by a key listing `{family}`, or \
                 remove the plugin",
                c.name
            ),
        };
        return Err((Code::ComponentOutOfScope, msg));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SigStatus {
    Valid,
    Missing,
    Invalid,
    Untrusted,
}

impl SigStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SigStatus::Valid => "valid",
            SigStatus::Missing => "missing",
            SigStatus::Invalid => "invalid",
            SigStatus::Untrusted => "untrusted",
        }
    }
}

/// The outcome of checking a package's signature against the trusted keys.
#[derive(Debug, Clone)]
pub struct SigCheck {
    pub status: SigStatus,
    pub key_id: Option<String>,
    /// Set when the outcome refuses the plugin.
    pub refusal: Option<(Code, String)>,
    /// What was checked, for `plugins doctor`.
    pub detail: String,
}

/// Checks `dir/osiris-plugin.sig` for `m`. A present signature is always verified (a bad one refuses the plugin
/// even when signatures are optional); a missing one refuses unless `allow_unsigned` is in force.
pub fn check(dir: &Path, m: &Manifest, trusted: &[TrustedKey], require: bool) -> SigCheck {
    let who = format!("{} {}", m.name, m.version);
    // The statement is built from these names: only names of the one grammar are ever verified.
    if let Some(why) = check_plugin_name(&m.name).err().or_else(|| {
        m.components
            .iter()
            .find_map(|c| check_component_name(&c.name).err())
    }) {
        return SigCheck {
            status: SigStatus::Invalid,
            key_id: None,
            refusal: Some((
                Code::NameInvalid,
                format!("plugin {}: {why}", who.escape_debug()),
            )),
            detail: why,
        };
    }
    let sig_path = dir.join(SIGNATURE_FILE);
    let text = match std::fs::read_to_string(&sig_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let refusal = require.then(|| {
                (
                    Code::Unsigned,
                    format!(
                        "plugin {who} is not signed (no `{SIGNATURE_FILE}`) and unsigned plugins are refused: \
                         sign it with `osiris plugins sign {} --key FILE` using a key listed in `plugins.trusted_keys`, \
                         or ask its publisher for a signed build (only for code you built yourself: \
                         `plugins.allow_unsigned: true` in osiris.yaml)",
                        dir.display()
                    ),
                )
            });
            let refusal = refusal.or_else(|| check_component_scope(m, None, trusted).err());
            return SigCheck {
                status: SigStatus::Missing,
                key_id: None,
                refusal,
                detail: "no signature file".into(),
            };
        }
        Err(e) => {
            return invalid(
                None,
                format!("cannot read `{}`: {e}", sig_path.display()),
                &who,
            );
        }
    };
    let file: SignatureFile = match parse_signature_file(&text) {
        Ok(f) => f,
        Err(e) => {
            return invalid(
                None,
                format!("`{}` is malformed: {e}", sig_path.display()),
                &who,
            );
        }
    };
    // The key id comes from the package and ends up in messages and `plugins list`: a plain identifier only
    // (no control characters that could rewrite the terminal or forge lines).
    if !is_plain_key_id(&file.key_id) {
        let shown: String = file.key_id.chars().take(64).collect();
        return invalid(
            None,
            format!(
                "`{}` names key id `{}`, which is not a plain identifier (1 to 128 characters, no whitespace or \
                 control characters)",
                sig_path.display(),
                shown.escape_debug()
            ),
            &who,
        );
    }
    let key_id = Some(file.key_id.clone());
    if file.algorithm != ALGORITHM || file.format != STATEMENT_VERSION {
        return invalid(
            key_id,
            format!(
                "`{}` uses algorithm `{}` / format `{}`; this osiris verifies `{ALGORITHM}` / `{STATEMENT_VERSION}`",
                sig_path.display(),
                file.algorithm,
                file.format
            ),
            &who,
        );
    }
    let sig = match B64
        .decode(file.signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
    {
        Some(s) => s,
        None => {
            return invalid(
                key_id,
                format!("`{}` holds no 64-byte base64 signature", sig_path.display()),
                &who,
            );
        }
    };
    let Some(tk) = trusted.iter().find(|k| k.id == file.key_id) else {
        let known: Vec<&str> = trusted.iter().map(|k| k.id.as_str()).collect();
        let known = if known.is_empty() {
            "none configured".to_string()
        } else {
            known.join(", ")
        };
        return SigCheck {
            status: SigStatus::Untrusted,
            key_id,
            refusal: Some((
                Code::KeyUntrusted,
                format!(
                    "plugin {who} is signed by key `{}`, which is not in `plugins.trusted_keys` (trusted: {known}): \
                     add the publisher's public key to `plugins.trusted_keys` in osiris.yaml if you trust it, \
                     or remove the plugin",
                    file.key_id
                ),
            )),
            detail: format!("key `{}` not trusted", file.key_id),
        };
    };
    let public = match &tk.key {
        Ok(k) => k,
        Err(why) => {
            return SigCheck {
                status: SigStatus::Untrusted,
                key_id,
                refusal: Some((
                    Code::KeyUntrusted,
                    format!(
                        "plugin {who} is signed by key `{}`, but its `public_key` in `plugins.trusted_keys` is unusable: \
                         {why}: paste the content of the publisher's `.pub` file (base64 of 32 bytes)",
                        tk.id
                    ),
                )),
                detail: format!("trusted key `{}` is misconfigured", tk.id),
            };
        }
    };
    if public.verify_strict(&statement(m), &sig).is_err() {
        return invalid(
            key_id,
            format!(
                "the signature by key `{}` does not match the manifest of plugin {who} (the manifest, library hash or \
                 spec hashes changed after signing, or it was signed with another key)",
                file.key_id
            ),
            &who,
        );
    }
    if !tk.covers(&m.name) {
        let scope = tk.scope.as_deref().unwrap_or("*");
        return SigCheck {
            status: SigStatus::Untrusted,
            key_id,
            refusal: Some((
                Code::KeyOutOfScope,
                format!(
                    "plugin {who} is signed by key `{}`, which is trusted only for plugin names matching `{scope}`: \
                     widen the key's `scope` in `plugins.trusted_keys` if this publisher may ship `{}`, or remove the plugin",
                    tk.id, m.name
                ),
            )),
            detail: format!(
                "key `{}` valid but scope `{scope}` does not cover `{}`",
                tk.id, m.name
            ),
        };
    }
    if let Err(refusal) = check_component_scope(m, Some(tk), trusted) {
        return SigCheck {
            status: SigStatus::Untrusted,
            key_id,
            detail: format!(
                "key `{}` valid, but not for every component family the plugin claims",
                tk.id
            ),
            refusal: Some(refusal),
        };
    }
    SigCheck {
        status: SigStatus::Valid,
        key_id,
        refusal: None,
        detail: format!("valid ed25519 signature by trusted key `{}`", tk.id),
    }
}

fn invalid(key_id: Option<String>, why: String, who: &str) -> SigCheck {
    SigCheck {
        status: SigStatus::Invalid,
        key_id,
        refusal: Some((
            Code::SignatureInvalid,
            format!(
                "signature of plugin {who} is invalid: {why}: reinstall the plugin from its publisher, or re-sign it with `osiris plugins sign`"
            ),
        )),
        detail: why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{ComponentEntry, OsirisReq};

    fn manifest() -> Manifest {
        Manifest {
            name: "acme-shopify".into(),
            version: "1.4.0".into(),
            abi_version: 1,
            sdk_version: None,
            target: "x86_64-unknown-linux-gnu".into(),
            library: "libacme.so".into(),
            entry: "osiris_ocp_acme".into(),
            library_sha256: "ab".repeat(32),
            osiris: OsirisReq {
                requires: Some(">=0.1, <0.2".into()),
                ..OsirisReq::default()
            },
            components: vec![
                ComponentEntry {
                    name: "shopify.writer".into(),
                    spec: "w.yaml".into(),
                    spec_sha256: "22".repeat(32),
                },
                ComponentEntry {
                    name: "shopify.extractor".into(),
                    spec: "e.yaml".into(),
                    spec_sha256: "11".repeat(32),
                },
            ],
        }
    }

    #[test]
    fn statement_is_fixed_and_sorted() {
        let s = String::from_utf8(statement(&manifest())).unwrap();
        let expected = format!(
            "osiris-ocp-signature-v1\nname: acme-shopify\nversion: 1.4.0\ntarget: x86_64-unknown-linux-gnu\nabi: 1\n\
             entry: osiris_ocp_acme\nosiris: >=0.1, <0.2\nlibrary-sha256: {}\ncomponent: shopify.extractor {}\n\
             component: shopify.writer {}\n",
            "ab".repeat(32),
            "11".repeat(32),
            "22".repeat(32)
        );
        assert_eq!(s, expected);
    }

    fn setup(scope: Option<&str>) -> (tempfile::TempDir, Manifest, Vec<TrustedKey>, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let m = manifest();
        write_signature(dir.path(), &sign(&m, &key, "acme")).unwrap();
        let families = ["shopify".to_string()];
        let trusted = vec![TrustedKey::new(
            "acme",
            &encode_public(&key.verifying_key()),
            scope,
            Some(&families),
        )];
        (dir, m, trusted, key)
    }

    #[test]
    fn valid_signature_verifies() {
        let (dir, m, trusted, _) = setup(Some("acme-*"));
        let c = check(dir.path(), &m, &trusted, true);
        assert_eq!(c.status, SigStatus::Valid, "{c:?}");
        assert!(c.refusal.is_none());
    }

    #[test]
    fn any_changed_field_invalidates() {
        let (dir, mut m, trusted, _) = setup(None);
        m.components[0].spec_sha256 = "33".repeat(32);
        let c = check(dir.path(), &m, &trusted, false);
        assert_eq!(c.refusal.unwrap().0, Code::SignatureInvalid);
        let (dir, mut m, trusted, _) = setup(None);
        m.version = "1.4.1".into();
        assert_eq!(
            check(dir.path(), &m, &trusted, false).refusal.unwrap().0,
            Code::SignatureInvalid
        );
    }

    #[test]
    fn untrusted_and_out_of_scope_keys_refuse() {
        let (dir, m, _, _) = setup(None);
        let other = SigningKey::from_bytes(&[9u8; 32]);
        let trusted = vec![TrustedKey::new(
            "other",
            &encode_public(&other.verifying_key()),
            None,
            None,
        )];
        let c = check(dir.path(), &m, &trusted, false);
        assert_eq!(c.status, SigStatus::Untrusted);
        assert_eq!(c.refusal.unwrap().0, Code::KeyUntrusted);
        // same id, different public key: the signature does not verify
        let trusted = vec![TrustedKey::new(
            "acme",
            &encode_public(&other.verifying_key()),
            None,
            None,
        )];
        assert_eq!(
            check(dir.path(), &m, &trusted, false).refusal.unwrap().0,
            Code::SignatureInvalid
        );
        let (dir, m, trusted, _) = setup(Some("hubspot-*"));
        let c = check(dir.path(), &m, &trusted, false);
        let (code, msg) = c.refusal.unwrap();
        assert_eq!(code, Code::KeyOutOfScope);
        assert!(msg.contains("hubspot-*"), "{msg}");
    }

    #[test]
    fn missing_signature_refuses_only_when_required() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest();
        let c = check(dir.path(), &m, &[], false);
        assert_eq!(c.status, SigStatus::Missing);
        assert!(c.refusal.is_none());
        assert_eq!(
            check(dir.path(), &m, &[], true).refusal.unwrap().0,
            Code::Unsigned
        );
    }

    #[test]
    fn keygen_writes_private_secret_and_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("k");
        let (pub_file, public) = keygen(&out).unwrap();
        let secret = read_secret_key(&out).unwrap();
        assert_eq!(secret.verifying_key(), public);
        let text = std::fs::read_to_string(pub_file).unwrap();
        assert_eq!(parse_public_key(&text).unwrap(), public);
        assert!(secret_key_permission_problem(&out).is_none());
        assert!(keygen(&out).unwrap_err().contains("already exists"));
        // a dangling link at either path is never written through (issue 13)
        #[cfg(unix)]
        {
            let target = dir.path().join("target");
            let out2 = dir.path().join("k2");
            std::os::unix::fs::symlink(&target, pub_path(&out2)).unwrap();
            assert!(keygen(&out2).unwrap_err().contains("already exists"));
            assert!(!target.exists() && !out2.exists());
        }
    }

    #[test]
    fn scopes_match_plugin_names_only() {
        assert!(scope_matches("acme-*", "acme-shopify"));
        assert!(scope_matches("acme-*", "acme-"));
        assert!(scope_matches("*", "anything-1"));
        assert!(scope_matches("a*-x*", "abc-xyz"));
        assert!(!scope_matches("acme-*", "acme-/../x"));
        assert!(!scope_matches("acme-*", "acme-../../x"));
        assert!(!scope_matches("acme-*", "/"));
        assert!(!scope_matches("*", "../x"));
        assert!(!scope_matches("acme-*", "other"));
        assert!(!scope_matches("acme-[a-z]", "acme-b"), "no glob classes");
        assert!(scope_problem("acme/*").is_some());
        assert!(scope_problem("acme-*").is_none());
    }

    #[test]
    fn component_families_are_bounded_by_the_signing_key() {
        let m = manifest(); // components shopify.*
        let pk = encode_public(&SigningKey::from_bytes(&[7u8; 32]).verifying_key());
        let fam = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let acme = TrustedKey::new("acme", &pk, Some("acme-*"), Some(&fam(&["acme"])));
        let shop = TrustedKey::new("shop", &pk, Some("shop-*"), Some(&fam(&["shopify"])));
        let any = TrustedKey::new("any", &pk, None, None);
        let scoped_no_families = TrustedKey::new("nofam", &pk, Some("acme-*"), None);
        let trusted = vec![acme.clone(), shop.clone()];
        let err = check_component_scope(&m, Some(&acme), &trusted).unwrap_err();
        assert_eq!(err.0, Code::ComponentOutOfScope);
        assert!(
            err.1.contains("reserved") && err.1.contains("`shop`"),
            "{}",
            err.1
        );
        assert!(check_component_scope(&m, Some(&shop), &trusted).is_ok());
        // an unscoped key may provide any family nobody reserves, but not a reserved one
        assert!(check_component_scope(&m, Some(&any), std::slice::from_ref(&any)).is_ok());
        assert!(check_component_scope(&m, Some(&any), &[any.clone(), shop.clone()]).is_err());
        // unsigned: the same
        assert!(check_component_scope(&m, None, &[]).is_ok());
        assert_eq!(
            check_component_scope(&m, None, &trusted).unwrap_err().0,
            Code::ComponentOutOfScope
        );
        // a scoped key without `families` provides nothing, and says so
        assert!(check_component_scope(&m, Some(&scoped_no_families), &[]).is_err());
        assert!(
            scoped_no_families
                .problems()
                .iter()
                .any(|p| p.contains("no `families`"))
        );
    }
}
