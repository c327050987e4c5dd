//! The driver compliance kit: one builder that runs a component through the checks every driver must pass,
//! through a real [`Module`] (a built cdylib from [`super::load_cdylib`], or a linked one from
//! [`Module::from_static`]).
//!
//! ```ignore
//! use osiris_plugin_sdk::testing::{Case, Compliance};
//!
//! #[test]
//! fn extractor_is_compliant() {
//!     let module = Module::from_static(&my_plugin::OCP_ENTRY).unwrap();
//!     Compliance::new(module, "acme.extractor", json!({"table": "t", "password": "s3cret"}))
//!         .bad_config(json!({"table": 3}))
//!         .unreachable(Case::new(json!({"table": "t"})).connection(json!({"host": "127.0.0.1", "port": 1})))
//!         .secrets(["s3cret"])
//!         .run()
//!         .assert_passes();
//! }
//! ```
//!
//! Every run happens on its own thread and must end within [`Compliance::timeout`]; a run that does not is
//! reported (and its thread left behind) rather than hanging the test.

use super::{TestContext, schema_of};
use crate::driver::{ContextBackend, ErrorKind, PluginError, Streams};
use crate::host::Module;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use serde_json::Value;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// What a component does with data, which decides the metric and row checks. Read from the spec's `modes`
/// (`write` -> writer, `transform` -> processor, `extract` -> extractor) unless set with [`Compliance::role`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Produces rows; must emit `rows_read`.
    Extractor,
    /// Turns inputs into outputs.
    Processor,
    /// Consumes its inputs; must emit `rows_written`.
    Writer,
}

/// A failure case: a config, optionally the connection the context offers, and the error kinds that count as
/// the right answer.
#[derive(Debug, Clone)]
pub struct Case {
    config: Value,
    connection: Option<Value>,
    expect: Option<Vec<ErrorKind>>,
}

impl Case {
    pub fn new(config: Value) -> Case {
        Case {
            config,
            connection: None,
            expect: None,
        }
    }

    /// The connection `Context::connection()` returns for this case (instead of [`Compliance::connection`]).
    pub fn connection(mut self, connection: Value) -> Case {
        self.connection = Some(connection);
        self
    }

    /// The error kinds accepted for this case (default: `Config` for a bad config, `Connection` or `Auth` for
    /// an unreachable service; a file-based component answers `Io`).
    pub fn expect(mut self, kinds: impl IntoIterator<Item = ErrorKind>) -> Case {
        self.expect = Some(kinds.into_iter().collect());
        self
    }
}

impl From<Value> for Case {
    fn from(config: Value) -> Case {
        Case::new(config)
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Why it failed, in a sentence an author can act on.
    Failed(String),
    /// Not applicable (e.g. no bad config given); says why.
    Skipped(String),
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// What [`Compliance::run`] found: every check, in order.
#[derive(Debug, Clone)]
pub struct Report {
    pub component: String,
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// The failed checks.
    pub fn failures(&self) -> Vec<&CheckResult> {
        self.checks
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Failed(_)))
            .collect()
    }

    /// The outcome of the check called `name`, if it ran.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }

    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// Panics listing every failed check (not just the first).
    #[track_caller]
    pub fn assert_passes(&self) {
        let failures = self.failures();
        if failures.is_empty() {
            return;
        }
        let mut message = format!(
            "`{}` failed {} compliance check(s):",
            self.component,
            failures.len()
        );
        for check in failures {
            if let Outcome::Failed(why) = &check.outcome {
                message.push_str(&format!("\n  - {}: {why}", check.name));
            }
        }
        panic!("{message}");
    }

    /// Panics unless every check ran and passed, except those named in `may_skip` (checks that do not apply
    /// to the component, e.g. [`checks::CANCEL_DURING`] for a writer, which returns no stream), which may
    /// instead have been skipped. Lists every failed or unexpectedly skipped check, and the whole report.
    #[track_caller]
    pub fn assert_all_passed(&self, may_skip: &[&str]) {
        let wrong: Vec<String> = self
            .checks
            .iter()
            .filter_map(|c| match &c.outcome {
                Outcome::Passed => None,
                Outcome::Skipped(_) if may_skip.contains(&c.name) => None,
                Outcome::Skipped(why) => Some(format!("{} was skipped: {why}", c.name)),
                Outcome::Failed(why) => Some(format!("{} failed: {why}", c.name)),
            })
            .collect();
        if !wrong.is_empty() {
            panic!(
                "`{}`: {} compliance check(s) did not pass:\n  - {}\n{self}",
                self.component,
                wrong.len(),
                wrong.join("\n  - ")
            );
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "compliance of `{}`:", self.component)?;
        for check in &self.checks {
            match &check.outcome {
                Outcome::Passed => writeln!(f, "  ok      {}", check.name)?,
                Outcome::Failed(why) => writeln!(f, "  FAILED  {}: {why}", check.name)?,
                Outcome::Skipped(why) => writeln!(f, "  skipped {}: {why}", check.name)?,
            }
        }
        Ok(())
    }
}

