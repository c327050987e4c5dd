//! Random pipeline files never panic the validator, and every diagnostic it gives has a line and a column
//! (issue 20, "bad input"). The documents are random trees built from OML's own vocabulary (so that they get
//! past the first checks and reach the deeper ones) and random text, rendered as YAML, sometimes with random
//! bytes spliced in.

// An integration test links every dependency of its crate; it uses few of them.
#![allow(unused_crate_dependencies)]

use osiris_oml::{Mode, Options, check};
use osiris_registry::Registry;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const WORDS: &[&str] = &[
    "id",
    "extract",
    "load",
    "mysql.extractor",
    "postgres.writer",
    "duckdb.processor",
    "filesystem.csv_extractor",
    "filesystem.csv_writer",
    "graphql.extractor",
    "no.such",
    "read",
    "write",
    "transform",
    "extract",
    "${params.day}",
    "${params.nope}",
    "@mysql.default",
    "@postgres",
    "@x.y.z",
    "df",
    "${extract.df}",
    "${nope.df}",
    "SELECT * FROM df_extract",
    "SELECT * FROM input_df",
    "",
    "x-note",
    "0.1.0",
    "2.0",
    "query",
    "table",
    "path",
    "out.csv",
    "password",
    "hunter2",
    "connection",
    "write_mode",
    "append",
    "merge",
    "primary_key",
    "needs",
    "inputs",
    "config",
    "mode",
    "component",
    "steps",
    "params",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        text().prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn step() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        6 => prop::sample::select(&["id", "component", "mode", "config", "needs", "inputs"][..]).prop_map(str::to_string),
        1 => text(),
    ];
    prop::collection::btree_map(key, prop_oneof![3 => leaf(), 1 => tree()], 0..7)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn document() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        6 => prop::sample::select(&["oml_version", "name", "params", "profiles", "description"][..]).prop_map(str::to_string),
        1 => text(),
    ];
    (
        prop::collection::btree_map(key, tree(), 0..5),
        prop::option::weighted(0.9, prop::collection::vec(step(), 0..5)),
    )
        .prop_map(|(top, steps)| {
            let mut m: Map<String, Value> = top.into_iter().collect();
            if let Some(s) = steps {
                m.insert("steps".into(), Value::Array(s));
            }
            Value::Object(m)
        })
}

/// The YAML of `doc`, with `splice` (position fraction, bytes) inserted when given.
fn render(doc: &Value, splice: &Option<(f64, Vec<u8>)>) -> String {
    let yaml = serde_yaml::to_string(doc).unwrap_or_default();
    let Some((at, bytes)) = splice else {
        return yaml;
    };
    let mut raw = yaml.into_bytes();
    let i = ((raw.len() as f64) * at) as usize;
    let i = i.min(raw.len());
    raw.splice(i..i, bytes.iter().copied());
    String::from_utf8_lossy(&raw).into_owned()
}

fn validate(text: &str, mode: Mode) -> osiris_oml::Report {
    static REG: std::sync::OnceLock<Registry> = std::sync::OnceLock::new();
    let reg = REG.get_or_init(Registry::builtin);
    let env = |name: &str| (name == "DAY").then(|| "2026-01-01".to_string());
    check(
        "random.yaml",
        text,
        reg,
        &Options {
            mode,
            profile: "default",
            profile_explicit: false,
            params: &[],
            env: &env,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_pipelines_get_positioned_diagnostics_and_never_panic(
        doc in document(),
        splice in prop::option::weighted(0.3, (0.0f64..1.0, prop::collection::vec(any::<u8>(), 1..8))),
        strict in any::<bool>(),
    ) {
        let text = render(&doc, &splice);
        let report = validate(&text, if strict { Mode::Strict } else { Mode::Warn });
        for d in &report.diagnostics {
            prop_assert!(
                d.line.is_some() && d.column.is_some(),
                "diagnostic without a position: {d:?}\n--- file ---\n{text}"
            );
        }
        let errors = report.diagnostics.iter().any(|d| d.is_error());
        prop_assert!(!(errors && report.plan.is_some()), "a plan despite errors");
    }
}
