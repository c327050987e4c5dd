//! `osiris-plugins`: the plugin host: finds OCP packages, runs the trust checks, and only then loads them.
//! Depends on `osiris-core`, `osiris-registry` and the SDK's host side; may not run pipelines or print
//! (refusals are returned in a [`Report`]; [`problem_notices`] renders them for the caller).
//!
//! Flow (see docs/adr/0005-ocp-package-and-trust.md and docs/adr/0007-verify-specs-eagerly-load-libraries-lazily.md):
//! 1. [`discovery`]: directories in precedence order, package directories found in each.
//! 2. [`package`] + [`policy`]: read each sidecar manifest, then check ABI, target, host version, allowlist,
//!    signature ([`signing`]) and the SHA-256 of each spec file, in that order. None of this reads the library.
//! 3. conflicts: a component claimed by a built-in or by two plugins refuses the plugins involved.
//! 4. only for a plugin a command is about to execute ([`Report::load_where`]): the SHA-256 of the library
//!    bytes, then [`load`]: `dlopen` of exactly those bytes and a cross-check of the module's self-report
//!    against the verified manifest and spec files.
//!
//! Commands that need only specs (`components list`, `compile`, `oml validate`, ...) stop after step 3 and
//! register the verified spec files ([`extend_registry`]); the runner, discovery and `connections doctor` load
//! the plugins they execute; `plugins list` and `plugins doctor` check every accepted plugin's files (library hash
//! and dependencies, [`deps`]) without loading it, and load it only with `--load` ([`report_for_cli`]).
//!
//! **Invariant:** no code of a plugin runs before steps 1–4 accept it: until then only files are read, and the
//! bytes hashed in step 4 are the bytes loaded.
//! **Invariant:** a refused or broken plugin never fails the command; it is reported, and only a pipeline that
//! needs one of its components fails (the component is then unknown, or the run names the refusal).

// Dev-dependencies serve the integration tests under tests/; the unit-test build links them too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod codes;
pub mod config;
pub mod deps;
pub mod discovery;
pub mod image;
pub mod load;
pub mod package;
pub mod policy;
pub mod signing;

pub use codes::Code;

use discovery::{Entry, Origin, SearchDir};
use package::Manifest;
use policy::{CheckLine, Settings, VerifiedSpec};
use serde::Serialize;
use signing::SigStatus;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What happened to a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Loaded,
    Rejected,
    Shadowed,
    Disabled,
    /// Passed every check so far, not loaded: `plugins list` / `plugins doctor` (without `--load`) and
    /// `plugins verify` show it for a package whose library hash and dependencies passed too.
    Accepted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Loaded => "loaded",
            Status::Rejected => "rejected",
            Status::Shadowed => "shadowed",
            Status::Disabled => "disabled",
            Status::Accepted => "accepted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureInfo {
    pub status: SigStatus,
    pub key_id: Option<String>,
}

/// One plugin package (or broken package-like entry) found in a plugin directory.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub name: String,
    pub version: Option<String>,
    /// The library file (or the entry found, when there is no readable manifest).
    pub path: PathBuf,
    /// The plugin directory it was found in.
    pub dir: PathBuf,
    pub status: Status,
    pub code: Option<Code>,
    pub reason: Option<String>,
    pub components: Vec<String>,
    pub signature: SignatureInfo,
    /// The package directory.
    #[serde(skip)]
    pub package_dir: PathBuf,
    #[serde(skip)]
    pub origin: Origin,
    /// Each check as run, for `plugins doctor`.
    #[serde(skip)]
    pub checks: Vec<CheckLine>,
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// The spec files that matched the manifest (check 4b), while the candidate is accepted or loaded.
    #[serde(skip)]
    specs: Option<Vec<VerifiedSpec>>,
}

impl Candidate {
    fn refuse(&mut self, code: Code, reason: String) {
        self.status = if code == Code::Shadowed {
            Status::Shadowed
        } else if code == Code::Disabled {
            Status::Disabled
        } else {
            Status::Rejected
        };
        self.code = Some(code);
        self.reason = Some(reason);
        self.specs = None;
    }

