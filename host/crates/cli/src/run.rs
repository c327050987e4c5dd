//! `osiris run FILE|--last-compile`: compile when given OML, then execute the manifest directory.

use super::{Format, Global};
use crate::front::{self, CheckArgs};
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_core::secrets::{Connections, LoadOptions};
use osiris_runner::manifest::Compiled;
use osiris_runner::modules::ModuleSet;
use osiris_runner::{self as runner, Outcome, RunOptions};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Pipeline (OML, compiled first), a compiled `manifest.yaml`, or a compile directory.
    #[arg(
        required_unless_present = "last_compile",
        conflicts_with = "last_compile"
    )]
    pub file: Option<PathBuf>,
    /// Run the newest compile (`<build_dir>/pipelines/LATEST`).
    #[arg(long)]
    pub last_compile: bool,
    #[command(flatten)]
    pub check: CheckArgs,
    /// Write the run directory here instead of `<logs_dir>/<profile>/<pipeline>/<ts>_<run_id>-<hash7>/`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Connections file with secrets (same shape as osiris_connections.yaml); its fields win.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Connections file [default: osiris_connections.yaml in the project directory].
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Steps that may run at the same time [default: `run.max_parallel` in osiris.yaml, 4].
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<usize>,
    /// Retry a failed step up to N times with exponential backoff (0.5 s, 1 s, 2 s, ... capped at 8 s), when
    /// its component declares it safe: extractors, and writers with `capabilities.transactions: true`.
    /// Secrets are read again before each retry.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Check everything (manifest, drivers, connections) and print the plan without running.
    #[arg(long)]
    pub dry_run: bool,
    /// Incremental extractors ignore their state and read from `initial_value` (or everything); writers they
    /// feed in `append` mode replace their table's rows instead. The state is rewritten when the run succeeds.
    #[arg(long)]
    pub full_refresh: bool,
    /// Continue the failed or killed run RUN_ID of the same manifest: writers with `commit: per_chunk` go on
    /// after the last chunk that run committed (see docs/incremental.md).
    #[arg(long, value_name = "RUN_ID", conflicts_with = "full_refresh")]
    pub resume: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The project directory: where osiris.yaml is (or would be).
pub fn project_dir(g: &Global) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    match g.config.parent() {
        Some(p) if !p.as_os_str().is_empty() => cwd.join(p),
        _ => cwd,
    }
}

/// Finds (or makes, by compiling) the manifest directory to run.
fn manifest_dir(
    g: &Global,
    a: &RunArgs,
    config: &osiris_core::config::ProjectConfig,
) -> Result<PathBuf, Fail> {
    let project = project_dir(g);
    if a.last_compile {
        let build = if config.compile.build_dir.is_absolute() {
            config.compile.build_dir.clone()
        } else {
            project.join(&config.compile.build_dir)
        };
        let latest = build.join("pipelines").join("LATEST");
        let text = std::fs::read_to_string(&latest).map_err(|_| {
            Fail::new(
                Exit::Validation,
                format!(
                    "error: no compile to run: `{}` does not exist\n  = help: compile first: `osiris compile <pipeline.yaml>`",
                    latest.display()
                ),
            )
        })?;
        let dir = PathBuf::from(text.trim());
        return Ok(if dir.is_absolute() {
            dir
        } else {
            project.join(dir)
        });
    }
    let file = a
        .file
        .clone()
        .expect("clap requires FILE without --last-compile");
    if file.is_dir() {
        if file.join("manifest.yaml").is_file() {
            return Ok(file);
        }
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error: `{}` is a directory without a manifest.yaml\n  = help: pass a pipeline file, a manifest.yaml or a compile directory",
                file.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Fail::new(
            Exit::Validation,
            format!(
                "error: cannot read `{}`: {e}\n  = help: check the path",
                file.display()
            ),
        )
    })?;
    let is_manifest = text.lines().any(|l| l.trim() == "kind: RunManifest");
    if is_manifest {
        let parent = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        return Ok(parent);
    }
    // OML: compile it first, exactly as `osiris compile` does.
    let settings = a.check.settings(g, config)?;
    let registry = osiris_runner::modules::build_registry(g);
    let report = front::check_file(&file, &registry, &settings);
    let Some(plan) = report.plan.as_ref().filter(|_| report.errors() == 0) else {
        if a.format == Format::Json {
            front::print_json(
                &json!({ "ok": false, "stage": "compile", "report": front::file_json(&report) }),
            );
        } else {
            front::eprint_report(&report);
        }
        front::dead_letter(g, "run", &file, &report);
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error: `{}` did not compile; nothing was run",
                file.display()
            ),
        ));
    };
    if a.format == Format::Text {
        front::eprint_report(&report);
    }
    let output = osiris_compiler::build(plan);
    let build = if settings.build_dir.is_absolute() {
        settings.build_dir.clone()
    } else {
        project.join(&settings.build_dir)
    };
    let dir = output.default_dir(&build);
    let shown = dir
        .strip_prefix(&project)
        .unwrap_or(&dir)
        .display()
        .to_string();
    osiris_compiler::write(&output, &dir, &shown)?;
    osiris_compiler::write_latest(&build, &shown)?;
    tracing::info!(dir = %shown, "compiled");
    Ok(dir)
}

