//! What the fuzz targets call: the real parsers of the osiris library crates, re-exported under short names.

pub use osiris_plugins as plugins;
pub use osiris_registry as registry;

/// A scratch package directory reused by every run of a target (one per process).
pub fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}
