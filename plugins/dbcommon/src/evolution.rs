//! A database writer's `schema_evolution`: what happens when the input's columns are not the target table's.
//!
//! The writer compares each input column with the target's column of the same name and collects every
//! [`Difference`]; [`Evolution::resolve`] then decides, for the whole input at once, which input columns are
//! added to the table, which are left out, and whether the write is refused with one error naming every
//! differing column (both its input Arrow type and its SQL type in the table).
//!
//! Invariant: a type change (an input column whose values cannot go into the target column's type) and a
//! column whose name differs from a target column's only in case are refused in every mode; nothing is
//! added or dropped when the write is refused.

use osiris_plugin_sdk::{ErrorKind, PluginError};
use serde_json::{Map, Value};

/// How each input column differs from the target's columns, by exact name (a case-only match is its own
/// difference). `input` gives an input column's name and its type as shown; `col` a target column's name and
/// SQL type; `fits` whether the input column's values can go into the target column.
pub fn differences<I, C>(
    inputs: &[I],
    input: impl Fn(&I) -> (String, String),
    cols: &[C],
    col: impl Fn(&C) -> (&str, &str),
    fits: impl Fn(&I, &C) -> bool,
) -> Vec<Difference> {
    let mut diffs = Vec::new();
    for i in inputs {
        let (column, ty) = input(i);
        let exact = cols.iter().find(|c| col(c).0 == column);
        match exact {
            Some(c) if fits(i, c) => {}
            Some(c) => diffs.push(Difference::TypeChange {
                column,
                input: ty,
                target: col(c).1.to_string(),
            }),
            None => match cols.iter().find(|c| col(c).0.eq_ignore_ascii_case(&column)) {
                Some(c) => diffs.push(Difference::CaseOnly {
                    column,
                    input: ty,
                    has: col(c).0.to_string(),
                }),
                None => diffs.push(Difference::Missing { column, input: ty }),
            },
        }
    }
    diffs
}

/// The `schema_evolution` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evolution {
    /// Any difference is an error (the default).
    Fail,
    /// New input columns are added to the table as nullable columns.
    AddColumns,
    /// New input columns are not written.
    IgnoreExtra,
}

/// How one input column differs from the target table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The table has no column of that name.
    Missing { column: String, input: String },
    /// The table has a column whose name differs only in case.
    CaseOnly {
        column: String,
        input: String,
        has: String,
    },
    /// The table has the column, with a type the input's values cannot go into.
    TypeChange {
        column: String,
        input: String,
        target: String,
    },
}

impl Difference {
    fn describe(&self) -> String {
        match self {
            Difference::Missing { column, input } => {
                format!("`{column}` is not in the table (input {input})")
            }
            Difference::CaseOnly { column, input, has } => {
                format!("`{column}` is not in the table (input {input}; it has `{has}`)")
            }
            Difference::TypeChange {
                column,
                input,
                target,
            } => format!("`{column}` is {target} in the table but the input is {input}"),
        }
    }
}

/// What the writer does with the input columns once the differences are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Input columns to add to the table (`add_columns`), in input order.
    pub add: Vec<String>,
    /// Input columns not to write (`ignore_extra`).
    pub drop: Vec<String>,
}

