//! {{project-name}}: the osiris component `{{family}}.{{role}}` ({{description}}).
//!
//! `export_ocp!` below exports the component under the entry symbol `osiris_ocp_{{crate_name}}`;
//! `osiris plugins pack` writes that name into the package manifest (see `[package.metadata.osiris]`).

{% if role == "extractor" %}
use osiris_plugin_sdk::arrow_array::{ArrayRef, Int64Array, RecordBatch, RecordBatchReader, StringArray};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use std::sync::Arc;
{% elsif role == "writer" %}
use osiris_plugin_sdk::arrow_array::{RecordBatch, RecordBatchReader};
{% else %}
use osiris_plugin_sdk::arrow_array::{ArrayRef, RecordBatch, RecordBatchReader, StringArray};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use std::sync::Arc;
{% endif %}
use osiris_plugin_sdk::serde_json::Value;
use osiris_plugin_sdk::{BatchStream, Context, Driver, PluginError, Streams};

/// The component's spec, embedded so the host can check it against the packaged copy.
pub const SPEC: &str = include_str!("../spec.yaml");

/// The component name (`name:` in spec.yaml).
pub const COMPONENT: &str = "{{family}}.{{role}}";

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_{{crate_name}},
    name: env!("CARGO_PKG_NAME"), version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component { name: COMPONENT, spec_yaml: SPEC, driver: || Box::new(Component) },
    ],
}

/// The driver. One instance may serve several steps at once: keep per-step state in the stream, not here.
pub struct Component;
{% if role == "extractor" %}
/// Emits `rows` rows (`id`, `name`) in batches of `batch_size`. Replace it with reads from your source: the host
/// pulls batches lazily, so fetch a page per `next()` instead of loading everything in `run`.
struct Rows {
    schema: SchemaRef,
    next: i64,
    total: i64,
    batch_size: i64,
    ctx: Context,
}

impl Iterator for Rows {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            self.ctx.metric("rows_read", self.total as f64, Some("rows"));
            return None;
        }
        if self.ctx.is_cancelled() {
            return Some(Err(ArrowError::ExternalError(Box::new(PluginError::new(
                osiris_plugin_sdk::ErrorKind::Cancelled,
                "CANCELLED",
                "the run was cancelled",
            )))));
        }
        let end = (self.next + self.batch_size).min(self.total);
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(self.next..end));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (self.next..end).map(|i| format!("{{family}}-{i}")),
        ));
        self.next = end;
        Some(RecordBatch::try_new(self.schema.clone(), vec![ids, names]))
    }
}

impl RecordBatchReader for Rows {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Driver for Component {
    fn run(&self, step_id: &str, config: &Value, _inputs: Streams, ctx: &Context) -> Result<Streams, PluginError> {
        let total = config["rows"].as_i64().unwrap_or(3);
        let batch_size = config["batch_size"].as_i64().unwrap_or(1024);
        if total < 0 || batch_size < 1 {
            return Err(PluginError::config(format!(
                "step `{step_id}`: `rows` must be >= 0 and `batch_size` >= 1 (got {total} and {batch_size})"
            ))
            .with_help("fix the step's config"));
        }
        ctx.info(&format!("{}: emitting {total} rows", COMPONENT));
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let rows = Rows { schema, next: 0, total, batch_size, ctx: ctx.clone() };
        Ok(Streams::from([("df".to_string(), Box::new(rows) as BatchStream)]))
    }
}
{% elsif role == "writer" %}
impl Driver for Component {
    /// Consumes the input `df` inside `run` (a writer returns no output) and reports `rows_written`.
    /// Replace the loop body with writes to your target.
    fn run(&self, step_id: &str, config: &Value, mut inputs: Streams, ctx: &Context) -> Result<Streams, PluginError> {
        let input: BatchStream = osiris_plugin_sdk::take_input(&mut inputs, "df").ok_or_else(|| {
            PluginError::config(format!("step `{step_id}` gives `{}` no input", COMPONENT))
                .with_help("give the step exactly one upstream step in `needs`")
        })?;
        let columns = input.schema().fields().len();
        let mut rows = 0usize;
        for batch in input {
            ctx.check_cancelled()?;
            let batch: RecordBatch = batch.map_err(|e| PluginError::data(format!("step `{step_id}`: reading the input failed: {e}")))?;
            rows += batch.num_rows();
        }
        if rows == 0 && config["fail_on_empty"] == Value::Bool(true) {
            return Err(PluginError::data(format!("step `{step_id}`: the input has no rows"))
                .with_help("set `fail_on_empty: false` to accept an empty input"));
        }
        ctx.metric("rows_written", rows as f64, Some("rows"));
        ctx.info(&format!("{}: consumed {rows} rows of {columns} columns", COMPONENT));
        Ok(Streams::new())
    }
}
{% else %}
/// Appends the column `column` holding `value` to every batch of its input, lazily.
struct AddColumn {
    input: BatchStream,
    schema: SchemaRef,
    value: String,
    rows: usize,
    ctx: Context,
}

impl Iterator for AddColumn {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.ctx.check_cancelled() {
            return Some(Err(ArrowError::ExternalError(Box::new(e))));
        }
        let batch = match self.input.next() {
            None => {
                self.ctx.metric("rows_out", self.rows as f64, Some("rows"));
                return None;
            }
            Some(Err(e)) => return Some(Err(e)),
            Some(Ok(batch)) => batch,
        };
        self.rows += batch.num_rows();
        let added: ArrayRef = Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.value.as_str(), batch.num_rows()),
        ));
        let mut columns = batch.columns().to_vec();
        columns.push(added);
        Some(RecordBatch::try_new(self.schema.clone(), columns))
    }
}

impl RecordBatchReader for AddColumn {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Driver for Component {
    fn run(&self, step_id: &str, config: &Value, mut inputs: Streams, ctx: &Context) -> Result<Streams, PluginError> {
        let column = config["column"].as_str().unwrap_or("processed_by");
        let value = config["value"].as_str().unwrap_or("{{family}}").to_string();
        let input = osiris_plugin_sdk::take_input(&mut inputs, "df").ok_or_else(|| {
            PluginError::config(format!("step `{step_id}` gives `{}` no input", COMPONENT))
                .with_help("give the step exactly one upstream step in `needs`")
        })?;
        if input.schema().fields().iter().any(|f| f.name() == column) {
            return Err(PluginError::config(format!("step `{step_id}`: the input already has a column `{column}`"))
                .with_help("choose another `column`"));
        }
        let mut fields: Vec<Arc<Field>> = input.schema().fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(column, DataType::Utf8, false)));
        let schema = Arc::new(Schema::new(fields));
        let reader = AddColumn { input, schema, value, rows: 0, ctx: ctx.clone() };
        Ok(Streams::from([("df".to_string(), Box::new(reader) as BatchStream)]))
    }
}
{% endif %}
