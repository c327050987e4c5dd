//! The dependency check of a plugin library, run on its verified bytes before `dlopen` (issue 13, finding 5).
//!
//! Only the plugin's own library is hashed and signed. `dlopen` also loads every library it names in `DT_NEEDED`
//! and runs their constructors, so each of those must come from where the dynamic loader finds the system's own
//! libraries, never from a place the plugin or the caller's environment chose. The rule (`PLUGIN-E022`):
//!
//! - the library carries no `DT_RPATH` / `DT_RUNPATH` (a search path of its own);
//! - every `DT_NEEDED` entry is a plain file name (no `/`);
//! - following the loader's order, the first directory holding it is a system library directory (the loader's
//!   defaults and `/etc/ld.so.conf`), not writable by group or others; an `LD_LIBRARY_PATH` directory outside
//!   them that holds a file of that name refuses the plugin, since the loader would take that file.
//!
//! Bundled dependencies are not supported: a plugin links everything but system libraries statically (what
//! cargo does for Rust code). The ELF dynamic section is parsed with `goblin`; nothing here maps or runs code.

use super::codes::Code;
use super::policy::Refusal;
use std::path::{Path, PathBuf};

/// Checks the `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` entries of `bytes` (the verified library). Returns what
/// was checked, for `plugins doctor`.
pub fn check(bytes: &[u8], who: &str, library: &Path) -> Result<String, Refusal> {
    #[cfg(target_os = "linux")]
    {
        check_elf(bytes, who, library, &system_dirs(), &ld_library_path())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (bytes, who, library);
        Ok("dependencies not checked on this platform".to_string())
    }
}

fn refuse(who: &str, library: &Path, why: String, fix: &str) -> Refusal {
    (
        Code::UnsafeDependency,
        format!("plugin {who}: library `{}` {why}: {fix}", library.display()),
    )
}

const FIX_STATIC: &str = "a plugin may depend only on system libraries; link its other dependencies statically, \
    rebuild it without an rpath, and ask its publisher for such a build";

