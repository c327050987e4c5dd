//! YAML with positions, for every YAML file osiris reads with diagnostics in mind (component `spec.yaml`,
//! OML pipelines): parses a document with `marked_yaml`, converts it to `serde_json::Value`, and keeps the
//! line and column of every node under its JSON Pointer so that problems found on the JSON value can be
//! reported at the right place in the file.
//!
//! Common rules: scalars follow the YAML 1.2 core schema (a plain scalar may be null, a boolean, an integer or
//! a float; a quoted or block scalar is always a string); the top level must be a mapping; anchors, aliases
//! and tags are refused; duplicate keys are errors. What differs between the two kinds of file (the
//! diagnostic code and wording of syntax errors, how much of the source is underlined, a few integer forms)
//! is chosen by [`Flavor`].
//!
//! Invariant: every node of the returned value has an entry in [`SourceDoc::spans`] under its JSON Pointer.

use crate::codes::Code;
use crate::diag::Diagnostic;
use marked_yaml::{LoadError, LoaderOptions, Node};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// Which kind of file is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// A component's `spec.yaml`: syntax problems are `SPEC-E001` (an empty file included) with a `here`
    /// label; underlines are measured on the source line (quotes included, never past the line end); a
    /// mapping starts at its first key; integers may be signed in hex/octal (`-0x1F`) and a decimal integer
    /// beyond 64 bits becomes a float.
    Spec,
    /// An OML pipeline: syntax problems are `OML-E002`; a plain scalar or key is underlined for its text
    /// length, a quoted one up to its closing quote (escapes honoured); a decimal integer beyond 64 bits stays a
    /// string.
    Oml,
}

impl Flavor {
    /// The diagnostic code of a syntax problem.
    pub fn code(self) -> Code {
        match self {
            Flavor::Spec => Code::SPEC_E001,
            Flavor::Oml => Code::OML_E002,
        }
    }
}

/// A position in the source: 1-based line and column, and the length to underline (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
    pub len: usize,
}

/// Where a node sits: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    pub key: Option<Pos>,
    pub value: Pos,
    /// Plain (unquoted, not a block scalar) scalar.
    pub plain: bool,
    /// The node is a mapping or a sequence.
    pub container: bool,
}

/// JSON Pointer -> positions, for every node of a document (ordered by pointer).
#[derive(Debug, Default, Clone)]
pub struct SpanMap(BTreeMap<String, NodeSpan>);