    fn who(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.name),
            None => self.name.clone(),
        }
    }

    /// A refusal as a diagnostic (what `components list` and friends print on stderr).
    pub fn diagnostic(&self) -> Option<osiris_core::diag::Diagnostic> {
        let code = self.code?;
        let reason = self.reason.clone().unwrap_or_default();
        let d = osiris_core::diag::Diagnostic::of(code.code(), reason);
        Some(d.file(self.package_dir.display().to_string()))
    }
}

/// A plugin that passed every check, library hash included, and is loaded.
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    pub module: Arc<osiris_plugin_sdk::host::Module>,
    /// `(component, spec label, spec YAML)` as verified.
    pub components: Vec<(String, String, String)>,
}

/// An ignored entry of a plugin directory, for `plugins doctor`.
#[derive(Debug, Clone, Serialize)]
pub struct Ignored {
    pub dir: PathBuf,
    pub path: PathBuf,
    pub why: String,
}

/// Everything discovery found and decided.
pub struct Report {
    pub enabled: bool,
    /// Why plugins are disabled, when they are.
    pub disabled_by: Option<String>,
    pub dirs: Vec<SearchDir>,
    /// Directories that could not be listed.
    pub dir_errors: Vec<(PathBuf, String)>,
    pub candidates: Vec<Candidate>,
    pub ignored: Vec<Ignored>,
    /// Problems in `plugins:` of osiris.yaml (bad allowlist entries, bad keys).
    pub config_problems: Vec<String>,
    pub loaded: Vec<LoadedPlugin>,
    /// The project's osiris.yaml (it may not exist).
    pub project_config: PathBuf,
    /// The machine-wide policy file in force, if any.
    pub machine_policy: Option<PathBuf>,
    /// Unsigned plugins are admitted (`plugins.allow_unsigned: true`, not overridden by the machine policy).
    pub allow_unsigned: bool,
}

/// Where to look, besides osiris.yaml.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The project root (directory of osiris.yaml): `.osiris/plugins` is searched there.
    pub project_dir: PathBuf,
    /// The project's osiris.yaml (`--config` or found by walking up).
    pub config_file: PathBuf,
    pub flag_dirs: Vec<PathBuf>,
    pub env_path: Option<std::ffi::OsString>,
    pub user_dir: Option<PathBuf>,
    pub disabled_by_flag: bool,
}

impl Inputs {
    /// From the command line and the process environment.
    pub fn from_global(g: &osiris_core::Global) -> Inputs {
        Inputs {
            project_dir: g.project_root(),
            config_file: g.config.clone(),
            flag_dirs: g.plugin_dirs.clone(),
            env_path: std::env::var_os("OSIRIS_PLUGIN_PATH"),
            user_dir: discovery::user_plugin_dir(),
            disabled_by_flag: g.disable_plugins,
        }
    }
}

