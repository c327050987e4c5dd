//! Notices: the warnings library code has for the person at the terminal (a configuration file others can
//! write, a plugin refused while the command goes on). No library crate prints: they report here, and the
//! command-line front end installs the sink that writes them to stderr. Without a sink a notice is dropped
//! (a library used on its own stays silent).

use std::sync::OnceLock;

static SINK: OnceLock<fn(&str)> = OnceLock::new();

/// Installs the sink every later notice goes to; the first call wins.
pub fn set_sink(sink: fn(&str)) {
    let _ = SINK.set(sink);
}

/// Reports one notice (a rendered `warning[CODE]: ...` text, possibly several lines).
pub fn warn(text: &str) {
    if let Some(sink) = SINK.get() {
        sink(text);
    }
}
