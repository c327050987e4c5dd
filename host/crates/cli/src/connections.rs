//! `osiris connections list`: the connections this project can use, secrets masked, with which referenced
//! environment variables are set. `osiris connections doctor`: really connects, through the `doctor()` of
//! the family's components (plugin host API), and tells `refused`, `auth_failed`, `timeout` and
//! `unknown_database` apart.

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_core::secrets::{Connections, LoadOptions, Origin, Redactor, Strategy, is_secret_key};
use osiris_plugin_sdk::{ContextBackend, ErrorKind};
use osiris_runner::modules::{ModuleSet, OneShotCtx};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand, Debug)]
pub enum ConnectionsCmd {
    /// List connections (secret fields masked) and whether the variables they reference are set.
    List(ListArgs),
    /// Check connections by really connecting: ok, or the failure (`refused`, `auth_failed`, `timeout`,
    /// `unknown_database`, ...). Exits 4 when a check fails, 5 when a connection cannot be resolved.
    Doctor(DoctorArgs),
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// One connection (`@family.alias`, or `@family` for its default); all connections when omitted.
    pub reference: Option<String>,
    /// Connections file [default: osiris_connections.yaml in the project directory].
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Secrets file (same shape); its fields win.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Connections file [default: osiris_connections.yaml in the project directory].
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Secrets file (same shape); its fields win.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: ConnectionsCmd) -> CmdResult {
    match c {
        ConnectionsCmd::List(a) => list(g, a),
        ConnectionsCmd::Doctor(a) => doctor(g, a),
    }
}

const MASK: &str = "***";

