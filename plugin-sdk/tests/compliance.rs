//! The driver compliance kit against plugins linked into this test binary (through `Module::from_static`, the
//! same entry and shims as a loaded cdylib): well-behaved components pass every check, careless ones fail the
//! checks they break, each named in the report.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]
#![cfg(feature = "testing")]

use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, RecordBatchIterator};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema, SchemaRef};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::{self, Case, Compliance, Outcome, checks};
use osiris_plugin_sdk::{BatchStream, Context, Driver, ErrorKind, PluginError, Streams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "hunter2-very-secret";

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
}

fn numbers(from: i64, len: i64) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from_iter_values(from..from + len))],
    )
    .unwrap()
}

mod plugin {
    use super::*;

    /// `{"rows": n, "batch": k}` rows 0..n in batches of k. `{"host": "nowhere"}` cannot connect. Behaves.
    pub struct Source;

    /// Produces batches lazily, checking cancellation before each one; reports `rows_read` at the end.
    struct Counting {
        next: i64,
        rows: i64,
        batch: i64,
        ctx: Context,
        done: bool,
        honour_cancel: bool,
    }

    impl Iterator for Counting {
        type Item = Result<RecordBatch, osiris_plugin_sdk::arrow_schema::ArrowError>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.done {
                return None;
            }
            if self.honour_cancel
                && let Err(e) = self.ctx.check_cancelled()
            {
                self.done = true;
                return Some(Err(e.into_arrow()));
            }
            if self.next >= self.rows {
                self.done = true;
                self.ctx.metric("rows_read", self.rows as f64, Some("rows"));
                return None;
            }
            let len = self.batch.min(self.rows - self.next);
            let batch = numbers(self.next, len);
            self.next += len;
            Some(Ok(batch))
        }
    }

    impl osiris_plugin_sdk::arrow_array::RecordBatchReader for Counting {
        fn schema(&self) -> SchemaRef {
            schema()
        }
    }

    fn params(config: &Value) -> Result<(i64, i64), PluginError> {
        let rows = config["rows"].as_i64().ok_or_else(|| {
            PluginError::config("`rows` must be an integer").with_help("e.g. `rows: 5`")
        })?;
        let batch = config["batch"].as_i64().unwrap_or(rows.max(1));
        Ok((rows, batch))
    }

    impl Driver for Source {
        fn run(
            &self,
            _step: &str,
            config: &Value,
            _inputs: Streams,
            ctx: &Context,
        ) -> Result<Streams, PluginError> {
            let (rows, batch) = params(config)?;
            if let Some(host) = ctx
                .connection()
                .and_then(|c| c["host"].as_str().map(str::to_string))
                && host == "nowhere"
            {
                return Err(PluginError::new(
                    ErrorKind::Connection,
                    "SOURCE-CONNECT",
                    format!("cannot reach `{host}`: connection refused"),
                ));
            }
            ctx.info(&format!("producing {rows} rows"));
            let stream = Counting {
                next: 0,
                rows,
                batch,
                ctx: ctx.clone(),
                done: false,
                honour_cancel: true,
            };
            Ok(Streams::from([(
                "df".to_string(),
                Box::new(stream) as BatchStream,
            )]))
        }
    }

    /// Like `Source`, but panics on a bad config, logs its connection (with the password), ignores
    /// cancellation and reports no metric.
    pub struct Careless;

    impl Driver for Careless {
        fn run(
            &self,
            _step: &str,
            config: &Value,
            _inputs: Streams,
            ctx: &Context,
        ) -> Result<Streams, PluginError> {
            ctx.info(&format!(
                "connecting with {}",
                ctx.connection().unwrap_or(Value::Null)
            ));
            let rows = config["rows"].as_i64().expect("rows is an integer");
            let batch = config["batch"].as_i64().unwrap_or(rows);
            let stream = Counting {
                next: 0,
                rows,
                batch,
                // Its own context, not the step's: the step records no metric (what `Careless` gets wrong).
                ctx: testing::TestContext::new().context(),
                done: false,
                honour_cancel: false,
            };
            Ok(Streams::from([(
                "df".to_string(),
                Box::new(stream) as BatchStream,
            )]))
        }
    }

    /// Writes nowhere, counting rows; checks cancellation between batches; `{"fail_with": "..."}` is a config
    /// error.
    pub struct Sink;

    impl Driver for Sink {
        fn run(
            &self,
            step: &str,
            config: &Value,
            inputs: Streams,
            ctx: &Context,
        ) -> Result<Streams, PluginError> {
            if !config.is_object() || config.get("fail_with").is_some() {
                return Err(PluginError::config(format!(
                    "step `{step}`: config must be an empty mapping"
                )));
            }
            let mut rows = 0;
            for (_, stream) in inputs {
                for batch in stream {
                    ctx.check_cancelled()?;
                    rows += batch.map_err(|e| PluginError::from_arrow(&e))?.num_rows();
                }
            }
            ctx.metric("rows_written", rows as f64, Some("rows"));
            Ok(Streams::new())
        }
    }

    /// Never returns: the kit must give up on it after its timeout.
    pub struct Stuck;

    impl Driver for Stuck {
        fn run(
            &self,
            _step: &str,
            _config: &Value,
            _inputs: Streams,
            _ctx: &Context,
        ) -> Result<Streams, PluginError> {
            std::thread::sleep(Duration::from_secs(3600));
            Ok(Streams::new())
        }
    }

    const SOURCE: &str =
        "name: test.source\nversion: \"0.1.0\"\nmodes: [extract]\nconfigSchema:\n  type: object\n";
    const CARELESS: &str = "name: test.careless\nversion: \"0.1.0\"\nmodes: [extract]\nconfigSchema:\n  type: object\n";
    const SINK: &str =
        "name: test.sink\nversion: \"0.1.0\"\nmodes: [write]\nconfigSchema:\n  type: object\n";
    const STUCK: &str =
        "name: test.stuck\nversion: \"0.1.0\"\nmodes: [extract]\nconfigSchema:\n  type: object\n";
    const MISNAMED: &str =
        "name: test.other\nversion: \"1\"\nmodes: [extract]\nconfigSchema:\n  type: object\n";

    osiris_plugin_sdk::export_ocp! {
        entry: osiris_ocp_sdk_compliance_test,
        name: "sdk-compliance-test", version: "0.1.0",
        components: [
            osiris_plugin_sdk::Component { name: "test.source", spec_yaml: SOURCE, driver: || Box::new(Source) },
            osiris_plugin_sdk::Component { name: "test.careless", spec_yaml: CARELESS, driver: || Box::new(Careless) },
            osiris_plugin_sdk::Component { name: "test.sink", spec_yaml: SINK, driver: || Box::new(Sink) },
            osiris_plugin_sdk::Component { name: "test.stuck", spec_yaml: STUCK, driver: || Box::new(Stuck) },
            osiris_plugin_sdk::Component { name: "test.misnamed", spec_yaml: MISNAMED, driver: || Box::new(Source) },
        ],
    }
}

