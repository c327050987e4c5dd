//! `osiris plugins ...`: list, doctor, keygen, sign, verify, inspect.

use super::{Format, Global};
use clap::Args;
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_plugins::package::{self, MANIFEST_FILE};
use osiris_plugins::signing::{self, SigStatus};
use osiris_plugins::{self as plugins, Candidate, Report, Status};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum PluginsCmd {
    /// One row per plugin found, with its status, code and signature; checks every file, loads nothing
    /// unless `--load`.
    List(DiagnoseArgs),
    /// Every directory searched, every file considered, and why each was accepted or refused; loads nothing
    /// unless `--load`.
    Doctor(DiagnoseArgs),
    /// Create an ed25519 signing key: FILE (secret, mode 0600) and FILE.pub.
    Keygen(KeygenArgs),
    /// Sign a plugin package (writes osiris-plugin.sig next to its manifest).
    Sign(SignArgs),
    /// Run every pre-load check on one package (signature against `plugins.trusted_keys`); loads nothing.
    Verify(PathArgs),
    /// Show a package's metadata, hashes and signature without loading it.
    Inspect(PathArgs),
    /// Build a plugin crate (cargo) and write its package directory (library, specs, osiris-plugin.toml).
    Pack(PackArgs),
    /// Check a package with every pre-load check (loads nothing), then copy it into a plugin directory.
    Install(InstallArgs),
    /// Remove an installed plugin package from a plugin directory.
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also load every accepted plugin (runs its code, as a pipeline using it would) and cross-check what it
    /// reports about itself.
    #[arg(long)]
    pub load: bool,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Secret key file to create; the public key goes to FILE.pub.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// Package directory (or its osiris-plugin.toml).
    pub path: PathBuf,
    /// Secret key file from `osiris plugins keygen`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Key id recorded in the signature; must match the `id` in `plugins.trusted_keys`
    /// (default: first 16 hex of the public key's sha256).
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct PathArgs {
    /// Package directory (or a file inside it).
    pub path: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: PluginsCmd) -> CmdResult {
    match c {
        PluginsCmd::List(a) => list(g, a.format, a.load),
        PluginsCmd::Doctor(a) => doctor(g, a.format, a.load),
        PluginsCmd::Keygen(a) => keygen(a),
        PluginsCmd::Sign(a) => sign(a),
        PluginsCmd::Verify(a) => verify(g, a),
        PluginsCmd::Inspect(a) => inspect(g, a),
        PluginsCmd::Pack(a) => pack(a),
        PluginsCmd::Install(mut a) => {
            a.dir = project_plugin_dir(g, a.dir);
            install(g, a)
        }
        PluginsCmd::Remove(mut a) => {
            a.dir = project_plugin_dir(g, a.dir);
            remove(g, a)
        }
    }
}

/// The default `--dir` of `install` / `remove` is the project's plugin directory, in the project root (found by
/// walking up), not in the working directory.
fn project_plugin_dir(g: &Global, dir: PathBuf) -> PathBuf {
    if dir == std::path::Path::new(DEFAULT_INSTALL_DIR) {
        g.project_root().join(DEFAULT_INSTALL_DIR)
    } else {
        dir
    }
}

fn settings(g: &Global) -> Result<plugins::policy::Settings, Fail> {
    plugins::config::settings_for(&g.config).map_err(|e| Fail::new(Exit::Config, e))
}

fn print_json(v: &impl serde::Serialize) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(v).map_err(|e| {
        Fail::new(
            Exit::Internal,
            format!("internal error (a bug, please report it): {e}"),
        )
    })?;
    outln!("{text}");
    Ok(())
}

fn list(g: &Global, format: Format, load: bool) -> CmdResult {
    let report = plugins::report_for_cli(g, osiris_runner::modules::linked_components(), load)?;
    match format {
        Format::Json => print_json(&report.candidates)?,
        Format::Text => {
            if report.candidates.is_empty() {
                outln!("no plugins found (`osiris plugins doctor` shows where osiris looked)");
            } else {
                let rows: Vec<[String; 7]> = report
                    .candidates
                    .iter()
                    .map(|c| {
                        [
                            c.name.clone(),
                            c.version.clone().unwrap_or_else(|| "-".into()),
                            c.status.as_str().to_string(),
                            c.code
                                .map(|x| x.as_str().to_string())
                                .unwrap_or_else(|| "-".into()),
                            signature_cell(c),
                            if c.components.is_empty() {
                                "-".into()
                            } else {
                                c.components.join(",")
                            },
                            c.path.display().to_string(),
                        ]
                    })
                    .collect();
                print_table(
                    &[
                        "NAME",
                        "VERSION",
                        "STATUS",
                        "CODE",
                        "SIGNATURE",
                        "COMPONENTS",
                        "PATH",
                    ],
                    &rows,
                );
                for c in report.candidates.iter().filter(|c| c.reason.is_some()) {
                    outln!();
                    outln!(
                        "{} [{}]: {}",
                        c.name,
                        c.code.map(|x| x.as_str()).unwrap_or(""),
                        c.reason.as_deref().unwrap_or("")
                    );
                }
            }
            for p in &report.config_problems {
                errln!("warning[{}]: {p}", plugins::Code::ConfigProblem);
            }
        }
    }
    Ok(Exit::Ok)
}

