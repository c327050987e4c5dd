//! Random connection files never panic the loader (issue 20, "bad input"): a file is merged or refused with
//! a configuration error (exit 5) naming the file, never an internal error, and resolving any reference
//! afterwards never panics either. The files are random trees in the connections format's own vocabulary,
//! rendered as YAML, sometimes with random bytes spliced in.

// An integration test links every dependency of its crate; it uses few of them.
#![allow(unused_crate_dependencies)]

use osiris_core::exit::Exit;
use osiris_core::secrets::{Connections, Origin};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const WORDS: &[&str] = &[
    "version",
    "connections",
    "mysql",
    "postgres",
    "supabase",
    "filesystem",
    "default",
    "local",
    "prod",
    "host",
    "port",
    "user",
    "password",
    "database",
    "dsn",
    "url",
    "key",
    "sslmode",
    "base_dir",
    "${OSIRIS_PROP_SECRET}",
    "${UNSET_VAR}",
    "${A:-fallback}",
    "${",
    "$",
    "1.0",
    "true",
    "",
    "@mysql.default",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => prop::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn file() -> impl Strategy<Value = Value> {
    // `connections: {family: {alias: {field: value}}}` most of the time, anything some of the time.
    let value = prop_oneof![3 => text().prop_map(Value::String), 1 => tree()];
    let alias = (text(), prop::collection::btree_map(text(), value, 0..5));
    let family = (text(), prop::collection::vec(alias, 0..3));
    prop_oneof![
        4 => prop::collection::vec(family, 0..4).prop_map(|fams| {
            let mut conns = Map::new();
            for (f, aliases) in fams {
                let mut a = Map::new();
                for (name, fields) in aliases {
                    a.insert(name, Value::Object(fields.into_iter().collect()));
                }
                conns.insert(f, Value::Object(a));
            }
            json!({"version": "1.0", "connections": conns})
        }),
        1 => tree(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn random_connection_files_are_merged_or_refused_with_a_config_error(
        doc in file(),
        splice in prop::option::weighted(0.3, (0.0f64..1.0, prop::collection::vec(any::<u8>(), 1..6))),
    ) {
        let mut raw = serde_yaml::to_string(&doc).unwrap_or_default().into_bytes();
        if let Some((at, bytes)) = &splice {
            let i = ((raw.len() as f64 * at) as usize).min(raw.len());
            raw.splice(i..i, bytes.iter().copied());
        }
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut c = Connections::default();
        match c.merge_text("random_connections.yaml", &text, Origin::ConnectionsFile) {
            Ok(()) => {
                for (family, aliases) in c.families.clone() {
                    for alias in aliases.keys() {
                        let _ = c.resolve(&format!("@{family}.{alias}"));
                    }
                    let _ = c.resolve(&format!("@{family}"));
                }
            }
            Err(fail) => {
                prop_assert_eq!(fail.exit, Exit::Config, "{}", fail.message);
                prop_assert!(
                    fail.message.contains("random_connections.yaml"),
                    "the error names the file: {}", fail.message
                );
            }
        }
    }
}