/// Names of the checks, as they appear in a [`Report`].
pub mod checks {
    pub const SPEC: &str = "spec";
    pub const RUN: &str = "valid run";
    pub const SCHEMA: &str = "one schema per stream";
    pub const ROWS: &str = "row counts";
    pub const METRICS: &str = "metrics";
    pub const BAD_CONFIG: &str = "bad config";
    pub const UNREACHABLE: &str = "unreachable service";
    pub const CANCEL_BEFORE: &str = "cancelled before the run";
    pub const CANCEL_DURING: &str = "cancelled after the first batch";
    pub const NO_PANIC: &str = "no panic";
    pub const SECRETS: &str = "secrets absent";
}

type InputsFactory = Box<dyn Fn() -> Streams + Send + Sync>;

/// The compliance checks of one component; see the module docs.
pub struct Compliance {
    module: Arc<Module>,
    component: String,
    config: Value,
    connection: Option<Value>,
    inputs: Option<InputsFactory>,
    bad_config: Option<Case>,
    unreachable: Option<Case>,
    secrets: Vec<String>,
    role: Option<Role>,
    expect_empty: bool,
    timeout: Duration,
}

/// One output stream as read: its declared schema and its batches.
type Collected = Vec<(String, SchemaRef, Vec<RecordBatch>)>;

/// How a bounded run ended.
enum Ended {
    Finished(Result<Collected, PluginError>),
    TimedOut,
    /// The kit's own thread panicked (e.g. in the inputs factory): reported, never propagated.
    Crashed(String),
}

impl Compliance {
    /// `module` (a `Module` or an `Arc<Module>`) must offer `component`; `config` must make a successful run.
    pub fn new(module: impl Into<Arc<Module>>, component: &str, config: Value) -> Compliance {
        Compliance {
            module: module.into(),
            component: component.to_string(),
            config,
            connection: None,
            inputs: None,
            bad_config: None,
            unreachable: None,
            secrets: Vec::new(),
            role: None,
            expect_empty: false,
            timeout: Duration::from_secs(30),
        }
    }

    /// The connection every run's context offers (see [`crate::Context::connection`]).
    pub fn connection(mut self, connection: Value) -> Compliance {
        self.connection = Some(connection);
        self
    }

    /// Fresh input streams for each run (writers and processors). Called once per run, plus once to count the
    /// input rows.
    pub fn inputs(mut self, factory: impl Fn() -> Streams + Send + Sync + 'static) -> Compliance {
        self.inputs = Some(Box::new(factory));
        self
    }

    /// A config the component must reject with an error (kind `Config` unless the case says otherwise).
    pub fn bad_config(mut self, case: impl Into<Case>) -> Compliance {
        self.bad_config = Some(case.into());
        self
    }

    /// A config (and connection) pointing at a service that is not there: the component must answer with an
    /// error of kind `Connection` or `Auth` unless the case says otherwise.
    pub fn unreachable(mut self, case: impl Into<Case>) -> Compliance {
        self.unreachable = Some(case.into());
        self
    }

    /// Secret values placed in the configs or connections: none may appear in a log line or error.
    pub fn secrets<S: Into<String>>(mut self, secrets: impl IntoIterator<Item = S>) -> Compliance {
        self.secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// Overrides the role read from the spec's `modes`.
    pub fn role(mut self, role: Role) -> Compliance {
        self.role = Some(role);
        self
    }

    /// The valid run legitimately produces no rows (otherwise an extractor or processor must produce some).
    pub fn expect_empty(mut self) -> Compliance {
        self.expect_empty = true;
        self
    }

    /// How long any one run may take (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Compliance {
        self.timeout = timeout;
        self
    }