/// Steps 1–2: finds candidates and runs the checks that need no library (manifest, ABI, target, host version,
/// allowlist, signature, spec hashes). Reads manifests, signatures and spec files; never a library.
pub fn discover(inputs: &Inputs, settings: &Settings) -> Report {
    let disabled_by = if inputs.disabled_by_flag {
        Some("--disable-plugins".to_string())
    } else if !settings.enabled {
        Some(
            settings
                .disabled_by
                .clone()
                .unwrap_or_else(|| "`plugins.enabled: false` in osiris.yaml".to_string()),
        )
    } else {
        None
    };
    let dirs = discovery::search_dirs(
        &inputs.flag_dirs,
        inputs.env_path.as_deref(),
        &settings.dirs,
        &inputs.project_dir,
        inputs.user_dir.clone(),
    );
    let mut report = Report {
        enabled: disabled_by.is_none(),
        disabled_by,
        dirs: Vec::new(),
        dir_errors: Vec::new(),
        candidates: Vec::new(),
        ignored: Vec::new(),
        config_problems: settings_problems(settings),
        loaded: Vec::new(),
        project_config: inputs.config_file.clone(),
        machine_policy: settings.machine_policy.clone(),
        allow_unsigned: !settings.require_signatures,
    };
    for d in &dirs {
        if d.same_as.is_some() || !d.exists {
            continue;
        }
        let entries = match discovery::scan(&d.path) {
            Ok(e) => e,
            Err(e) => {
                report.dir_errors.push((d.path.clone(), e));
                continue;
            }
        };
        let writable = policy::dir_writable_by_others(&d.path);
        for entry in entries {
            match entry {
                Entry::Package(p) => {
                    let mut c = read_candidate(&p, d);
                    if let (Some(why), Status::Accepted) = (&writable, c.status) {
                        c.refuse(
                            Code::WritableByOthers,
                            format!("plugin {} is refused: {why}", c.who()),
                        );
                    }
                    report.candidates.push(c);
                }
                Entry::NotAPackage { path, why } => {
                    let mut c = blank_candidate(&path, d);
                    c.refuse(Code::ManifestInvalid, why);
                    report.candidates.push(c);
                }
                Entry::Ignored { path, why } => report.ignored.push(Ignored {
                    dir: d.path.clone(),
                    path,
                    why,
                }),
            }
        }
    }
    report.dirs = dirs;

    // Shadowing: the first package with a given name (in precedence order) wins.
    let mut winners: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..report.candidates.len() {
        if report.candidates[i].manifest.is_none() {
            continue;
        }
        let name = report.candidates[i].name.clone();
        match winners.get(&name) {
            None => {
                winners.insert(name, i);
            }
            Some(&w) => {
                let winner = &report.candidates[w];
                let reason = format!(
                    "plugin {} in `{}` is shadowed by {} in `{}` ({}), which takes precedence: remove one of them \
                     if this is not intended",
                    report.candidates[i].who(),
                    report.candidates[i].dir.display(),
                    winner.who(),
                    winner.dir.display(),
                    winner.origin.label()
                );
                report.candidates[i].refuse(Code::Shadowed, reason);
            }
        }
    }

    for c in &mut report.candidates {
        if c.status != Status::Accepted {
            continue;
        }
        if let Some(by) = &report.disabled_by {
            let reason =
                format!("plugins are disabled by {by}; only built-in components are available");
            c.refuse(Code::Disabled, reason);
            continue;
        }
        run_checks(c, settings);
    }
    check_rollbacks(&mut report, settings);
    report
}

/// Rollback protection ([`policy::check_rollback`]) for each accepted plugin that shadows other copies of its
/// name; a pinned older build is noted on the shadowed copies (`plugins list` shows it).
fn check_rollbacks(report: &mut Report, settings: &Settings) {
    for w in 0..report.candidates.len() {
        let c = &report.candidates[w];
        let Some(m) = c.manifest.as_ref().filter(|_| c.status == Status::Accepted) else {
            continue;
        };
        let shadowed: Vec<usize> = (0..report.candidates.len())
            .filter(|&i| {
                let o = &report.candidates[i];
                o.status == Status::Shadowed && o.name == c.name && o.manifest.is_some()
            })
            .collect();
        if shadowed.is_empty() {
            continue;
        }
        let others: Vec<(&Path, &Manifest)> = shadowed
            .iter()
            .filter_map(|&i| {
                let o = &report.candidates[i];
                o.manifest.as_ref().map(|m| (o.package_dir.as_path(), m))
            })
            .collect();
        match policy::check_rollback(m, &c.package_dir, &others, settings) {
            Ok(None) => {}
            Ok(Some(note)) => {
                report.candidates[w].checks.push(CheckLine {
                    check: "rollback",
                    ok: true,
                    detail: note.clone(),
                });
                for i in shadowed {
                    if let Some(r) = &mut report.candidates[i].reason {
                        r.push_str(&format!(" ({note})"));
                    }
                }
            }
            Err((code, reason)) => {
                let c = &mut report.candidates[w];
                c.checks.push(CheckLine {
                    check: "rollback",
                    ok: false,
                    detail: format!("{code}: {reason}"),
                });
                c.refuse(code, reason);
            }
        }
    }
}

fn settings_problems(s: &Settings) -> Vec<String> {
    let mut out = s
        .allowlist
        .as_ref()
        .map(|a| a.problems())
        .unwrap_or_default();
    if let Some((file, a)) = &s.machine_allowlist {
        out.extend(
            a.problems()
                .into_iter()
                .map(|p| format!("machine policy `{}`: {p}", file.display())),
        );
    }
    out.extend(s.notes.iter().cloned());
    out.extend(s.trusted_keys.iter().flat_map(|k| k.problems()));
    out
}

