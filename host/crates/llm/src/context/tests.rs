use super::*;
use osiris_core::codes::Code;

fn builtin() -> Registry {
    Registry::builtin()
}

#[test]
fn same_registry_same_bytes() {
    let a = build(&builtin(), &[]).unwrap();
    let b = build(&builtin(), &[]).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.fingerprint, sha256(a.json.as_bytes()));
    assert_eq!(a.components.len(), osiris_registry::BUILTIN_SPECS.len());
}

#[test]
fn first_party_catalogue_fits_the_budget() {
    let c = build(&builtin(), &[]).unwrap();
    assert!(c.tokens <= 2000, "{} tokens:\n{}", c.tokens, c.text);
    assert_eq!(c.tokens, crate::tokens::count(&c.text));
}

#[test]
fn describes_fields_secrets_conditions_and_examples() {
    let c = build(&builtin(), &["supabase.writer".to_string()]).unwrap();
    let t = &c.text;
    assert!(t.contains("supabase.writer mode write"), "{t}");
    assert!(t.contains(" connection: \"@supabase.<alias>\""), "{t}");
    assert!(t.contains("table*:str"), "{t}");
    assert!(
        t.contains("write_mode:append|replace|upsert|merge=append"),
        "{t}"
    );
    assert!(t.contains("primary_key:str|[str]"), "{t}");
    assert!(
        t.contains("primary_key required when write_mode is upsert|merge"),
        "{t}"
    );
    assert!(
        t.contains(" secret: anon_key key password pg_dsn service_role_key"),
        "{t}"
    );
    assert!(
        t.contains(" e.g. {connection: \"@supabase.main\", table: users}"),
        "{t}"
    );
    let j: Value = serde_json::from_str(&c.json).unwrap();
    assert_eq!(j["format"], FORMAT);
    assert_eq!(j["oml_version"], "0.1.0");
    let comp = &j["components"][0];
    assert_eq!(comp["name"], "supabase.writer");
    assert_eq!(comp["modes"], serde_json::json!(["write"]));
    assert!(comp["examples"].as_array().unwrap().len() <= MAX_EXAMPLES);
    let table = comp["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "table")
        .unwrap();
    assert_eq!(table["required"], true);
    // connection fields are named, not described as the step's own fields
    assert!(
        comp["connection_fields"]
            .as_array()
            .unwrap()
            .contains(&Value::from("password"))
    );
    assert!(
        !comp["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "password")
    );
}

#[test]
fn extractor_exclusions_are_in_words() {
    let c = build(&builtin(), &["mysql.extractor".to_string()]).unwrap();
    assert!(
        c.text.contains(" not query and table together"),
        "{}",
        c.text
    );
    assert!(
        c.text
            .contains(" no columns, limit, offset when query is set"),
        "{}",
        c.text
    );
}

#[test]
fn filter_selects_sorted_unique_components() {
    let c = build(
        &builtin(),
        &[
            "mysql.writer".to_string(),
            "duckdb.processor".to_string(),
            "mysql.writer".to_string(),
        ],
    )
    .unwrap();
    assert_eq!(c.components, vec!["duckdb.processor", "mysql.writer"]);
    assert!(!c.text.contains("supabase"));
}

#[test]
fn unknown_component_in_filter_is_an_error_with_a_suggestion() {
    let e = build(&builtin(), &["mysql.wrtier".to_string()]).unwrap_err();
    assert_eq!(e.code, Code::LLM_E001);
    assert!(e.message.contains("`mysql.wrtier`"), "{}", e.message);
    assert!(
        e.help
            .as_deref()
            .unwrap_or_default()
            .contains("`mysql.writer`"),
        "{:?}",
        e.help
    );
}

#[test]
fn cache_hit_does_not_build_and_a_changed_spec_rebuilds() {
    let dir = tempfile::tempdir().unwrap();
    let reg = builtin();
    let fps = fingerprints(&reg);
    let key = cache_key(&fps, &[]);
    let (first, status, problem) = cached(dir.path(), &key, &[], || reg.clone()).unwrap();
    assert_eq!(status, CacheStatus::Rebuilt);
    assert!(problem.is_none());
    assert!(cache_file(dir.path(), &key).is_file());
    let (again, status, _) = cached(dir.path(), &key, &[], || -> Registry {
        panic!("a cache hit must not build a registry")
    })
    .unwrap();
    assert_eq!(status, CacheStatus::Hit);
    assert_eq!(again, first);

    // one spec fewer (a plugin removed) or one more: another key, rebuilt
    let fewer = cache_key(&fps[1..], &[]);
    assert_ne!(fewer, key);
    let mut more = fps.clone();
    more.push("sha256:00".to_string());
    assert_ne!(cache_key(&more, &[]), key);
    // order does not matter
    let mut shuffled = fps.clone();
    shuffled.reverse();
    assert_eq!(cache_key(&shuffled, &[]), key);
    // the filter is part of the key
    assert_ne!(cache_key(&fps, &["mysql.writer".to_string()]), key);
}

#[test]
fn a_damaged_cache_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let reg = builtin();
    let key = cache_key(&fingerprints(&reg), &[]);
    let file = cache_file(dir.path(), &key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"{\"json\": \"truncated").unwrap();
    let (_, status, _) = cached(dir.path(), &key, &[], || reg.clone()).unwrap();
    assert_eq!(status, CacheStatus::Rebuilt);
    let (_, status, _) = cached(dir.path(), &key, &[], || reg.clone()).unwrap();
    assert_eq!(status, CacheStatus::Hit);
}

/// Where a cold build's time goes (`cargo test --release -p osiris-llm -- --ignored --nocapture cold_parts`);
/// the figures are quoted in docs/performance.md.
#[test]
#[ignore = "a measurement, not a test"]
fn cold_parts() {
    use std::time::Instant;
    let t = Instant::now();
    let reg = builtin();
    let registry = t.elapsed();
    let t = Instant::now();
    crate::tokens::count("warm up");
    let ranks = t.elapsed();
    let t = Instant::now();
    let c = build(&reg, &[]).unwrap();
    let rest = t.elapsed();
    let mut out = std::io::stderr().lock();
    use std::io::Write as _;
    let _ = writeln!(
        out,
        "registry {registry:?}, cl100k ranks {ranks:?}, describe + render + count {rest:?} ({} tokens)",
        c.tokens
    );
}