/// Everything `run` and `quickstart` share: returns the outcome (already recorded in the run directory).
pub fn execute(g: &Global, a: &RunArgs) -> Result<Option<Outcome>, Fail> {
    let config = osiris_core::config::ProjectConfig::load(&g.config)?;
    let project = project_dir(g);
    let dir = manifest_dir(g, a, &config)?;
    let compiled = Compiled::load(&dir)?;
    let connections = Connections::load(&LoadOptions {
        project_dir: &project,
        connections_file: a.connections.as_deref(),
        secrets_file: a.secrets_file.as_deref(),
    })?;
    let reload: runner::ReloadConnections = {
        let (project, conn, secrets) = (
            project.clone(),
            a.connections.clone(),
            a.secrets_file.clone(),
        );
        Arc::new(move || {
            Connections::load(&LoadOptions {
                project_dir: &project,
                connections_file: conn.as_deref(),
                secrets_file: secrets.as_deref(),
            })
        })
    };
    let modules = ModuleSet::load(g)?;
    // The plugins the steps use are checked and loaded while the rest is prepared (see `load_ahead`).
    modules.load_ahead(compiled.manifest.steps.iter().map(|s| s.component.as_str()));
    let registry = osiris_runner::modules::build_registry(g);
    let mut secret_pointers = BTreeMap::new();
    let connection_fields = known_connection_fields(&registry);
    let mut transactional = BTreeSet::new();
    for s in &compiled.manifest.steps {
        if let Some(map) = registry.secret_map(&s.component) {
            secret_pointers.insert(s.component.clone(), map.pointers);
        }
        if registry
            .get(&s.component)
            .and_then(|spec| spec.capabilities.get("transactions").copied())
            .unwrap_or(false)
        {
            transactional.insert(s.component.clone());
        }
    }
    if a.dry_run {
        dry_run(
            &compiled,
            &connections,
            &modules,
            &connection_fields,
            a.format,
        )?;
        return Ok(None);
    }
    let max_parallel = a.max_parallel.unwrap_or(config.run.max_parallel).max(1);
    let resume = match &a.resume {
        Some(id) => Some(resume_of(&project, id, &compiled)?),
        None => None,
    };
    let opts = RunOptions {
        compiled,
        project_dir: project,
        logs_dir: config.run.logs_dir.clone(),
        out: a.out.clone(),
        profile: a.check.profile.clone(),
        connections,
        max_parallel,
        modules,
        secret_pointers,
        connection_fields,
        cancel: Arc::new(AtomicBool::new(false)),
        retries: a.retries,
        transactional,
        reload: Some(reload),
        progress: (a.format == Format::Text
            && !g.quiet
            && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>),
        full_refresh: a.full_refresh,
        resume,
    };
    runner::execute(opts).map(Some)
}

