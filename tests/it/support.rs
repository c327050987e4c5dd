//! Shared helpers of the integration tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Builds the test plugin `tests/plugins/<name>` (a standalone crate) once per test process and returns the path
/// of its cdylib. Builds go to `$CARGO_TARGET_DIR/test-plugins` (or `target/test-plugins`).
///
/// Panics with cargo's output if the build fails.
pub fn build_test_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, &'static OnceLock<PathBuf>>>> = OnceLock::new();
    let cell: &'static OnceLock<PathBuf> = {
        let mut map = BUILT
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
    };
    cell.get_or_init(|| build(name)).clone()
}

/// The entry symbol of each test plugin (`export_ocp! { entry: .. }`).
pub fn test_plugin_entry(name: &str) -> String {
    format!("osiris_ocp_test_{name}")
}

fn build(name: &str) -> PathBuf {
    let root = repo_root();
    let manifest = root.join("tests/plugins").join(name).join("Cargo.toml");
    assert!(
        manifest.is_file(),
        "no test plugin `{name}`: {} does not exist",
        manifest.display()
    );
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("test-plugins"),
        None => root.join("target/test-plugins"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building test plugin `{name}` failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lib_name = format!("osiris_test_{name}");
    let path = target_dir.join("debug").join(format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        path.is_file(),
        "test plugin `{name}` built but {} is missing",
        path.display()
    );
    path
}
