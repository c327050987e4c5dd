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

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CmdResult = Result<Exit, Fail>;
