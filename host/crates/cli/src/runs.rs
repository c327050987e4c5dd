//! `osiris runs list|show`: the run index (`.osiris/index/runs.jsonl`, one line per run, failed and cancelled
//! runs included) and each run's `status.json`.

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
    /// The run id (`run-<12 hex>`, as `osiris runs list` shows it); a unique prefix is enough.
    pub run_id: String,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: RunsCmd) -> CmdResult {
    match c {
        RunsCmd::List(a) => list(g, a),
        RunsCmd::Show(a) => show(g, a),
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