impl std::ops::Deref for SpanMap {
    type Target = BTreeMap<String, NodeSpan>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl SpanMap {
    /// The span of `pointer` or of its nearest existing ancestor (the document itself at worst).
    fn nearest(&self, pointer: &str) -> Option<&NodeSpan> {
        let mut p = pointer;
        loop {
            if let Some(s) = self.0.get(p) {
                return Some(s);
            }
            p = &p[..p.rfind('/')?];
        }
    }

    /// Where to point for a problem with the node at `pointer`: a scalar itself; a mapping or sequence at the
    /// key that introduces it (that line names it), or at its first line. A pointer that does not exist falls
    /// back to its nearest existing ancestor.
    pub fn locate(&self, pointer: &str) -> Pos {
        match self.nearest(pointer) {
            Some(s) if s.container => s.key.unwrap_or(s.value),
            Some(s) => s.value,
            None => START,
        }
    }

    /// Where to point for a mapping key (an unknown key): the key itself.
    pub fn locate_key(&self, pointer: &str) -> Pos {
        match self.0.get(pointer).and_then(|s| s.key) {
            Some(k) => k,
            None => self.locate(pointer),
        }
    }

    /// The position of the node at `pointer`, or of its nearest existing ancestor. Mapping entries point at
    /// their key when `prefer_key` is set (e.g. "unknown key"), at their value otherwise.
    pub fn locate_entry(&self, pointer: &str, prefer_key: bool) -> Pos {
        match self.nearest(pointer) {
            Some(s) => match (prefer_key, s.key) {
                (true, Some(k)) => k,
                _ => s.value,
            },
            None => START,
        }
    }
}

const START: Pos = Pos {
    line: 1,
    col: 1,
    len: 1,
};

/// A parsed file: its name and text, the JSON value, and where each node came from.
#[derive(Debug, Clone)]
pub struct SourceDoc {
    pub file: String,
    pub text: String,
    pub value: Value,
    pub spans: SpanMap,
}

impl SourceDoc {
    /// Parses `text` (named `file` in diagnostics); a syntax problem is one diagnostic with
    /// [`Flavor::code`].
    pub fn parse(file: &str, text: &str, flavor: Flavor) -> Result<SourceDoc, Box<Diagnostic>> {
        let lines: Vec<&str> = text.lines().collect();
        if flavor == Flavor::Spec && text.trim().is_empty() {
            return Err(Box::new(Diagnostic::error(flavor.code(), "the file is empty")
                .at(file, 1, 1)
                .help("a spec is a YAML mapping starting with `name:`, `version:`, `modes:`, `capabilities:` and `configSchema:`")));
        }
        let opts = LoaderOptions::default()
            .error_on_duplicate_keys(true)
            .prevent_coercion(true);
        let node = marked_yaml::parse_yaml_with_options(0, text, opts)
            .map_err(|e| Box::new(load_error(file, &lines, flavor, e)))?;
        let mut spans = SpanMap::default();
        let cx = Convert {
            flavor,
            lines: &lines,
        };
        let value = cx.convert(&node, String::new(), None, &mut spans);
        Ok(SourceDoc {
            file: file.to_string(),
            text: text.to_string(),
            value,
            spans,
        })
    }

    /// The position of the node at `pointer`, or of its nearest existing ancestor. Mapping entries point at
    /// their key when `prefer_key` is set (e.g. "unknown key"), at their value otherwise.
    pub fn locate(&self, pointer: &str, prefer_key: bool) -> Pos {
        self.spans.locate_entry(pointer, prefer_key)
    }

    /// A diagnostic placed at `pointer`.
    pub fn at(&self, d: Diagnostic, pointer: &str, prefer_key: bool) -> Diagnostic {
        let pos = self.locate(pointer, prefer_key);
        let mut d = d.at(&self.file, pos.line, pos.col).pointer(pointer);
        // A label given with length 1 means "the node's own length".
        d.span_len = if d.span_len <= 1 {
            pos.len.max(1)
        } else {
            d.span_len
        };
        d
    }
}

/// Escapes one JSON Pointer reference token (RFC 6901).
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Unescapes one JSON Pointer reference token (RFC 6901).
pub fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Joins a pointer and a token.
pub fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_token(token))
}