/// A fresh module each time: poisoning belongs to the `Module` value.
fn module() -> Module {
    Module::from_static(&plugin::OCP_ENTRY).expect("the linked-in plugin loads")
}

fn failed(report: &testing::Report, name: &str) -> String {
    match report.outcome(name) {
        Some(Outcome::Failed(why)) => why.clone(),
        other => panic!("expected `{name}` to fail, got {other:?}\n{report}"),
    }
}

#[test]
fn a_well_behaved_extractor_passes_every_check() {
    let report = Compliance::new(
        module(),
        "test.source",
        json!({"rows": 5, "batch": 2, "password": SECRET}),
    )
    .connection(json!({"host": "db", "password": SECRET}))
    .bad_config(json!({"rows": "five"}))
    .unreachable(
        Case::new(json!({"rows": 1})).connection(json!({"host": "nowhere", "password": SECRET})),
    )
    .secrets([SECRET])
    .run();
    // Nothing was skipped: every check really ran.
    report.assert_all_passed(&[]);
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            checks::SPEC,
            checks::RUN,
            checks::SCHEMA,
            checks::ROWS,
            checks::METRICS,
            checks::BAD_CONFIG,
            checks::UNREACHABLE,
            checks::CANCEL_BEFORE,
            checks::CANCEL_DURING,
            checks::NO_PANIC,
            checks::SECRETS,
        ]
    );
}

