//! Everything a command prints on stdout goes through [`outln!`] / [`out!`].
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`osiris runs list | head -3`: "failed printing
//! to stdout: Broken pipe", exit 101). Here a closed pipe is not an error: the rest of the output is dropped
//! and the command finishes as it would have, with its own exit code. Any other write error is reported once
//! on stderr and makes a successful command exit 1 (see [`failure`]). Diagnostics on stderr go through
//! [`errln!`], which ignores a closed stderr the same way.
//!
//! Invariant: no code of the `osiris` binary prints with `print!`/`println!`/`eprint!`/`eprintln!` (clippy's
//! `disallowed-macros`, host/clippy.toml).

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader of stdout has gone: further output is dropped.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// Something was written to stdout.
static WROTE: AtomicBool = AtomicBool::new(false);
/// The first write error other than a closed pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes to stdout; a closed pipe ends the output quietly.
pub fn write(args: Arguments<'_>, newline: bool) {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    let r = o
        .write_fmt(args)
        .and_then(|()| if newline { o.write_all(b"\n") } else { Ok(()) });
    WROTE.store(true, Ordering::Relaxed);
    if let Err(e) = r {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            let mut f = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Flushes stdout at the end of the command; a closed pipe is ignored like in [`write`].
pub fn flush() {
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    if let Err(e) = std::io::stdout().lock().flush() {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            let mut f = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Whether the command has printed anything on stdout.
pub fn wrote() -> bool {
    WROTE.load(Ordering::Relaxed)
}

/// The write error that lost output (not a closed pipe), if any.
pub fn failure() -> Option<String> {
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Writes a line to stderr; a closed stderr is ignored (diagnostics have nowhere else to go).
pub fn eline(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{text}");
}

/// Writes `text` to stderr without a newline and flushes it (an interactive prompt).
pub fn eprompt(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` that survives a closed pipe.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}

/// `eprintln!` that ignores a closed stderr (`osiris run p.yaml 2>&1 | head`): diagnostics have nowhere else to
/// go, and the exit code still tells what happened.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::eline(&format!($($arg)*))
    };
}