    /// Runs every check and reports them all; never panics because the component misbehaves.
    pub fn run(&self) -> Report {
        let mut checks = Vec::new();
        let mut seen = Seen::default();
        let mut push = |name: &'static str, outcome: Outcome| {
            checks.push(CheckResult { name, outcome });
        };

        // 1. Listed, with a spec that passes `check_spec` and names it.
        let info = self
            .module
            .components()
            .iter()
            .find(|c| c.name == self.component);
        let spec = match info {
            None => {
                let offered: Vec<&str> = self
                    .module
                    .components()
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                push(
                    checks::SPEC,
                    Outcome::Failed(format!(
                        "plugin `{}` does not list `{}` (it lists: {})",
                        self.module.plugin_name(),
                        self.component,
                        offered.join(", ")
                    )),
                );
                None
            }
            Some(info) => match super::check_spec(&info.spec_yaml) {
                Err(problems) => {
                    push(checks::SPEC, Outcome::Failed(problems.join("; ")));
                    None
                }
                Ok(spec) => {
                    let named = spec.get("name").and_then(Value::as_str).unwrap_or("");
                    if named == self.component {
                        push(checks::SPEC, Outcome::Passed);
                    } else {
                        push(
                            checks::SPEC,
                            Outcome::Failed(format!(
                                "the embedded spec is named `{named}`, not `{}`",
                                self.component
                            )),
                        );
                    }
                    Some(spec)
                }
            },
        };
        let role = self.role.unwrap_or_else(|| role_from_spec(spec.as_ref()));

        // 2 + 3. The valid run: success, one schema per stream, rows, metrics.
        let ctx = self.context(self.connection.clone());
        let ended = self.bounded_run(&self.config, ctx.clone(), false);
        seen.logs(&ctx);
        let baseline = match ended {
            Ended::Finished(Ok(collected)) => {
                push(checks::RUN, Outcome::Passed);
                Some(collected)
            }
            other => {
                push(checks::RUN, self.failed_run(other, &mut seen));
                None
            }
        };
        let output_rows: Option<usize> = baseline.as_ref().map(|c| {
            c.iter()
                .flat_map(|(_, _, batches)| batches.iter().map(RecordBatch::num_rows))
                .sum()
        });
        match &baseline {
            None => {
                push(checks::SCHEMA, skipped_no_run());
                push(checks::ROWS, skipped_no_run());
                push(checks::METRICS, skipped_no_run());
            }
            Some(collected) => {
                push(checks::SCHEMA, schema_outcome(collected));
                let rows = output_rows.unwrap_or(0);
                push(checks::ROWS, self.rows_outcome(role, collected, rows));
                push(checks::METRICS, self.metrics_outcome(role, &ctx, rows));
            }
        }

        // 4. Failure cases answer with the right kind of error, not a panic.
        for (name, case, default) in [
            (
                checks::BAD_CONFIG,
                &self.bad_config,
                vec![ErrorKind::Config],
            ),
            (
                checks::UNREACHABLE,
                &self.unreachable,
                vec![ErrorKind::Connection, ErrorKind::Auth],
            ),
        ] {
            let Some(case) = case else {
                push(name, Outcome::Skipped("no case given".to_string()));
                continue;
            };
            let expect = case.expect.clone().unwrap_or(default);
            let ctx = self.context(case.connection.clone().or(self.connection.clone()));
            let ended = self.bounded_run(&case.config, ctx.clone(), false);
            seen.logs(&ctx);
            let outcome = match ended {
                Ended::Finished(Ok(_)) => Outcome::Failed(format!(
                    "the run succeeded; expected an error of kind {}",
                    kinds(&expect)
                )),
                Ended::Finished(Err(e)) if expect.contains(&e.kind) => {
                    seen.error(&e);
                    Outcome::Passed
                }
                Ended::Finished(Err(e)) if e.kind != ErrorKind::Panic => {
                    seen.error(&e);
                    Outcome::Failed(format!(
                        "expected an error of kind {}, got kind {}: {e}",
                        kinds(&expect),
                        kind_name(e.kind)
                    ))
                }
                other => self.failed_run(other, &mut seen),
            };
            push(name, outcome);
        }

