//! The SQL-parameter rule: a `${params.NAME}` placeholder inside SQL text can never change the shape of the
//! statement. What a value may contain depends on where the placeholder stands:
//!
//! - in SQL code (outside quotes): a number (`42`, `-1.5`) or a plain identifier (`orders`, `sales.orders`);
//! - inside a quoted string `'...'`: anything except `'`, `\` and control characters (newline, tab, ...);
//! - inside a quoted identifier `"..."` or `` `...` ``: anything except that quote, `\` and control characters;
//! - inside a comment: nothing (parameters are not allowed in SQL comments).
//!
//! A value that breaks the rule is an error at compile time; the value is never shown in the message.

/// Config keys holding SQL: `query`, `sql`, and keys ending in `_query` or `_sql`.
pub fn is_sql_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "query" || k == "sql" || k.ends_with("_query") || k.ends_with("_sql")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Code,
    SingleQuoted,
    DoubleQuoted,
    Backtick,
    Comment,
}

impl Context {
    pub fn describe(self) -> &'static str {
        match self {
            Context::Code => "in SQL code (outside quotes)",
            Context::SingleQuoted => "inside a quoted string '...'",
            Context::DoubleQuoted => "inside a quoted identifier \"...\"",
            Context::Backtick => "inside a quoted identifier `...`",
            Context::Comment => "inside an SQL comment",
        }
    }
}

/// The lexical context of every `${params.NAME}` in an SQL template, in order: (name, context).
pub fn contexts(sql: &str) -> Vec<(String, Context)> {
    let placeholders = super::params::placeholders(sql);
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let mut ctx = Context::Code;
    let mut line_comment = false;
    let mut i = 0;
    let mut next_ph = 0;
    while i < bytes.len() {
        if let Some(p) = placeholders.get(next_ph)
            && p.start == i
        {
            out.push((p.name.clone(), ctx));
            i = p.end;
            next_ph += 1;
            continue;
        }
        let c = bytes[i];
        let n = bytes.get(i + 1).copied();
        match ctx {
            Context::Code => match c {
                b'\'' => ctx = Context::SingleQuoted,
                b'"' => ctx = Context::DoubleQuoted,
                b'`' => ctx = Context::Backtick,
                b'-' if n == Some(b'-') => {
                    ctx = Context::Comment;
                    line_comment = true;
                    i += 1;
                }
                b'#' => {
                    ctx = Context::Comment;
                    line_comment = true;
                }
                b'/' if n == Some(b'*') => {
                    ctx = Context::Comment;
                    line_comment = false;
                    i += 1;
                }
                _ => {}
            },
            Context::SingleQuoted | Context::DoubleQuoted | Context::Backtick => {
                let q = match ctx {
                    Context::SingleQuoted => b'\'',
                    Context::DoubleQuoted => b'"',
                    _ => b'`',
                };
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    if n == Some(q) {
                        i += 1;
                    } else {
                        ctx = Context::Code;
                    }
                }
            }
            Context::Comment => {
                if line_comment && c == b'\n' {
                    ctx = Context::Code;
                } else if !line_comment && c == b'*' && n == Some(b'/') {
                    ctx = Context::Code;
                    i += 1;
                }
            }
        }
        i += 1;
    }
    out
}

/// Checks one value against the rule for its context; `Err` says what is not allowed.
pub fn check(ctx: Context, value: &str) -> Result<(), &'static str> {
    let control = value.chars().any(char::is_control);
    match ctx {
        Context::Code => {
            if is_number(value) || is_identifier(value) {
                Ok(())
            } else {
                Err(
                    "outside quotes a value must be a number or a plain identifier (letters, digits, `_`, `.`)",
                )
            }
        }
        Context::SingleQuoted if value.contains('\'') || value.contains('\\') || control => {
            Err("inside '...' a value must not contain `'`, `\\` or control characters")
        }
        Context::DoubleQuoted if value.contains('"') || value.contains('\\') || control => {
            Err("inside \"...\" a value must not contain `\"`, `\\` or control characters")
        }
        Context::Backtick if value.contains('`') || value.contains('\\') || control => {
            Err("inside `...` a value must not contain a backtick, `\\` or control characters")
        }
        Context::Comment => Err("parameters are not allowed inside SQL comments"),
        _ => Ok(()),
    }
}

fn is_number(v: &str) -> bool {
    let body = v.strip_prefix('-').unwrap_or(v);
    let mut parts = body.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

fn is_identifier(v: &str) -> bool {
    !v.is_empty()
        && v.split('.').all(|part| {
            let mut cs = part.chars();
            matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_context_of_each_placeholder() {
        let sql = "SELECT * FROM ${params.t} WHERE d >= '${params.d}' AND \"${params.c}\" = 1 -- ${params.x}\n\
                   AND n = ${params.n} /* ${params.y} */ AND s = 'it''s ${params.z}' AND e = 'a\\'${params.w}'";
        let got = contexts(sql);
        let want = [
            ("t", Context::Code),
            ("d", Context::SingleQuoted),
            ("c", Context::DoubleQuoted),
            ("x", Context::Comment),
            ("n", Context::Code),
            ("y", Context::Comment),
            ("z", Context::SingleQuoted),
            ("w", Context::SingleQuoted),
        ];
        let got: Vec<(&str, Context)> = got.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rejects_values_that_could_change_the_statement() {
        assert!(check(Context::Code, "42").is_ok());
        assert!(check(Context::Code, "-1.5").is_ok());
        assert!(check(Context::Code, "sales.orders").is_ok());
        assert!(check(Context::Code, "1 OR 1=1").is_err());
        assert!(check(Context::Code, "orders; DROP TABLE x").is_err());
        assert!(check(Context::Code, "").is_err());
        assert!(check(Context::SingleQuoted, "2024-01-01").is_ok());
        assert!(check(Context::SingleQuoted, "Zürich, CH").is_ok());
        assert!(check(Context::SingleQuoted, "x' OR '1'='1").is_err());
        assert!(check(Context::SingleQuoted, "x\\").is_err());
        assert!(check(Context::SingleQuoted, "a\nb").is_err());
        assert!(check(Context::DoubleQuoted, "col\"; --").is_err());
        assert!(check(Context::Backtick, "a`b").is_err());
        assert!(check(Context::Comment, "x").is_err());
    }

    #[test]
    fn sql_keys() {
        assert!(
            is_sql_key("query")
                && is_sql_key("pre_sql")
                && is_sql_key("count_query")
                && is_sql_key("SQL")
        );
        assert!(!is_sql_key("table") && !is_sql_key("queryable"));
    }
}