/// The check against given system directories and `LD_LIBRARY_PATH` entries (empty entry: the working directory).
pub fn check_elf(
    bytes: &[u8],
    who: &str,
    library: &Path,
    system: &[PathBuf],
    ld_library_path: &[PathBuf],
) -> Result<String, Refusal> {
    let elf = dynamic_section(bytes).map_err(|e| {
        refuse(
            who,
            library,
            format!("is not a readable ELF shared library ({e})"),
            "reinstall the plugin from its publisher",
        )
    })?;
    let search: Vec<&str> = elf.rpaths.iter().chain(&elf.runpaths).copied().collect();
    if !search.is_empty() {
        return Err(refuse(
            who,
            library,
            format!(
                "sets its own library search path (DT_RPATH/DT_RUNPATH `{}`), through which its dependencies \
                 would load unverified",
                search.join(":")
            ),
            FIX_STATIC,
        ));
    }
    let mut found = Vec::new();
    for needed in &elf.libraries {
        if needed.contains('/') || needed.is_empty() || *needed == "." || *needed == ".." {
            return Err(refuse(
                who,
                library,
                format!(
                    "names its dependency by path (`{needed}`), outside the system library directories"
                ),
                FIX_STATIC,
            ));
        }
        for dir in ld_library_path {
            if is_system_dir(dir, system) {
                continue;
            }
            if let Some(hit) = find_in(dir, needed, 3) {
                return Err(refuse(
                    who,
                    library,
                    format!(
                        "depends on `{needed}`, which the dynamic loader would take from `{}` (through \
                         LD_LIBRARY_PATH), outside the system library directories",
                        hit.display()
                    ),
                    "unset LD_LIBRARY_PATH (or remove that directory from it) before running osiris; a plugin may \
                     depend only on system libraries",
                ));
            }
        }
        match system.iter().find(|d| d.join(needed).is_file()) {
            Some(dir) => {
                if let Some(why) =
                    writable_by_others(dir).or_else(|| writable_by_others(&dir.join(needed)))
                {
                    return Err(refuse(
                        who,
                        library,
                        format!("depends on `{needed}` in `{}`, which {why}", dir.display()),
                        "fix the permissions of the system library directory (only root may write there)",
                    ));
                }
                found.push(format!("{needed} ({})", dir.display()));
            }
            None => {
                return Err(refuse(
                    who,
                    library,
                    format!(
                        "depends on `{needed}`, which is not a system library (not found in {})",
                        system
                            .iter()
                            .map(|d| format!("`{}`", d.display()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    FIX_STATIC,
                ));
            }
        }
    }
    Ok(if found.is_empty() {
        "no shared library dependencies".to_string()
    } else {
        format!("system libraries only: {}", found.join(", "))
    })
}

/// What the dynamic loader reads from a library's dynamic section before loading its dependencies.
struct DynamicSection<'a> {
    libraries: Vec<&'a str>,
    rpaths: Vec<&'a str>,
    runpaths: Vec<&'a str>,
}

/// The `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` entries, found the way the loader finds them: ELF header, program
/// headers, `PT_DYNAMIC`, and its string table. Section headers, symbol tables and relocations are not parsed
/// (`goblin::elf::Elf::parse` reads them all: a few milliseconds for an 11 MB library, on every load).
fn dynamic_section(bytes: &[u8]) -> goblin::error::Result<DynamicSection<'_>> {
    use goblin::elf::dynamic::{DT_RPATH, DT_RUNPATH, Dynamic};
    use goblin::elf::program_header::ProgramHeader;
    let header = goblin::elf::Elf::parse_header(bytes)?;
    let ctx = goblin::container::Ctx::new(header.container()?, header.endianness()?);
    let phdrs = ProgramHeader::parse(bytes, header.e_phoff as usize, header.e_phnum as usize, ctx)?;
    let mut out = DynamicSection {
        libraries: Vec::new(),
        rpaths: Vec::new(),
        runpaths: Vec::new(),
    };
    let Some(dynamic) = Dynamic::parse(bytes, &phdrs, ctx)? else {
        return Ok(out);
    };
    let strtab = goblin::strtab::Strtab::parse(bytes, dynamic.info.strtab, dynamic.info.strsz, 0)?;
    if dynamic.info.needed_count > 0 {
        out.libraries = dynamic.get_libraries(&strtab);
    }
    for d in &dynamic.dyns {
        let list = match d.d_tag {
            DT_RPATH => &mut out.rpaths,
            DT_RUNPATH => &mut out.runpaths,
            _ => continue,
        };
        if let Some(path) = strtab.get_at(d.d_val as usize) {
            list.push(path);
        }
    }
    Ok(out)
}

/// A file named `name` in `dir`, or in the subdirectories the loader also searches there (`glibc-hwcaps/*`,
/// `tls`, platform and capability directories such as `x86_64` or `haswell`, nested up to `depth`).
fn find_in(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    const SUBDIRS: [&str; 9] = [
        "glibc-hwcaps",
        "tls",
        "x86_64",
        "haswell",
        "xeon_phi",
        "avx512_1",
        "i686",
        "aarch64",
        "sse2",
    ];
    let direct = dir.join(name);
    if direct.exists() {
        return Some(direct);
    }
    if depth == 0 {
        return None;
    }
    let hwcaps = dir.file_name().is_some_and(|n| n == "glibc-hwcaps");
    let rd = std::fs::read_dir(dir).ok()?;
    let mut subdirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| hwcaps || e.file_name().to_str().is_some_and(|n| SUBDIRS.contains(&n)))
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    subdirs
        .into_iter()
        .find_map(|d| find_in(&d, name, depth - 1))
}

fn is_system_dir(dir: &Path, system: &[PathBuf]) -> bool {
    if !dir.is_absolute() {
        return false;
    }
    let canon = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    system
        .iter()
        .any(|s| s == dir || std::fs::canonicalize(s).is_ok_and(|c| c == canon))
}

