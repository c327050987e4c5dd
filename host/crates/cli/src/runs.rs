//! `osiris runs list|show|view|report`: the run index (`.osiris/index/runs.jsonl`, one line per run, failed and
//! cancelled runs included), each run's `status.json`, its state machine and the HTML report of its directory.

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit};
use osiris_runner::history;
use osiris_runner::progress::thousands;
use serde_json::{Value, json};

#[derive(clap::Subcommand, Debug)]
pub enum RunsCmd {
    /// List past runs, newest first.
    List(ListArgs),
    /// Show one run: status, per-step rows and durations, where its files are.
    Show(ShowArgs),
    /// One run's state (NEW -> COMPILED -> RUNNING -> SUCCEEDED | FAILED | CANCELLED) and its artifacts' paths.
    View(ShowArgs),
    /// Write one self-contained HTML page about a run: DAG, timeline, rows, retries, error, manifest,
    /// environment.
    Report(ReportArgs),
    /// The dead-letter queue: the envelopes of failed compiles and runs (`.osiris/dlq/<topic>/<id>.json`).
    #[command(subcommand)]
    Dlq(DlqCmd),
    /// Do a dead-letter item's work again: re-run the failed run's manifest, or re-compile the pipeline.
    Replay(ReplayArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum DlqCmd {
    /// List the dead-letter items, oldest first.
    List(DlqListArgs),
}

#[derive(clap::Args, Debug)]
pub struct DlqListArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// A dead-letter item: its id (a unique prefix is enough, see `osiris runs dlq list`), its file, or `last`
    /// (the newest item).
    pub envelope: String,
    /// Print the command that would be run, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run id (`run-<12 hex>`, as `osiris runs list` shows it); a unique prefix is enough, `last` is the
    /// newest run.
    pub run_id: String,
    /// Write the page here [default: `report.html` in the run directory].
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Open the page in the desktop's browser (`$BROWSER`, else `xdg-open`) once written.
    #[arg(long)]
    pub open: bool,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only runs of this pipeline (its id: the OML `name` slug).
    #[arg(long, value_name = "P")]
    pub pipeline: Option<String>,
    /// Only runs with this status.
    #[arg(long, value_enum, value_name = "S")]
    pub status: Option<StatusFilter>,
    /// At most this many runs.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Succeeded,
    Failed,
    Cancelled,
    /// Its process ended without finishing it (killed, or the machine stopped).
    Crashed,
    /// Still going.
    Running,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Succeeded => "succeeded",
            StatusFilter::Failed => "failed",
            StatusFilter::Cancelled => "cancelled",
            StatusFilter::Crashed => "crashed",
            StatusFilter::Running => "running",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The run id (`run-<12 hex>`, as `osiris runs list` shows it); a unique prefix is enough, `last` is the
    /// newest run.
    pub run_id: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: RunsCmd) -> CmdResult {
    match c {
        RunsCmd::List(a) => list(g, a),
        RunsCmd::Show(a) => show(g, a),
        RunsCmd::View(a) => view(g, a),
        RunsCmd::Report(a) => report(g, a),
        RunsCmd::Dlq(DlqCmd::List(a)) => dlq_list(g, a),
        RunsCmd::Replay(a) => replay(g, a),
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value) -> String {
    match v.as_u64() {
        Some(n) => thousands(n),
        None if v.is_null() => "-".to_string(),
        None => v.to_string(),
    }
}

fn list(g: &Global, a: ListArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let runs = history::list(
        &project,
        &history::Filter {
            pipeline: a.pipeline.as_deref(),
            status: a.status.map(StatusFilter::as_str),
            limit: a.limit,
        },
    )?;
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "runs": runs })).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    if runs.is_empty() {
        outln!(
            "no runs recorded{} (the index is {})",
            match (&a.pipeline, a.status) {
                (None, None) => String::new(),
                _ => " that match".to_string(),
            },
            history::index_path(&project).display()
        );
        return Ok(Exit::Ok);
    }
    outln!(
        "{:<17} {:<10} {:<24} {:<20} {:>6} {:>12} {:>12} {:>10}",
        "RUN",
        "STATUS",
        "PIPELINE",
        "STARTED",
        "STEPS",
        "ROWS READ",
        "ROWS WRITTEN",
        "DURATION"
    );
    for r in &runs {
        let started = s(r, "started_at");
        outln!(
            "{:<17} {:<10} {:<24} {:<20} {:>6} {:>12} {:>12} {:>10}",
            s(r, "run_id"),
            s(r, "status"),
            s(r, "pipeline"),
            started.get(..19).unwrap_or(started).replace('T', " "),
            format!("{}/{}", r["steps_completed"], r["steps_total"]),
            num(&r["rows_read"]),
            num(&r["rows_written"]),
            duration(&r["duration_ms"]),
        );
    }
    Ok(Exit::Ok)
}

