//! Loading a verified plugin: `dlopen` of exactly the bytes that were hashed, then a cross-check of what the
//! module reports about itself against the verified manifest.
//!
//! The verified bytes live in a sealed anonymous file (`memfd_create` +
//! `F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL`), which is loaded through `/proc/self/fd/<fd>`: on Linux
//! [`crate::image`] read the library into it and sealed it before hashing, so the hash and the dependency check
//! read the very file the loader opens. Nobody, not even this process, can change that file after the seal, and no
//! path on disk is involved, so the file at the plugin path can be swapped or rewritten after the check without
//! effect. Where memfd is unavailable (not Linux, or
//! `vm.memfd_noexec` forbids executable memfds), the bytes go to a fresh private directory (mode 0700, file mode
//! 0500) instead. The descriptor is kept open for the life of the process: plugins are never unloaded, and a
//! reused `/proc/self/fd/N` name would make the dynamic loader hand back an earlier module.

use super::codes::Code;
use super::image::LibraryBytes;
use super::package::{Manifest, sha256_hex};
use super::policy::{PackageFiles, Refusal};
use osiris_plugin_sdk::host::{LoadErrorKind, Module};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Modules loaded in this process, by library hash and entry: loading the same verified library twice returns
/// the same module (its constructors run once).
type Cache = Mutex<BTreeMap<(String, String), Arc<Module>>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Files kept open forever (see the module docs).
fn keep(file: std::fs::File) {
    static KEEP: OnceLock<Mutex<Vec<std::fs::File>>> = OnceLock::new();
    KEEP.get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(file);
}

/// Loads the verified library bytes and cross-checks the module against the manifest.
pub fn load_verified(m: &Manifest, files: &PackageFiles) -> Result<Arc<Module>, Refusal> {
    let who = format!("{} {}", m.name, m.version);
    let key = (files.library_sha256.clone(), m.entry.clone());
    let mut cache = cache().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(module) = cache.get(&key) {
        cross_check(m, files, module)?;
        return Ok(module.clone());
    }
    // No byte of the library (or of a library it pulls in) runs before its dependencies are known to be system
    // libraries: the check runs here, on the bytes about to be loaded, whatever the caller checked before.
    super::deps::check(&files.library, &who, &files.library_path)?;
    let path = stage(&files.library, &m.name, &files.library_sha256).map_err(|e| {
        (
            Code::LoadFailed,
            format!("plugin {who}: cannot stage its verified library for loading: {e}: check free memory and temp space, then retry"),
        )
    })?;
    // SAFETY: the bytes at `path` are the ones whose hash and signature were verified (the staged copy cannot
    // change); running their constructors is the decision the trust checks just made.
    let module = unsafe { Module::load(&path, &m.entry) }.map_err(|e| {
        if e.kind == LoadErrorKind::PanicStrategy {
            let built = match e.detail.as_deref() {
                Some(strategy) => format!("was built with `panic = \"{strategy}\"`"),
                None => "does not record its panic strategy (built with an older osiris-plugin-sdk)".into(),
            };
            return (
                Code::PanicStrategy,
                format!(
                    "plugin {who}: `{}` {built}: a panic in it would abort the whole osiris process, so it is not \
                     loaded; {}",
                    files.library_path.display(),
                    e.help.as_deref().unwrap_or("rebuild it with `panic = \"unwind\"`")
                ),
            );
        }
        (
            Code::LoadFailed,
            format!(
                "plugin {who}: loading `{}` failed: {e}: make sure it was built for {} with osiris-plugin-sdk ABI {} \
                 and exports `{}`; reinstall or rebuild the plugin",
                files.library_path.display(),
                m.target,
                m.abi_version,
                m.entry
            ),
        )
    })?;
    let module = Arc::new(module);
    cross_check(m, files, &module)?;
    cache.insert(key, module.clone());
    Ok(module)
}

/// The module must report exactly what was verified: name, version, ABI, component names and spec bytes.
fn cross_check(m: &Manifest, files: &PackageFiles, module: &Module) -> Result<(), Refusal> {
    let who = format!("{} {}", m.name, m.version);
    let fix =
        "the library does not belong to this manifest; reinstall the plugin from its publisher";
    let mismatch = |what: &str, verified: &str, reported: &str| {
        Err((
            Code::SelfReportMismatch,
            format!(
                "plugin {who}: the loaded module reports {what} `{reported}`, the verified manifest says `{verified}`: {fix}"
            ),
        ))
    };
    if module.plugin_name() != m.name {
        return mismatch("name", &m.name, module.plugin_name());
    }
    if module.plugin_version() != m.version {
        return mismatch("version", &m.version, module.plugin_version());
    }
    if module.abi_version() != m.abi_version {
        return mismatch(
            "abi",
            &m.abi_version.to_string(),
            &module.abi_version().to_string(),
        );
    }
    let reported: BTreeMap<&str, String> = module
        .components()
        .iter()
        .map(|c| (c.name.as_str(), sha256_hex(c.spec_yaml.as_bytes())))
        .collect();
    let verified: BTreeMap<&str, String> = files
        .specs
        .iter()
        .map(|(name, _, text)| (name.as_str(), sha256_hex(text.as_bytes())))
        .collect();
    let names = |x: &BTreeMap<&str, String>| x.keys().copied().collect::<Vec<_>>().join(", ");
    if reported.keys().ne(verified.keys()) {
        return mismatch("components", &names(&verified), &names(&reported));
    }
    for (name, sha) in &verified {
        if reported[name] != *sha {
            return Err((
                Code::SelfReportMismatch,
                format!(
                    "plugin {who}: the loaded module's spec of `{name}` has sha256 {}, the verified spec file has {sha}: {fix}",
                    reported[name]
                ),
            ));
        }
    }
    Ok(())
}

/// Puts the verified bytes where nobody can change them and returns the path to `dlopen`: the sealed memfd
/// they were read into and checked in (see [`crate::image`]), or else a new sealed memfd or private file
/// written from them.
fn stage(bytes: &LibraryBytes, name: &str, sha: &str) -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        if let Some(sealed) = bytes.sealed_file() {
            // A descriptor of our own for the loader, kept for the life of the process (see the module docs).
            let file = sealed.try_clone()?;
            let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            keep(file);
            return Ok(path);
        }
        if let Ok(path) = stage_memfd(bytes, name) {
            return Ok(path);
        }
    }
    stage_private_file(bytes, name, sha)
}

#[cfg(target_os = "linux")]
fn stage_memfd(bytes: &[u8], name: &str) -> std::io::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;
    let mut file = super::image::memfd(name)?;
    file.write_all(bytes)?;
    super::image::seal(&file)?;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    keep(file);
    Ok(path)
}

fn stage_private_file(bytes: &[u8], name: &str, sha: &str) -> std::io::Result<PathBuf> {
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd).map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = std::env::temp_dir().join(format!(
        "osiris-plugin-{}-{}",
        std::process::id(),
        hex::encode(rnd)
    ));
    let file_name = format!(
        "{}-{}{}",
        osiris_core::file_name_part(name),
        &sha[..12],
        std::env::consts::DLL_SUFFIX
    );
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let path = dir.join(file_name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o500)
            .open(&path)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(path)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir(&dir)?;
        let path = dir.join(file_name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    }
}