fn load_error(file: &str, lines: &[&str], flavor: Flavor, e: LoadError) -> Diagnostic {
    let spec = flavor == Flavor::Spec;
    let (marker, msg, help) = match &e {
        LoadError::TopLevelMustBeMapping(m) if spec => (
            Some(*m),
            "the document must be a YAML mapping".to_string(),
            "start the file with `name: family.role` and further `key: value` lines".to_string(),
        ),
        LoadError::TopLevelMustBeMapping(m) => (
            Some(*m),
            "an OML file must be a YAML mapping at the top level".to_string(),
            "start the file with `oml_version: \"0.1.0\"`, `name:` and `steps:`".to_string(),
        ),
        LoadError::TopLevelMustBeSequence(m) if spec => (
            Some(*m),
            "the document must be a YAML mapping".to_string(),
            "start the file with `name: family.role` and further `key: value` lines".to_string(),
        ),
        LoadError::TopLevelMustBeSequence(m) => (
            Some(*m),
            "unexpected top-level sequence".to_string(),
            String::new(),
        ),
        LoadError::UnexpectedAnchor(m) if spec => (
            Some(*m),
            "YAML anchors and aliases are not supported here".to_string(),
            "write the value out in full instead of using `&anchor` / `*alias`".to_string(),
        ),
        LoadError::UnexpectedAnchor(m) => (
            Some(*m),
            "YAML anchors and aliases are not supported in OML".to_string(),
            "write the value out in full (or use `${params.NAME}` for values shared by several steps)"
                .to_string(),
        ),
        LoadError::MappingKeyMustBeScalar(m) if spec => (
            Some(*m),
            "a mapping key must be a plain string".to_string(),
            "use `key: value` with a simple key".to_string(),
        ),
        LoadError::MappingKeyMustBeScalar(m) => (
            Some(*m),
            "mapping keys must be plain strings".to_string(),
            "use a string as the key".to_string(),
        ),
        LoadError::UnexpectedTag(m) => (
            Some(*m),
            format!(
                "YAML tags (`!tag`) are not supported {}",
                if spec { "here" } else { "in OML" }
            ),
            "remove the tag; quote the value if it must be a string".to_string(),
        ),
        LoadError::ScanError(m, scan) => (
            Some(*m),
            format!("invalid YAML: {}", scan.info()),
            if spec {
                "check indentation (spaces only), quoting and `key: value` syntax on this line"
            } else {
                "the parser stopped here; look at this line and the ones above for an unclosed `{`, `[` or quote, or a bad indentation"
            }
            .to_string(),
        ),
        LoadError::DuplicateKey(inner) if spec => {
            let first = inner.prev_key.span().start().map(|m| m.line()).unwrap_or(0);
            (
                inner.key.span().start().copied(),
                format!(
                    "duplicate key `{}` (first defined on line {first})",
                    inner.key.as_str()
                ),
                "keep one of the two entries".to_string(),
            )
        }
        LoadError::DuplicateKey(inner) => {
            let first = inner
                .prev_key
                .span()
                .start()
                .map(|m| format!("{}:{}", m.line(), m.column()));
            return Diagnostic::error(
                flavor.code(),
                format!("duplicate key `{}`", inner.key.as_str()),
            )
            .at(
                file,
                inner.key.span().start().map_or(1, |m| m.line()),
                inner.key.span().start().map_or(1, |m| m.column()),
            )
            .label("set a second time here", inner.key.as_str().chars().count())
            .help(format!(
                "keep one `{}`{}",
                inner.key.as_str(),
                first
                    .map(|f| format!(" (the first is at line:col {f})"))
                    .unwrap_or_default()
            ));
        }
    };
    let (line, col) = marker.map_or((1, 1), |m| (m.line().max(1), m.column().max(1)));
    let mut d = Diagnostic::error(flavor.code(), msg).at(file, line, col);
    if spec {
        d = d.label("here", spec_len(lines, line, col, 1));
    }
    if !help.is_empty() {
        d = d.help(help);
    }
    d
}

struct Convert<'a> {
    flavor: Flavor,
    lines: &'a [&'a str],
}

