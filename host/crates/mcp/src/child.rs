//! Child `osiris` processes (the same binary) for everything that needs a connection's secrets: `compile`,
//! `run`, `discovery run`, `connections list`. The child inherits the environment and reads the secrets file,
//! `.env` and `OSIRIS_CONN__*` itself; this process only reads what it prints, which osiris has already
//! redacted, and passes it through [`crate::redact`] again.

use crate::{Options, redact};
use osiris_core::codes::Code;
use serde_json::{Value, json};
use std::ffi::OsString;
use std::process::Stdio;

/// What a child printed, redacted, and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`-1` when killed by a signal).
    pub code: i32,
    /// stdout as JSON (`--format json`), when it is JSON.
    pub json: Option<Value>,
    /// stdout as text, when it is not JSON.
    pub stdout: String,
    pub stderr: String,
}

/// The global flags every child gets, so it sees the same project and plugins as this server.
fn global_args(opts: &Options) -> Vec<OsString> {
    let g = &opts.global;
    let mut args: Vec<OsString> = vec!["--config".into(), g.config.clone().into()];
    for d in &g.plugin_dirs {
        args.push("--plugin-dir".into());
        args.push(d.clone().into());
    }
    if g.disable_plugins {
        args.push("--disable-plugins".into());
    }
    args
}

/// `--connections FILE` and `--secrets-file FILE`, when `osiris mcp` was given them.
pub fn connection_args(opts: &Options) -> Vec<OsString> {
    let mut args = Vec::new();
    if let Some(c) = &opts.connections {
        args.push("--connections".into());
        args.push(c.clone().into());
    }
    if let Some(s) = &opts.secrets_file {
        args.push("--secrets-file".into());
        args.push(s.clone().into());
    }
    args
}

/// Runs `osiris <global flags> <args>` in the project directory and waits for it. The child is killed when the
/// call is dropped (the client cancelled the request or went away).
pub async fn osiris(opts: &Options, args: Vec<OsString>) -> Result<Output, Value> {
    let mut cmd = tokio::process::Command::new(&opts.exe);
    cmd.args(global_args(opts))
        .args(&args)
        .current_dir(&opts.project)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| {
        json!({
            "ok": false,
            "exit_code": 1,
            "error": {
                "code": Code::MCP_E006.as_str(),
                "message": format!("cannot start `{}`: {e}", opts.exe.display()),
                "help": "the MCP server runs its own binary for compile, run and discovery; reinstall osiris",
            },
        })
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = redact::text(&String::from_utf8_lossy(&out.stderr));
    // JSON is redacted as JSON (by key, and every string by form); anything else as text.
    let json = serde_json::from_str::<Value>(stdout.trim())
        .ok()
        .map(|v| redact::json(&v));
    Ok(Output {
        code: out.status.code().unwrap_or(-1),
        stdout: match json {
            Some(_) => String::new(),
            None => redact::text(&stdout),
        },
        json,
        stderr,
    })
}

/// `error[CODE]` at the start of a line of `text`: the code and the line's message.
fn coded_line(text: &str) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("error[")?;
        let (code, msg) = rest.split_once("]: ")?;
        Some((code.to_string(), msg.to_string()))
    })
}

/// The first error diagnostic's code in a report (`diagnostics`, or `report.diagnostics` for `run`).
fn diagnostic_code(v: &Value) -> Option<(String, String)> {
    let list = v
        .get("diagnostics")
        .or_else(|| v.pointer("/report/diagnostics"))?
        .as_array()?;
    let d = list.iter().find(|d| d["severity"] == "error")?;
    Some((
        d["code"].as_str()?.to_string(),
        d["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// A failed child as a tool error: `{"ok": false, "exit_code", "error": {"code", "message", "help", "text"},
/// "result"?}`. The code is osiris's own: from its JSON error, from the `error[CODE]` of a run's error, from the
/// first error diagnostic, or from the first `error[CODE]` line on stderr.
pub fn failure(out: &Output) -> Value {
    let stderr = out.stderr.trim_end();
    if let Some(v) = &out.json
        && v.get("error").is_some_and(Value::is_object)
    {
        let mut v = v.clone();
        v["exit_code"] = json!(out.code);
        return v;
    }
    let from_json = out.json.as_ref().and_then(|v| {
        v.get("error")
            .and_then(Value::as_str)
            .and_then(coded_line)
            .or_else(|| diagnostic_code(v))
    });
    let (code, message) = from_json
        .or_else(|| coded_line(stderr))
        .map(|(c, m)| (Value::from(c), m))
        .unwrap_or_else(|| {
            let first = stderr
                .lines()
                .find(|l| l.starts_with("error"))
                .or_else(|| stderr.lines().next())
                .unwrap_or("osiris failed without a message");
            (Value::Null, first.trim_start_matches("error: ").to_string())
        });
    let help: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("= help: "))
        .collect();
    let mut v = json!({
        "ok": false,
        "exit_code": out.code,
        "error": {
            "code": code,
            "message": message,
            "help": if help.is_empty() { Value::Null } else { help.join("; ").into() },
            "text": stderr,
        },
    });
    if let Some(result) = &out.json {
        v["result"] = result.clone();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, json: Option<Value>, stderr: &str) -> Output {
        Output {
            code,
            json,
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn a_failure_carries_the_osiris_code() {
        let e = failure(&out(
            5,
            Some(
                json!({"ok": false, "exit_code": 5, "error": {"code": "CONN-E001", "message": "m"}}),
            ),
            "",
        ));
        assert_eq!(e["error"]["code"], "CONN-E001");
        let e = failure(&out(
            4,
            Some(
                json!({"status": "failed", "error": "error[RUN-E002]: step `x` failed\n  = help: h"}),
            ),
            "warning: w\nerror[RUN-E002]: step `x` failed\n  = help: fix it",
        ));
        assert_eq!(e["error"]["code"], "RUN-E002");
        assert_eq!(e["error"]["help"], "fix it");
        assert_eq!(e["result"]["status"], "failed");
        let e = failure(&out(
            2,
            Some(json!({"ok": false, "diagnostics": [
                {"code": "OML-W017", "severity": "warning", "message": "w"},
                {"code": "OML-E104", "severity": "error", "message": "unknown component"}]})),
            "",
        ));
        assert_eq!(e["error"]["code"], "OML-E104");
        let e = failure(&out(1, None, "thread panicked\nerror: internal error"));
        assert_eq!(e["error"]["code"], Value::Null);
        assert_eq!(e["error"]["message"], "internal error");
    }
}
