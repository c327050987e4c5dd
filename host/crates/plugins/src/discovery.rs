//! Where plugins are looked for, and what is found there (files only; nothing is loaded here).

use super::package::{MANIFEST_FILE, is_library_name};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The project's plugin directory, relative to the project root.
pub const PROJECT_PLUGIN_DIR: &str = ".osiris/plugins";

/// Why a directory is searched; the order of the variants is the precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `--plugin-dir DIR`
    Flag,
    /// `OSIRIS_PLUGIN_PATH`
    Env,
    /// `plugins.dirs` in osiris.yaml
    Config,
    /// `.osiris/plugins` in the project root
    Project,
    /// the user data directory
    User,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Flag => "--plugin-dir",
            Origin::Env => "OSIRIS_PLUGIN_PATH",
            Origin::Config => "plugins.dirs",
            Origin::Project => "project .osiris/plugins",
            Origin::User => "user data dir",
        }
    }
}

/// One directory in the search order.
#[derive(Debug, Clone, Serialize)]
pub struct SearchDir {
    pub path: PathBuf,
    pub origin: Origin,
    pub exists: bool,
    /// Set when the same directory appears earlier in the order (it is searched once).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_as: Option<PathBuf>,
}

/// The user data directory for plugins: `$XDG_DATA_HOME/osiris/plugins` or `~/.local/share/osiris/plugins`
/// (`~/Library/Application Support/osiris/plugins` on macOS, `%APPDATA%\osiris\plugins` on Windows).
pub fn user_plugin_dir() -> Option<PathBuf> {
    let base = if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
    }?;
    Some(base.join("osiris").join("plugins"))
}

/// The search order: flags, `OSIRIS_PLUGIN_PATH`, `plugins.dirs`, `<project>/.osiris/plugins`, the user data dir.
/// `project` is the project root (the directory of osiris.yaml), not the working directory.
pub fn search_dirs(
    flags: &[PathBuf],
    env_path: Option<&std::ffi::OsStr>,
    config_dirs: &[PathBuf],
    project: &Path,
    user: Option<PathBuf>,
) -> Vec<SearchDir> {
    let mut wanted: Vec<(PathBuf, Origin)> = Vec::new();
    wanted.extend(flags.iter().map(|d| (d.clone(), Origin::Flag)));
    if let Some(env) = env_path {
        wanted.extend(
            std::env::split_paths(env)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| (p, Origin::Env)),
        );
    }
    wanted.extend(config_dirs.iter().map(|d| (d.clone(), Origin::Config)));
    wanted.push((project.join(PROJECT_PLUGIN_DIR), Origin::Project));
    if let Some(u) = user {
        wanted.push((u, Origin::User));
    }
    let mut out: Vec<SearchDir> = Vec::new();
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (path, origin) in wanted {
        let exists = path.is_dir();
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let same_as = seen.iter().find(|(k, _)| *k == key).map(|(_, p)| p.clone());
        if same_as.is_none() {
            seen.push((key, path.clone()));
        }
        out.push(SearchDir {
            path,
            origin,
            exists,
            same_as,
        });
    }
    out
}

/// One entry of a plugin directory and what discovery made of it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A package directory (has `osiris-plugin.toml`).
    Package(PathBuf),
    /// A directory or file that looks like a plugin but is not a package (no manifest).
    NotAPackage { path: PathBuf, why: String },
    /// Ignored, with the reason (for `plugins doctor`).
    Ignored { path: PathBuf, why: String },
}

/// Lists `dir`'s entries in file-name order.
pub fn scan(dir: &Path) -> Result<Vec<Entry>, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("cannot list `{}`: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if file_name.starts_with('.') {
            out.push(Entry::Ignored {
                path,
                why: "hidden".to_string(),
            });
        } else if path.is_dir() {
            if path.join(MANIFEST_FILE).is_file() {
                out.push(Entry::Package(path));
            } else if dir_has_library(&path) {
                out.push(Entry::NotAPackage {
                    why: format!(
                        "`{}` holds a library but no `{MANIFEST_FILE}`: a plugin package needs its manifest next to the \
                         library; reinstall the plugin from its package",
                        path.display()
                    ),
                    path,
                });
            } else {
                out.push(Entry::Ignored {
                    path,
                    why: format!("no `{MANIFEST_FILE}` and no library"),
                });
            }
        } else if is_library_name(&file_name) {
            out.push(Entry::NotAPackage {
                why: format!(
                    "`{}` is a loose library: a plugin is a directory `<name>/` holding the library and its \
                     `{MANIFEST_FILE}`; install the plugin's package instead",
                    path.display()
                ),
                path,
            });
        } else {
            out.push(Entry::Ignored {
                path,
                why: "not a plugin package directory".to_string(),
            });
        }
    }
    Ok(out)
}

fn dir_has_library(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_str().is_some_and(is_library_name))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_order_is_flags_env_config_project_user_and_dedups() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        let b = t.path().join("b");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let env = std::env::join_paths([b.clone(), a.clone()]).unwrap();
        let dirs = search_dirs(
            std::slice::from_ref(&a),
            Some(&env),
            &[t.path().join("c")],
            t.path(),
            Some(t.path().join("u")),
        );
        let origins: Vec<Origin> = dirs.iter().map(|d| d.origin).collect();
        assert_eq!(
            origins,
            [
                Origin::Flag,
                Origin::Env,
                Origin::Env,
                Origin::Config,
                Origin::Project,
                Origin::User
            ]
        );
        assert_eq!(dirs[0].path, a);
        assert_eq!(dirs[1].path, b);
        assert_eq!(dirs[2].same_as.as_deref(), Some(a.as_path()));
        assert!(!dirs[3].exists);
        assert_eq!(dirs[4].path, t.path().join(".osiris/plugins"));
    }

    #[test]
    fn scan_classifies_entries() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path();
        std::fs::create_dir_all(p.join("good")).unwrap();
        std::fs::write(p.join("good").join(MANIFEST_FILE), "").unwrap();
        std::fs::create_dir_all(p.join("nomanifest")).unwrap();
        std::fs::write(p.join("nomanifest/libx.so"), "").unwrap();
        std::fs::write(p.join("loose.so"), "").unwrap();
        std::fs::write(p.join("README"), "").unwrap();
        let e = scan(p).unwrap();
        assert!(matches!(&e[0], Entry::Ignored { .. }), "{e:?}"); // README
        assert!(matches!(&e[1], Entry::Package(_)), "{e:?}");
        assert!(matches!(&e[2], Entry::NotAPackage { .. }), "{e:?}"); // loose.so
        assert!(matches!(&e[3], Entry::NotAPackage { .. }), "{e:?}"); // nomanifest
    }
}
