use super::*;
use serde_json::json;

fn check(text: &str, level: Level) -> check::Report {
    check::check_text("t/spec.yaml", text, level, Source::Builtin)
}

fn codes(r: &check::Report) -> Vec<(String, usize, usize)> {
    r.diagnostics
        .iter()
        .map(|d| {
            (
                d.code.to_string(),
                d.line.unwrap_or(0),
                d.column.unwrap_or(0),
            )
        })
        .collect()
}

const GOOD: &str = "\
name: demo.extractor
version: \"0.1.0\"
title: Demo
description: Reads demo rows.
modes: [extract, discover]
capabilities:
  discover: true
configSchema:
  type: object
  additionalProperties: false
  properties:
    host:
      type: string
      description: Host name.
    password:
      type: string
      description: Password.
    mode:
      type: string
      enum: [fast, safe]
      description: How to read.
    limit:
      type: integer
      minimum: 1
      description: Row limit.
  required: [mode]
secrets: [/password]
x-connection-fields: [host, password]
examples:
  - title: Fast
    config: {mode: fast, limit: 10}
llmHints:
  promptGuidance: Use it for demos.
x-runtime:
  driver: demo.extractor
  min_osiris_version: \"0.1.0\"
";

#[test]
fn builtin_specs_are_strictly_valid() {
    assert_eq!(BUILTIN_SPECS.len(), 10);
    for (name, file, text) in BUILTIN_SPECS {
        let r = check::check_text(file, text, Level::Strict, Source::Builtin);
        let rendered: Vec<String> = r.diagnostics.iter().map(|d| d.render(Some(text))).collect();
        assert!(r.diagnostics.is_empty(), "{file}:\n{}", rendered.join("\n"));
        let spec = r.spec.expect("valid spec");
        assert_eq!(&spec.name, name, "{file}: `name` must match the directory");
        assert_eq!(
            spec.driver, spec.name,
            "{file}: a first-party driver is registered under the component name"
        );
    }
}

#[test]
fn builtin_registry_lists_every_component_sorted_with_fingerprints() {
    let reg = Registry::builtin();
    let names: Vec<&str> = reg.names().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 10);
    for spec in reg.iter() {
        assert!(
            spec.fingerprint.starts_with("sha256:") && spec.fingerprint.len() == 71,
            "{}",
            spec.fingerprint
        );
        assert!(
            !spec.runnable,
            "nothing is runnable before drivers are linked"
        );
    }
    let mysql = reg.get("mysql.extractor").unwrap();
    assert!(mysql.secret_pointers.contains(&"/password".to_string()));
    assert!(mysql.supports_mode("extract"));
}

#[test]
fn spec_schema_is_a_valid_draft_2020_12_schema() {
    let v: Value = serde_json::from_str(check::SPEC_SCHEMA).unwrap();
    assert!(jsonschema::draft202012::meta::is_valid(&v));
}

#[test]
fn a_good_spec_has_no_problem_at_any_level() {
    for level in [Level::Basic, Level::Enhanced, Level::Strict] {
        let r = check(GOOD, level);
        assert!(r.diagnostics.is_empty(), "{level:?}: {:#?}", r.diagnostics);
        assert!(r.spec.is_some());
    }
    let spec = check(GOOD, Level::Strict).spec.unwrap();
    assert_eq!(
        spec.connection_fields[1],
        ConnectionField {
            name: "password".into(),
            policy: OverridePolicy::Allowed
        }
    );
    assert_eq!(spec.min_osiris_version, Some(semver::Version::new(0, 1, 0)));
    assert_eq!(spec.mask, "***");
    assert_eq!(spec.strategy, Strategy::Mask);
}

#[test]
fn schema_problems_point_at_the_offending_node() {
    // wrong type, misspelled mode, unknown top-level key, missing required key in a nested mapping
    let text = GOOD
        .replace("version: \"0.1.0\"", "version: 1.0")
        .replace("modes: [extract, discover]", "modes: [extrakt, discover]")
        .replace("llmHints:", "secret: [/password]\nllmHints:")
        .replace("  driver: demo.extractor\n", "");
    let r = check(&text, Level::Basic);
    let c = codes(&r);
    assert!(c.contains(&("SPEC-E012".into(), 2, 10)), "{c:?}");
    assert!(c.contains(&("SPEC-E013".into(), 5, 9)), "{c:?}");
    let unknown = r
        .diagnostics
        .iter()
        .find(|d| d.code == "SPEC-E011")
        .expect("unknown key");
    assert_eq!((unknown.line, unknown.column), (Some(32), Some(1)));
    assert!(
        unknown
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `secrets`?"),
        "{unknown:?}"
    );
    let missing = r
        .diagnostics
        .iter()
        .find(|d| d.code == "SPEC-E010")
        .expect("missing driver");
    assert_eq!(
        (missing.line, missing.column),
        (Some(35), Some(1)),
        "points at `x-runtime:`"
    );
    assert!(missing.message.contains("`driver`"), "{}", missing.message);
    let mode = r
        .diagnostics
        .iter()
        .find(|d| d.code == "SPEC-E013")
        .unwrap();
    assert!(
        mode.help
            .as_deref()
            .unwrap()
            .starts_with("did you mean `extract`?"),
        "{mode:?}"
    );
    assert!(r.spec.is_none());
}