fn duration(ms: &Value) -> String {
    match ms.as_u64() {
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => format!("{:.1} s", ms as f64 / 1000.0),
        None => "-".to_string(),
    }
}

fn show(g: &Global, a: ShowArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let shown = history::show(&project, &a.run_id)?;
    if a.format == Format::Json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&shown.to_json()).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    let history::Shown {
        status,
        run_dir: dir_shown,
        dir_exists,
        files,
        artifacts,
        ..
    } = shown;
    outln!(
        "run {}  {}  (exit {})",
        s(&status, "run_id"),
        s(&status, "status"),
        status["exit_code"]
    );
    outln!(
        "pipeline {}  profile {}",
        s(&status, "pipeline"),
        s(&status, "profile")
    );
    outln!(
        "started {}  ended {}  duration {}",
        s(&status, "started_at"),
        s(&status, "ended_at"),
        duration(&status["duration_ms"])
    );
    outln!(
        "steps {}/{}  rows read {}  rows written {}",
        status["steps_completed"],
        status["steps_total"],
        num(&status["rows_read"]),
        num(&status["rows_written"])
    );
    if let Some(step) = status.get("failed_step").and_then(Value::as_str) {
        outln!("failed step: {step}");
    }
    if let Some(e) = status.get("error").and_then(Value::as_str) {
        outln!("{}", e.trim_end());
    }
    if let Some(steps) = status.get("steps").and_then(Value::as_array) {
        outln!();
        outln!(
            "  {:<24} {:<28} {:<12} {:>8} {:>12} {:>12} {:>10}",
            "STEP",
            "COMPONENT",
            "STATUS",
            "ATTEMPTS",
            "ROWS READ",
            "ROWS WRITTEN",
            "DURATION"
        );
        for st in steps {
            outln!(
                "  {:<24} {:<28} {:<12} {:>8} {:>12} {:>12} {:>10}",
                s(st, "id"),
                s(st, "component"),
                s(st, "status"),
                st["attempts"],
                num(&st["rows_read"]),
                num(&st["rows_written"]),
                duration(&st["duration_ms"])
            );
        }
    }
    outln!();
    if dir_exists {
        outln!("run directory: {dir_shown}");
    } else {
        outln!("run directory: {dir_shown} (no longer exists)");
    }
    for f in files.iter().chain(artifacts.iter()) {
        outln!("  {f}");
    }
    Ok(Exit::Ok)
}

fn view(g: &Global, a: ShowArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let v = history::view(&project, &a.run_id)?;
    if a.format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    outln!(
        "run {}  pipeline {}  profile {}",
        s(&v, "run_id"),
        s(&v, "pipeline"),
        s(&v, "profile")
    );
    outln!();
    let states = v["states"].as_array().cloned().unwrap_or_default();
    let reached: Vec<&str> = states.iter().map(|x| s(x, "state")).collect();
    let path: Vec<String> = ["NEW", "COMPILED", "RUNNING"]
        .iter()
        .map(|st| {
            if reached.contains(st) {
                st.to_string()
            } else {
                format!("({st})")
            }
        })
        .chain(std::iter::once(match s(&v, "state") {
            st @ ("SUCCEEDED" | "FAILED" | "CANCELLED" | "CRASHED") => st.to_string(),
            _ => "(SUCCEEDED | FAILED | CANCELLED)".to_string(),
        }))
        .collect();
    outln!("state {}", s(&v, "state"));
    outln!("  {}", path.join(" -> "));
    for x in &states {
        outln!(
            "  {:<10} {}",
            s(x, "state"),
            x["at"].as_str().unwrap_or("-")
        );
    }
    if let Some(step) = v["failed_step"].as_str() {
        outln!("failed step: {step}");
    }
    if let Some(e) = v["error"].as_str() {
        outln!("{}", e.trim_end());
    }
    outln!();
    if v["run_dir_exists"] == true {
        outln!("run directory: {}", s(&v, "run_dir"));
    } else {
        outln!("run directory: {} (no longer exists)", s(&v, "run_dir"));
    }
    if let Some(files) = v["files"].as_object() {
        for (name, path) in files {
            outln!("  {name:<14} {}", path.as_str().unwrap_or_default());
        }
    }
    if let Some(arts) = v["artifacts"].as_array() {
        for p in arts {
            outln!("  {:<14} {}", "artifact", p.as_str().unwrap_or_default());
        }
    }
    Ok(Exit::Ok)
}