#[cfg(unix)]
fn writable_by_others(p: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(p).ok()?;
    (meta.mode() & 0o022 != 0).then(|| {
        format!(
            "is writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        )
    })
}

#[cfg(not(unix))]
fn writable_by_others(_: &Path) -> Option<String> {
    None
}

/// `LD_LIBRARY_PATH` as the loader reads it: entries separated by `:` or `;`, an empty entry meaning the
/// working directory.
fn ld_library_path() -> Vec<PathBuf> {
    let Some(v) = std::env::var_os("LD_LIBRARY_PATH") else {
        return Vec::new();
    };
    let v = v.to_string_lossy().to_string();
    if v.is_empty() {
        return Vec::new();
    }
    v.split([':', ';'])
        .map(|e| {
            if e.is_empty() {
                std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
            } else {
                PathBuf::from(e)
            }
        })
        .collect()
}

/// The directories the dynamic loader searches by default: those of `/etc/ld.so.conf` (and its `include`s),
/// then the built-in ones.
pub fn system_dirs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    read_ld_so_conf(Path::new("/etc/ld.so.conf"), &mut out, 0);
    for d in [
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib/aarch64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ] {
        let p = PathBuf::from(d);
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out.retain(|d| d.is_absolute() && d.is_dir());
    out
}

fn read_ld_so_conf(path: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 4 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if let Some(pattern) = line.strip_prefix("include") {
            let pattern = pattern.trim();
            let pattern = if Path::new(pattern).is_absolute() {
                pattern.to_string()
            } else {
                path.parent()
                    .unwrap_or(Path::new("/"))
                    .join(pattern)
                    .display()
                    .to_string()
            };
            let mut files: Vec<PathBuf> = glob::glob(&pattern)
                .map(|g| g.filter_map(Result::ok).collect())
                .unwrap_or_default();
            files.sort();
            for f in files {
                read_ld_so_conf(&f, out, depth + 1);
            }
        } else if line.starts_with('/') {
            let p = PathBuf::from(line);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_host_binary_depends_on_system_libraries_only() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let detail = check_elf(&bytes, "t 1", &exe, &system_dirs(), &[]).unwrap();
        assert!(detail.contains("libc.so.6"), "{detail}");
    }

    /// The dynamic-section reader finds what goblin's full parse finds, on real binaries.
    #[test]
    fn the_dynamic_section_matches_a_full_parse() {
        let exe = std::env::current_exe().unwrap();
        let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").ok();
        for path in std::iter::once(exe).chain(libc) {
            let bytes = std::fs::read(&path).unwrap();
            let full = goblin::elf::Elf::parse(&bytes).unwrap();
            let light = dynamic_section(&bytes).unwrap();
            assert_eq!(light.libraries, full.libraries, "{}", path.display());
            assert_eq!(light.rpaths, full.rpaths, "{}", path.display());
            assert_eq!(light.runpaths, full.runpaths, "{}", path.display());
            assert!(!light.libraries.is_empty(), "{}", path.display());
        }
    }

    #[test]
    fn garbage_and_unknown_dependencies_are_refused() {
        let (code, why) =
            check_elf(b"not elf", "t 1", Path::new("x.so"), &system_dirs(), &[]).unwrap_err();
        assert_eq!(code, Code::UnsafeDependency);
        assert!(why.contains("not a readable ELF"), "{why}");
        // a system dir list without libc: the host's own libc counts as not a system library
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let (_, why) =
            check_elf(&bytes, "t 1", &exe, &[empty.path().to_path_buf()], &[]).unwrap_err();
        assert!(why.contains("not a system library"), "{why}");
    }

    #[test]
    fn an_ld_library_path_copy_outside_the_system_dirs_is_refused() {
        let exe = std::env::current_exe().unwrap();
        let bytes = std::fs::read(&exe).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("glibc-hwcaps/x86-64-v3")).unwrap();
        std::fs::write(dir.path().join("glibc-hwcaps/x86-64-v3/libc.so.6"), b"").unwrap();
        let (_, why) = check_elf(
            &bytes,
            "t 1",
            &exe,
            &system_dirs(),
            &[dir.path().to_path_buf()],
        )
        .unwrap_err();
        assert!(
            why.contains("LD_LIBRARY_PATH") && why.contains("libc.so.6"),
            "{why}"
        );
    }
}