#[test]
fn semantic_rules_find_dangling_pointers_and_bad_examples() {
    let text = GOOD
        .replace("secrets: [/password]", "secrets: [/pasword]")
        .replace(
            "x-connection-fields: [host, password]",
            "x-connection-fields: [host, passwd]",
        )
        .replace(
            "config: {mode: fast, limit: 10}",
            "config: {mode: fats, limit: 0, extra: 1}",
        )
        .replace(
            "  min_osiris_version: \"0.1.0\"",
            "  min_osiris_version: \"0.2.0\"\n  max_osiris_version: \"0.1.0\"",
        );
    assert!(
        check(&text, Level::Basic).diagnostics.is_empty(),
        "semantic rules are not basic"
    );
    let r = check(&text, Level::Enhanced);
    let c = codes(&r);
    assert!(c.contains(&("SPEC-E030".into(), 27, 11)), "{c:?}");
    assert!(c.contains(&("SPEC-E031".into(), 28, 29)), "{c:?}");
    assert!(c.contains(&("SPEC-E033".into(), 37, 23)), "{c:?}");
    let examples: Vec<_> = r
        .diagnostics
        .iter()
        .filter(|d| d.code == "SPEC-E034")
        .collect();
    assert_eq!(examples.len(), 3, "{examples:#?}");
    let secret = r
        .diagnostics
        .iter()
        .find(|d| d.code == "SPEC-E030")
        .unwrap();
    assert_eq!(secret.help.as_deref(), Some("did you mean `/password`?"));
}

#[test]
fn connection_fields_must_not_be_required() {
    let text = GOOD
        .replace("required: [mode]", "required: [mode, host]")
        .replace(
            "config: {mode: fast, limit: 10}",
            "config: {mode: fast, limit: 10, host: h}",
        );
    let r = check(&text, Level::Enhanced);
    assert_eq!(codes(&r), vec![("SPEC-E036".to_string(), 26, 20)]);
}

#[test]
fn strict_level_asks_for_documentation() {
    let text = GOOD
        .replace("      description: Row limit.\n", "")
        .replace("llmHints:\n  promptGuidance: Use it for demos.\n", "");
    assert!(check(&text, Level::Enhanced).diagnostics.is_empty());
    let r = check(&text, Level::Strict);
    let c: Vec<String> = r.diagnostics.iter().map(|d| d.code.to_string()).collect();
    assert_eq!(c, vec!["SPEC-E051", "SPEC-E052"], "{:#?}", r.diagnostics);
    let undocumented = &r.diagnostics[1];
    assert_eq!(
        (undocumented.line, undocumented.column),
        (Some(22), Some(5))
    );
}

#[test]
fn an_invalid_config_schema_is_reported_inside_the_spec() {
    let text = GOOD.replace("      type: integer\n", "      type: integr\n");
    let r = check(&text, Level::Basic);
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.code == "SPEC-E020")
        .unwrap_or_else(|| panic!("{:#?}", r.diagnostics));
    assert_eq!((d.line, d.column), (Some(23), Some(13)));
    assert!(
        d.help.as_deref().unwrap_or_default().contains("integer"),
        "{d:?}"
    );
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let r = check("name: a.b\nmodes: [extract\n", Level::Basic);
    assert_eq!(r.diagnostics.len(), 1);
    assert_eq!(r.diagnostics[0].code, "SPEC-E001");
    assert!(r.diagnostics[0].line.is_some());
}