        // 6. Cancellation: set before the run, and (for streamed outputs) after the first batch.
        let ctx = self.context(self.connection.clone());
        ctx.cancel();
        let ended = self.bounded_run(&self.config, ctx.clone(), false);
        seen.logs(&ctx);
        push(
            checks::CANCEL_BEFORE,
            self.cancel_outcome(role, ended, &ctx, output_rows, &mut seen),
        );
        let batches = baseline
            .as_ref()
            .map_or(0, |c| c.first().map_or(0, |(_, _, b)| b.len()));
        if batches < 2 {
            push(
                checks::CANCEL_DURING,
                Outcome::Skipped(format!(
                    "the valid run's first output has {batches} batch(es); a config producing several batches exercises this check"
                )),
            );
        } else {
            let ctx = self.context(self.connection.clone());
            let ended = self.bounded_run(&self.config, ctx.clone(), true);
            seen.logs(&ctx);
            push(
                checks::CANCEL_DURING,
                self.cancel_outcome(role, ended, &ctx, output_rows, &mut seen),
            );
        }

        // 5. No panic escaped: the module still answers.
        push(
            checks::NO_PANIC,
            if self.module.is_poisoned() {
                Outcome::Failed(format!(
                    "the module is poisoned: `{}` panicked during the checks",
                    self.component
                ))
            } else {
                Outcome::Passed
            },
        );

        // 7. Secrets absent from every log line and error seen.
        let secrets: Vec<&String> = self.secrets.iter().filter(|s| !s.is_empty()).collect();
        if secrets.is_empty() {
            push(
                checks::SECRETS,
                Outcome::Skipped("no secret values given".to_string()),
            );
        } else {
            let leaks: Vec<String> = seen
                .texts
                .iter()
                .filter(|(_, text)| secrets.iter().any(|s| text.contains(s.as_str())))
                .map(|(origin, _)| origin.clone())
                .fold(Vec::new(), |mut unique, origin| {
                    if !unique.contains(&origin) {
                        unique.push(origin);
                    }
                    unique
                });
            push(
                checks::SECRETS,
                if leaks.is_empty() {
                    Outcome::Passed
                } else {
                    Outcome::Failed(format!(
                        "a secret value appears in: {} (values not shown)",
                        leaks.join(", ")
                    ))
                },
            );
        }