fn signature_cell(c: &Candidate) -> String {
    match &c.signature.key_id {
        Some(k) => format!("{} ({k})", c.signature.status.as_str()),
        None => c.signature.status.as_str().to_string(),
    }
}

fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        outln!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

fn doctor(g: &Global, format: Format, load: bool) -> CmdResult {
    let report = plugins::report_for_cli(g, osiris_runner::modules::linked_components(), load)?;
    match format {
        Format::Json => print_json(&doctor_json(&report))?,
        Format::Text => {
            use std::io::Write as _;
            let _ = write!(std::io::stdout(), "{}", doctor_text(&report));
        }
    }
    Ok(Exit::Ok)
}

fn doctor_json(r: &Report) -> serde_json::Value {
    let dirs: Vec<serde_json::Value> = r
        .dirs
        .iter()
        .map(|d| {
            let state = if d.same_as.is_some() {
                "duplicate"
            } else if !d.exists {
                "missing"
            } else if r.dir_errors.iter().any(|(p, _)| *p == d.path) {
                "unreadable"
            } else {
                "searched"
            };
            json!({
                "path": d.path, "origin": d.origin, "state": state, "same_as": d.same_as,
                "error": r.dir_errors.iter().find(|(p, _)| *p == d.path).map(|(_, e)| e),
                "candidates": r.candidates.iter().filter(|c| c.dir == d.path && state == "searched").map(|c| json!({
                    "name": c.name, "version": c.version, "package": c.package_dir, "status": c.status, "code": c.code,
                    "reason": c.reason, "checks": c.checks,
                })).collect::<Vec<_>>(),
                "ignored": r.ignored.iter().filter(|i| i.dir == d.path && state == "searched").map(|i| json!({"path": i.path, "why": i.why})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "project_config": r.project_config,
        "machine_policy": r.machine_policy,
        "allow_unsigned": r.allow_unsigned,
        "enabled": r.enabled,
        "disabled_by": r.disabled_by,
        "host": { "version": plugins::policy::host_version().to_string(), "abi": plugins::policy::supported_abis(), "target": package::host_target() },
        "config_problems": r.config_problems,
        "dirs": dirs,
    })
}

fn doctor_text(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "osiris {} (plugin ABI {}, target {})",
        plugins::policy::host_version(),
        plugins::policy::supported_abis()
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        package::host_target()
    );
    let _ = writeln!(out, "project: {}", r.project_config.display());
    let _ = writeln!(
        out,
        "machine policy: {}",
        match &r.machine_policy {
            Some(p) => format!("{} (holds for every project on this machine)", p.display()),
            None => format!(
                "none (`{}` does not exist, `OSIRIS_POLICY_FILE` is not set)",
                plugins::config::MACHINE_POLICY_FILE
            ),
        }
    );
    let _ = writeln!(
        out,
        "unsigned plugins: {}",
        if r.allow_unsigned {
            "allowed (`plugins.allow_unsigned: true`)"
        } else {
            "refused"
        }
    );
    match &r.disabled_by {
        Some(by) => {
            let _ = writeln!(
                out,
                "plugins: disabled by {by} (packages are listed, none is checked or loaded)"
            );
        }
        None => {
            let _ = writeln!(out, "plugins: enabled");
        }
    }
    for p in &r.config_problems {
        let _ = writeln!(out, "warning[{}]: {p}", plugins::Code::ConfigProblem);
    }
    let _ = writeln!(out, "\nsearch order (first wins for a plugin name):");
    for (i, d) in r.dirs.iter().enumerate() {
        let state = if let Some(same) = &d.same_as {
            format!("same directory as `{}`, searched once", same.display())
        } else if !d.exists {
            "does not exist, skipped".to_string()
        } else if let Some((_, e)) = r.dir_errors.iter().find(|(p, _)| *p == d.path) {
            format!("unreadable: {e}")
        } else {
            "searched".to_string()
        };
        let _ = writeln!(
            out,
            "{:>2}. {} [{}]: {state}",
            i + 1,
            d.path.display(),
            d.origin.label()
        );
        if d.same_as.is_some() || !d.exists {
            continue;
        }
        let mut any = false;
        for c in r.candidates.iter().filter(|c| c.dir == d.path) {
            any = true;
            let verdict = match c.status {
                Status::Loaded => "accepted, loaded".to_string(),
                Status::Accepted => {
                    "accepted, not loaded (`--load` loads it and runs its code)".to_string()
                }
                s => format!(
                    "{} {}",
                    s.as_str(),
                    c.code.map(|x| x.as_str()).unwrap_or("")
                ),
            };
            let _ = writeln!(
                out,
                "    {}: {} {}: {verdict}",
                c.package_dir.display(),
                c.name,
                c.version.as_deref().unwrap_or("?")
            );
            for ch in &c.checks {
                let _ = writeln!(
                    out,
                    "      {} {}: {}",
                    if ch.ok { "ok  " } else { "FAIL" },
                    ch.check,
                    ch.detail
                );
            }
            if c.checks.iter().all(|ch| ch.ok)
                && let Some(reason) = &c.reason
            {
                let _ = writeln!(out, "      {reason}");
            }
        }
        for i in r.ignored.iter().filter(|i| i.dir == d.path) {
            any = true;
            let _ = writeln!(out, "    {}: ignored ({})", i.path.display(), i.why);
        }
        if !any {
            let _ = writeln!(out, "    (empty)");
        }
    }
    let loaded = r
        .candidates
        .iter()
        .filter(|c| c.status == Status::Loaded)
        .count();
    let accepted = r
        .candidates
        .iter()
        .filter(|c| c.status == Status::Accepted)
        .count();
    let refused = r
        .candidates
        .iter()
        .filter(|c| c.status == Status::Rejected)
        .count();
    let _ = writeln!(
        out,
        "\n{} candidate(s): {loaded} loaded, {accepted} accepted (not loaded), {refused} rejected",
        r.candidates.len()
    );
    out
}

fn keygen(a: KeygenArgs) -> CmdResult {
    let (pub_path, public) =
        signing::keygen(&a.out).map_err(|e| Fail::new(Exit::Validation, format!("error: {e}")))?;
    let id = signing::default_key_id(&public);
    outln!(
        "secret key: {} (keep it private; never copy it into a plugin directory)",
        a.out.display()
    );
    outln!("public key: {}", pub_path.display());
    outln!("key id:     {id}");
    outln!();
    outln!("to trust plugins signed with it, add to osiris.yaml:");
    outln!("plugins:");
    outln!("  trusted_keys:");
    outln!("    - id: {id}");
    outln!("      public_key: {}", signing::encode_public(&public));
    outln!("      scope: \"acme-*\"       # plugin names this key may sign (omit: any name)");
    outln!("      families: [acme]      # component families its plugins may provide (acme.*)");
    Ok(Exit::Ok)
}

fn sign(a: SignArgs) -> CmdResult {
    let dir = plugins::package_dir_of(&a.path);
    let m = package::read_manifest(&dir).map_err(|e| {
        Fail::new(
            Exit::Validation,
            format!("error[{}]: {e}", plugins::Code::ManifestInvalid),
        )
    })?;
    plugins::policy::validate_manifest(&dir, &m)
        .map_err(|(code, e)| Fail::new(Exit::Validation, format!("error[{code}]: {e}")))?;
    // Refuse to sign files that do not match the manifest: the signature would vouch for the wrong bytes.
    plugins::policy::read_and_hash(&dir, &m)
        .map_err(|(code, e)| Fail::new(Exit::Validation, format!("error[{code}]: {e}")))?;
    if let Some(w) = signing::secret_key_permission_problem(&a.key) {
        errln!("warning: {w}");
    }
    let key = signing::read_secret_key(&a.key)
        .map_err(|e| Fail::new(Exit::Config, format!("error: {e}")))?;
    let key_id = a
        .key_id
        .unwrap_or_else(|| signing::default_key_id(&key.verifying_key()));
    if !signing::is_plain_key_id(&key_id) {
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error: `--key-id` `{}` is not a plain identifier (1 to 128 characters, no whitespace or control \
                 characters): osiris would refuse the signature; use the `id` of the key in `plugins.trusted_keys`",
                key_id.escape_debug()
            ),
        ));
    }
    let sig = signing::sign(&m, &key, &key_id);
    // Written as a new file renamed into place: an `osiris-plugin.sig` that is a link is replaced, never followed.
    let path = signing::write_signature(&dir, &sig).map_err(|e| {
        Fail::new(
            Exit::Validation,
            format!(
                "error: cannot write the signature into `{}`: {e}",
                dir.display()
            ),
        )
    })?;
    outln!(
        "signed {} {} with key `{key_id}`: {}",
        m.name,
        m.version,
        path.display()
    );
    Ok(Exit::Ok)
}