impl Convert<'_> {
    fn convert(
        &self,
        node: &Node,
        pointer: String,
        key: Option<Pos>,
        spans: &mut SpanMap,
    ) -> Value {
        match node {
            Node::Scalar(s) => {
                let plain = s.may_coerce();
                let value = self.scalar_pos(s.span(), s.as_str(), plain);
                spans.0.insert(
                    pointer,
                    NodeSpan {
                        key,
                        value,
                        plain,
                        container: false,
                    },
                );
                if plain {
                    match self.flavor {
                        Flavor::Spec => spec_scalar(s.as_str()),
                        Flavor::Oml => plain_scalar(s.as_str()),
                    }
                } else {
                    Value::String(s.as_str().to_string())
                }
            }
            Node::Sequence(seq) => {
                let value = start(seq.span());
                let mut out = Vec::with_capacity(seq.len());
                for (i, item) in seq.iter().enumerate() {
                    out.push(self.convert(item, format!("{pointer}/{i}"), None, spans));
                }
                spans.0.insert(pointer, container(key, value));
                Value::Array(out)
            }
            Node::Mapping(map) => {
                let mut value = start(map.span());
                // a block mapping's own marker may sit after its first key: a spec points at the earliest key
                if self.flavor == Flavor::Spec
                    && let Some(first) = map.keys().next()
                {
                    let k = start(first.span());
                    if (k.line, k.col) < (value.line, value.col) {
                        value = k;
                    }
                }
                let mut out = Map::new();
                for (k, v) in map.iter() {
                    let kpos = self.key_pos(k.span(), k.as_str());
                    let child = child(&pointer, k.as_str());
                    out.insert(
                        k.as_str().to_string(),
                        self.convert(v, child, Some(kpos), spans),
                    );
                }
                spans.0.insert(pointer, container(key, value));
                Value::Object(out)
            }
        }
    }

    fn scalar_pos(&self, span: &marked_yaml::Span, value: &str, plain: bool) -> Pos {
        let Pos { line, col, .. } = start(span);
        let len = match self.flavor {
            Flavor::Spec => spec_len(self.lines, line, col, value.chars().count()),
            Flavor::Oml => oml_len(self.lines, line, col, value, plain),
        };
        Pos { line, col, len }
    }

    fn key_pos(&self, span: &marked_yaml::Span, key: &str) -> Pos {
        let Pos { line, col, .. } = start(span);
        let len = match self.flavor {
            Flavor::Spec => spec_len(self.lines, line, col, key.chars().count()),
            Flavor::Oml => key.chars().count().max(1),
        };
        Pos { line, col, len }
    }
}

fn container(key: Option<Pos>, value: Pos) -> NodeSpan {
    NodeSpan {
        key,
        value,
        plain: false,
        container: true,
    }
}

/// Where a span starts, with a length of 1.
fn start(span: &marked_yaml::Span) -> Pos {
    let (line, col) = span
        .start()
        .map_or((1, 1), |m| (m.line().max(1), m.column().max(1)));
    Pos { line, col, len: 1 }
}

/// The source line a 1-based line number names, from `col` (1-based) on.
fn rest_of_line(lines: &[&str], line: usize, col: usize) -> Option<String> {
    let text = lines.get(line.checked_sub(1)?)?;
    Some(text.chars().skip(col.saturating_sub(1)).collect())
}

/// [`Flavor::Spec`] underline of the scalar written at line:col: its value, plus quotes when quoted (up to the
/// next quote character on the line), never past the line end; 1 for block scalars.
fn spec_len(lines: &[&str], line: usize, col: usize, value_len: usize) -> usize {
    let Some(rest) = rest_of_line(lines, line, col) else {
        return 1;
    };
    let first = rest.chars().next();
    match first {
        Some(q @ ('"' | '\'')) => match rest[1..].find(q) {
            Some(end) => rest[..end + 2].chars().count(),
            None => value_len.max(1),
        },
        Some('|') | Some('>') => 1,
        _ => value_len.clamp(1, rest.chars().count().max(1)),
    }
}

/// [`Flavor::Oml`] underline of a scalar as written on its first line: a plain one for its text, a quoted one
/// up to its closing quote (escapes honoured), a block one 1.
fn oml_len(lines: &[&str], line: usize, col: usize, value: &str, plain: bool) -> usize {
    let Some(rest) = rest_of_line(lines, line, col) else {
        return 1;
    };
    if plain {
        return value.chars().count().max(1);
    }
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let mut n = 1;
            let mut escaped = false;
            for c in rest.chars().skip(1) {
                n += 1;
                if q == '"' && c == '\\' && !escaped {
                    escaped = true;
                    continue;
                }
                if c == q && !escaped {
                    return n;
                }
                escaped = false;
            }
            n
        }
        _ => 1,
    }
}