#[test]
fn a_careless_extractor_fails_the_checks_it_breaks() {
    let report = Compliance::new(module(), "test.careless", json!({"rows": 5, "batch": 2}))
        .connection(json!({"host": "db", "password": SECRET}))
        .secrets([SECRET])
        .run();
    assert_eq!(
        report.outcome(checks::RUN),
        Some(&Outcome::Passed),
        "{report}"
    );
    assert_eq!(
        failed(&report, checks::METRICS),
        "no `rows_read` metric was emitted"
    );
    assert!(
        failed(&report, checks::CANCEL_BEFORE)
            .starts_with("the run ignored cancellation: it succeeded with 5 row(s)"),
        "{report}"
    );
    assert!(
        failed(&report, checks::CANCEL_DURING).starts_with("the run ignored cancellation"),
        "{report}"
    );
    let leak = failed(&report, checks::SECRETS);
    assert_eq!(
        leak,
        "a secret value appears in: a log line (info) (values not shown)"
    );
    assert!(
        !report.to_string().contains(SECRET),
        "the report never shows a secret"
    );
    assert_eq!(
        report.outcome(checks::UNREACHABLE),
        Some(&Outcome::Skipped("no case given".to_string()))
    );
    assert_eq!(report.outcome(checks::NO_PANIC), Some(&Outcome::Passed));

    // `assert_passes` lists every failure, not just the first.
    let panic = std::panic::catch_unwind(|| report.assert_passes()).expect_err("it panics");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert!(
        message.starts_with("`test.careless` failed 4 compliance check(s):"),
        "{message}"
    );
    for name in [
        checks::METRICS,
        checks::CANCEL_BEFORE,
        checks::CANCEL_DURING,
        checks::SECRETS,
    ] {
        assert!(
            message.contains(&format!("\n  - {name}: ")),
            "{name} missing from {message}"
        );
    }
}

#[test]
fn a_panic_on_a_bad_config_is_caught_and_reported() {
    let module = Arc::new(module());
    let report = Compliance::new(module.clone(), "test.careless", json!({"rows": 2}))
        .bad_config(json!({"rows": "two"}))
        .run();
    assert!(
        failed(&report, checks::BAD_CONFIG).starts_with("the component panicked: "),
        "{report}"
    );
    assert!(
        failed(&report, checks::NO_PANIC).contains("the module is poisoned"),
        "{report}"
    );
    assert!(module.is_poisoned());
}

#[test]
fn wrong_error_kinds_are_reported_with_the_expected_ones() {
    let report = Compliance::new(module(), "test.source", json!({"rows": 3}))
        .bad_config(Case::new(json!({"rows": "x"})).expect([ErrorKind::Data]))
        .unreachable(json!({"rows": 2}))
        .run();
    assert_eq!(
        failed(&report, checks::BAD_CONFIG),
        "expected an error of kind data, got kind config: [CONFIG] `rows` must be an integer"
    );
    assert_eq!(
        failed(&report, checks::UNREACHABLE),
        "the run succeeded; expected an error of kind connection or auth"
    );
    // One batch only: the mid-stream cancellation cannot be exercised, and the report says so.
    assert!(
        matches!(
            report.outcome(checks::CANCEL_DURING),
            Some(Outcome::Skipped(_))
        ),
        "{report}"
    );
}

#[test]
fn a_writer_is_checked_on_fresh_inputs_and_rows_written() {
    let inputs = || {
        let stream: BatchStream = Box::new(RecordBatchIterator::new(
            vec![Ok(numbers(0, 3)), Ok(numbers(3, 4))],
            schema(),
        ));
        Streams::from([("df".to_string(), stream)])
    };
    let report = Compliance::new(module(), "test.sink", json!({}))
        .inputs(inputs)
        .bad_config(json!({"fail_with": "x"}))
        .run();
    report.assert_passes();
    assert_eq!(report.outcome(checks::METRICS), Some(&Outcome::Passed));
    assert_eq!(
        report.outcome(checks::CANCEL_BEFORE),
        Some(&Outcome::Passed)
    );

    // Without inputs the writer writes 0 rows: its metric still adds up, there is nothing to cancel.
    let report = Compliance::new(module(), "test.sink", json!({})).run();
    report.assert_passes();
    assert_eq!(report.outcome(checks::METRICS), Some(&Outcome::Passed));
    assert!(
        matches!(
            report.outcome(checks::CANCEL_BEFORE),
            Some(Outcome::Skipped(_))
        ),
        "{report}"
    );
}

#[test]
fn a_run_that_never_ends_is_reported_after_the_timeout() {
    let report = Compliance::new(module(), "test.stuck", json!({}))
        .timeout(Duration::from_millis(200))
        .run();
    assert_eq!(
        failed(&report, checks::RUN),
        "the run did not end within 200ms"
    );
    assert_eq!(
        failed(&report, checks::CANCEL_BEFORE),
        "the run did not end within 200ms"
    );
}

#[test]
fn the_spec_must_be_listed_valid_and_named_after_the_component() {
    let report = Compliance::new(module(), "test.absent", json!({})).run();
    assert!(
        failed(&report, checks::SPEC).starts_with(
            "plugin `sdk-compliance-test` does not list `test.absent` (it lists: test.source, "
        ),
        "{report}"
    );
    let report = Compliance::new(module(), "test.misnamed", json!({"rows": 1})).run();
    assert!(
        failed(&report, checks::SPEC).starts_with("`version` is \"1\""),
        "{report}"
    );
}