        Report {
            component: self.component.clone(),
            checks,
        }
    }

    fn context(&self, connection: Option<Value>) -> Arc<TestContext> {
        match connection {
            Some(c) => TestContext::with_connection(c),
            None => TestContext::new(),
        }
    }

    fn fresh_inputs(&self) -> Streams {
        self.inputs.as_ref().map(|f| f()).unwrap_or_default()
    }

    /// Runs the component on a thread and reads every output to the end, waiting at most `timeout`.
    fn bounded_run(
        &self,
        config: &Value,
        ctx: Arc<TestContext>,
        cancel_after_first_batch: bool,
    ) -> Ended {
        let (tx, rx) = mpsc::channel();
        let module = self.module.clone();
        let component = self.component.clone();
        let config = config.clone();
        let inputs = self.fresh_inputs();
        let spawned = std::thread::Builder::new()
            .name(format!("compliance {component}"))
            .spawn(move || {
                let backend: Arc<dyn ContextBackend> = ctx.clone();
                let result = (|| {
                    let outputs = module.run(&component, "compliance", &config, backend, inputs)?;
                    let mut collected = Vec::new();
                    for (name, stream) in outputs {
                        let schema = schema_of(&stream);
                        let mut batches = Vec::new();
                        for item in stream {
                            batches.push(item.map_err(|e| PluginError::from_arrow(&e))?);
                            if cancel_after_first_batch {
                                ctx.cancel();
                            }
                        }
                        collected.push((name, schema, batches));
                    }
                    Ok(collected)
                })();
                let _ = tx.send(result);
            });
        if let Err(e) = spawned {
            return Ended::Crashed(format!("cannot start a thread: {e}"));
        }
        match rx.recv_timeout(self.timeout) {
            Ok(result) => Ended::Finished(result),
            Err(mpsc::RecvTimeoutError::Timeout) => Ended::TimedOut,
            Err(mpsc::RecvTimeoutError::Disconnected) => Ended::Crashed(
                "the run's thread panicked outside the plugin (in the inputs factory or the host side)"
                    .to_string(),
            ),
        }
    }

    /// The outcome of a run that did not end the way the check wanted.
    fn failed_run(&self, ended: Ended, seen: &mut Seen) -> Outcome {
        match ended {
            Ended::Finished(Ok(_)) => Outcome::Failed("the run succeeded unexpectedly".to_string()),
            Ended::Finished(Err(e)) => {
                seen.error(&e);
                if e.kind == ErrorKind::Panic {
                    Outcome::Failed(format!("the component panicked: {e}"))
                } else {
                    Outcome::Failed(format!(
                        "failed with an error of kind {}: {e}",
                        kind_name(e.kind)
                    ))
                }
            }
            Ended::TimedOut => {
                Outcome::Failed(format!("the run did not end within {:?}", self.timeout))
            }
            Ended::Crashed(why) => Outcome::Failed(why),
        }
    }

    fn rows_outcome(&self, role: Role, collected: &Collected, rows: usize) -> Outcome {
        match role {
            Role::Writer => {
                let expected = self.input_rows();
                match expected {
                    Ok(_) if !collected.is_empty() => Outcome::Failed(format!(
                        "a writer returns no output, this one returned {}",
                        collected.len()
                    )),
                    Ok(_) => Outcome::Passed,
                    Err(e) => Outcome::Failed(format!("the inputs factory's streams fail: {e}")),
                }
            }
            Role::Extractor | Role::Processor => {
                if rows == 0 && !self.expect_empty {
                    Outcome::Failed(
                        "the valid run produced no rows (call `expect_empty()` if that is right)"
                            .to_string(),
                    )
                } else if collected.is_empty() {
                    Outcome::Failed("the valid run returned no output stream".to_string())
                } else {
                    Outcome::Passed
                }
            }
        }
    }

    fn metrics_outcome(&self, role: Role, ctx: &TestContext, rows: usize) -> Outcome {
        let (metric, expected) = match role {
            Role::Extractor => ("rows_read", Ok(rows)),
            Role::Writer => ("rows_written", self.input_rows()),
            Role::Processor => return Outcome::Skipped("no metric required of a processor".into()),
        };
        let reported = ctx.metrics().iter().any(|(n, _, _)| n == metric);
        if !reported {
            return Outcome::Failed(format!("no `{metric}` metric was emitted"));
        }
        let total = ctx.metric_total(metric);
        match expected {
            Ok(expected) if total == expected as f64 => Outcome::Passed,
            Ok(expected) => Outcome::Failed(format!(
                "`{metric}` adds up to {total} but {expected} rows went through"
            )),
            Err(e) => Outcome::Failed(format!("the inputs factory's streams fail: {e}")),
        }
    }

    /// Rows in a fresh set of inputs.
    fn input_rows(&self) -> Result<usize, PluginError> {
        let mut rows = 0;
        for (_, stream) in self.fresh_inputs() {
            for batch in super::collect(stream)? {
                rows += batch.num_rows();
            }
        }
        Ok(rows)
    }

    /// Cancelled in time: an error of kind `Cancelled`, or fewer rows than the valid run (read by an
    /// extractor or processor, written by a writer according to its `rows_written`).
    fn cancel_outcome(
        &self,
        role: Role,
        ended: Ended,
        ctx: &TestContext,
        baseline_rows: Option<usize>,
        seen: &mut Seen,
    ) -> Outcome {
        let baseline_rows = match role {
            Role::Writer => self.input_rows().ok(),
            Role::Extractor | Role::Processor => baseline_rows,
        };
        if baseline_rows == Some(0) {
            return Outcome::Skipped(
                "the valid run moves no rows: there is nothing to cancel".to_string(),
            );
        }
        match ended {
            Ended::Finished(Err(e)) if e.kind == ErrorKind::Cancelled => {
                seen.error(&e);
                Outcome::Passed
            }
            Ended::Finished(Ok(collected)) => {
                let rows: usize = match role {
                    Role::Writer => ctx.metric_total("rows_written") as usize,
                    Role::Extractor | Role::Processor => collected
                        .iter()
                        .flat_map(|(_, _, b)| b.iter().map(RecordBatch::num_rows))
                        .sum(),
                };
                match baseline_rows {
                    Some(all) if rows < all => Outcome::Passed,
                    _ => Outcome::Failed(format!(
                        "the run ignored cancellation: it succeeded with {rows} row(s); expected an error of kind cancelled (`ctx.check_cancelled()?`) or an early end"
                    )),
                }
            }
            other => self.failed_run(other, seen),
        }
    }
}

/// Every log line and error message seen during the checks, with where it came from.
#[derive(Default)]
struct Seen {
    texts: Vec<(String, String)>,
}