/// `null`/`~`/empty, `true`/`false` in their three spellings; the rest is not a keyword.
fn keyword(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => Some(Value::Null),
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// A float written `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` that JSON can hold
/// (`.inf`/`.nan` do not match and stay strings). `point_or_exp` requires a `.` or an exponent.
fn float(s: &str, point_or_exp: bool) -> Option<Value> {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exp_ok) || (point_or_exp && frac.is_none() && exp.is_none()) {
        return None;
    }
    let f = s.parse::<f64>().ok()?;
    Number::from_f64(f).map(Value::Number)
}

/// Types a plain scalar the YAML 1.2 core-schema way ([`Flavor::Oml`]): null, booleans, decimal integers
/// (64-bit; beyond that a string), `0x` hex and `0o` octal, floats; anything else is a string.
pub fn plain_scalar(s: &str) -> Value {
    if let Some(v) = keyword(s) {
        return v;
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = s.parse::<u64>() {
            return Value::Number(u.into());
        }
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Number(i.into());
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Number(i.into());
    }
    float(s, true).unwrap_or_else(|| Value::String(s.to_string()))
}

/// [`Flavor::Spec`] typing of a plain scalar: as [`plain_scalar`], except that hex/octal may be signed and
/// reach `u64`, and a decimal integer beyond 64 bits becomes a float.
fn spec_scalar(raw: &str) -> Value {
    if let Some(v) = keyword(raw) {
        return v;
    }
    if let Some(n) = spec_int(raw) {
        return Value::Number(n);
    }
    float(raw, false).unwrap_or_else(|| Value::String(raw.to_string()))
}

