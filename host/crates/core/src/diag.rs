//! Diagnostics people see: what, where (file:line:col, JSON Pointer, step), why and how to fix.
//!
//! Both the registry (spec problems) and the OML validator (pipeline problems) report through this type,
//! so `--format json` gives the same shape everywhere.

use crate::codes::Code;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem, with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable code, documented in docs/errors.md (serialized as its string, e.g. `OML-E104`).
    pub code: Code,
    pub severity: Severity,
    /// Lower-case, no trailing period, identifiers in backticks.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// JSON Pointer into the document, when the problem is at a node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// One concrete fix (did-you-mean, allowed values, an example).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Short label printed under the source snippet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Length of the marked span in characters (1 when unknown).
    #[serde(skip)]
    pub span_len: usize,
}

impl Diagnostic {
    /// A diagnostic of an error code (a warning code reported as an error is a bug, caught by debug builds).
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(
            code.severity(),
            Severity::Error,
            "{code} is not an error code"
        );
        Diagnostic::of(code, message)
    }

    /// A diagnostic of a warning code.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        debug_assert_eq!(
            code.severity(),
            Severity::Warning,
            "{code} is not a warning code"
        );
        Diagnostic::of(code, message)
    }

    /// A diagnostic with the severity of its code.
    pub fn of(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            file: None,
            line: None,
            column: None,
            pointer: None,
            step: None,
            component: None,
            help: None,
            label: None,
            span_len: 1,
        }
    }

    pub fn at(mut self, file: impl Into<String>, line: usize, column: usize) -> Self {
        self.file = Some(file.into());
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn pointer(mut self, pointer: impl Into<String>) -> Self {
        self.pointer = Some(pointer.into());
        self
    }

    pub fn step(mut self, step: impl Into<String>) -> Self {
        self.step = Some(step.into());
        self
    }

    pub fn component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>, span_len: usize) -> Self {
        self.label = Some(label.into());
        self.span_len = span_len.max(1);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic the way a compiler does, with the source line when `source` is given.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = String::new();
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let _ = writeln!(out, "{sev}[{}]: {}", self.code, self.message);
        if let Some(file) = &self.file {
            match (self.line, self.column) {
                (Some(l), Some(c)) => {
                    let _ = writeln!(out, "  --> {file}:{l}:{c}");
                }
                _ => {
                    let _ = writeln!(out, "  --> {file}");
                }
            }
        }
        if let (Some(src), Some(l), Some(c)) = (source, self.line, self.column)
            && let Some(text) = src.lines().nth(l.saturating_sub(1))
        {
            let w = l.to_string().len();
            let pad = " ".repeat(w);
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{l} | {text}");
            let marks = "^".repeat(self.span_len.max(1));
            let label = self.label.as_deref().unwrap_or("");
            let _ = writeln!(
                out,
                "{pad} | {}{marks} {label}",
                " ".repeat(c.saturating_sub(1))
            );
        }
        let mut notes = Vec::new();
        if let Some(step) = &self.step {
            notes.push(format!("step `{step}`"));
        }
        if let Some(component) = &self.component {
            notes.push(format!("component `{component}`"));
        }
        if let Some(p) = &self.pointer {
            notes.push(format!("at `{p}`"));
        }
        if !notes.is_empty() {
            let _ = writeln!(out, "   = note: {}", notes.join(", "));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "   = help: {help}");
        }
        out
    }
}

/// Closest candidate by edit distance, for did-you-mean hints.
pub fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(wanted, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_name() {
        let names = ["mysql.writer", "mysql.extractor", "duckdb.processor"];
        assert_eq!(did_you_mean("mysql.wrtier", names), Some("mysql.writer"));
        assert_eq!(did_you_mean("zzz", names), None);
    }

    #[test]
    fn renders_location_snippet_and_help() {
        let src = "steps:\n  - component: mysql.wrtier\n";
        let d = Diagnostic::error(Code::OML_E104, "unknown component `mysql.wrtier`")
            .at("p.yaml", 2, 16)
            .label("not in the registry", 12)
            .help("did you mean `mysql.writer`?");
        let text = d.render(Some(src));
        assert!(text.contains("--> p.yaml:2:16"), "{text}");
        assert!(text.contains("2 |   - component: mysql.wrtier"), "{text}");
        assert!(text.contains("^^^^^^^^^^^^ not in the registry"), "{text}");
        assert!(text.contains("help: did you mean"), "{text}");
    }
}
