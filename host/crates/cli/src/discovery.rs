//! `osiris discovery run @family.alias`: what a connection holds (tables, columns with source and Arrow
//! types, primary keys, row estimates, sample rows), through the `discover()` of the family's extractor,
//! cached in `.osiris/cache/discovery/` (see docs/discovery.md).

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_core::secrets::{Connections, LoadOptions, Redactor, Strategy};
use osiris_runner::discovery::{self, Options, Request};
use osiris_runner::modules::ModuleSet;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Subcommand, Debug)]
pub enum DiscoveryCmd {
    /// Discover a connection: tables, columns (source and Arrow types), primary keys, row estimates,
    /// sample rows. Exits 5 when the connection cannot be resolved, 4 when discovery fails.
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The connection, `@family.alias` (or `@family` for its default alias).
    pub reference: String,
    /// Sample rows per table (0 to 100).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub samples: u64,
    /// Ignore the cache and ask the database again (the new result replaces the cached one).
    #[arg(long)]
    pub refresh: bool,
    /// Connections file [default: osiris_connections.yaml in the project directory].
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Secrets file (same shape); its fields win.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: DiscoveryCmd) -> CmdResult {
    match c {
        DiscoveryCmd::Run(a) => run_one(g, a),
    }
}

fn run_one(g: &Global, a: RunArgs) -> CmdResult {
    let config = osiris_core::config::ProjectConfig::load(&g.config)?;
    let project = super::run::project_dir(g);
    let conns = Connections::load(&LoadOptions {
        project_dir: &project,
        connections_file: a.connections.as_deref(),
        secrets_file: a.secrets_file.as_deref(),
    })?;
    let redactor = Arc::new(Redactor::new(Strategy::Mask, "***"));
    redactor.add_secrets(conns.literal_secrets());
    let resolved = conns.resolve(&a.reference).map_err(|f| Fail {
        exit: f.exit,
        message: redactor.text(&f.message),
    })?;
    redactor.add_secrets(&resolved.secret_values);
    let reference = format!("@{}.{}", resolved.family, resolved.alias);
    // Loads only the plugins offering an extractor of this family (the components `pick_component` chooses from).
    let family = resolved.family.clone();
    let modules = ModuleSet::load_where(g, |name| {
        name.split_once('.')
            .is_some_and(|(f, role)| f == family && role.ends_with("extractor"))
    })?;
    let (component, provider) = discovery::pick_component(&modules, &resolved.family)?;
    let registry = osiris_runner::modules::build_registry(g);
    let (version, spec_fp) = match registry.get(&component) {
        Some(spec) => (spec.version.clone(), spec.fingerprint.clone()),
        None => (provider.label.clone(), String::new()),
    };
    let d = discovery::discover(&Request {
        project: &project,
        reference: &reference,
        component: &component,
        provider: &provider,
        component_version: &version,
        spec_fingerprint: &spec_fp,
        connection_fields: &resolved.fields,
        secret_values: &resolved.secret_values,
        options: &Options { samples: a.samples },
        ttl_seconds: config.discovery.cache_ttl_seconds,
        refresh: a.refresh,
        redactor: redactor.clone(),
    })?;
    let text = match a.format {
        Format::Json => serde_json::to_string_pretty(&d.to_json()).unwrap_or_default(),
        Format::Text => render_text(&d),
    };
    outln!("{}", redactor.text(&text));
    Ok(Exit::Ok)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// A compact listing: one block per table (or file), columns aligned, sample rows as JSON lines.
fn render_text(d: &discovery::Discovered) -> String {
    let mut out = format!(
        "{}  via {}  ({} {})\n",
        d.connection,
        d.component,
        if d.cached {
            "cached, fetched"
        } else {
            "fetched"
        },
        d.fetched_at
    );
    let r = &d.result;
    for key in ["database", "schema", "directory", "file"] {
        if let Some(v) = r.get(key).and_then(Value::as_str) {
            out.push_str(&format!("{key}: {v}\n"));
        }
    }
    if let Some(files) = r.get("files").and_then(Value::as_array) {
        if files.is_empty() {
            out.push_str("no CSV files\n");
        }
        for f in files {
            out.push_str(&format!(
                "  {:<40} {} bytes\n",
                s(&f["name"]),
                s(&f["size_bytes"])
            ));
        }
    }
    if let Some(cols) = r.get("columns").and_then(Value::as_array) {
        for c in cols {
            out.push_str(&format!("  {:<24} {}\n", s(&c["name"]), s(&c["type"])));
        }
    }
    if let Some(tables) = r.get("tables").and_then(Value::as_array) {
        if tables.is_empty() {
            out.push_str("no tables\n");
        }
        for t in tables {
            let pk: Vec<String> = t["primary_key"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            // `~` unless the driver counted every row (`row_count_exact`).
            let approx = if t["row_count_exact"] == Value::Bool(true) {
                ""
            } else {
                "~"
            };
            let rows = if t["row_count_estimate"].is_null() {
                "unknown".to_string()
            } else {
                format!("{approx}{}", s(&t["row_count_estimate"]))
            };
            out.push_str(&format!(
                "\n{} {}  {rows} rows  primary key: {}\n",
                s(&t["kind"]),
                s(&t["name"]),
                if pk.is_empty() {
                    "none".to_string()
                } else {
                    pk.join(", ")
                }
            ));
            // A table the driver could not read (e.g. a CSV file that does not parse).
            if let Some(e) = t.get("error").filter(|e| !e.is_null()) {
                out.push_str(&format!(
                    "  error[{}]: {}\n",
                    s(&e["code"]),
                    s(&e["message"])
                ));
                if let Some(h) = e["help"].as_str() {
                    out.push_str(&format!("  = help: {h}\n"));
                }
            }
            for c in t["columns"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  {:<24} {:<20} {:<16} {}\n",
                    s(&c["name"]),
                    s(&c["source_type"]),
                    s(&c["arrow_type"]),
                    if c["nullable"].as_bool() == Some(false) {
                        "not null"
                    } else {
                        "null"
                    }
                ));
            }
            let samples = t["samples"].as_array().cloned().unwrap_or_default();
            if !samples.is_empty() {
                out.push_str("  samples:\n");
                for row in samples {
                    out.push_str(&format!("    {row}\n"));
                }
            }
        }
    }
    out.trim_end().to_string()
}