fn spec_int(raw: &str) -> Option<Number> {
    let (neg, digits) = match raw.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    if digits.is_empty() {
        return None;
    }
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if neg {
        i64::from_str_radix(&format!("-{body}"), radix)
            .ok()
            .map(Number::from)
    } else {
        u64::from_str_radix(body, radix).ok().map(Number::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DOC: &str = "\
# a comment
name: mysql.extractor
version: \"1.0.0\"
modes:
  - extract
  - discover
flags: {a: true, b: ~}
configSchema:
  type: object
  properties:
    a/b:
      type: string
text: |
  block
n: 12
f: -1.5e3
s: '007'
";

    fn spec(file: &str, text: &str) -> Result<SourceDoc, Box<Diagnostic>> {
        SourceDoc::parse(file, text, Flavor::Spec)
    }

    fn oml(text: &str) -> Result<SourceDoc, Box<Diagnostic>> {
        SourceDoc::parse("p.yaml", text, Flavor::Oml)
    }

    #[test]
    fn converts_scalars_with_the_core_schema() {
        let d = spec("t.yaml", DOC).unwrap();
        assert_eq!(d.value["version"], json!("1.0.0"));
        assert_eq!(d.value["flags"], json!({"a": true, "b": null}));
        assert_eq!(d.value["text"], json!("block\n"));
        assert_eq!(d.value["n"], json!(12));
        assert_eq!(d.value["f"], json!(-1500.0));
        assert_eq!(d.value["s"], json!("007"));
        assert_eq!(d.value["modes"], json!(["extract", "discover"]));
        assert_eq!(oml(DOC).unwrap().value, d.value, "both flavors agree here");
    }

    #[test]
    fn the_flavors_differ_only_on_integer_edge_forms() {
        let text = "a: -0x10\nb: 18446744073709551616\nc: 0x10\nd: 0o17\ne: 1.\nf: .inf\n";
        assert_eq!(
            spec("t.yaml", text).unwrap().value,
            json!({"a": -16, "b": 18446744073709551616.0, "c": 16, "d": 15, "e": 1.0, "f": ".inf"})
        );
        assert_eq!(
            oml(text).unwrap().value,
            json!({"a": "-0x10", "b": "18446744073709551616", "c": 16, "d": 15, "e": 1.0, "f": ".inf"})
        );
    }

    #[test]
    fn maps_every_pointer_to_line_and_column() {
        let d = spec("t.yaml", DOC).unwrap();
        let at = |p: &str| {
            let s = d.spans.get(p).unwrap_or_else(|| panic!("no span for {p}"));
            (s.value.line, s.value.col)
        };
        assert_eq!(at("/name"), (2, 7));
        assert_eq!(at("/version"), (3, 10));
        assert_eq!(
            d.spans.get("/version").unwrap().value.len,
            7,
            "quoted scalar includes its quotes"
        );
        assert_eq!(at("/modes/1"), (6, 5));
        assert_eq!(at("/flags/b"), (7, 21));
        assert_eq!(at("/configSchema/properties/a~1b/type"), (12, 13));
        // a mapping is located at the key that introduces it
        assert_eq!(
            d.spans.locate("/configSchema/properties"),
            Pos {
                line: 10,
                col: 3,
                len: 10
            }
        );
        assert_eq!(
            d.spans.locate_key("/name"),
            Pos {
                line: 2,
                col: 1,
                len: 4
            }
        );
        // the document itself starts at its first key, after leading comments
        assert_eq!((d.spans.locate("").line, d.spans.locate("").col), (2, 1));
        // a missing node falls back to its nearest ancestor
        assert_eq!(d.spans.locate("/configSchema/required/0").line, 8);
    }

    #[test]
    fn reports_syntax_errors_and_duplicate_keys_with_a_position() {
        let e = spec("bad.yaml", "name: a.b\nmodes: [extract\n").unwrap_err();
        assert_eq!(e.code, "SPEC-E001");
        assert!(e.line.is_some(), "{e:?}");
        let e = spec("dup.yaml", "name: a.b\nversion: 1.0.0\nname: c.d\n").unwrap_err();
        assert!(e.message.contains("duplicate key `name`"), "{}", e.message);
        assert_eq!((e.line, e.column), (Some(3), Some(1)));
        let e = spec("empty.yaml", " \n").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("SPEC-E001", "the file is empty")
        );
    }

    #[test]
    fn types_scalars_like_yaml_core() {
        let doc = oml(
            "a: 3306\nb: \"3306\"\nc: true\nd: ~\ne:\nf: 1.5\ng: 'x'\nh: 1e3\ni: 0.1.0\nj: |\n  SELECT 1\n",
        )
        .unwrap();
        assert_eq!(
            doc.value,
            json!({"a": 3306, "b": "3306", "c": true, "d": null, "e": null, "f": 1.5, "g": "x", "h": 1000.0,
                   "i": "0.1.0", "j": "SELECT 1\n"})
        );
    }

    #[test]
    fn keeps_line_and_column_of_keys_and_values() {
        let text = "name: x\nsteps:\n  - id: a\n    config:\n      query: \"SELECT 1\"\n";
        let doc = oml(text).unwrap();
        let s = doc.spans["/steps/0/config/query"];
        assert_eq!(
            s.key,
            Some(Pos {
                line: 5,
                col: 7,
                len: 5
            })
        );
        assert_eq!(
            s.value,
            Pos {
                line: 5,
                col: 14,
                len: 10
            }
        );
        assert_eq!(doc.locate("/steps/0/config/missing", true).line, 4);
        assert_eq!(
            doc.locate("/steps/0/id", true),
            Pos {
                line: 3,
                col: 5,
                len: 2
            }
        );
    }

    #[test]
    fn escapes_pointer_tokens() {
        let doc = oml("h:\n  a/b: 1\n  c~d: 2\n").unwrap();
        assert!(doc.spans.contains_key("/h/a~1b"));
        assert!(doc.spans.contains_key("/h/c~0d"));
        assert_eq!(unescape_token("a~1b~0c"), "a/b~c");
        assert_eq!(child("/h", "a/b"), "/h/a~1b");
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_have_positions() {
        let e = oml("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.line, e.column),
            ("OML-E002", Some(3), Some(1))
        );
        let e = oml("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(e.code, "OML-E002");
        assert!(e.line.is_some());
        let e = oml("- 1\n").unwrap_err();
        assert!(e.message.contains("mapping"), "{}", e.message);
    }
}