fn blank_candidate(path: &Path, d: &SearchDir) -> Candidate {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    Candidate {
        name,
        version: None,
        path: path.to_path_buf(),
        dir: d.path.clone(),
        status: Status::Accepted,
        code: None,
        reason: None,
        components: Vec::new(),
        signature: SignatureInfo {
            status: SigStatus::Missing,
            key_id: None,
        },
        package_dir: path.to_path_buf(),
        origin: d.origin,
        checks: Vec::new(),
        manifest: None,
        specs: None,
    }
}

/// Reads the manifest of the package at `dir` (no checks beyond its own validity).
fn read_candidate(dir: &Path, d: &SearchDir) -> Candidate {
    let mut c = blank_candidate(dir, d);
    let m = match package::read_manifest(dir)
        .map_err(|e| (Code::ManifestInvalid, e))
        .and_then(|m| policy::validate_manifest(dir, &m).map(|()| m))
    {
        Ok(m) => m,
        Err((code, why)) => {
            c.checks.push(CheckLine {
                check: "manifest",
                ok: false,
                detail: why.clone(),
            });
            let fix = if code == Code::ManifestInvalid {
                ": fix the manifest or reinstall the plugin"
            } else {
                ""
            };
            c.refuse(code, format!("{why}{fix}"));
            return c;
        }
    };
    c.checks.push(CheckLine {
        check: "manifest",
        ok: true,
        detail: format!("{} read", package::MANIFEST_FILE),
    });
    c.name = m.name.clone();
    c.version = Some(m.version.clone());
    c.path = dir.join(&m.library);
    c.components = m.components.iter().map(|x| x.name.clone()).collect();
    c.manifest = Some(m);
    c
}

/// The checks that need no library, in order; the first failure refuses the candidate. The library's hash is
/// checked by [`Candidate::check_library`] where the library is loaded (or on request: `plugins verify`).
fn run_checks(c: &mut Candidate, s: &Settings) {
    let Some(m) = c.manifest.clone() else { return };
    let sig = policy::check_signature(&c.package_dir, &m, s);
    c.signature = SignatureInfo {
        status: sig.status,
        key_id: sig.key_id.clone(),
    };
    type Check<'a> = (
        &'static str,
        Box<dyn Fn() -> Result<String, policy::Refusal> + 'a>,
    );
    let pkg = c.package_dir.clone();
    let steps: [Check; 6] = [
        (
            "permissions",
            Box::new(|| policy::check_permissions(&pkg, &m)),
        ),
        ("abi", Box::new(|| policy::check_abi(&m))),
        ("target", Box::new(|| policy::check_target(&m))),
        (
            "osiris version",
            Box::new(|| policy::check_host_version(&m)),
        ),
        (
            "allowlist",
            Box::new(|| policy::check_allowlist(&m, s.allowlist.as_ref())),
        ),
        (
            "machine allowlist",
            Box::new(|| policy::check_machine_allowlist(&m, s.machine_allowlist.as_ref())),
        ),
    ];
    for (check, f) in steps {
        match f() {
            Ok(detail) => c.checks.push(CheckLine {
                check,
                ok: true,
                detail,
            }),
            Err((code, reason)) => {
                c.checks.push(CheckLine {
                    check,
                    ok: false,
                    detail: format!("{code}: {reason}"),
                });
                c.refuse(code, reason);
                return;
            }
        }
    }
    if let Some((code, reason)) = sig.refusal {
        c.checks.push(CheckLine {
            check: "signature",
            ok: false,
            detail: format!("{code}: {reason}"),
        });
        c.refuse(code, reason);
        return;
    }
    c.checks.push(CheckLine {
        check: "signature",
        ok: true,
        detail: sig.detail,
    });
    match policy::read_and_hash_specs(&c.package_dir, &m) {
        Ok(specs) => {
            c.checks.push(CheckLine {
                check: "spec hashes",
                ok: true,
                detail: format!("{} spec file(s) match the manifest", specs.len()),
            });
            c.specs = Some(specs);
        }
        Err((code, reason)) => {
            c.checks.push(CheckLine {
                check: "spec hashes",
                ok: false,
                detail: format!("{code}: {reason}"),
            });
            c.refuse(code, reason);
        }
    }
}