#[test]
fn load_spec_text_refuses_a_different_spec_under_a_taken_name() {
    let mut reg = Registry::builtin();
    let mysql = reg.get("mysql.extractor").unwrap().clone();
    // the very same spec again (a plugin shipping the first-party spec) is fine
    let plugin = Source::Plugin {
        name: "osiris-mysql".into(),
        version: "0.1.0".into(),
    };
    reg.load_spec_text(&mysql.file, &mysql.text, plugin.clone())
        .expect("same spec");
    let changed = mysql
        .text
        .replace("title: MySQL extractor", "title: Another MySQL extractor");
    let errs = reg
        .load_spec_text("other/spec.yaml", &changed, plugin.clone())
        .unwrap_err();
    assert_eq!(errs[0].code, "SPEC-E038", "{errs:#?}");
    // a new component is added, runnable once its driver is there
    let demo = reg
        .load_spec_text("demo/spec.yaml", GOOD, plugin.clone())
        .unwrap();
    assert_eq!(demo.name, "demo.extractor");
    reg.set_runnable("demo.extractor", plugin);
    assert!(reg.get("demo.extractor").unwrap().runnable);
    assert_eq!(
        reg.get("demo.extractor").unwrap().source.label(),
        "osiris-mysql"
    );
}

#[test]
fn load_spec_text_refuses_a_spec_for_another_osiris_version() {
    let mut reg = Registry::default();
    let text = GOOD.replace(
        "  min_osiris_version: \"0.1.0\"",
        "  min_osiris_version: \"99.0.0\"",
    );
    let errs = reg
        .load_spec_text("demo/spec.yaml", &text, Source::Builtin)
        .unwrap_err();
    assert_eq!(errs[0].code, "SPEC-E037");
    assert!(errs[0].message.contains(">= 99.0.0"), "{}", errs[0].message);
    assert_eq!(errs[0].line, Some(34));
    assert!(reg.get("demo.extractor").is_none());
}

#[test]
fn validate_config_reports_problems_with_pointers_and_help() {
    let mut reg = Registry::default();
    reg.load_spec_text("demo/spec.yaml", GOOD, Source::Builtin)
        .unwrap();
    assert!(
        reg.validate_config("demo.extractor", &json!({"mode": "safe"}))
            .is_empty()
    );
    let problems = reg.validate_config(
        "demo.extractor",
        &json!({"mode": "fsat", "limit": 0, "hots": "x", "password": 5}),
    );
    let by_code = |c: &str| {
        problems
            .iter()
            .find(|p| p.code == c)
            .unwrap_or_else(|| panic!("{c}: {problems:#?}"))
    };
    assert_eq!(by_code("CFG-E001").pointer, "/hots");
    assert_eq!(
        by_code("CFG-E001").help.as_deref(),
        Some("did you mean `host`?")
    );
    assert_eq!(by_code("CFG-E004").pointer, "/mode");
    assert!(
        by_code("CFG-E004")
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `fast`?")
    );
    assert_eq!(by_code("CFG-E006").pointer, "/limit");
    let secret = by_code("CFG-E003");
    assert_eq!(secret.pointer, "/password");
    assert!(
        !secret.message.contains('5'),
        "a secret value never appears: {}",
        secret.message
    );
    let missing = reg.validate_config("demo.extractor", &json!({}));
    assert_eq!(missing[0].code, "CFG-E002");
    assert_eq!(missing[0].pointer, "");
    assert!(missing[0].message.contains("`mode`"));
    let unknown = reg.validate_config("demo.extractr", &json!({}));
    assert!(
        unknown[0]
            .help
            .as_deref()
            .unwrap()
            .contains("did you mean `demo.extractor`?")
    );
}

#[test]
fn secret_maps_and_validators_are_cached_by_fingerprint() {
    let reg = Registry::builtin();
    let a = reg.secret_map("mysql.extractor").unwrap();
    assert_eq!(a, reg.secret_map("mysql.extractor").unwrap());
    assert!(a.covers("/password"));
    assert!(!a.covers("/passwords"));
    let fp = &reg.get("mysql.extractor").unwrap().fingerprint;
    reg.validate_config("mysql.extractor", &json!({}));
    let first = CONFIG_VALIDATORS
        .get()
        .unwrap()
        .lock()
        .unwrap()
        .get(fp)
        .cloned()
        .unwrap();
    reg.validate_config("mysql.extractor", &json!({"table": "t"}));
    let second = CONFIG_VALIDATORS
        .get()
        .unwrap()
        .lock()
        .unwrap()
        .get(fp)
        .cloned()
        .unwrap();
    assert!(Arc::ptr_eq(&first, &second), "compiled once");
}

#[test]
fn fingerprint_is_canonical() {
    assert_eq!(
        fingerprint(&json!({"b": 1, "a": [1, {"d": 2, "c": 3}]})),
        fingerprint(&json!({"a": [1, {"c": 3, "d": 2}], "b": 1}))
    );
    let mut s = String::new();
    canonical_json(&json!({"b": 1, "a": "x"}), &mut s);
    assert_eq!(s, r#"{"a":"x","b":1}"#);
}
