//! A plugin exported with `export_ocp!` and linked into this test binary, called through `host::Module::from_static`:
//! the same entry, shims and checks as a loaded cdylib (the cdylib side is covered by tests/it/sdk.rs).

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]
#![cfg(feature = "testing")]

use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, RecordBatchReader};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use osiris_plugin_sdk::host::{Module, SUPPORTED_ABI_VERSIONS};
use osiris_plugin_sdk::testing::{self, TestContext};
use osiris_plugin_sdk::{
    Context, Driver, ErrorKind, Level, PANIC_CODE, POISONED_CODE, PluginError, Streams,
};
use serde_json::{Value, json};
use std::sync::Arc;

mod plugin {
    use super::*;

    /// Doubles column `n`; `{"panic": true}` panics in `run`, `{"panic_at": k}` panics when batch `k` is pulled.
    pub struct Doubler;

    struct Doubling {
        input: osiris_plugin_sdk::BatchStream,
        schema: SchemaRef,
        panic_at: Option<u64>,
        seen: u64,
        ctx: Context,
    }

    impl Iterator for Doubling {
        type Item = Result<RecordBatch, ArrowError>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.panic_at == Some(self.seen) {
                panic!("doubler blew up at batch {}", self.seen);
            }
            let batch = match self.input.next()? {
                Ok(b) => b,
                Err(e) => return Some(Err(e)),
            };
            self.seen += 1;
            let n = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let doubled: Int64Array = n.iter().map(|v| v.map(|v| v * 2)).collect();
            // Uses the context after `run` returned: it must still be alive.
            self.ctx
                .metric("rows", batch.num_rows() as f64, Some("rows"));
            Some(RecordBatch::try_new(
                self.schema.clone(),
                vec![Arc::new(doubled)],
            ))
        }
    }

    impl RecordBatchReader for Doubling {
        fn schema(&self) -> SchemaRef {
            self.schema.clone()
        }
    }

    impl Driver for Doubler {
        fn run(
            &self,
            step_id: &str,
            config: &Value,
            mut inputs: Streams,
            ctx: &Context,
        ) -> Result<Streams, PluginError> {
            if config["panic"] == json!(true) {
                panic!("doubler was asked to panic in step {step_id}");
            }
            if let Some(message) = config["fail"].as_str() {
                return Err(PluginError::new(ErrorKind::Data, "DOUBLER-FAIL", message)
                    .with_help("do not ask it to fail"));
            }
            ctx.log(Level::Info, &format!("doubling for step {step_id}"));
            let input = inputs
                .remove("df")
                .ok_or_else(|| PluginError::config("the doubler needs an input `df`"))?;
            let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
            let reader = Doubling {
                input,
                schema,
                panic_at: config["panic_at"].as_u64(),
                seen: 0,
                ctx: ctx.clone(),
            };
            Ok(Streams::from([(
                "df".to_string(),
                Box::new(reader) as osiris_plugin_sdk::BatchStream,
            )]))
        }

        fn doctor(&self, _config: &Value, ctx: &Context) -> Result<Value, PluginError> {
            Ok(json!({"ok": true, "connection": ctx.connection()}))
        }
    }

    pub const SPEC: &str = r#"
name: test.doubler
version: "0.1.0"
modes: [transform]
capabilities: {}
configSchema:
  type: object
  properties:
    panic: { type: boolean }
    panic_at: { type: integer }
    fail: { type: string }
examples:
  - title: plain
    config: {}
"#;

    osiris_plugin_sdk::export_ocp! {
        entry: osiris_ocp_sdk_static_test,
        name: "sdk-static-test", version: "1.2.3",
        components: [
            osiris_plugin_sdk::Component { name: "test.doubler", spec_yaml: SPEC, driver: || Box::new(Doubler) },
        ],
    }
}

fn module() -> Module {
    Module::from_static(&plugin::OCP_ENTRY).expect("the linked-in plugin loads")
}

fn numbers(values: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
}

