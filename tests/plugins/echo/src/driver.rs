//! The `test.echo` driver. Also compiled into the host's integration tests (linked in) for the twin tests, so it
//! uses only the SDK and its re-exports.

use osiris_plugin_sdk::arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchReader};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use osiris_plugin_sdk::serde_json::{Value, json};
use osiris_plugin_sdk::{BatchStream, Context, Driver, ErrorKind, Level, PluginError, Streams};
use std::sync::Arc;

pub const SPEC: &str = include_str!("../spec.yaml");

pub struct Echo;

struct Numbering {
    input: BatchStream,
    schema: SchemaRef,
    next_row: i64,
    panic_in_stream: bool,
    ctx: Context,
}

impl Iterator for Numbering {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.panic_in_stream {
            panic!("echo was asked to panic while its output is read");
        }
        let batch = match self.input.next() {
            None => {
                // The context is still usable after `run` returned.
                self.ctx
                    .metric("rows_out", self.next_row as f64, Some("rows"));
                return None;
            }
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(batch)) => batch,
        };
        let rows = batch.num_rows() as i64;
        let numbers: ArrayRef = Arc::new(Int64Array::from_iter_values(
            self.next_row..self.next_row + rows,
        ));
        self.next_row += rows;
        let mut columns = batch.columns().to_vec();
        columns.push(numbers);
        Some(RecordBatch::try_new(self.schema.clone(), columns))
    }
}

impl RecordBatchReader for Numbering {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Driver for Echo {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        mut inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        if config["panic"] == json!(true) {
            panic!("echo was asked to panic in step `{step_id}`");
        }
        if let Some(message) = config["fail"].as_str() {
            return Err(PluginError::new(ErrorKind::Data, "ECHO-FAIL", message)
                .with_help("remove `fail` from the config"));
        }
        let column = config["column"].as_str().unwrap_or("row_number");
        let input = osiris_plugin_sdk::take_input(&mut inputs, "df").ok_or_else(|| {
            PluginError::config(format!("step `{step_id}` gives `test.echo` no input `df`"))
                .with_help("give the step exactly one upstream step")
        })?;
        let mut fields: Vec<Arc<Field>> = input.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(column, DataType::Int64, false)));
        let schema = Arc::new(Schema::new(fields));
        ctx.log(
            Level::Info,
            &format!("echo: step `{step_id}` adds column `{column}`"),
        );
        let reader = Numbering {
            input,
            schema,
            next_row: 0,
            panic_in_stream: config["panic_in_stream"] == json!(true),
            ctx: ctx.clone(),
        };
        Ok(Streams::from([(
            "df".to_string(),
            Box::new(reader) as BatchStream,
        )]))
    }

    fn discover(&self, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        Ok(json!({ "component": "test.echo", "config": config, "connection": ctx.connection() }))
    }

    fn doctor(&self, _config: &Value, ctx: &Context) -> Result<Value, PluginError> {
        ctx.check_cancelled()?;
        Ok(json!({ "ok": true }))
    }
}