impl Candidate {
    /// Check 4c: reads the library once and compares its SHA-256 with the (signed) manifest. Returns the bytes to
    /// load; refuses the candidate on a mismatch.
    fn check_library(&mut self) -> Option<policy::PackageFiles> {
        let (Some(m), Some(specs)) = (self.manifest.clone(), self.specs.clone()) else {
            return None;
        };
        match policy::read_and_hash_library(&self.package_dir, &m, specs) {
            Ok(files) => {
                self.checks.push(CheckLine {
                    check: "library hash",
                    ok: true,
                    detail: format!(
                        "`{}` matches the manifest (sha256 {})",
                        m.library, files.library_sha256
                    ),
                });
                match deps::check(&files.library, &self.who(), &files.library_path) {
                    Ok(detail) => self.checks.push(CheckLine {
                        check: "dependencies",
                        ok: true,
                        detail,
                    }),
                    Err((code, reason)) => {
                        self.checks.push(CheckLine {
                            check: "dependencies",
                            ok: false,
                            detail: format!("{code}: {reason}"),
                        });
                        self.refuse(code, reason);
                        return None;
                    }
                }
                Some(files)
            }
            Err((code, reason)) => {
                self.checks.push(CheckLine {
                    check: "library hash",
                    ok: false,
                    detail: format!("{code}: {reason}"),
                });
                self.refuse(code, reason);
                None
            }
        }
    }

    /// Step 4 for an accepted candidate: library hash, then `dlopen` of exactly the hashed bytes and the
    /// cross-check of the module's self-report.
    fn load(&mut self) -> Option<LoadedPlugin> {
        let m = self.manifest.clone()?;
        let files = self.check_library()?;
        match load::load_verified(&m, &files) {
            Ok(module) => {
                self.checks.push(CheckLine {
                    check: "load",
                    ok: true,
                    detail: "loaded; name, version, abi and specs match the verified manifest"
                        .to_string(),
                });
                self.status = Status::Loaded;
                let components = files
                    .specs
                    .iter()
                    .map(|(name, path, text)| {
                        (name.clone(), path.display().to_string(), text.clone())
                    })
                    .collect();
                Some(LoadedPlugin {
                    name: m.name.clone(),
                    version: m.version.clone(),
                    module,
                    components,
                })
            }
            Err((code, reason)) => {
                self.checks.push(CheckLine {
                    check: "load",
                    ok: false,
                    detail: format!("{code}: {reason}"),
                });
                self.refuse(code, reason);
                None
            }
        }
    }
}

impl Report {
    /// Step 3: refuses plugins whose components clash with a built-in or with each other. Reads nothing.
    pub fn resolve_conflicts(&mut self, builtins: &BTreeSet<String>) {
        let accepted: Vec<usize> = (0..self.candidates.len())
            .filter(|&i| self.candidates[i].status == Status::Accepted)
            .collect();
        let mut claims: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in &accepted {
            for comp in &self.candidates[i].components {
                claims.entry(comp.clone()).or_default().push(i);
            }
        }
        let mut refusals: BTreeMap<usize, (Code, String)> = BTreeMap::new();
        for &i in &accepted {
            let c = &self.candidates[i];
            if let Some(comp) = c
                .components
                .iter()
                .find(|n| builtins.contains(*n) || differs_from_builtin_spec(c, n))
            {
                refusals.insert(
                    i,
                    (
                        Code::BuiltinConflict,
                        format!(
                            "plugin {} (`{}`) provides component `{comp}`, which is a built-in component of osiris \
                             (built-ins cannot be replaced, and a plugin may only supply the driver of a built-in spec \
                             it ships byte for byte): rename the component in the plugin or remove the plugin",
                            c.who(),
                            c.package_dir.display()
                        ),
                    ),
                );
            }
        }
        for (comp, owners) in &claims {
            if owners.len() < 2 {
                continue;
            }
            let names: Vec<String> = owners
                .iter()
                .map(|&o| {
                    format!(
                        "{} (`{}`)",
                        self.candidates[o].who(),
                        self.candidates[o].package_dir.display()
                    )
                })
                .collect();
            for &o in owners {
                refusals.entry(o).or_insert_with(|| {
                    (
                        Code::DuplicateComponent,
                        format!(
                            "component `{comp}` is provided by more than one plugin: {}: none of them is loaded; \
                             remove all but one of these plugins",
                            names.join(" and ")
                        ),
                    )
                });
            }
        }
        for (i, (code, reason)) in refusals {
            let c = &mut self.candidates[i];
            c.checks.push(CheckLine {
                check: "conflicts",
                ok: false,
                detail: format!("{code}: {reason}"),
            });
            c.refuse(code, reason);
        }
        for &i in &accepted {
            let c = &mut self.candidates[i];
            if c.status == Status::Accepted {
                c.checks.push(CheckLine {
                    check: "conflicts",
                    ok: true,
                    detail: "no component name clash".to_string(),
                });
            }
        }
    }

