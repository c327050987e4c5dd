//! The record scanner between the decoded file and arrow's CSV parser.
//!
//! arrow's parser forgets whether a field was quoted, and reports a row with the wrong number of fields as a
//! bare error that ends the stream. The scanner reads the CSV structure itself (delimiter, quote character,
//! doubled quotes, CR/LF) one pass ahead of arrow and rewrites only what arrow cannot tell:
//!
//! - a null field (an unquoted field equal to one of `null_values`, or a quoted one with `allow_quoted_nulls`)
//!   becomes [`NULL_MARK`], the only value the parser is told to read as null. A quoted `""` therefore stays
//!   an empty string, and an unquoted empty field is a null (DuckDB's convention);
//! - a record with more or fewer fields than the first one (the header) is a `CSV-PARSE` error naming its
//!   line, or, with `ignore_errors`, is left out and counted (`max_bad_rows` caps how many);
//! - in a file of one column an empty line is a record whose field is a null (what the writer writes for a
//!   null there); in any other file it is skipped.
//!
//! Invariant: every other byte reaches the parser unchanged, so line numbers and field contents are the
//! file's own.

use osiris_plugin_sdk::{ErrorKind, PluginError};
use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

/// What a null field is rewritten to: U+FFFF, a Unicode noncharacter that text data does not hold.
pub(crate) const NULL_MARK: &str = "\u{FFFF}";

/// Line numbers of rejected rows kept for the warning (the count is exact).
const KEEP_LINES: usize = 10;

/// How a file is scanned.
#[derive(Debug, Clone)]
pub(crate) struct ScanOptions {
    pub delimiter: u8,
    pub quote: u8,
    /// Field contents read as null.
    pub null_values: Vec<Vec<u8>>,
    /// Whether a quoted field can be a null too (DuckDB's `allow_quoted_nulls`).
    pub allow_quoted_nulls: bool,
    /// Whether the first record is the header (never rewritten).
    pub header: bool,
    /// Skip records with the wrong number of fields instead of failing.
    pub ignore_errors: bool,
    /// With `ignore_errors`: fail once more records than this were skipped.
    pub max_bad_rows: Option<u64>,
    /// Lines before the first scanned byte (`skip_rows`), so reported line numbers are the file's.
    pub lines_before: u64,
    /// The file, for messages.
    pub path: String,
    /// Which columns hold text (`Utf8`), once the types are known; an empty field (quoted or not) of any other
    /// column is a null, as it can be nothing else. `None` while the types are inferred: then every empty
    /// field counts as a null, so a `""` does not make a number column text.
    pub text_columns: Option<Vec<bool>>,
}

/// What one scan found, shared with whoever reads the parser's output.
#[derive(Debug, Default)]
pub(crate) struct ScanReport {
    /// The error that stopped the scan (the parser sees an I/O error; this is the real one).
    pub error: Option<PluginError>,
    /// Records left out with `ignore_errors`.
    pub rejected: u64,
    /// Line numbers of the first rejected records.
    pub rejected_lines: Vec<u64>,
}

pub(crate) type SharedReport = Arc<Mutex<ScanReport>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte of a record.
    RecordStart,
    /// Before the first byte of a field (after a delimiter).
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the closing quote, or the first of a doubled one.
    QuoteInQuoted,
}

/// Bytes are copied once, from the input into `out`, where records are rewritten in place; the parser reads
/// `out` up to the end of the last complete record (`ready`) through `BufRead`.
pub(crate) struct Scanner<R> {
    inner: R,
    opts: ScanOptions,
    report: SharedReport,
    state: State,
    /// Scanned bytes: complete records up to `ready`, then the current record.
    out: Vec<u8>,
    /// How much of `out` the parser has consumed.
    out_pos: usize,
    /// End of the complete records in `out`: what the parser may read.
    ready: usize,
    /// Where the current field starts in `out`.
    field_start: usize,
    fields_in_record: usize,
    /// Fields per record, from the first record.
    expected: Option<usize>,
    records: u64,
    /// Line the scanner is on (1-based, file numbering).
    line: u64,
    /// Line the current record started on.
    record_line: u64,
    input: Vec<u8>,
    done: bool,
    /// Bytes that end an unquoted field: the delimiter, CR, LF.
    ends_unquoted: [bool; 256],
    /// A field longer than this cannot be a null (so most fields need no comparison).
    longest_null: usize,
    /// The last byte scanned was a CR that ended a line: an LF right after it ends the same line.
    after_cr: bool,
}

