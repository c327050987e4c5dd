//! Warnings for files that hold trust decisions or secrets and that group or others can write, as ssh gives
//! for its configuration (`CONF-W001`, `CONF-W002`).

use crate::codes::Code;
use std::path::{Path, PathBuf};

/// Warning code: `osiris.yaml` (the trust policy) is writable by group or others.
pub const CONFIG_WRITABLE: Code = Code::CONF_W001;
/// Warning code: a connections, secrets or `.env` file is writable by group or others.
pub const SECRETS_WRITABLE: Code = Code::CONF_W002;

/// The warning for a file that group or others can write, as ssh gives for its configuration (`None` when the
/// file is missing or safe). `what` names the file's role, `why` says what a writer could do.
#[cfg(unix)]
pub fn writable_file_warning(path: &Path, code: Code, what: &str, why: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o022 != 0).then(|| {
        format!(
            "warning[{code}]: {what} `{}` is writable by group or others (mode {:o}): {why}; run `chmod go-w {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        )
    })
}

#[cfg(not(unix))]
pub fn writable_file_warning(_path: &Path, _code: Code, _what: &str, _why: &str) -> Option<String> {
    None
}

/// Reports [`writable_file_warning`] as a notice ([`crate::notice`]), once per file and process.
pub fn warn_if_writable(path: &Path, code: Code, what: &str, why: &str) {
    static WARNED: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let Some(w) = writable_file_warning(path, code, what, why) else {
        return;
    };
    let first = WARNED
        .lock()
        .map(|mut s| s.insert(path.to_path_buf()))
        .unwrap_or(true);
    if first {
        crate::notice::warn(&w);
    }
}

/// [`warn_if_writable`] for `osiris.yaml`.
pub fn warn_if_config_writable(path: &Path) {
    warn_if_writable(
        path,
        CONFIG_WRITABLE,
        "configuration file",
        "whoever can write it decides which plugins run and which signing keys are trusted",
    );
}

/// [`warn_if_writable`] for a connections, secrets or `.env` file.
pub fn warn_if_secrets_writable(path: &Path) {
    warn_if_writable(
        path,
        SECRETS_WRITABLE,
        "secrets file",
        "whoever can write it can point connections elsewhere and capture credentials",
    );
}