fn verify(g: &Global, a: PathArgs) -> CmdResult {
    let s = settings(g)?;
    let c = plugins::check_package(&a.path, &s);
    let ok = c.status == Status::Accepted;
    match a.format {
        Format::Json => print_json(&json!({
            "name": c.name, "version": c.version, "path": c.path, "ok": ok, "code": c.code, "reason": c.reason,
            "signature": c.signature, "checks": c.checks,
        }))?,
        Format::Text => {
            outln!(
                "{} {}: {}",
                c.name,
                c.version.as_deref().unwrap_or("?"),
                if ok {
                    "passes every pre-load check"
                } else {
                    "refused"
                }
            );
            outln!("signature: {}", signature_cell(&c));
            for ch in &c.checks {
                outln!(
                    "  {} {}: {}",
                    if ch.ok { "ok  " } else { "FAIL" },
                    ch.check,
                    ch.detail
                );
            }
            if let (Some(code), Some(reason)) = (c.code, &c.reason)
                && c.checks.iter().all(|ch| ch.ok)
            {
                outln!("error[{code}]: {reason}");
            }
        }
    }
    if ok {
        Ok(Exit::Ok)
    } else {
        Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: {}",
                c.code.map(|x| x.as_str()).unwrap_or("?"),
                c.reason.as_deref().unwrap_or("refused")
            ),
        ))
    }
}