impl<R: Read> Scanner<R> {
    pub(crate) fn new(inner: R, opts: ScanOptions) -> (Scanner<R>, SharedReport) {
        let report = SharedReport::default();
        let line = opts.lines_before + 1;
        let mut ends_unquoted = [false; 256];
        for b in [opts.delimiter, b'\n', b'\r'] {
            ends_unquoted[b as usize] = true;
        }
        let longest = opts.null_values.iter().map(Vec::len).max().unwrap_or(0);
        // `""` is two bytes; a quoted null of n bytes is at most 2n + 2 bytes with its quotes doubled.
        let longest_null = if opts.allow_quoted_nulls {
            2 * longest + 2
        } else {
            longest.max(2)
        };
        (
            Scanner {
                inner,
                opts,
                report: report.clone(),
                state: State::RecordStart,
                out: Vec::with_capacity(1 << 17),
                out_pos: 0,
                ready: 0,
                field_start: 0,
                fields_in_record: 0,
                expected: None,
                records: 0,
                line,
                record_line: line,
                input: vec![0; 1 << 16],
                done: false,
                ends_unquoted,
                longest_null,
                after_cr: false,
            },
            report,
        )
    }

    /// Ends the current field (`out[field_start..]`): replaced by [`NULL_MARK`] when it is a null.
    #[inline]
    fn end_field(&mut self) {
        let is_header = self.opts.header && self.records == 0;
        if !is_header && self.out.len() - self.field_start <= self.longest_null {
            let quote = self.opts.quote;
            let field = &self.out[self.field_start..];
            let quoted = field.first() == Some(&quote);
            let empty = field.is_empty() || field == [quote, quote];
            let text = match &self.opts.text_columns {
                Some(text) => text.get(self.fields_in_record).copied().unwrap_or(true),
                None => false,
            };
            let null = (empty && !text)
                || if !quoted {
                    self.opts.null_values.iter().any(|v| v == field)
                } else if self.opts.allow_quoted_nulls {
                    let content = unquote(field, quote);
                    self.opts.null_values.contains(&content)
                } else {
                    false
                };
            if null {
                self.out.truncate(self.field_start);
                self.out.extend_from_slice(NULL_MARK.as_bytes());
            }
        }
        self.fields_in_record += 1;
    }

    /// The next field starts here (after a delimiter or at the start of a record).
    fn start_field(&mut self) {
        self.field_start = self.out.len();
        self.state = State::FieldStart;
    }

    /// Ends the current record (`terminator` is the byte that ended it, none at the end of the file).
    fn end_record(&mut self, terminator: Option<u8>) -> Result<(), PluginError> {
        let got = self.fields_in_record;
        let line = self.record_line;
        self.fields_in_record = 0;
        self.records += 1;
        let expected = *self.expected.get_or_insert(got);
        if got != expected {
            self.reject(line, expected, got)?;
            self.out.truncate(self.ready);
        }
        // The terminator of a rejected record still goes through (as an empty line the parser skips).
        if let Some(t) = terminator {
            self.out.push(t);
        }
        self.ready = self.out.len();
        Ok(())
    }

    fn reject(&mut self, line: u64, expected: usize, got: usize) -> Result<(), PluginError> {
        let first = if self.opts.header {
            "the header has"
        } else {
            "the first row has"
        };
        let what = format!(
            "`{}` line {line}: expected {expected} fields ({first} {expected}), got {got}",
            self.opts.path
        );
        if !self.opts.ignore_errors {
            return Err(PluginError::new(ErrorKind::Data, "CSV-PARSE", what).with_help(
                "fix the row (a field with the delimiter or a line break in it needs quotes), or set `ignore_errors: true` to skip such rows (`max_bad_rows` caps how many)",
            ));
        }
        let mut report = self.report.lock().unwrap_or_else(|p| p.into_inner());
        report.rejected += 1;
        if report.rejected_lines.len() < KEEP_LINES {
            report.rejected_lines.push(line);
        }
        if let Some(max) = self.opts.max_bad_rows
            && report.rejected > max
        {
            return Err(PluginError::new(
                ErrorKind::Data,
                "CSV-PARSE",
                format!(
                    "`{}`: more than {max} rows have the wrong number of fields (`max_bad_rows: {max}`); the last: {what}",
                    self.opts.path
                ),
            )
            .with_help("fix the file, or raise `max_bad_rows`"));
        }
        Ok(())
    }

