//! Tests of `{{family}}.{{role}}` through the built plugin library, loaded the way osiris loads it.

{% if role == "writer" %}
use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch};
{% else %}
use osiris_plugin_sdk::arrow_array::{Array, Int64Array, RecordBatch, StringArray};
{% endif %}
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::json;
use osiris_plugin_sdk::testing::{self, Compliance, Outcome, TestContext, checks};
use std::sync::Arc;

/// The cdylib cargo built next to this test binary, loaded through its entry symbol.
fn module() -> Module {
    let path = testing::built_cdylib("{{crate_name}}");
    testing::load_cdylib(&path, "osiris_ocp_{{crate_name}}").expect("the plugin library loads")
}

#[allow(dead_code)]
fn batch(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec()))]).unwrap()
}

#[test]
fn spec_is_valid() {
    if let Err(problems) = testing::check_spec({{crate_name}}::SPEC) {
        panic!("spec.yaml has problems:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_library_exports_the_component_with_its_spec() {
    let module = module();
    testing::check_module(&module).unwrap_or_else(|p| panic!("{}", p.join("\n")));
    let names: Vec<&str> = module.components().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["{{family}}.{{role}}"]);
    assert_eq!(module.plugin_name(), env!("CARGO_PKG_NAME"));
}
{% if role == "extractor" %}
#[test]
fn emits_the_configured_rows_in_batches() {
    let ctx = TestContext::new();
    let out = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({ "rows": 5, "batch_size": 2 }),
        ctx.clone(),
        Default::default(),
    )
    .unwrap();
    let batches = &out["df"];
    assert_eq!(batches.iter().map(RecordBatch::num_rows).collect::<Vec<_>>(), [2, 2, 1]);
    let last = batches[2].column(1).as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(last.value(0), "{{family}}-4");
    assert_eq!(ctx.metric_total("rows_read"), 5.0);
}

/// The SDK's compliance kit against the loaded library: spec, a valid run (three batches), metrics, a bad
/// config answered with a `config` error, cancellation before and during the run, no panic.
#[test]
fn the_loaded_component_passes_the_compliance_kit() {
    let report = Compliance::new(module(), {{crate_name}}::COMPONENT, json!({ "rows": 5, "batch_size": 2 }))
        .bad_config(json!({ "rows": -1 }))
        .run();
    report.assert_passes();
    assert_eq!(report.outcome(checks::BAD_CONFIG), Some(&Outcome::Passed), "{report}");
    assert_eq!(report.outcome(checks::CANCEL_DURING), Some(&Outcome::Passed), "{report}");
}
{% elsif role == "writer" %}
#[test]
fn consumes_its_input_and_counts_the_rows() {
    let ctx = TestContext::new();
    let out = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({}),
        ctx.clone(),
        testing::single_input(vec![batch(&[1, 2, 3]), batch(&[4, 5])]),
    )
    .unwrap();
    assert!(out.is_empty(), "a writer has no output");
    assert_eq!(ctx.metric_total("rows_written"), 5.0);
}

#[test]
fn an_empty_input_fails_when_asked_to() {
    let schema = batch(&[]).schema();
    let inputs = [("df".to_string(), testing::batch_stream(schema, vec![]))].into();
    let err = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({ "fail_on_empty": true }),
        TestContext::new(),
        inputs,
    )
    .unwrap_err();
    assert_eq!(err.kind, osiris_plugin_sdk::ErrorKind::Data, "{err}");
}

/// Fresh input for every compliance run: two batches, five rows.
fn inputs() -> osiris_plugin_sdk::Streams {
    let schema = batch(&[]).schema();
    [("df".to_string(), testing::batch_stream(schema, vec![batch(&[1, 2, 3]), batch(&[4, 5])]))].into()
}

/// The SDK's compliance kit against the loaded library: spec, a valid run, `rows_written`, cancellation, no
/// panic. Add `.bad_config(..)` (and `.unreachable(..)` and `.secrets(..)` for a real target) as the writer grows.
#[test]
fn the_loaded_component_passes_the_compliance_kit() {
    let report = Compliance::new(module(), {{crate_name}}::COMPONENT, json!({})).inputs(inputs).run();
    report.assert_passes();
    assert_eq!(report.outcome(checks::METRICS), Some(&Outcome::Passed), "{report}");
    assert_eq!(report.outcome(checks::CANCEL_BEFORE), Some(&Outcome::Passed), "{report}");
}
{% else %}
#[test]
fn adds_the_column_to_every_batch() {
    let ctx = TestContext::new();
    let out = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({ "column": "source", "value": "test" }),
        ctx.clone(),
        testing::single_input(vec![batch(&[1, 2, 3]), batch(&[4, 5])]),
    )
    .unwrap();
    let batches = &out["df"];
    assert_eq!(batches.len(), 2);
    for b in batches {
        assert_eq!(b.schema().field(1).name(), "source");
        let added = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert!((0..added.len()).all(|i| added.value(i) == "test"));
    }
    assert_eq!(ctx.metric_total("rows_out"), 5.0);
}

#[test]
fn refuses_a_column_that_exists() {
    let err = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({ "column": "id" }),
        TestContext::new(),
        testing::single_input(vec![batch(&[1])]),
    )
    .unwrap_err();
    assert_eq!(err.kind, osiris_plugin_sdk::ErrorKind::Config, "{err}");
}

/// Fresh input for every compliance run: two batches, five rows.
fn inputs() -> osiris_plugin_sdk::Streams {
    let schema = batch(&[]).schema();
    [("df".to_string(), testing::batch_stream(schema, vec![batch(&[1, 2, 3]), batch(&[4, 5])]))].into()
}

/// The SDK's compliance kit against the loaded library: spec, a valid run (two batches), a bad config answered
/// with a `config` error, cancellation before and during the run, no panic.
#[test]
fn the_loaded_component_passes_the_compliance_kit() {
    let report = Compliance::new(module(), {{crate_name}}::COMPONENT, json!({ "column": "source" }))
        .inputs(inputs)
        .bad_config(json!({ "column": "id" }))
        .run();
    report.assert_passes();
    assert_eq!(report.outcome(checks::BAD_CONFIG), Some(&Outcome::Passed), "{report}");
    assert_eq!(report.outcome(checks::CANCEL_DURING), Some(&Outcome::Passed), "{report}");
}
{% endif %}
