//! Issue 21, CLI-wide: every command, given bad input (an unknown flag, a missing file, malformed YAML, an
//! unknown id, ...), exits with a documented code and says why, never with a panic (Rust's 101); with
//! `--format json` it prints the failure as a JSON object on stdout; and a reader that closes the pipe early
//! (`osiris runs list | head -3`) does not make it panic.
//!
//! The commands are read from `osiris --help` and each group's `--help`, so a new command is covered by the
//! unknown-flag case without being listed here.

use crate::support::{Running, code, osiris, text};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Output, Stdio};

/// The codes of `osiris --help` ("Exit codes"), docs/adr/0002-exit-codes.md.
const DOCUMENTED: &[i32] = &[0, 1, 2, 3, 4, 5, 130];

/// The subcommand names listed under "Commands:" in a help text (without `help`).
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // a wrapped description continues further indented
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Every leaf command, e.g. `["runs", "show"]`, with whether it accepts `--format`.
fn leaf_commands(dir: &Path) -> Vec<(Vec<String>, bool)> {
    let top = text(&osiris(dir).args(["--help"]).output()).0;
    let mut out = Vec::new();
    for c in commands_in(&top) {
        let help = text(&osiris(dir).args([&c, "--help"]).output()).0;
        let subs = commands_in(&help);
        if subs.is_empty() {
            out.push((vec![c.clone()], help.contains("--format")));
        }
        for s in subs {
            let h = text(&osiris(dir).args([&c, &s, "--help"]).output()).0;
            out.push((vec![c.clone(), s], h.contains("--format")));
        }
    }
    out
}

/// A project whose files are wrong in every way a command can read them.
fn bad_project() -> tempfile::TempDir {
    let p = crate::run::project(&[
        (
            "malformed.yaml",
            "oml_version: \"0.1.0\"\nsteps: [\n  - id: a\n",
        ),
        ("not_a_pipeline.yaml", "- just\n- a list\n"),
        ("conns/malformed.yaml", "connections:\n  mysql: [\n"),
        ("broken_osiris.yaml", "run: [\n"),
        ("no_pipeline/osiris.yaml", "run:\n  logs_dir: run_logs\n"),
        ("plugin_dir/readme.txt", "not a plugin package\n"),
    ]);
    // A run index that cannot be read.
    std::fs::create_dir_all(p.path().join("damaged/.osiris/index/runs.jsonl")).unwrap();
    p
}

fn assert_documented(args: &[&str], o: &Output) {
    let (stdout, stderr) = text(o);
    let c = code(o);
    let all = format!(
        "osiris {}: exit {c}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        args.join(" ")
    );
    assert!(DOCUMENTED.contains(&c), "undocumented exit code: {all}");
    assert!(!stderr.contains("panicked"), "a panic: {all}");
    assert!(
        !stderr.contains("internal error"),
        "bad input is not a bug of osiris: {all}"
    );
}

/// Bad input must not succeed, and must say why (on stderr; with `--format json` stdout may carry it).
fn assert_refused(args: &[&str], o: &Output) {
    assert_documented(args, o);
    let (stdout, stderr) = text(o);
    assert!(
        ![0, 1].contains(&code(o)),
        "osiris {}: bad input exits 2-5, got {}\n{stdout}\n{stderr}",
        args.join(" "),
        code(o)
    );
    let json = args.windows(2).any(|w| w == ["--format", "json"]);
    assert!(
        !stderr.trim().is_empty() || (json && !stdout.trim().is_empty()),
        "osiris {}: says why on stderr\n{stdout}",
        args.join(" ")
    );
}