    fn scan(&mut self, n: usize) -> Result<(), PluginError> {
        let input = std::mem::take(&mut self.input);
        let result = self.scan_bytes(&input[..n]);
        self.input = input;
        result
    }

    fn scan_bytes(&mut self, bytes: &[u8]) -> Result<(), PluginError> {
        let (delim, quote) = (self.opts.delimiter, self.opts.quote);
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                State::RecordStart => {
                    let after_cr = std::mem::take(&mut self.after_cr);
                    if (b == b'\n' && !after_cr || b == b'\r') && self.expected == Some(1) {
                        // An empty line in a file of one column: a record holding a null.
                        self.record_line = self.line;
                        self.out.extend_from_slice(NULL_MARK.as_bytes());
                        self.fields_in_record = 1;
                        self.end_line(b)?;
                        i += 1;
                        continue;
                    }
                    if b == b'\n' || b == b'\r' {
                        // An empty line (or the LF of a CRLF): the parser skips it; keep it for the line numbers.
                        self.out.push(b);
                        self.ready = self.out.len();
                        if b == b'\n' {
                            self.line += 1;
                        }
                        i += 1;
                        continue;
                    }
                    self.record_line = self.line;
                    self.start_field();
                    // The byte is looked at again as the start of the first field.
                    continue;
                }
                State::FieldStart => {
                    if b == quote {
                        self.out.push(b);
                        self.state = State::Quoted;
                    } else if b == delim {
                        self.end_field();
                        self.out.push(b);
                        self.start_field();
                    } else if b == b'\n' || b == b'\r' {
                        self.end_field();
                        self.end_line(b)?;
                    } else {
                        self.state = State::Unquoted;
                        // Looked at again by the fast path below.
                        continue;
                    }
                }
                State::Unquoted => {
                    // The common case: run to the next special byte.
                    // Fields are short: a table beats a vectorised search here.
                    let start = i;
                    while i < bytes.len() && !self.ends_unquoted[bytes[i] as usize] {
                        i += 1;
                    }
                    self.out.extend_from_slice(&bytes[start..i]);
                    if i == bytes.len() {
                        break;
                    }
                    let b = bytes[i];
                    self.end_field();
                    if b == delim {
                        self.out.push(b);
                        self.start_field();
                    } else {
                        self.end_line(b)?;
                    }
                }
                State::Quoted => {
                    let rest = &bytes[i..];
                    let Some(end) = memchr::memchr2(quote, b'\n', rest) else {
                        self.out.extend_from_slice(rest);
                        break;
                    };
                    self.out.extend_from_slice(&rest[..=end]);
                    i += end;
                    if bytes[i] == b'\n' {
                        self.line += 1;
                    } else {
                        self.state = State::QuoteInQuoted;
                    }
                }
                State::QuoteInQuoted => {
                    if b == quote {
                        // A doubled quote: one quote character inside the field.
                        self.out.push(b);
                        self.state = State::Quoted;
                    } else if b == delim {
                        self.end_field();
                        self.out.push(b);
                        self.start_field();
                    } else if b == b'\n' || b == b'\r' {
                        self.end_field();
                        self.end_line(b)?;
                    } else {
                        // Text after the closing quote belongs to the field (as the parser reads it).
                        self.out.push(b);
                        self.state = State::Unquoted;
                    }
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// A line break that ends a record.
    fn end_line(&mut self, b: u8) -> Result<(), PluginError> {
        self.end_record(Some(b))?;
        if b == b'\n' {
            self.line += 1;
        }
        self.after_cr = b == b'\r';
        self.state = State::RecordStart;
        Ok(())
    }

    fn fail(&mut self, e: PluginError) -> io::Error {
        let message = e.to_string();
        self.report.lock().unwrap_or_else(|p| p.into_inner()).error = Some(e);
        self.done = true;
        // Nothing more reaches the parser: not even the complete records after its position.
        self.out.truncate(self.out_pos);
        self.ready = self.out_pos;
        io::Error::new(io::ErrorKind::InvalidData, message)
    }
}

impl<R: Read> BufRead for Scanner<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.out_pos >= self.ready && !self.done {
            // Keep only the incomplete record, then scan more input.
            self.out.drain(..self.ready);
            self.field_start -= self.ready.min(self.field_start);
            self.out_pos = 0;
            self.ready = 0;
            let n = match self.inner.read(&mut self.input) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.done = true;
                if self.state != State::RecordStart {
                    self.end_field();
                    if let Err(e) = self.end_record(None) {
                        return Err(self.fail(e));
                    }
                }
                break;
            }
            if let Err(e) = self.scan(n) {
                return Err(self.fail(e));
            }
        }
        Ok(&self.out[self.out_pos..self.ready])
    }

    fn consume(&mut self, amt: usize) {
        self.out_pos = (self.out_pos + amt).min(self.ready);
    }
}