/// The redactor of a report: the project's secret values when its connections load (a report may be made
/// where they do not), and secret-looking keys and URL passwords always.
pub fn project_redactor(project: &std::path::Path) -> osiris_core::secrets::Redactor {
    use osiris_core::secrets::{Connections, LoadOptions, Redactor, Strategy};
    let redactor = Redactor::new(Strategy::Mask, "***");
    if let Ok(conns) = Connections::load(&LoadOptions {
        project_dir: project,
        connections_file: None,
        secrets_file: None,
    }) {
        redactor.add_secrets(conns.literal_secrets());
        for (family, aliases) in &conns.families {
            for alias in aliases.keys() {
                if let Ok(r) = conns.resolve(&format!("@{family}.{alias}")) {
                    redactor.add_secrets(&r.secret_values);
                }
            }
        }
    }
    redactor
}

fn report(g: &Global, a: ReportArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let shown = history::show(&project, &a.run_id)?;
    if !shown.dir_exists {
        return Err(osiris_core::exit::Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: the run directory `{}` of run `{}` no longer exists: there is nothing to report\n  = help: `osiris runs list` shows the runs; a report is made from the run directory",
                osiris_core::codes::Code::RUN_E009,
                shown.run_dir,
                a.run_id
            ),
        ));
    }
    let events = history::read_events(&shown.dir);
    let manifest = std::fs::read_to_string(shown.dir.join("manifest.yaml")).ok();
    let redactor = project_redactor(&project);
    let page = osiris_runner::report::html(&shown, &events, manifest.as_deref(), &redactor);
    let out = match &a.html {
        Some(f) => f.clone(),
        None => shown.dir.join("report.html"),
    };
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&out, page).map_err(|e| {
        osiris_core::exit::Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: cannot write the report `{}`: {e}\n  = help: choose a writable `--html FILE`",
                osiris_core::codes::Code::RUN_E009,
                out.display()
            ),
        )
    })?;
    outln!("{}", out.display());
    if a.open {
        open_in_browser(&out);
    }
    Ok(Exit::Ok)
}

/// `$BROWSER FILE`, else `xdg-open FILE`; a notice when neither starts (the page is written either way).
fn open_in_browser(file: &std::path::Path) {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty());
    let program = browser.unwrap_or_else(|| "xdg-open".to_string());
    let started = std::process::Command::new(&program)
        .arg(file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = started {
        osiris_core::notice::warn(&format!(
            "cannot start `{program}` to open the report: {e}; open `{}` yourself",
            file.display()
        ));
    }
}

fn dlq_list(g: &Global, a: DlqListArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let items = osiris_runner::dlq::list(&project);
    if a.format == Format::Json {
        let v: Vec<Value> = items.iter().map(|i| i.to_json()).collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "items": v })).unwrap_or_default()
        );
        return Ok(Exit::Ok);
    }
    if items.is_empty() {
        outln!(
            "no dead-letter items (the queue is {})",
            osiris_runner::dlq::dir(&project).display()
        );
        return Ok(Exit::Ok);
    }
    outln!(
        "{:<26} {:<8} {:<14} {:<20} {:<20} ERROR",
        "ID",
        "TOPIC",
        "TYPE",
        "AT",
        "PIPELINE"
    );
    for i in &items {
        let v = i.to_json();
        let at = s(&v, "timestamp");
        outln!(
            "{:<26} {:<8} {:<14} {:<20} {:<20} {}",
            s(&v, "id"),
            s(&v, "topic"),
            s(&v, "type"),
            at.get(..19).unwrap_or(at).replace('T', " "),
            s(&v, "pipeline"),
            s(&v, "error")
        );
    }
    Ok(Exit::Ok)
}

fn replay(g: &Global, a: ReplayArgs) -> CmdResult {
    let project = super::run::project_dir(g);
    let envelope = osiris_runner::dlq::find(&project, &a.envelope)?;
    let args = osiris_runner::dlq::replay_args(&project, &envelope)?;
    errln!(
        "replaying {} ({}): osiris {}",
        s(&envelope, "id"),
        s(&envelope, "type"),
        args.join(" ")
    );
    if a.dry_run {
        outln!("osiris {}", args.join(" "));
        return Ok(Exit::Ok);
    }
    let argv = std::iter::once("osiris".to_string()).chain(args);
    let mut cli = <crate::Cli as clap::Parser>::try_parse_from(argv).map_err(|e| {
        osiris_core::exit::Fail::new(
            Exit::Internal,
            format!(
                "error: the replayed command line does not parse (a bug: please report it): {e}"
            ),
        )
    })?;
    cli.global = g.clone();
    crate::dispatch(cli)
}