/// With `--format json`, stdout is one JSON object that says the command failed.
fn assert_json_failure(args: &[&str], o: &Output) {
    let (stdout, stderr) = text(o);
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "osiris {}: stdout is not one JSON object ({e}):\n{stdout}\n--- stderr\n{stderr}",
            args.join(" ")
        )
    });
    // A command whose result is a list of reports (`components validate`) marks the failing ones.
    let failed = match &v {
        Value::Array(items) => items.iter().any(|i| i["ok"] == false),
        _ => v["ok"] == false,
    };
    assert!(failed, "osiris {}: {v}", args.join(" "));
    match v.get("error") {
        Some(err) => {
            assert_eq!(v["exit_code"], code(o), "osiris {}: {v}", args.join(" "));
            assert!(
                err["message"].as_str().is_some_and(|m| !m.is_empty()),
                "osiris {}: a message: {v}",
                args.join(" ")
            );
        }
        // The commands that check something print their usual report instead, which names the problems:
        // per file (`oml validate`), per spec (`components validate`), per stage (`run`), as diagnostics
        // (`compile`) or as the failed check (`plugins verify`).
        None => {
            let problems = match &v {
                Value::Array(items) => items.iter().all(|i| i["diagnostics"].is_array()),
                _ => ["files", "diagnostics", "report", "reason"]
                    .iter()
                    .any(|k| !v[*k].is_null()),
            };
            assert!(
                problems,
                "osiris {}: no `error` and no report: {v}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn every_command_refuses_an_unknown_flag_with_exit_2() {
    let p = bad_project();
    let leaves = leaf_commands(p.path());
    assert!(leaves.len() >= 20, "commands found: {leaves:?}");
    for (cmd, has_format) in &leaves {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.push("--no-such-flag");
        let o = osiris(p.path()).args(&args).output();
        assert_refused(&args, &o);
        assert_eq!(code(&o), 2, "{args:?}: {:?}", text(&o));
        if *has_format {
            args.extend(["--format", "json"]);
            let o = osiris(p.path()).args(&args).output();
            assert_eq!(code(&o), 2, "{args:?}");
            assert_json_failure(&args, &o);
            let v: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["error"]["code"], "CLI-E005", "{v}");
        }
    }
}

/// Bad input for each command: what it reads (files, ids, references, YAML) is missing or wrong.
fn bad_inputs() -> Vec<Vec<&'static str>> {
    [
        "init --template nope",
        "init",
        "init malformed.yaml",
        "components list --mode sideways",
        "components spec nope.extractor",
        "components spec mysql.extractr",
        "components config-example nope.extractor",
        "components validate missing.yaml",
        "components validate malformed.yaml",
        "components validate nope.extractor",
        "component new",
        "plugins verify missing_dir",
        "plugins verify plugin_dir",
        "plugins inspect missing_dir",
        "plugins inspect plugin_dir",
        "plugins sign missing_dir --key missing.key",
        "plugins install missing_dir",
        "plugins install plugin_dir",
        "plugins remove nope",
        "plugins pack --manifest-path missing_dir",
        "plugins keygen",
        "oml validate missing.yaml",
        "oml validate malformed.yaml",
        "oml validate not_a_pipeline.yaml",
        "compile missing.yaml",
        "compile malformed.yaml",
        "compile not_a_pipeline.yaml",
        "compile malformed.yaml --param =x",
        "run missing.yaml",
        "run malformed.yaml",
        "run not_a_pipeline.yaml",
        "run --last-compile",
        "run missing_dir/manifest.yaml",
        "upgrade missing.yaml",
        "upgrade malformed.yaml",
        "runs show nope",
        "runs view nope",
        "runs report nope",
        "runs report nope --html out.html",
        "runs dlq list --format yaml",
        "runs replay nope",
        "state list --format yaml",
        "state show",
        "state reset",
        "run not_a_pipeline.yaml --resume nope",
        "run not_a_pipeline.yaml --resume nope --full-refresh",
        "docs generate --check --dir missing_dir",
        "runs list --limit many",
        "runs list --status sideways",
        "connections list --connections missing.yaml",
        "connections list --connections conns/malformed.yaml",
        "connections doctor @mysql.nope",
        "connections doctor nope",
        "connections doctor --connections conns/malformed.yaml",
        "discovery run @nope.x",
        "discovery run nope",
        "discovery run @mysql.nope",
        "mcp --http 0.0.0.0:8765",
        "mcp --http nowhere",
        "--config broken_osiris.yaml compile malformed.yaml",
        "--config damaged/osiris.yaml runs list",
        "quickstart malformed.yaml",
        "quickstart no_pipeline",
        "--config broken_osiris.yaml plugins list",
        "--config broken_osiris.yaml plugins doctor",
        "--config missing/osiris.yaml run missing.yaml",
        "--plugin-dir missing_dir components list --mode sideways",
        "prompts build-context --components nope.x",
        "--config broken_osiris.yaml prompts build-context",
        "chat",
        "chat --prompt copy --out out.yaml",
        "chat --prompt copy --out malformed.yaml",
        "--config broken_osiris.yaml chat --prompt copy --out out.yaml",
    ]
    .iter()
    .map(|l| l.split(' ').collect())
    .collect()
}