impl<R: Read> Read for Scanner<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The content of a quoted field: outer quotes removed, doubled quotes made single (text after the closing
/// quote kept).
fn unquote(raw: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 1;
    let mut inside = true;
    while i < raw.len() {
        let b = raw[i];
        if inside && b == quote {
            if raw.get(i + 1) == Some(&quote) {
                out.push(quote);
                i += 2;
                continue;
            }
            inside = false;
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ScanOptions {
        ScanOptions {
            delimiter: b',',
            quote: b'"',
            null_values: vec![Vec::new()],
            allow_quoted_nulls: false,
            header: true,
            ignore_errors: false,
            max_bad_rows: None,
            lines_before: 0,
            path: "t.csv".into(),
            text_columns: Some(vec![true; 3]),
        }
    }

    fn scan_with(
        input: &str,
        opts: ScanOptions,
        chunk: usize,
    ) -> (Result<String, String>, SharedReport) {
        // Small reads exercise every state across buffer boundaries.
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (mut s, report) = Scanner::new(Chunked(input.as_bytes(), chunk), opts);
        let mut out = String::new();
        let r = s
            .read_to_string(&mut out)
            .map(|_| out)
            .map_err(|e| e.to_string());
        (r, report)
    }

    #[test]
    fn unquoted_empty_is_null_and_quoted_empty_is_not() {
        for chunk in [1, 2, 3, 1000] {
            let (out, _) = scan_with("a,b,c\n1,,\"\"\n\"x\"\"\",\"\",\r\n", opts(), chunk);
            assert_eq!(
                out.unwrap(),
                "a,b,c\n1,\u{FFFF},\"\"\n\"x\"\"\",\"\",\u{FFFF}\r\n",
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn allow_quoted_nulls_and_custom_null_values() {
        let mut o = opts();
        o.null_values = vec![b"NA".to_vec()];
        o.allow_quoted_nulls = true;
        o.text_columns = Some(vec![true, false]);
        let (out, _) = scan_with("a,b\n,NA\n\"NA\",\"N\"\"A\"\n\"\",\"\"\n", o, 4);
        // `b` is not text: its `""` is a null whatever `null_values` says.
        assert_eq!(
            out.unwrap(),
            "a,b\n,\u{FFFF}\n\u{FFFF},\"N\"\"A\"\n\"\",\u{FFFF}\n"
        );
    }

    #[test]
    fn header_is_never_rewritten_and_quoted_line_breaks_count() {
        let (out, _) = scan_with("a,,c\n1,,3\n", opts(), 1);
        assert_eq!(out.unwrap(), "a,,c\n1,\u{FFFF},3\n");
        let (out, _) = scan_with("a,,c\n\"1\n2\",x,y\n1,2\n", opts(), 1);
        let e = out.unwrap_err();
        assert!(e.contains("`t.csv` line 4: expected 3 fields"), "{e}");
        assert!(e.contains("got 2"), "{e}");
    }

    #[test]
    fn ignore_errors_counts_and_caps_rejected_rows() {
        let mut o = opts();
        o.ignore_errors = true;
        o.lines_before = 2;
        let (out, report) = scan_with("a,b\n1,2\n1,2,3\n\n4\n5,6", o.clone(), 3);
        assert_eq!(out.unwrap(), "a,b\n1,2\n\n\n\n5,6");
        let r = report.lock().unwrap();
        assert_eq!((r.rejected, r.rejected_lines.clone()), (2, vec![5, 7]));
        drop(r);
        o.max_bad_rows = Some(1);
        let (out, _) = scan_with("a,b\n1,2\n1,2,3\n\n4\n5,6", o, 3);
        let e = out.unwrap_err();
        assert!(e.contains("more than 1 rows"), "{e}");
        assert!(e.contains("line 7"), "{e}");
    }
}
