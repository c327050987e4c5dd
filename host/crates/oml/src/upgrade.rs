//! `osiris upgrade`: idempotent rewrites of older OML, done on the text so comments and layout stay.
//!
//! Rewrites:
//! - step key `depends_on` -> `needs` (when the step has no `needs` yet);
//! - step mode `extract` -> `read`, `load` -> `write` (component modes written where OML modes belong);
//! - `input_df` in a step's SQL (`query`, `sql`, `*_query`, `*_sql`) -> `df_<upstream>` when the step has
//!   exactly one upstream step.
//!
//! Running it on its own output changes nothing.

use crate::dag;
use crate::sql::is_sql_key;
use osiris_core::diag::Diagnostic;
use osiris_core::yaml::{Flavor, SourceDoc, child};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub line: usize,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct Upgrade {
    pub text: String,
    pub changes: Vec<Change>,
    /// Things that look old but were left alone, with the reason.
    pub skipped: Vec<Change>,
}

struct Edit {
    line: usize,
    /// 1-based character column.
    col: usize,
    /// Characters replaced.
    len: usize,
    new: String,
}

pub fn upgrade(file: &str, text: &str) -> Result<Upgrade, Box<Diagnostic>> {
    let doc = SourceDoc::parse(file, text, Flavor::Oml)?;
    let mut edits: Vec<Edit> = Vec::new();
    let mut changes = Vec::new();
    let mut skipped = Vec::new();
    let steps = doc
        .value
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();

    let mut nodes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let ptr = format!("/steps/{i}");
        let id = step
            .get("id")
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| format!("#{}", i + 1));
        let list = |v: Option<&Value>| -> Option<Vec<String>> {
            match v? {
                Value::Array(a) => Some(
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                ),
                Value::String(s) => Some(vec![s.clone()]),
                Value::Null => Some(Vec::new()),
                _ => None,
            }
        };
        let needs = list(step.get("needs")).or_else(|| list(step.get("depends_on")));
        if step.get("depends_on").is_some() {
            let key = doc
                .spans
                .get(&format!("{ptr}/depends_on"))
                .and_then(|s| s.key);
            match (step.get("needs").is_some(), key) {
                (false, Some(k)) => {
                    edits.push(Edit { line: k.line, col: k.col, len: "depends_on".len(), new: "needs".into() });
                    changes.push(Change { line: k.line, what: format!("step `{id}`: `depends_on` -> `needs`") });
                }
                (true, Some(k)) => skipped.push(Change {
                    line: k.line,
                    what: format!("step `{id}` has both `depends_on` and `needs`; merge them into `needs` by hand"),
                }),
                _ => {}
            }
        }
        if let Some(Value::String(m)) = step.get("mode") {
            let to = match m.as_str() {
                "extract" => Some("read"),
                "load" => Some("write"),
                _ => None,
            };
            if let (Some(to), Some(span)) = (to, doc.spans.get(&format!("{ptr}/mode"))) {
                let (col, len) = if span.plain {
                    (span.value.col, m.chars().count())
                } else {
                    (span.value.col + 1, m.chars().count())
                };
                edits.push(Edit {
                    line: span.value.line,
                    col,
                    len,
                    new: to.into(),
                });
                changes.push(Change {
                    line: span.value.line,
                    what: format!("step `{id}`: mode `{m}` -> `{to}`"),
                });
            }
        }
        let input_steps: Vec<String> = step
            .get("inputs")
            .and_then(Value::as_object)
            .map(|m| {
                m.values()
                    .filter_map(|v| v.as_str())
                    .filter_map(|s| {
                        s.trim()
                            .strip_prefix("${")?
                            .strip_suffix('}')?
                            .rsplit_once('.')
                            .map(|(s, _)| s.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        nodes.push(dag::Node {
            id,
            needs,
            input_steps,
        });
    }

    let wiring = dag::wire(&nodes);
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    let aliases = dag::aliases(&ids);
    let all_lines: Vec<usize> = doc
        .spans
        .values()
        .flat_map(|s| [Some(s.value.line), s.key.map(|k| k.line)])
        .flatten()
        .collect();
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, step) in steps.iter().enumerate() {
        let Some(Value::Object(cfg)) = step.get("config") else {
            continue;
        };
        for (key, v) in cfg {
            let Value::String(sql) = v else { continue };
            if !is_sql_key(key) || !has_word(sql, "input_df") {
                continue;
            }
            let ptr = child(&format!("/steps/{i}/config"), key);
            let Some(span) = doc.spans.get(&ptr) else {
                continue;
            };
            if wiring.upstream[i].len() != 1 {
                skipped.push(Change {
                    line: span.value.line,
                    what: format!(
                        "step `{}`: `input_df` left as is: the step has {} upstream steps; name one as `df_<step id>`",
                        nodes[i].id,
                        wiring.upstream[i].len()
                    ),
                });
                continue;
            }
            let up = &nodes[wiring.upstream[i][0].0].id;
            let alias = dag::alias_for(up, &aliases);
            let start = span.value.line;
            let end = all_lines
                .iter()
                .copied()
                .filter(|&l| l > start)
                .min()
                .unwrap_or(lines.len() + 1);
            let mut n = 0;
            for line in start..end {
                let Some(text_line) = lines.get(line - 1) else {
                    break;
                };
                let from_col = if line == start { span.value.col } else { 1 };
                for col in word_cols(text_line, "input_df", from_col) {
                    edits.push(Edit {
                        line,
                        col,
                        len: "input_df".len(),
                        new: alias.clone(),
                    });
                    n += 1;
                }
            }
            if n > 0 {
                changes.push(Change {
                    line: start,
                    what: format!("step `{}`: `input_df` -> `{alias}` in `{key}`", nodes[i].id),
                });
            }
        }
    }

    // Apply, right to left within a line so earlier columns stay valid.
    edits.sort_by(|a, b| {
        (a.line, std::cmp::Reverse(a.col)).cmp(&(b.line, std::cmp::Reverse(b.col)))
    });
    let mut out: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    for e in &edits {
        let l = &mut out[e.line - 1];
        let start = char_to_byte(l, e.col - 1);
        let end = char_to_byte(l, e.col - 1 + e.len);
        l.replace_range(start..end, &e.new);
    }
    changes.sort_by_key(|c| c.line);
    Ok(Upgrade {
        text: out.join("\n"),
        changes,
        skipped,
    })
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(i, _)| i)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn has_word(s: &str, w: &str) -> bool {
    !word_cols(s, w, 1).is_empty()
}

/// 1-based character columns of whole-word occurrences of `w` in `line`, at or after `from_col`.
fn word_cols(line: &str, w: &str, from_col: usize) -> Vec<usize> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut from = char_to_byte(line, from_col.saturating_sub(1));
    while let Some(i) = line[from..].find(w) {
        let s = from + i;
        let e = s + w.len();
        if (s == 0 || !is_word_byte(b[s - 1])) && (e >= b.len() || !is_word_byte(b[e])) {
            out.push(line[..s].chars().count() + 1);
        }
        from = e;
    }
    out
}

/// A line diff of two texts with the same number of lines (upgrade never adds or removes lines).
pub fn diff(file: &str, old: &str, new: &str) -> String {
    let mut out = format!("--- {file}\n+++ {file} (upgraded)\n");
    for (n, (a, b)) in old.split('\n').zip(new.split('\n')).enumerate() {
        if a != b {
            out.push_str(&format!("@@ -{0} +{0} @@\n-{a}\n+{b}\n", n + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"oml_version: "0.1.0"
name: legacy
steps:
  - id: extract-users
    component: mysql.extractor
    mode: extract   # component mode
    config:
      query: "SELECT * FROM users"
  - id: clean
    component: duckdb.processor
    mode: transform
    depends_on: [extract-users]
    config:
      query: |
        SELECT id, name FROM input_df
        WHERE name IS NOT NULL -- input_dfx stays
  - id: write
    component: filesystem.csv_writer
    mode: 'load'
    config:
      path: out.csv
"#;

    #[test]
    fn rewrites_old_forms_and_is_idempotent() {
        let up = upgrade("p.yaml", OLD).unwrap();
        assert_eq!(up.changes.len(), 4, "{:?}", up.changes);
        assert!(
            up.text.contains("    mode: read   # component mode\n"),
            "{}",
            up.text
        );
        assert!(up.text.contains("    needs: [extract-users]\n"));
        assert!(up.text.contains("SELECT id, name FROM df_extract_users\n"));
        assert!(up.text.contains("-- input_dfx stays"));
        assert!(up.text.contains("    mode: 'write'\n"));
        let again = upgrade("p.yaml", &up.text).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.text, up.text);
        let d = diff("p.yaml", OLD, &up.text);
        assert!(
            d.contains(
                "@@ -12 +12 @@\n-    depends_on: [extract-users]\n+    needs: [extract-users]\n"
            ),
            "{d}"
        );
    }

    #[test]
    fn leaves_ambiguous_input_df_alone() {
        let text = OLD.replace("depends_on: [extract-users]", "needs: []");
        let up = upgrade("p.yaml", &text).unwrap();
        assert!(up.text.contains("FROM input_df"));
        assert_eq!(up.skipped.len(), 1);
    }
}