/// What `--resume RUN_ID` continues: that run's committed chunks. RUN-E012 when the run is not a failed or
/// killed run of this same manifest with a per-chunk writer.
fn resume_of(
    project: &Path,
    id: &str,
    compiled: &Compiled,
) -> Result<runner::incremental::Resume, Fail> {
    let shown = runner::history::show(project, id)?;
    let st = &shown.status;
    let field = |k: &str| st.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    let run_id = field("run_id").to_string();
    let refuse = |why: String, help: &str| {
        Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: cannot resume run {run_id}: {why}\n  = help: {help}",
                osiris_core::codes::Code::RUN_E012
            ),
        )
    };
    let m = &compiled.manifest;
    if field("manifest_hash") != m.meta.manifest_hash {
        return Err(refuse(
            format!(
                "it ran manifest {} of `{}`, and this is manifest {} of `{}`",
                short(field("manifest_hash")),
                field("pipeline"),
                short(&m.meta.manifest_hash),
                m.pipeline.id
            ),
            "resume with the same pipeline file and parameters, or run it afresh without --resume",
        ));
    }
    if field("status") == "running" {
        return Err(refuse(
            "it is still running".into(),
            "wait for it to end, or stop it (Ctrl-C) first",
        ));
    }
    if field("status") == "succeeded" {
        return Err(refuse(
            "it succeeded: there is nothing left to load".into(),
            "run the pipeline without --resume",
        ));
    }
    let chunked = m.steps.iter().any(|s| {
        compiled
            .driver_config(&s.id)
            .get("commit")
            .and_then(|v| v.as_str())
            == Some("per_chunk")
    });
    if !chunked {
        return Err(refuse(
            "no writer of this pipeline sets `commit: per_chunk`, so no chunk was committed on its own".into(),
            "run it again without --resume: its writers load everything in one transaction",
        ));
    }
    let dir = if shown.dir.is_absolute() {
        shown.dir.clone()
    } else {
        project.join(&shown.dir)
    };
    runner::incremental::Resume::read(&run_id, &dir).map_err(|e| {
        refuse(
            format!("its events cannot be read in {}: {e}", dir.display()),
            "the run directory must still exist: `osiris runs show` says where it is",
        )
    })
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn dry_run(
    c: &Compiled,
    conns: &Connections,
    modules: &ModuleSet,
    known: &BTreeMap<String, BTreeSet<String>>,
    format: Format,
) -> Result<(), Fail> {
    let mut steps = Vec::new();
    for s in &c.manifest.steps {
        let p = modules.provider(&s.id, &s.component)?;
        let cfg = c.driver_config(&s.id);
        let connection = match cfg.get("connection").and_then(|v| v.as_str()) {
            Some(r) if r.starts_with('@') => {
                let res =
                    runner::resolve_step_connection(conns, known, None, (&s.id, &s.component), r)?;
                Some(format!("@{}.{}", res.family, res.alias))
            }
            _ => None,
        };
        let inputs: Vec<String> = c
            .upstreams(s)
            .into_iter()
            .map(|(u, alias)| format!("{alias} <- {u}"))
            .collect();
        steps.push(json!({ "id": s.id, "component": s.component, "plugin": p.label, "connection": connection, "inputs": inputs }));
    }
    if format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&json!({ "ok": true, "dry_run": true, "pipeline": c.manifest.pipeline.id, "steps": steps })).unwrap_or_default());
    } else {
        outln!(
            "dry run of `{}` ({} steps): everything resolves",
            c.manifest.pipeline.id,
            steps.len()
        );
        for s in &steps {
            let inputs = s["inputs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            outln!(
                "  {:<24} {:<28} {}{}{}",
                s["id"].as_str().unwrap_or_default(),
                s["component"].as_str().unwrap_or_default(),
                s["plugin"].as_str().unwrap_or_default(),
                s["connection"]
                    .as_str()
                    .map(|c| format!("  {c}"))
                    .unwrap_or_default(),
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!("  [{inputs}]")
                }
            );
        }
    }
    Ok(())
}

/// Prints the outcome; returns the exit code.
/// Paths are shown relative to `project`, prefixed with `prefix` (how the user names the project directory).
pub fn report(o: &Outcome, format: Format, project: &Path, prefix: &Path) -> Exit {
    let shown = prefix
        .join(o.run_dir.strip_prefix(project).unwrap_or(&o.run_dir))
        .display()
        .to_string();
    if format == Format::Json {
        let mut v = o.summary.clone();
        v["run_dir"] = json!(shown);
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        if let Some(e) = &o.error {
            errln!("{}", e.trim_end());
        }
        return o.exit;
    }
    let s = &o.summary;
    let line = format!(
        "run {} `{}`: {}/{} steps, {} rows read, {} rows written, {} ms",
        s["status"].as_str().unwrap_or_default(),
        s["pipeline"].as_str().unwrap_or_default(),
        s["steps_completed"],
        s["steps_total"],
        s["rows_read"],
        s["rows_written"],
        s["duration_ms"]
    );
    if o.exit == Exit::Ok {
        outln!("{line}");
        outln!("run directory: {shown}");
    } else {
        if let Some(e) = &o.error {
            errln!("{}", e.trim_end());
        }
        errln!("{line}");
        errln!("run directory: {shown}");
    }
    o.exit
}

pub fn run(g: &Global, a: RunArgs) -> CmdResult {
    match execute(g, &a)? {
        Some(outcome) => Ok(report(&outcome, a.format, &project_dir(g), Path::new(""))),
        None => Ok(Exit::Ok),
    }
}

/// Connection family -> every field a component of that family reads: its `configSchema` properties and its
/// `x-connection-fields`, over all components named `<family>.*`.
fn known_connection_fields(
    registry: &osiris_registry::Registry,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for spec in registry.iter() {
        let Some((family, _)) = spec.name.split_once('.') else {
            continue;
        };
        let set = known.entry(family.to_string()).or_default();
        if let Some(props) = spec
            .config_schema
            .get("properties")
            .and_then(serde_json::Value::as_object)
        {
            set.extend(props.keys().cloned());
        }
        set.extend(spec.connection_fields.iter().map(|f| f.name.clone()));
    }
    known
}