    /// Step 4 for every accepted candidate (`plugins list --load`, `plugins doctor --load`).
    pub fn load_accepted(&mut self) {
        self.load_where(|_| true);
    }

    /// The file checks of step 4 (library hash, dependencies) for every accepted candidate, without loading
    /// any: what `plugins list` and `plugins doctor` do unless asked to `--load`. Candidates that pass stay
    /// accepted; no plugin code runs.
    pub fn check_accepted(&mut self) {
        for c in &mut self.candidates {
            if c.status == Status::Accepted {
                let _ = c.check_library();
            }
        }
    }

    /// Step 4 for the accepted candidates providing at least one component `wanted` selects: checks each one's
    /// library hash and loads exactly the bytes hashed. The others are left accepted and their libraries unread.
    pub fn load_where(&mut self, wanted: impl Fn(&str) -> bool) {
        for c in &mut self.candidates {
            if c.status != Status::Accepted || !c.components.iter().any(|n| wanted(n)) {
                continue;
            }
            if let Some(l) = c.load() {
                self.loaded.push(l);
            }
        }
    }

    /// Refuses an accepted or loaded plugin after the fact (its spec failed registry validation). A loaded module
    /// stays mapped (plugins are never unloaded) but none of its components is registered or run.
    pub fn reject(&mut self, name: &str, code: Code, reason: String) {
        self.loaded.retain(|l| l.name != name);
        if let Some(c) = self
            .candidates
            .iter_mut()
            .find(|c| matches!(c.status, Status::Loaded | Status::Accepted) && c.name == name)
        {
            c.checks.push(CheckLine {
                check: "spec",
                ok: false,
                detail: format!("{code}: {reason}"),
            });
            c.refuse(code, reason);
        }
    }

    /// The loaded plugin providing `component`.
    pub fn loaded_for(&self, component: &str) -> Option<&LoadedPlugin> {
        self.loaded
            .iter()
            .find(|l| l.components.iter().any(|(n, _, _)| n == component))
    }

    /// The refused candidate that would have provided `component`, so a pipeline needing it can say why.
    pub fn refusal_for(&self, component: &str) -> Option<&Candidate> {
        self.candidates.iter().find(|c| {
            c.status != Status::Loaded
                && c.code.is_some()
                && c.components.iter().any(|n| n == component)
        })
    }

    /// Diagnostics for every refused or shadowed candidate and config problem.
    pub fn diagnostics(&self) -> Vec<osiris_core::diag::Diagnostic> {
        let mut out: Vec<osiris_core::diag::Diagnostic> = self
            .config_problems
            .iter()
            .map(|p| {
                osiris_core::diag::Diagnostic::warning(Code::ConfigProblem.code(), p.clone())
                    .file("osiris.yaml")
            })
            .collect();
        out.extend(
            self.candidates
                .iter()
                .filter(|c| c.status != Status::Disabled)
                .filter_map(Candidate::diagnostic),
        );
        out
    }
}