fn inspect(g: &Global, a: PathArgs) -> CmdResult {
    let dir = plugins::package_dir_of(&a.path);
    let m = package::read_manifest(&dir).map_err(|e| {
        Fail::new(
            Exit::Validation,
            format!("error[{}]: {e}", plugins::Code::ManifestInvalid),
        )
    })?;
    let actual_lib = std::fs::read(dir.join(&m.library))
        .ok()
        .map(|b| package::sha256_hex(&b));
    let specs: Vec<serde_json::Value> = m
        .components
        .iter()
        .map(|c| {
            let actual = std::fs::read(dir.join(&c.spec)).ok().map(|b| package::sha256_hex(&b));
            json!({"name": c.name, "spec": c.spec, "spec_sha256": c.spec_sha256, "actual_sha256": actual,
                   "matches": actual.as_deref() == Some(c.spec_sha256.to_ascii_lowercase().as_str())})
        })
        .collect();
    let sig_file: Option<signing::SignatureFile> =
        std::fs::read_to_string(dir.join(package::SIGNATURE_FILE))
            .ok()
            .and_then(|t| toml::from_str(&t).ok());
    let s = settings(g).unwrap_or_default();
    let sig = signing::check(&dir, &m, &s.trusted_keys, false);
    let statement = String::from_utf8_lossy(&signing::statement(&m)).to_string();
    let v = json!({
        "package": dir, "manifest": dir.join(MANIFEST_FILE),
        "name": m.name, "version": m.version, "abi_version": m.abi_version, "sdk_version": m.sdk_version,
        "target": m.target, "entry": m.entry, "osiris": m.osiris.as_requirement(),
        "library": { "file": m.library, "sha256": m.library_sha256, "actual_sha256": actual_lib,
                     "matches": actual_lib.as_deref() == Some(m.library_sha256.to_ascii_lowercase().as_str()) },
        "components": specs,
        "signature": { "status": sig.status, "key_id": sig_file.as_ref().map(|f| &f.key_id), "detail": sig.detail },
        "statement": statement,
    });
    match a.format {
        Format::Json => print_json(&v)?,
        Format::Text => {
            outln!("package:   {}", dir.display());
            outln!("name:      {}", m.name);
            outln!("version:   {}", m.version);
            outln!(
                "abi:       {} (this osiris supports {:?})",
                m.abi_version,
                plugins::policy::supported_abis()
            );
            outln!(
                "target:    {} (this host is {})",
                m.target,
                package::host_target()
            );
            outln!(
                "osiris:    {} (this is {})",
                m.osiris.as_requirement(),
                plugins::policy::host_version()
            );
            outln!("entry:     {}", m.entry);
            outln!(
                "library:   {} sha256 {} ({})",
                m.library,
                m.library_sha256,
                match &actual_lib {
                    Some(a) if a.eq_ignore_ascii_case(&m.library_sha256) =>
                        "matches the file".to_string(),
                    Some(a) => format!("MISMATCH: the file has {a}"),
                    None => "file missing".to_string(),
                }
            );
            for c in &v["components"].as_array().cloned().unwrap_or_default() {
                outln!(
                    "component: {} spec {} ({})",
                    c["name"].as_str().unwrap_or(""),
                    c["spec"].as_str().unwrap_or(""),
                    if c["matches"].as_bool() == Some(true) {
                        "hash matches"
                    } else {
                        "HASH MISMATCH or missing"
                    }
                );
            }
            let sig_line = match sig.status {
                SigStatus::Missing => "missing".to_string(),
                st => format!("{} ({})", st.as_str(), sig.detail),
            };
            outln!("signature: {sig_line}");
            outln!("\nsigned statement:\n{statement}");
        }
    }
    Ok(Exit::Ok)
}