#[test]
fn bad_input_exits_with_a_documented_code_and_never_panics() {
    let p = bad_project();
    let leaves = leaf_commands(p.path());
    let mut covered = std::collections::BTreeSet::new();
    for args in bad_inputs() {
        let o = osiris(p.path()).args(&args).output();
        assert_refused(&args, &o);
        // The same with `--format json` where the command accepts it. The command is the longest one of `--help`
        // that the arguments spell out (`discovery run`, not `run`), wherever global flags put it.
        let (cmd, has_format) = leaves
            .iter()
            .filter(|(c, _)| {
                args.windows(c.len())
                    .any(|w| w.iter().zip(c).all(|(a, c)| a == c))
            })
            .max_by_key(|(c, _)| c.len())
            .unwrap_or_else(|| panic!("{args:?} names no command of `osiris --help`"));
        covered.insert(cmd.clone());
        if *has_format {
            let mut json_args = args.clone();
            json_args.extend(["--format", "json"]);
            let o = osiris(p.path()).args(&json_args).output();
            assert_refused(&json_args, &o);
            assert_json_failure(&json_args, &o);
        }
    }
    // Every command is given some bad input above.
    let missing: Vec<String> = leaves
        .iter()
        .map(|(c, _)| c.join(" "))
        .filter(|c| !covered.iter().any(|k: &Vec<String>| k.join(" ") == *c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands without a bad-input case here: {missing:?}"
    );
}

/// Issue 21, item 8: these printed nothing on stdout with `--format json`.
#[test]
fn json_failures_are_json_objects_naming_the_problem() {
    let p = bad_project();
    for (args, exit, says, code_) in [
        (
            &["runs", "show", "nope"][..],
            2,
            "no run `nope`",
            Some("RUN-E007"),
        ),
        (&["connections", "doctor", "@mysql.nope"], 5, "mysql", None),
        (&["discovery", "run", "@nope.x"], 5, "nope", None),
    ] {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        let o = osiris(p.path()).args(&args).output();
        assert_eq!(code(&o), exit, "{args:?}: {:?}", text(&o));
        assert_json_failure(&args, &o);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{args:?}: {v}"
        );
        assert!(
            v["error"]["text"].as_str().unwrap().starts_with("error"),
            "{v}"
        );
        if let Some(c) = code_ {
            assert_eq!(v["error"]["code"], c, "{v}");
        }
        // The text is on stderr as before.
        assert!(text(&o).1.contains(says), "{args:?}");
    }
}

/// A run index with `n` succeeded runs.
fn many_runs(dir: &Path, n: usize) {
    let index = dir.join(".osiris/index");
    std::fs::create_dir_all(&index).unwrap();
    let mut f = std::fs::File::create(index.join("runs.jsonl")).unwrap();
    for i in 0..n {
        writeln!(
            f,
            r#"{{"run_id":"run-{i:012x}","status":"succeeded","pipeline":"p{i}","started_at":"2026-01-01T00:00:00Z","steps_completed":2,"steps_total":2,"rows_read":{i},"rows_written":{i},"duration_ms":{i},"run_dir":"run_logs/default/p/{i}"}}"#
        )
        .unwrap();
    }
}

fn spawn(dir: &Path, args: &[&str]) -> Running {
    osiris(dir).args(args).stdin(Stdio::null()).spawn()
}

/// Issue 21, item 9: `osiris runs list | head -3` panicked with "Broken pipe" (exit 101). A reader that goes
/// away is not an error: the command stops printing and exits as it would have.
#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let p = crate::run::project(&[]);
    // Far more output than a pipe holds, so the command is still writing when the reader goes.
    many_runs(p.path(), 5000);
    for args in [
        &["runs", "list"][..],
        &["runs", "list", "--format", "json"],
        &["components", "list"],
        &["components", "spec", "postgres.writer"],
    ] {
        // `head -3`: read three lines, then close the pipe.
        let mut child = spawn(p.path(), args);
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        for _ in 0..3 {
            lines.next().expect("a line").unwrap();
        }
        drop(lines);
        let o = child.wait_with_output();
        let stderr = text(&o).1;
        assert_eq!(code(&o), 0, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quiet, got:\n{stderr}");
        // Closed before anything was read.
        let mut child = spawn(p.path(), args);
        drop(child.stdout.take());
        let o = child.wait_with_output();
        let stderr = text(&o).1;
        assert_eq!(code(&o), 0, "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: quiet, got:\n{stderr}");
    }
}

/// `osiris compile p.yaml 2>&1 | head -1`: a closed stderr does not turn a validation error into a panic; the
/// exit code is the one the command has with a stderr that reads everything.
#[test]
fn a_closed_stderr_does_not_change_the_exit_code() {
    let p = bad_project();
    for args in [
        &["compile", "malformed.yaml"][..],
        &["oml", "validate", "malformed.yaml"],
        &["upgrade", "malformed.yaml"],
        &["run", "missing.yaml"],
        &["runs", "show", "nope"],
        &["components", "validate", "malformed.yaml"],
    ] {
        let expected = code(&osiris(p.path()).args(args).output());
        assert_eq!(expected, 2, "{args:?}");
        let mut child = spawn(p.path(), args);
        drop(child.stderr.take());
        let o = child.wait_with_output();
        assert_eq!(code(&o), expected, "{args:?}: {:?}", text(&o));
    }
}