/// True when `component` is a built-in spec and the plugin ships a different spec under that name. (A plugin
/// shipping the built-in spec unchanged may supply its driver: that is how first-party components ship as OCPs.)
fn differs_from_builtin_spec(c: &Candidate, component: &str) -> bool {
    let Some((_, _, text)) = osiris_registry::BUILTIN_SPECS
        .iter()
        .find(|(n, _, _)| *n == component)
    else {
        return false;
    };
    let builtin = package::sha256_hex(text.as_bytes());
    let shipped = c
        .manifest
        .as_ref()
        .and_then(|m| m.components.iter().find(|x| x.name == component));
    shipped.is_none_or(|x| !x.spec_sha256.eq_ignore_ascii_case(&builtin))
}

/// Verifies a single package directory without loading it: every pre-load check, the library hash included.
pub fn check_package(path: &Path, settings: &Settings) -> Candidate {
    let dir = package_dir_of(path);
    let d = SearchDir {
        path: dir.parent().map(Path::to_path_buf).unwrap_or_default(),
        origin: Origin::Flag,
        exists: true,
        same_as: None,
    };
    let mut c = if dir.join(package::MANIFEST_FILE).is_file() {
        read_candidate(&dir, &d)
    } else {
        let mut c = blank_candidate(&dir, &d);
        c.refuse(
            Code::ManifestInvalid,
            format!(
                "`{}` is not a plugin package: no `{}` there",
                dir.display(),
                package::MANIFEST_FILE
            ),
        );
        c
    };
    if c.status == Status::Accepted {
        run_checks(&mut c, settings);
    }
    if c.status == Status::Accepted {
        // The bytes are dropped: nothing is loaded here.
        let _ = c.check_library();
    }
    c
}

/// Accepts a package directory, its manifest, or a file inside it.
pub fn package_dir_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Steps 1–3 for a command: reads `plugins:` from osiris.yaml, discovers, runs the checks that need no library
/// and resolves conflicts against `builtins`. Reads no library and loads nothing: a command that executes a
/// plugin's driver calls [`Report::load_where`] for the components it runs. Refusals are in the report; only an
/// unreadable osiris.yaml is an error.
pub fn verify(
    g: &osiris_core::Global,
    builtins: &BTreeSet<String>,
) -> Result<Report, osiris_core::exit::Fail> {
    let settings = config::settings_for(&g.config)
        .map_err(|e| osiris_core::exit::Fail::new(osiris_core::exit::Exit::Config, e))?;
    let mut report = discover(&Inputs::from_global(g), &settings);
    report.resolve_conflicts(builtins);
    Ok(report)
}

/// Verifies the plugins (refusing components in `linked`, the built-ins with a linked driver) and adds their
/// verified spec files to `reg`, without reading or loading any library: each plugin's specs are validated by
/// the registry (all or nothing per plugin), then registered as runnable with the plugin as their source. The
/// library is checked (hash) and loaded only by a command that runs one of its components. Returns the report;
/// prints nothing.
pub fn extend_registry(
    g: &osiris_core::Global,
    reg: &mut osiris_registry::Registry,
    linked: &[&str],
) -> Result<Report, osiris_core::exit::Fail> {
    let builtins: BTreeSet<String> = linked.iter().map(|s| s.to_string()).collect();
    let mut report = verify(g, &builtins)?;
    register_specs(&mut report, reg);
    Ok(report)
}

impl Report {
    /// `(label, YAML)` of every spec file of the accepted or loaded candidates, as verified (hash checked against
    /// the signed manifest) and not yet checked by the registry: what [`register_specs`] would offer it. A
    /// cache keyed by what a registry would hold (the LLM context) reads this instead of building one.
    pub fn verified_specs(&self) -> Vec<(String, &str)> {
        self.candidates
            .iter()
            .filter(|c| matches!(c.status, Status::Accepted | Status::Loaded))
            .filter_map(|c| c.specs.as_ref())
            .flatten()
            .map(|(_, path, text)| (path.display().to_string(), text.as_str()))
            .collect()
    }
}