/// The plugin directory `install` and `remove` use by default (the project directory osiris searches).
const DEFAULT_INSTALL_DIR: &str = ".osiris/plugins";

#[derive(Args, Debug)]
pub struct PackArgs {
    /// The plugin crate: its directory or its Cargo.toml.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub manifest_path: PathBuf,
    /// Package directory to write (default: `<crate>/dist/<package name>`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Build with `--release`.
    #[arg(long)]
    pub release: bool,
    /// Package this already built library instead of running cargo.
    #[arg(long, value_name = "FILE")]
    pub library: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Package directory (or a file inside it), e.g. the output of `osiris plugins pack`.
    pub path: PathBuf,
    /// Plugin directory to install into (default: `.osiris/plugins` in the project root).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_INSTALL_DIR)]
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// Plugin (package) name, as `osiris plugins list` shows it.
    pub name: String,
    /// Plugin directory to remove it from (default: `.osiris/plugins` in the project root).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_INSTALL_DIR)]
    pub dir: PathBuf,
}

fn pack_err(message: String) -> Fail {
    Fail::new(Exit::Validation, format!("error: {message}"))
}

/// What `pack` reads from the crate's Cargo.toml.
struct CrateInfo {
    name: String,
    version: String,
    lib_name: String,
    entry: String,
    requires: String,
}

fn crate_info(manifest: &std::path::Path) -> Result<CrateInfo, Fail> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| pack_err(format!("cannot read `{}`: {e}", manifest.display())))?;
    let doc: toml::Value = toml::from_str(&text).map_err(|e| {
        pack_err(format!(
            "`{}` is not valid TOML: {}",
            manifest.display(),
            e.message()
        ))
    })?;
    let field = |key: &str| -> Result<String, Fail> {
        doc.get("package")
            .and_then(|p| p.get(key))
            .and_then(toml::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                pack_err(format!(
                    "`{}`: `[package] {key}` must be a plain string (workspace inheritance is not supported here)",
                    manifest.display()
                ))
            })
    };
    let name = field("name")?;
    let version = field("version")?;
    let lib = doc.get("lib");
    let crate_types: Vec<&str> = lib
        .and_then(|l| l.get("crate-type"))
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
        .unwrap_or_default();
    if !crate_types.contains(&"cdylib") {
        return Err(pack_err(format!(
            "`{}` does not build a plugin library\n  help: add `crate-type = [\"cdylib\", \"rlib\"]` under `[lib]`",
            manifest.display()
        )));
    }
    let lib_name = lib
        .and_then(|l| l.get("name"))
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| name.replace('-', "_"));
    let meta = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("osiris"));
    let meta_str = |key: &str| meta.and_then(|m| m.get(key)).and_then(toml::Value::as_str);
    let entry = meta_str("entry")
        .map(str::to_string)
        .unwrap_or_else(|| format!("osiris_ocp_{lib_name}"));
    let requires = meta_str("requires")
        .map(str::to_string)
        .unwrap_or_else(|| format!(">={}", plugins::policy::host_version()));
    Ok(CrateInfo {
        name,
        version,
        lib_name,
        entry,
        requires,
    })
}