fn listed(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Resolution {
    /// `ALTER TABLE target ADD COLUMN <def>, ...` for the columns to add, `def(name)` giving each column's
    /// definition after `ADD COLUMN`; `None` when there is nothing to add.
    pub fn add_sql(&self, target: &str, def: impl Fn(&str) -> String) -> Option<String> {
        if self.add.is_empty() {
            return None;
        }
        let adds: Vec<String> = self
            .add
            .iter()
            .map(|n| format!("ADD COLUMN {}", def(n)))
            .collect();
        Some(format!("ALTER TABLE {target} {}", adds.join(", ")))
    }

    /// The line a writer logs after adding the columns.
    pub fn added_note(&self, target: &str) -> String {
        format!("added column(s) {} to {target}", listed(&self.add))
    }

    /// The line a writer logs about the input columns it leaves out, if any.
    pub fn dropped_note(&self, target: &str) -> Option<String> {
        (!self.drop.is_empty()).then(|| {
            format!(
                "not writing input column(s) {}: {target} has no such column (schema_evolution: ignore_extra)",
                listed(&self.drop)
            )
        })
    }
}

impl Evolution {
    /// `schema_evolution` from the merged step fields; a bad value is a `Config` error with `code`.
    pub fn from_fields(m: &Map<String, Value>, code: &str) -> Result<Evolution, PluginError> {
        match m.get("schema_evolution") {
            None | Some(Value::Null) => Ok(Evolution::Fail),
            Some(Value::String(s)) => match s.as_str() {
                "fail" => Ok(Evolution::Fail),
                "add_columns" => Ok(Evolution::AddColumns),
                "ignore_extra" => Ok(Evolution::IgnoreExtra),
                other => Err(PluginError::new(
                    ErrorKind::Config,
                    code,
                    format!("`schema_evolution`: unknown value `{other}`"),
                )
                .with_help("use fail, add_columns or ignore_extra")),
            },
            Some(other) => Err(PluginError::new(
                ErrorKind::Config,
                code,
                format!("`schema_evolution` must be a string, not {other}"),
            )
            .with_help("use fail, add_columns or ignore_extra")),
        }
    }

    /// The columns to add or leave out, or the error (with `code`) naming every difference the mode does not
    /// resolve. `target` is the table as messages name it.
    pub fn resolve(
        self,
        diffs: &[Difference],
        target: &str,
        code: &str,
    ) -> Result<Resolution, PluginError> {
        let mut out = Resolution::default();
        let mut refused: Vec<&Difference> = Vec::new();
        for d in diffs {
            match (d, self) {
                (Difference::Missing { column, .. }, Evolution::AddColumns) => {
                    out.add.push(column.clone())
                }
                (Difference::Missing { column, .. }, Evolution::IgnoreExtra) => {
                    out.drop.push(column.clone())
                }
                _ => refused.push(d),
            }
        }
        if refused.is_empty() {
            return Ok(out);
        }
        let list = refused
            .iter()
            .map(|d| d.describe())
            .collect::<Vec<_>>()
            .join("; ");
        let missing = refused
            .iter()
            .any(|d| matches!(d, Difference::Missing { .. }));
        let case_only = refused
            .iter()
            .any(|d| matches!(d, Difference::CaseOnly { .. }));
        let changed = refused
            .iter()
            .any(|d| matches!(d, Difference::TypeChange { .. }));
        let mut help = Vec::new();
        if missing {
            help.push(
                "`schema_evolution: add_columns` adds the new columns to the table (nullable), \
                 `schema_evolution: ignore_extra` leaves them out; or rename or drop them upstream"
                    .to_string(),
            );
        }
        if case_only {
            help.push(
                "column names are compared exactly: rename the input column upstream to the table's spelling"
                    .to_string(),
            );
        }
        if changed {
            help.push(
                "a type change needs a migration of the table (ALTER TABLE ... ALTER/MODIFY COLUMN) \
                 or a CAST upstream (e.g. in a duckdb.processor step); no schema_evolution mode changes a column's type"
                    .to_string(),
            );
        }
        help.push(format!("nothing was written: {target} is unchanged"));
        Err(PluginError::new(
            ErrorKind::Config,
            code,
            format!("table {target} differs from the input: {list}"),
        )
        .with_help(help.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diffs() -> Vec<Difference> {
        vec![
            Difference::Missing {
                column: "email".into(),
                input: "Utf8".into(),
            },
            Difference::TypeChange {
                column: "amount".into(),
                input: "Utf8".into(),
                target: "integer".into(),
            },
        ]
    }

    #[test]
    fn fail_names_every_difference_with_both_types() {
        let e = Evolution::Fail
            .resolve(&diffs(), "public.t", "PG-SCHEMA")
            .unwrap_err();
        assert_eq!(e.code, "PG-SCHEMA");
        assert_eq!(
            e.message,
            "table public.t differs from the input: `email` is not in the table (input Utf8); \
             `amount` is integer in the table but the input is Utf8"
        );
        let help = e.help.unwrap();
        assert!(help.contains("add_columns"), "{help}");
        assert!(help.contains("migration"), "{help}");
    }

    #[test]
    fn add_and_ignore_resolve_new_columns_but_never_a_type_change() {
        let only_new = &diffs()[..1];
        assert_eq!(
            Evolution::AddColumns
                .resolve(only_new, "t", "X-SCHEMA")
                .unwrap()
                .add,
            ["email"]
        );
        assert_eq!(
            Evolution::IgnoreExtra
                .resolve(only_new, "t", "X-SCHEMA")
                .unwrap()
                .drop,
            ["email"]
        );
        for mode in [Evolution::AddColumns, Evolution::IgnoreExtra] {
            let e = mode.resolve(&diffs(), "t", "X-SCHEMA").unwrap_err();
            assert!(e.message.contains("`amount` is integer"), "{}", e.message);
            assert!(!e.message.contains("email"), "{}", e.message);
        }
        let case = [Difference::CaseOnly {
            column: "Email".into(),
            input: "Utf8".into(),
            has: "email".into(),
        }];
        let e = Evolution::AddColumns
            .resolve(&case, "t", "X-SCHEMA")
            .unwrap_err();
        assert!(e.message.contains("it has `email`"), "{}", e.message);
    }

    #[test]
    fn the_setting_defaults_to_fail_and_refuses_unknown_values() {
        let m = |v: Value| {
            let mut m = Map::new();
            m.insert("schema_evolution".into(), v);
            m
        };
        assert_eq!(
            Evolution::from_fields(&Map::new(), "C").unwrap(),
            Evolution::Fail
        );
        assert_eq!(
            Evolution::from_fields(&m("add_columns".into()), "C").unwrap(),
            Evolution::AddColumns
        );
        assert!(Evolution::from_fields(&m("evolve".into()), "C").is_err());
    }
}