fn list(g: &Global, a: ListArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let conns = Connections::load(&LoadOptions {
        project_dir: &project,
        connections_file: a.connections.as_deref(),
        secrets_file: a.secrets_file.as_deref(),
    })?;
    let mut out = Vec::new();
    for (family, aliases) in &conns.families {
        let default = conns.default_alias(family).ok();
        for (alias, conn) in aliases {
            let mut fields = Vec::new();
            let mut missing = Vec::new();
            for (name, raw) in &conn.fields {
                let vars = conns.referenced_vars(&raw.value);
                for v in &vars {
                    if v.missing() {
                        missing.push(v.name.clone());
                    }
                }
                let secret = is_secret_key(name) || raw.origin == Origin::SecretsFile;
                // A `${VAR}` reference is shown as written (it is not a secret); a literal secret is masked.
                let shown = match (&raw.value, secret) {
                    (serde_yaml::Value::String(s), true)
                        if !vars.is_empty()
                            && s.trim().starts_with("${")
                            && s.trim().ends_with('}') =>
                    {
                        Value::String(s.clone())
                    }
                    (_, true) => Value::String(MASK.into()),
                    (v, false) => osiris_core::secrets::yaml_to_json(v),
                };
                fields.push(json!({
                    "name": name,
                    "value": shown,
                    "secret": secret,
                    "origin": raw.origin,
                    "env": vars.iter().map(|v| json!({ "name": v.name, "set": v.set, "default": v.has_default })).collect::<Vec<_>>(),
                }));
            }
            out.push(json!({
                "family": family,
                "alias": alias,
                "reference": format!("@{family}.{alias}"),
                "default": default.as_deref() == Some(alias.as_str()),
                "ready": missing.is_empty(),
                "missing_env": missing,
                "fields": fields,
            }));
        }
    }
    if a.format == Format::Json {
        let files: Vec<String> = conns
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "files": files, "connections": out }))
                .unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    if out.is_empty() {
        outln!(
            "no connections defined (looked for {} in {})",
            osiris_core::secrets::CONNECTIONS_FILE,
            project.display()
        );
        return Ok(Exit::Ok);
    }
    for c in &out {
        let state = if c["ready"].as_bool() == Some(true) {
            "ready".to_string()
        } else {
            let vars: Vec<String> = c["missing_env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .map(|v| format!("${v}"))
                .collect();
            format!("missing {}", vars.join(", "))
        };
        outln!(
            "{}{}  ({state})",
            c["reference"].as_str().unwrap_or_default(),
            if c["default"].as_bool() == Some(true) {
                " [default]"
            } else {
                ""
            }
        );
        for f in c["fields"].as_array().into_iter().flatten() {
            let value = match &f["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            outln!("    {:<20} {value}", f["name"].as_str().unwrap_or_default());
        }
    }
    Ok(Exit::Ok)
}

fn doctor(g: &Global, a: DoctorArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let conns = Connections::load(&LoadOptions {
        project_dir: &project,
        connections_file: a.connections.as_deref(),
        secrets_file: a.secrets_file.as_deref(),
    })?;
    let targets: Vec<(String, String)> = match &a.reference {
        Some(r) => {
            let res = conns.resolve(r)?;
            vec![(res.family, res.alias)]
        }
        None => conns
            .families
            .iter()
            .flat_map(|(f, aliases)| aliases.keys().map(move |al| (f.clone(), al.clone())))
            .collect(),
    };
    if targets.is_empty() {
        outln!(
            "no connections defined (looked for {} in {})",
            osiris_core::secrets::CONNECTIONS_FILE,
            project.display()
        );
        return Ok(Exit::Ok);
    }
    // Loads only the plugins offering a component of a family being checked.
    let families: std::collections::BTreeSet<&str> =
        targets.iter().map(|(f, _)| f.as_str()).collect();
    let modules = ModuleSet::load_where(g, |name| {
        name.split_once('.')
            .is_some_and(|(f, _)| families.contains(f))
    })?;
    let redactor = Arc::new(Redactor::new(Strategy::Mask, MASK));
    redactor.add_secrets(conns.literal_secrets());
    let mut results = Vec::new();
    let mut exit = Exit::Ok;
    for (family, alias) in &targets {
        let reference = format!("@{family}.{alias}");
        let resolved = match conns.resolve(&reference) {
            Ok(r) => r,
            Err(f) => {
                exit = Exit::Config;
                results.push(json!({
                    "reference": reference, "ok": false, "code": "unresolved",
                    "error": redactor.text(f.message.trim_start_matches("error: ")),
                }));
                continue;
            }
        };
        redactor.add_secrets(&resolved.secret_values);
        // The family's components, extractors first: the first one that has a check runs it.
        let mut candidates: Vec<(&String, &osiris_runner::modules::Provider)> = modules
            .components()
            .filter(|(name, _)| name.split_once('.').is_some_and(|(f, _)| f == family))
            .collect();
        candidates.sort_by_key(|(name, _)| (!name.ends_with(".extractor"), name.to_string()));
        let mut outcome = None;
        for (component, provider) in &candidates {
            let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let ctx: Arc<dyn ContextBackend> = Arc::new(OneShotCtx {
                connection: resolved.fields.clone(),
                redactor: redactor.clone(),
                cancel: cancel.clone(),
            });
            let started = std::time::Instant::now();
            let config = json!({ "connection": reference });
            let (module, name) = (provider.module.clone(), component.to_string());
            let checked = osiris_runner::cancel::interruptible(cancel, move || {
                module.doctor(&name, &config, ctx)
            })
            .map_err(|sig| {
                Fail::new(
                    Exit::Cancelled,
                    format!(
                        "error: cancelled ({}): `connections doctor` stopped while checking `{reference}`",
                        sig.label()
                    ),
                )
            })?;
            match checked {
                Err(e) if e.kind == ErrorKind::Unsupported => continue,
                Ok(v) => {
                    let latency = v
                        .get("latency_ms")
                        .and_then(Value::as_u64)
                        .unwrap_or(started.elapsed().as_millis() as u64);
                    outcome = Some(json!({
                        "reference": reference, "ok": true, "component": component,
                        "plugin": provider.label, "latency_ms": latency,
                        "details": redactor.json(&v, &[]),
                    }));
                }
                Err(e) => {
                    if exit == Exit::Ok {
                        exit = Exit::Run;
                    }
                    let mut error = redactor.text(&e.message);
                    if let Some(h) = &e.help {
                        error.push_str(&format!(" (help: {})", redactor.text(h)));
                    }
                    outcome = Some(json!({
                        "reference": reference, "ok": false, "component": component,
                        "plugin": provider.label, "code": e.code, "error": error,
                    }));
                }
            }
            break;
        }
        results.push(outcome.unwrap_or_else(|| {
            json!({
                "reference": reference, "ok": null, "code": "no_check",
                "error": if candidates.is_empty() {
                    format!("no loaded plugin offers a `{family}.*` component")
                } else {
                    format!("no `{family}.*` component implements a connection check")
                },
            })
        }));
    }
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({ "ok": exit == Exit::Ok, "connections": results })
            )
            .unwrap_or_default()
        );
        return Ok(exit);
    }
    for r in &results {
        let reference = r["reference"].as_str().unwrap_or_default();
        match r["ok"].as_bool() {
            Some(true) => outln!(
                "{reference:<28} ok      {} ms  ({})",
                r["latency_ms"],
                r["component"].as_str().unwrap_or_default()
            ),
            Some(false) => outln!(
                "{reference:<28} failed  {}: {}",
                r["code"].as_str().unwrap_or_default(),
                r["error"].as_str().unwrap_or_default()
            ),
            None => outln!(
                "{reference:<28} skipped {}",
                r["error"].as_str().unwrap_or_default()
            ),
        }
    }
    Ok(exit)
}