/// Runs `cargo build --lib` on the crate and returns the cdylib cargo reports.
fn cargo_build_cdylib(
    manifest: &std::path::Path,
    lib_name: &str,
    release: bool,
) -> Result<PathBuf, Fail> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.arg("build")
        .arg("--lib")
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest)
        .stderr(std::process::Stdio::inherit());
    if release {
        cmd.arg("--release");
    }
    let out = cmd.output().map_err(|e| {
        pack_err(format!(
            "cannot run `{}`: {e}\n  help: install Rust (cargo) or pass `--library FILE`",
            cargo.to_string_lossy()
        ))
    })?;
    if !out.status.success() {
        return Err(pack_err(format!(
            "`cargo build` of `{}` failed (see its output above)",
            manifest.display()
        )));
    }
    let mut found = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_lib = msg["reason"] == "compiler-artifact"
            && msg["target"]["name"].as_str().map(|n| n.replace('-', "_"))
                == Some(lib_name.to_string())
            && msg["target"]["crate_types"]
                .as_array()
                .is_some_and(|t| t.iter().any(|x| x == "cdylib"));
        if !is_lib {
            continue;
        }
        for f in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = f.as_str()
                && std::path::Path::new(f)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(package::is_library_name)
            {
                found = Some(PathBuf::from(f));
            }
        }
    }
    found.ok_or_else(|| {
        pack_err(format!(
            "cargo built `{}` but reported no cdylib named `{lib_name}`",
            manifest.display()
        ))
    })
}

fn pack(a: PackArgs) -> CmdResult {
    let manifest = if a.manifest_path.is_dir() {
        a.manifest_path.join("Cargo.toml")
    } else {
        a.manifest_path.clone()
    };
    let crate_dir = manifest
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let info = crate_info(&manifest)?;
    package::check_plugin_name(&info.name).map_err(|why| {
        Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `{}`: `[package] name`: {why}",
                plugins::Code::NameInvalid,
                manifest.display()
            ),
        )
    })?;
    let spec_path = crate_dir.join("spec.yaml");
    let spec_text = std::fs::read_to_string(&spec_path).map_err(|e| {
        pack_err(format!(
            "cannot read the component spec `{}`: {e}\n  help: a plugin crate keeps its spec as `spec.yaml` at its root",
            spec_path.display()
        ))
    })?;
    let spec: serde_json::Value = serde_yaml::from_str(&spec_text)
        .map_err(|e| pack_err(format!("`{}` is not valid YAML: {e}", spec_path.display())))?;
    let component = spec["name"].as_str().map(str::to_string).ok_or_else(|| {
        pack_err(format!(
            "`{}` has no `name:` (the component name, `family.role`)",
            spec_path.display()
        ))
    })?;
    package::check_component_name(&component).map_err(|why| {
        Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `{}`: `name`: {why}",
                plugins::Code::NameInvalid,
                spec_path.display()
            ),
        )
    })?;
    let library = match &a.library {
        Some(l) => l.clone(),
        None => cargo_build_cdylib(&manifest, &info.lib_name, a.release)?,
    };
    let bytes = std::fs::read(&library)
        .map_err(|e| pack_err(format!("cannot read `{}`: {e}", library.display())))?;
    // A file check only (nothing is loaded): the entry symbol's name must be in the library.
    if !bytes
        .windows(info.entry.len())
        .any(|w| w == info.entry.as_bytes())
    {
        return Err(pack_err(format!(
            "`{}` does not export `{}`\n  help: the entry is `osiris_ocp_<lib name>` unless `[package.metadata.osiris] entry` \
             says otherwise; it must equal `entry:` in the crate's `export_ocp!`",
            library.display(),
            info.entry
        )));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| crate_dir.join("dist").join(&info.name));
    let input = package::PackageInput {
        name: info.name.clone(),
        version: info.version.clone(),
        entry: info.entry.clone(),
        abi_version: osiris_plugin_sdk::ABI_VERSION,
        sdk_version: Some(osiris_plugin_sdk::SDK_VERSION.to_string()),
        target: None,
        library: library.clone(),
        requires: Some(info.requires.clone()),
        specs: vec![(component.clone(), spec_path.clone())],
    };
    // Neither the output directory nor a directory on the way to it inside the crate (or the working directory,
    // for a relative path) may be a link: a cloned crate's `dist -> elsewhere` must not redirect the package.
    let mut walked = PathBuf::new();
    for part in out.components() {
        walked.push(part);
        let in_crate = out.starts_with(&crate_dir);
        let below_crate = in_crate && walked.starts_with(&crate_dir) && walked != crate_dir;
        if ((out.is_relative() && !in_crate) || walked == out || below_crate)
            && let Err(e) = package::refuse_symlink(&walked)
        {
            return Err(unsafe_path(format!(
                "refusing to pack into `{}`: {e}",
                out.display()
            )));
        }
    }
    let m = package::write_package(&out, &input)
        .map_err(|e| pack_err(format!("cannot write the package `{}`: {e}", out.display())))?;
    // A signature of earlier bytes would only be refused later: drop it now (a link is removed, not followed).
    let sig = out.join(package::SIGNATURE_FILE);
    if std::fs::symlink_metadata(&sig).is_ok() {
        std::fs::remove_file(&sig)
            .map_err(|e| pack_err(format!("cannot remove the stale `{}`: {e}", sig.display())))?;
        errln!(
            "note: removed the old signature `{}`: sign the new package",
            sig.display()
        );
    }
    outln!(
        "packed {} {} ({component}, entry `{}`, abi {}) into {}",
        m.name,
        m.version,
        m.entry,
        m.abi_version,
        out.display()
    );
    outln!("library sha256 {}", m.library_sha256);
    outln!(
        "next: osiris plugins sign {} --key FILE --key-id ID",
        out.display()
    );
    Ok(Exit::Ok)
}

