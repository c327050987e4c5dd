//! Tests of `{{family}}.{{role}}` through the built plugin library, loaded the way osiris loads it.

{% if role == "writer" %}
use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch};
{% else %}
use osiris_plugin_sdk::arrow_array::{Array, Int64Array, RecordBatch, StringArray};
{% endif %}
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::json;
use osiris_plugin_sdk::testing::{self, TestContext};
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

#[test]
fn a_bad_config_is_a_config_error() {
    let err = testing::run_collect(
        &module(),
        {{crate_name}}::COMPONENT,
        &json!({ "rows": -1 }),
        TestContext::new(),
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind, osiris_plugin_sdk::ErrorKind::Config, "{err}");
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
{% endif %}