fn column(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

#[test]
fn identity_and_components() {
    let module = module();
    assert_eq!(module.plugin_name(), "sdk-static-test");
    assert_eq!(module.plugin_version(), "1.2.3");
    assert!(SUPPORTED_ABI_VERSIONS.contains(&module.abi_version()));
    assert_eq!(module.sdk_version(), osiris_plugin_sdk::SDK_VERSION);
    assert_eq!(module.components().len(), 1);
    assert_eq!(module.components()[0].name, "test.doubler");
    assert_eq!(module.components()[0].spec_yaml, plugin::SPEC);
    testing::check_module(&module).unwrap();
}

#[test]
fn runs_and_streams_lazily_with_a_live_context() {
    let module = module();
    let ctx = TestContext::new();
    let out = testing::run_collect(
        &module,
        "test.doubler",
        &json!({}),
        ctx.clone(),
        testing::single_input(vec![numbers(&[1, 2]), numbers(&[5])]),
    )
    .unwrap();
    assert_eq!(column(&out["df"]), vec![2, 4, 10]);
    assert_eq!(
        ctx.logs(),
        vec![(Level::Info, "doubling for step test".to_string())]
    );
    assert_eq!(ctx.metric_total("rows"), 3.0);
    // Every reference the plugin held (context in the stream) was given back.
    assert_eq!(Arc::strong_count(&ctx), 1);
}

#[test]
fn returned_errors_cross_as_data_and_do_not_poison() {
    let module = module();
    let err = module
        .run(
            "test.doubler",
            "s1",
            &json!({"fail": "no"}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(
        err,
        PluginError::new(ErrorKind::Data, "DOUBLER-FAIL", "no").with_help("do not ask it to fail")
    );
    assert!(!module.is_poisoned());
}

#[test]
fn unknown_component_lists_the_offered_ones() {
    let err = module()
        .run(
            "test.tripler",
            "s1",
            &json!({}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.kind, ErrorKind::Config);
    assert_eq!(
        err.message,
        "plugin `sdk-static-test 1.2.3` has no component `test.tripler`"
    );
    assert_eq!(err.help.as_deref(), Some("it offers: `test.doubler`"));
}

#[test]
fn a_panic_in_run_poisons_the_module() {
    let module = module();
    let err = module
        .run(
            "test.doubler",
            "s1",
            &json!({"panic": true}),
            TestContext::new(),
            testing::single_input(vec![numbers(&[1])]),
        )
        .err()
        .expect("the call fails");
    assert_eq!(err.kind, ErrorKind::Panic);
    assert_eq!(err.code, PANIC_CODE);
    assert!(
        err.message.starts_with(
            "plugin `sdk-static-test 1.2.3` panicked while running step `s1` (`test.doubler`): doubler was asked to panic in step s1 (at "
        ),
        "{err}"
    );
    assert!(module.is_poisoned());
    let again = module
        .run(
            "test.doubler",
            "s2",
            &json!({}),
            TestContext::new(),
            Streams::new(),
        )
        .err()
        .expect("the call fails");
    assert_eq!(
        (again.kind, again.code.as_str()),
        (ErrorKind::Panic, POISONED_CODE)
    );
    let doctor = module
        .doctor("test.doubler", &json!({}), TestContext::new())
        .unwrap_err();
    assert_eq!(doctor.code, POISONED_CODE);
}

#[test]
fn a_panic_in_a_stream_is_an_error_and_poisons() {
    let module = module();
    let outputs = module
        .run(
            "test.doubler",
            "s1",
            &json!({"panic_at": 1}),
            TestContext::new(),
            testing::single_input(vec![numbers(&[1]), numbers(&[2])]),
        )
        .unwrap();
    let mut df = outputs.into_iter().next().unwrap().1;
    assert!(df.next().unwrap().is_ok());
    let err = PluginError::from_arrow(&df.next().unwrap().unwrap_err());
    assert_eq!(err.kind, ErrorKind::Panic);
    assert!(err.message.contains("panicked while producing output `df` of step `s1` (`test.doubler`): doubler blew up at batch 1"), "{err}");
    assert!(df.next().is_none());
    assert!(module.is_poisoned());
}

#[test]
fn discover_defaults_to_unsupported_and_doctor_sees_the_connection() {
    let module = module();
    let err = module
        .discover("test.doubler", &json!({}), TestContext::new())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    let ctx = TestContext::with_connection(json!({"host": "db"}));
    let doctor = module.doctor("test.doubler", &json!({}), ctx).unwrap();
    assert_eq!(doctor, json!({"ok": true, "connection": {"host": "db"}}));
}