fn refusal(c: &Candidate, what: &str) -> Fail {
    Fail::new(
        Exit::Validation,
        format!(
            "error[{}]: refusing to {what} {} {}: {}\n  help: nothing was installed; `osiris plugins verify` shows every check",
            c.code.map(|x| x.as_str()).unwrap_or("?"),
            c.name,
            c.version.as_deref().unwrap_or("?"),
            c.reason.as_deref().unwrap_or("refused")
        ),
    )
}

fn unsafe_path(message: String) -> Fail {
    Fail::new(
        Exit::Validation,
        format!("error[{}]: {message}", plugins::Code::PathUnsafe),
    )
}

/// The plugin directory `install` and `remove` write in: it must be a directory that is not a symbolic link,
/// nor reached through one inside the working directory or the project root `root` (a cloned repository's
/// `.osiris -> ~/.ssh` must not redirect an install, from the root or from a subdirectory, where the default
/// directory is an absolute path under the root); to install (`create`), others must not be able to write it.
fn plugin_dir_for_writing(
    dir: &std::path::Path,
    root: &std::path::Path,
    create: bool,
) -> Result<(), Fail> {
    let mut walked = PathBuf::new();
    for part in dir.components() {
        walked.push(part);
        let below_root = !root.as_os_str().is_empty() && walked.starts_with(root) && walked != root;
        if dir.is_relative() || walked == dir || below_root {
            package::refuse_symlink(&walked).map_err(|e| {
                unsafe_path(format!(
                    "refusing to write in plugin directory `{}`: {e}",
                    dir.display()
                ))
            })?;
        }
        if create && !walked.exists() {
            std::fs::create_dir(&walked).map_err(|e| {
                Fail::new(
                    Exit::Validation,
                    format!("error: cannot create `{}`: {e}", walked.display()),
                )
            })?;
        }
    }
    if let Some(why) = plugins::policy::dir_writable_by_others(dir).filter(|_| create) {
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: refusing to use `{}`: {why}",
                plugins::Code::WritableByOthers,
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// True when `path` is a real directory (not a link) holding the manifest of plugin `name`.
fn is_package_of(path: &std::path::Path, name: &str) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|md| md.is_dir())
        && package::read_manifest(path).is_ok_and(|m| m.name == name)
}