/// Adds the verified specs of every accepted or loaded candidate to `reg`; a plugin whose specs the registry
/// refuses is refused (`PLUGIN-E013`) and none of its components is registered. ([`extend_registry`] is
/// [`verify`] and this.)
pub fn register_specs(report: &mut Report, reg: &mut osiris_registry::Registry) {
    use osiris_registry::Source;
    let mut refused = Vec::new();
    for c in &report.candidates {
        if !matches!(c.status, Status::Accepted | Status::Loaded) {
            continue;
        }
        let (Some(m), Some(specs)) = (&c.manifest, &c.specs) else {
            continue;
        };
        let source = Source::Plugin {
            name: m.name.clone(),
            version: m.version.clone(),
        };
        let texts: Vec<(String, &str)> = specs
            .iter()
            .map(|(_, path, text)| (path.display().to_string(), text.as_str()))
            .collect();
        if let Err(problems) = reg.load_specs_all_or_nothing(&texts, &source) {
            let detail: Vec<String> = problems
                .iter()
                .map(|d| d.render(None).trim_end().to_string())
                .collect();
            refused.push((
                m.name.clone(),
                format!(
                    "plugin {} {} ships component specs the registry refuses: report this to its publisher; none of its \
                     components is available:\n{}",
                    m.name,
                    m.version,
                    detail.join("\n")
                ),
            ));
        } else {
            for (name, _, _) in specs {
                reg.set_runnable(name, source.clone());
            }
        }
    }
    for (name, reason) in refused {
        report.reject(&name, Code::SpecInvalid, reason);
    }
}

/// Refusals and shadowing (not `disabled`) as rendered diagnostics, one notice each, with a closing note when a
/// plugin was refused; reported where plugins are verified on the way to another result (`components list`,
/// `compile`, `run`).
pub fn problem_notices(report: &Report) -> Vec<String> {
    let mut notices: Vec<String> = report
        .diagnostics()
        .iter()
        .map(|d| {
            let text = d.render(None);
            text.strip_suffix('\n').unwrap_or(&text).to_string()
        })
        .collect();
    if report
        .candidates
        .iter()
        .any(|c| c.status == Status::Rejected)
    {
        notices.push(
            "   = note: `osiris plugins list` and `osiris plugins doctor` show every plugin and check".to_string(),
        );
    }
    notices
}

/// The report the `plugins list` / `plugins doctor` show: the decisions `build_registry` makes, then the file
/// checks of every plugin still accepted (library hash, dependencies), so a changed library shows up here as
/// `PLUGIN-E010` although `components list` reads only its specs. Only with `load` (`--load`) are the accepted
/// plugins loaded as a run needing them would (their code runs); a diagnosis never runs plugin code otherwise.
pub fn report_for_cli(
    g: &osiris_core::Global,
    linked: &[&str],
    load: bool,
) -> Result<Report, osiris_core::exit::Fail> {
    let mut reg = osiris_registry::Registry::builtin();
    let mut report = extend_registry(g, &mut reg, linked)?;
    if load {
        report.load_accepted();
    } else {
        report.check_accepted();
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use osiris_registry::{Registry, Source};

    const ECHO_SPEC: &str = include_str!("../../../../tests/plugins/echo/spec.yaml");

    #[test]
    fn a_plugins_specs_are_registered_all_or_nothing() {
        let mut reg = Registry::builtin();
        let source = Source::Plugin {
            name: "acme".into(),
            version: "1.0.0".into(),
        };
        let csv = reg.get("filesystem.csv_extractor").unwrap().clone();
        let changed = csv
            .text
            .replacen("\nversion:", "\nx-note: changed\nversion:", 1);
        assert_ne!(changed, *csv.text);
        let refused = reg.load_specs_all_or_nothing(
            &[
                ("echo.spec.yaml".to_string(), ECHO_SPEC),
                ("csv.spec.yaml".to_string(), changed.as_str()),
            ],
            &source,
        );
        let problems = refused.unwrap_err();
        assert!(
            problems.iter().any(|d| d.code == "SPEC-E038"),
            "{problems:#?}"
        );
        assert!(
            reg.get("test.echo").is_none(),
            "the plugin's valid spec is taken out again"
        );
        assert_eq!(
            reg.get("filesystem.csv_extractor").unwrap().source,
            Source::Builtin
        );

        reg.load_specs_all_or_nothing(&[("echo.spec.yaml".to_string(), ECHO_SPEC)], &source)
            .unwrap();
        assert_eq!(reg.get("test.echo").unwrap().source, source);
    }
}