impl Seen {
    fn logs(&mut self, ctx: &TestContext) {
        for (level, line) in ctx.logs() {
            let level = format!("{level:?}").to_lowercase();
            self.texts.push((format!("a log line ({level})"), line));
        }
    }

    fn error(&mut self, e: &PluginError) {
        let what = format!("error `{}`", e.code);
        self.texts.push((what.clone(), e.message.clone()));
        if let Some(help) = &e.help {
            self.texts
                .push((format!("the help of {what}"), help.clone()));
        }
    }
}

fn role_from_spec(spec: Option<&Value>) -> Role {
    let modes: Vec<&str> = spec
        .and_then(|s| s.get("modes"))
        .and_then(Value::as_array)
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if modes.contains(&"write") {
        Role::Writer
    } else if modes.contains(&"transform") {
        Role::Processor
    } else if modes.contains(&"extract") {
        Role::Extractor
    } else {
        Role::Processor
    }
}

fn schema_outcome(collected: &Collected) -> Outcome {
    for (name, schema, batches) in collected {
        if let Some(i) = batches.iter().position(|b| b.schema() != *schema) {
            return Outcome::Failed(format!(
                "output `{name}`: batch {i} has schema {:?} but the stream declares {:?}",
                batches[i].schema(),
                schema
            ));
        }
    }
    Outcome::Passed
}

fn skipped_no_run() -> Outcome {
    Outcome::Skipped("the valid run failed".to_string())
}

fn kind_name(kind: ErrorKind) -> &'static str {
    kind.as_str()
}

fn kinds(kinds: &[ErrorKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    fn batch(name: &str) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2]))]).unwrap()
    }

    // Across the C stream interface the importer reads every batch with the stream's schema, so a plugin's
    // mismatch surfaces as a stream error or wrong data; the check itself is exercised here.
    #[test]
    fn a_batch_with_another_schema_fails_the_schema_check() {
        let good = batch("n");
        let collected: Collected =
            vec![("df".into(), good.schema(), vec![good.clone(), good.clone()])];
        assert_eq!(schema_outcome(&collected), Outcome::Passed);
        let collected: Collected =
            vec![("df".into(), good.schema(), vec![good.clone(), batch("m")])];
        match schema_outcome(&collected) {
            Outcome::Failed(why) => {
                assert!(why.starts_with("output `df`: batch 1 has schema"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn assert_all_passed_allows_only_the_named_skips() {
        let report = |outcomes: Vec<(&'static str, Outcome)>| Report {
            component: "acme.writer".into(),
            checks: outcomes
                .into_iter()
                .map(|(name, outcome)| CheckResult { name, outcome })
                .collect(),
        };
        let skipped = || Outcome::Skipped("no stream".into());
        let ok = report(vec![
            (checks::RUN, Outcome::Passed),
            (checks::CANCEL_DURING, skipped()),
        ]);
        ok.assert_all_passed(&[checks::CANCEL_DURING]);
        let panicked = |r: Report, may_skip: &'static [&'static str]| {
            std::panic::catch_unwind(move || r.assert_all_passed(may_skip))
                .expect_err("it panics")
                .downcast::<String>()
                .map(|m| *m)
                .unwrap_or_default()
        };
        let why = panicked(
            report(vec![
                (checks::RUN, Outcome::Passed),
                (checks::CANCEL_DURING, skipped()),
            ]),
            &[],
        );
        assert!(
            why.starts_with("`acme.writer`: 1 compliance check(s) did not pass:\n  - cancelled after the first batch was skipped: no stream"),
            "{why}"
        );
        // A named check may be skipped, not failed.
        let why = panicked(
            report(vec![(
                checks::CANCEL_DURING,
                Outcome::Failed("ignored it".into()),
            )]),
            &[checks::CANCEL_DURING],
        );
        assert!(
            why.contains("- cancelled after the first batch failed: ignored it"),
            "{why}"
        );
    }

    #[test]
    fn the_role_comes_from_the_modes() {
        let spec = |modes: Value| serde_json::json!({ "modes": modes });
        assert_eq!(
            role_from_spec(Some(&spec(serde_json::json!(["extract", "discover"])))),
            Role::Extractor
        );
        assert_eq!(
            role_from_spec(Some(&spec(serde_json::json!(["write"])))),
            Role::Writer
        );
        assert_eq!(
            role_from_spec(Some(&spec(serde_json::json!(["transform"])))),
            Role::Processor
        );
        assert_eq!(role_from_spec(None), Role::Processor);
    }
}