fn install(g: &Global, a: InstallArgs) -> CmdResult {
    let s = settings(g)?;
    // The full policy of osiris.yaml, as a dry run: files are read and hashed, the library is not loaded.
    // The manifest's names are checked against the name grammar here (PLUGIN-E017).
    let c = plugins::check_package(&a.path, &s);
    if c.status != Status::Accepted {
        return Err(refusal(&c, "install"));
    }
    let Some(m) = c.manifest.clone() else {
        return Err(refusal(&c, "install"));
    };
    let src = plugins::package_dir_of(&a.path);
    let io = |what: &str, p: &std::path::Path, e: std::io::Error| {
        Fail::new(
            Exit::Validation,
            format!("error: cannot {what} `{}`: {e}", p.display()),
        )
    };
    plugin_dir_for_writing(&a.dir, &g.project_root(), true)?;
    // Copy the files the verified manifest names into a new staging directory (created here, so nothing in it
    // is a link), check the copy again, then move it into place. The destination's name comes from the staged
    // copy that passed the checks, never from another read of the source.
    let staging = a.dir.join(format!(
        ".installing-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir(&staging).map_err(|e| io("create", &staging, e))?;
    let mut files = vec![MANIFEST_FILE.to_string(), m.library.clone()];
    files.extend(m.components.iter().map(|x| x.spec.clone()));
    if src.join(package::SIGNATURE_FILE).is_file() {
        files.push(package::SIGNATURE_FILE.to_string());
    }
    let mut old: Option<PathBuf> = None;
    let staged = (|| -> Result<PathBuf, Fail> {
        for f in &files {
            let bytes = std::fs::read(src.join(f)).map_err(|e| io("read", &src.join(f), e))?;
            package::write_file_in(&staging, f, &bytes).map_err(|e| io("copy", &src.join(f), e))?;
        }
        let again = plugins::check_package(&staging, &s);
        let name = match (&again.status, &again.manifest) {
            (Status::Accepted, Some(v)) if v.name == m.name && v.version == m.version => {
                v.name.clone()
            }
            (Status::Accepted, _) => {
                return Err(pack_err(format!(
                    "`{}` changed while it was being installed: nothing was installed; run the install again",
                    src.display()
                )));
            }
            _ => return Err(refusal(&again, "install")),
        };
        package::check_plugin_name(&name).map_err(|why| {
            Fail::new(
                Exit::Validation,
                format!("error[{}]: {why}", plugins::Code::NameInvalid),
            )
        })?;
        let dest = a.dir.join(&name);
        if let (Ok(x), Ok(y)) = (std::fs::canonicalize(&src), std::fs::canonicalize(&dest))
            && x == y
        {
            return Err(pack_err(format!(
                "`{}` is already the installed copy",
                src.display()
            )));
        }
        match std::fs::symlink_metadata(&dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("inspect", &dest, e)),
            Ok(_) if is_package_of(&dest, &name) => {
                // Moved aside, removed once the new copy is in place.
                let aside = a.dir.join(format!(
                    ".replaced-{name}-{}",
                    staging
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default()
                ));
                std::fs::rename(&dest, &aside).map_err(|e| io("replace", &dest, e))?;
                old = Some(aside);
            }
            Ok(_) => {
                return Err(unsafe_path(format!(
                    "refusing to install {name} into `{}`: it exists and is not an installed package of plugin \
                     `{name}` (a link, a file, or another directory); nothing was changed\n  help: move it away, or \
                     install into another `--dir`",
                    dest.display()
                )));
            }
        }
        std::fs::rename(&staging, &dest).map_err(|e| io("move the package into", &dest, e))?;
        Ok(dest)
    })();
    let dest = match staged {
        Ok(dest) => dest,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            if let Some(aside) = &old {
                let _ = std::fs::rename(aside, a.dir.join(&m.name));
            }
            return Err(e);
        }
    };
    if let Some(aside) = old {
        let _ = std::fs::remove_dir_all(&aside);
    }
    outln!(
        "installed {} {} ({}) into {} (signature: {})",
        m.name,
        m.version,
        m.components
            .iter()
            .map(|x| x.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        dest.display(),
        signature_cell(&c)
    );
    Ok(Exit::Ok)
}

fn remove(g: &Global, a: RemoveArgs) -> CmdResult {
    package::check_plugin_name(&a.name).map_err(|why| {
        Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: {why}\n  help: `osiris plugins list` shows the installed names",
                plugins::Code::NameInvalid
            ),
        )
    })?;
    plugin_dir_for_writing(&a.dir, &g.project_root(), false)?;
    let dest = a.dir.join(&a.name);
    if std::fs::symlink_metadata(&dest).is_ok_and(|md| md.file_type().is_symlink()) {
        return Err(unsafe_path(format!(
            "refusing to remove `{}`: it is a symbolic link, not an installed package; nothing was removed",
            dest.display()
        )));
    }
    if !is_package_of(&dest, &a.name) {
        let names: Vec<String> = std::fs::read_dir(&a.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| package::read_manifest(&e.path()).ok().map(|m| m.name))
            .collect();
        return Err(pack_err(format!(
            "no plugin `{}` is installed in `{}`\n  help: installed there: {}",
            a.name,
            a.dir.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    // `remove_dir_all` removes links inside the package, never what they point to.
    std::fs::remove_dir_all(&dest).map_err(|e| {
        Fail::new(
            Exit::Validation,
            format!("error: cannot remove `{}`: {e}", dest.display()),
        )
    })?;
    outln!("removed {} from {}", a.name, a.dir.display());
    Ok(Exit::Ok)
}
