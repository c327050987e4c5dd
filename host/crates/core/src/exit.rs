//! Documented exit codes, shared by every command (see README and `osiris --help`).

use std::process::ExitCode;

/// A process exit status with a documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: internal error (a bug: please report it).
    Internal = 1,
    /// 2: validation error, or a usage error on the command line.
    Validation = 2,
    /// 3: compile error.
    Compile = 3,
    /// 4: run error (a step failed).
    Run = 4,
    /// 5: configuration or secrets missing.
    Config = 5,
    /// 130: cancelled (Ctrl-C or SIGTERM).
    Cancelled = 130,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// An error that ends a command: the message is already user-facing (what, where, why, fix).
#[derive(Debug)]
pub struct Fail {
    pub exit: Exit,
    pub message: String,
}

impl Fail {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Fail {
            exit,
            message: message.into(),
        }
    }
}

impl Fail {
    /// The failure as data: `{"ok": false, "exit_code", "error": {"code", "message", "help", "text"}}`. `code` is
    /// the documented code in `error[CODE]: ...` (null when the message has none); `help` joins the `= help:`
    /// lines. What `--format json` prints and what the MCP server returns as a tool error.
    pub fn to_json(&self) -> serde_json::Value {
        let text = self.message.trim_end();
        let first = text.lines().next().unwrap_or_default();
        let (code, message) = match first
            .strip_prefix("error[")
            .and_then(|r| r.split_once("]: "))
        {
            Some((code, m)) => (Some(code.to_string()), m.to_string()),
            None => (
                None,
                first.strip_prefix("error: ").unwrap_or(first).to_string(),
            ),
        };
        let help: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("= help: "))
            .collect();
        serde_json::json!({
            "ok": false,
            "exit_code": self.exit.code(),
            "error": {
                "code": code,
                "message": message,
                "help": if help.is_empty() { serde_json::Value::Null } else { help.join("; ").into() },
                "text": text,
            },
        })
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CmdResult = Result<Exit, Fail>;
