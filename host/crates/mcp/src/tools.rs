//! The MCP tools. Those that need no secret run here, over the library crates: `components_list`,
//! `component_spec`, `oml_schema`, `build_context` (`osiris_llm::context`), `oml_validate`, `runs_list`,
//! `runs_show`. Those that touch connections run in a child `osiris` ([`crate::child`]): `compile`, `run`, `discovery_run`,
//! `connections_list`. Every result is JSON (`structuredContent`, and the same JSON as text); a failure is a
//! tool error (`isError: true`) shaped `{"ok": false, "exit_code", "error": {"code", "message", "help"}}` with
//! osiris's own error code.

use crate::{Options, child, redact};
use osiris_core::codes::Code;
use osiris_core::config::{ProjectConfig, ValidationMode};
use osiris_core::diag::Diagnostic;
use osiris_core::exit::{Exit, Fail};
use osiris_oml::Mode;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The server: the options it was started with and its tool router.
#[derive(Clone)]
pub struct Server {
    opts: Arc<Options>,
    tool_router: ToolRouter<Server>,
}

/// Where pipelines given as OML text are written, relative to the project: `oml-<sha256[:12]>.yaml`.
pub const PIPELINES_DIR: &str = ".osiris/mcp/pipelines";

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ComponentsListArgs {
    /// Only components supporting this component mode (`extract`, `write`, `transform`, `discover`, ...).
    pub mode: Option<String>,
    /// Only components whose driver is available.
    pub runnable: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ComponentSpecArgs {
    /// The component, e.g. `mysql.extractor`.
    pub name: String,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct BuildContextArgs {
    /// Only these components (default: every component).
    pub components: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct CheckArgs {
    /// `warn` (default: `OSIRIS_VALIDATION`, then `validation.mode` in osiris.yaml), `strict` or `off`.
    pub mode: Option<String>,
    /// Profile whose `profiles.<P>.params` apply.
    pub profile: Option<String>,
    /// Parameter values, highest precedence: `{"start_date": "2024-01-01"}`.
    pub params: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ValidateArgs {
    /// The pipeline, as OML (YAML) text.
    pub oml: String,
    /// The file name diagnostics show (default `pipeline.yaml`).
    pub file: Option<String>,
    #[serde(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct CompileArgs {
    /// A pipeline file inside the project (relative to the project directory).
    pub path: Option<String>,
    /// Or the pipeline as OML text (saved under `.osiris/mcp/pipelines/`).
    pub oml: Option<String>,
    #[serde(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RunArgs {
    /// A pipeline file, a compiled `manifest.yaml` or a compile directory inside the project.
    pub path: Option<String>,
    /// Or the pipeline as OML text (saved under `.osiris/mcp/pipelines/`).
    pub oml: Option<String>,
    /// Check everything (manifest, drivers, connections) without running.
    #[serde(default)]
    pub dry_run: bool,
    /// Must be `true` for a real run (one that reads and writes data).
    #[serde(default)]
    pub confirm: bool,
    /// Retry a failed step up to N times when its component declares it safe.
    pub retries: Option<u32>,
    #[serde(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RunsListArgs {
    /// Only runs of this pipeline (its id).
    pub pipeline: Option<String>,
    /// Only runs with this status: `succeeded`, `failed`, `cancelled`, `crashed` or `running`.
    pub status: Option<String>,
    /// At most this many runs (default 20).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RunsShowArgs {
    /// The run id (`run-<12 hex>`); a unique prefix is enough.
    pub run_id: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct DiscoveryArgs {
    /// The connection, `@family.alias` (or `@family` for its default alias).
    pub reference: String,
    /// Sample rows per table (default 0). Only when osiris.yaml has `discovery.llm_samples: true`.
    pub samples: Option<u64>,
    /// Ignore the discovery cache.
    #[serde(default)]
    pub refresh: bool,
}

/// A tool error from a failure with a user-facing message.
fn fail_result(f: &Fail) -> CallToolResult {
    CallToolResult::structured_error(redact::json(&f.to_json()))
}

fn mcp_fail(exit: Exit, code: Code, message: &str, help: &str) -> Fail {
    Fail::new(exit, format!("error[{code}]: {message}\n  = help: {help}"))
}

/// Runs in-process work on the blocking pool; a panic becomes an internal-error tool result.
async fn blocking<F>(tool: &'static str, f: F) -> CallToolResult
where
    F: FnOnce() -> Result<Value, Fail> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => CallToolResult::structured(v),
        Ok(Err(fail)) => fail_result(&fail),
        Err(_) => fail_result(&Fail::new(
            Exit::Internal,
            format!(
                "error[{}]: internal error: the `{tool}` tool panicked (the message is on the server's stderr)\n  = help: this is a bug: please report it with the tool call",
                Code::MCP_E007
            ),
        )),
    }
}

/// A child's outcome as a tool result: its JSON on success, [`child::failure`] otherwise.
fn child_result(
    out: Result<child::Output, Value>,
    shape: impl FnOnce(Value) -> Value,
) -> CallToolResult {
    match out {
        Err(e) => CallToolResult::structured_error(e),
        Ok(o) if o.code == 0 => match o.json {
            Some(v) => CallToolResult::structured(shape(v)),
            None => {
                CallToolResult::structured_error(child::failure(&child::Output { code: 1, ..o }))
            }
        },
        Ok(o) => CallToolResult::structured_error(shape_failure(child::failure(&o))),
    }
}

/// Diagnostics inside a failure's `result` get the tool's shape too.
fn shape_failure(mut v: Value) -> Value {
    if let Some(r) = v.get_mut("result") {
        normalize_reports(r);
    }
    v
}

/// Every diagnostic with the same keys: code, severity, message, file, line, column, pointer, step,
/// component, help (null when not known).
pub fn diagnostic_json(d: &Value) -> Value {
    let k = |key: &str| d.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "code": k("code"),
        "severity": k("severity"),
        "message": k("message"),
        "file": k("file"),
        "line": k("line"),
        "column": k("column"),
        "pointer": k("pointer"),
        "step": k("step"),
        "component": k("component"),
        "help": k("help"),
    })
}

/// `diagnostics` (at the top, or in `report` as `run` prints it) in the shape of [`diagnostic_json`].
fn normalize_reports(v: &mut Value) {
    for ptr in ["/diagnostics", "/report/diagnostics"] {
        if let Some(Value::Array(list)) = v.pointer_mut(ptr) {
            for d in list.iter_mut() {
                *d = diagnostic_json(d);
            }
        }
    }
}

fn diagnostics_json(ds: &[Diagnostic]) -> Value {
    Value::Array(
        ds.iter()
            .map(|d| diagnostic_json(&serde_json::to_value(d).unwrap_or(Value::Null)))
            .collect(),
    )
}

/// The validator's mode: the tool's `mode`, else `OSIRIS_VALIDATION`, else `validation.mode`.
fn resolve_mode(given: Option<&str>, config: &ProjectConfig) -> Result<Mode, Fail> {
    let bad = |what: &str, v: &str| {
        mcp_fail(
            Exit::Validation,
            Code::MCP_E009,
            &format!("invalid {what} `{v}`"),
            "use `warn`, `strict` or `off`",
        )
    };
    if let Some(m) = given {
        return Mode::parse(m).ok_or_else(|| bad("mode", m));
    }
    match std::env::var("OSIRIS_VALIDATION") {
        Ok(v) if !v.trim().is_empty() => {
            Mode::parse(&v).ok_or_else(|| bad("OSIRIS_VALIDATION", &v))
        }
        _ => Ok(match config.validation.mode {
            ValidationMode::Warn => Mode::Warn,
            ValidationMode::Strict => Mode::Strict,
            ValidationMode::Off => Mode::Off,
        }),
    }
}

/// The environment as the validator may see it: `OSIRIS_PARAM_*` only (pipeline parameters). Nothing else of
/// the environment, in particular no `OSIRIS_CONN__*`, is read by this process.
fn param_env(name: &str) -> Option<String> {
    name.starts_with("OSIRIS_PARAM_")
        .then(|| std::env::var(name).ok())
        .flatten()
}

impl CheckArgs {
    /// `--mode=`, `--profile=`, `--param=` for a child (the `=` form: a value is never taken for a flag).
    fn child_args(&self) -> Result<Vec<OsString>, Fail> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(m) = &self.mode {
            let mode = Mode::parse(m).ok_or_else(|| {
                mcp_fail(
                    Exit::Validation,
                    Code::MCP_E009,
                    &format!("invalid mode `{m}`"),
                    "use `warn`, `strict` or `off`",
                )
            })?;
            args.push(format!("--mode={}", mode.as_str()).into());
        }
        if let Some(p) = &self.profile {
            args.push(format!("--profile={p}").into());
        }
        for (k, v) in self.params.iter().flatten() {
            args.push(format!("--param={k}={v}").into());
        }
        Ok(args)
    }
}

impl Server {
    pub fn new(opts: Options) -> Server {
        Server {
            opts: Arc::new(opts),
            tool_router: Self::tool_router(),
        }
    }

    fn config(&self) -> Result<ProjectConfig, Fail> {
        ProjectConfig::load(&self.opts.global.config)
    }

    /// A pipeline named by the caller: a path inside the project, never one of the files that hold connections
    /// or secrets (MCP-E003); or OML text, saved under [`PIPELINES_DIR`]. Returns the path relative to the
    /// project, as the child is given it.
    fn pipeline(&self, path: Option<&str>, oml: Option<&str>) -> Result<String, Fail> {
        let project = &self.opts.project;
        match (path, oml) {
            (Some(_), Some(_)) | (None, None) => Err(mcp_fail(
                Exit::Validation,
                Code::MCP_E003,
                "give the pipeline as `path` or as `oml`, not both and not neither",
                "`path` names a file inside the project; `oml` is the pipeline's text",
            )),
            (None, Some(text)) => {
                let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()));
                let rel = format!("{PIPELINES_DIR}/oml-{}.yaml", &hash[..12]);
                let file = project.join(&rel);
                let written = file
                    .parent()
                    .map(std::fs::create_dir_all)
                    .unwrap_or(Ok(()))
                    .and_then(|_| std::fs::write(&file, text));
                written.map_err(|e| {
                    Fail::new(
                        Exit::Config,
                        format!(
                            "error[{}]: cannot save the pipeline to `{rel}`: {e}\n  = help: check that the project directory is writable", Code::MCP_E008
                        ),
                    )
                })?;
                Ok(rel)
            }
            (Some(p), None) => self.project_path(p),
        }
    }

    fn project_path(&self, p: &str) -> Result<String, Fail> {
        let project = &self.opts.project;
        let refuse = |why: &str| {
            mcp_fail(
                Exit::Validation,
                Code::MCP_E003,
                &format!("`{p}` cannot be used as a pipeline: {why}"),
                "name a pipeline file inside the project (relative to it), or pass the pipeline as `oml`",
            )
        };
        let root = project
            .canonicalize()
            .map_err(|e| refuse(&format!("the project directory is unreadable ({e})")))?;
        let given = Path::new(p);
        let full = if given.is_absolute() {
            given.to_path_buf()
        } else {
            project.join(given)
        };
        let real = full
            .canonicalize()
            .map_err(|_| refuse("there is no such file in the project"))?;
        let Ok(rel) = real.strip_prefix(&root) else {
            return Err(refuse("it is outside the project directory"));
        };
        // The files that hold connections and secrets are never handed to the validator or compiler, so no
        // diagnostic can quote one of their values.
        let mut forbidden: Vec<PathBuf> = vec![
            root.join(osiris_core::secrets::CONNECTIONS_FILE),
            root.join(osiris_core::config::CONFIG_FILE),
        ];
        for f in [&self.opts.connections, &self.opts.secrets_file]
            .into_iter()
            .flatten()
        {
            if let Ok(c) = project.join(f).canonicalize() {
                forbidden.push(c);
            }
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if forbidden.contains(&real) || name.starts_with(".env") {
            return Err(refuse("it holds connections, secrets or project settings"));
        }
        Ok(rel.display().to_string())
    }

    async fn child(&self, args: Vec<OsString>) -> Result<child::Output, Value> {
        child::osiris(&self.opts, args).await
    }
}

#[tool_router]
impl Server {
    #[tool(
        description = "List the components pipelines can use: name, version, component modes, capabilities, description, whether a driver is available (runnable) and where it comes from (builtin or a plugin). Start here, or with build_context."
    )]
    async fn components_list(
        &self,
        Parameters(a): Parameters<ComponentsListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let g = self.opts.global.clone();
        Ok(blocking("components_list", move || {
            let reg = osiris_runner::modules::build_registry(&g);
            let rows: Vec<Value> = reg
                .iter()
                .filter(|s| !a.runnable.unwrap_or(false) || s.runnable)
                .filter(|s| a.mode.as_ref().is_none_or(|m| s.supports_mode(m)))
                .map(|s| {
                    json!({
                        "name": s.name,
                        "version": s.version,
                        "modes": s.modes,
                        "capabilities": s.capabilities.iter().filter(|(_, on)| **on).map(|(k, _)| k).collect::<Vec<_>>(),
                        "description": s.description,
                        "runnable": s.runnable,
                        "source": s.source.label(),
                    })
                })
                .collect();
            Ok(json!({ "components": rows }))
        })
        .await)
    }

    #[tool(
        description = "A component's full spec as JSON: configSchema (fields, types, enums, defaults, required), modes, capabilities, secrets (field pointers, never values), connection fields and examples."
    )]
    async fn component_spec(
        &self,
        Parameters(a): Parameters<ComponentSpecArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let g = self.opts.global.clone();
        Ok(blocking("component_spec", move || {
            let reg = osiris_runner::modules::build_registry(&g);
            match reg.get(&a.name) {
                Some(s) => Ok(json!({ "name": s.name, "source": s.source.label(), "spec": s.raw })),
                None => Err(Fail::new(
                    Exit::Validation,
                    reg.unknown_component(&a.name).render(None),
                )),
            }
        })
        .await)
    }

    #[tool(
        description = "The JSON Schema (draft 2020-12) of an OML pipeline for the components installed here: top-level keys, step keys, the component names, and per component its OML modes and its config schema. oml_validate stays the authority (wiring, parameters, connections)."
    )]
    async fn oml_schema(&self) -> Result<CallToolResult, ErrorData> {
        let g = self.opts.global.clone();
        Ok(blocking("oml_schema", move || {
            let reg = osiris_runner::modules::build_registry(&g);
            Ok(osiris_oml::schema::json_schema(reg.iter().map(|s| {
                osiris_oml::schema::ComponentSchema {
                    name: &s.name,
                    modes: &s.modes,
                    config_schema: &s.config_schema,
                }
            })))
        })
        .await)
    }

    #[tool(
        description = "The compact authoring context for a model: the OML rules and, per component, its modes, required fields, enums, defaults, secret field names and examples (the same as `osiris prompts build-context --format json`)."
    )]
    async fn build_context(
        &self,
        Parameters(a): Parameters<BuildContextArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let g = self.opts.global.clone();
        Ok(blocking("build_context", move || {
            let reg = osiris_runner::modules::build_registry(&g);
            let components: Vec<String> = a.components.unwrap_or_default();
            let ctx = osiris_llm::context::build(&reg, &components)
                .map_err(|d| Fail::new(Exit::Validation, d.render(None)))?;
            let doc: Value = serde_json::from_str(&ctx.json).map_err(|e| {
                Fail::new(
                    Exit::Internal,
                    format!("error: internal error: the context is not JSON ({e})\n  = help: this is a bug: please report it"),
                )
            })?;
            Ok(json!({
                "tokens": ctx.tokens,
                "tokenizer": "cl100k_base",
                "fingerprint": ctx.fingerprint,
                "components": ctx.components,
                "context": doc,
                "text": ctx.text,
            }))
        })
        .await)
    }

    #[tool(
        description = "Validate a pipeline given as OML text, exactly as `osiris oml validate` does. Returns ok, the mode, error and warning counts and every diagnostic with code, severity, message, line, column, JSON pointer, step, component and help. An invalid pipeline is a normal result with ok: false; fix every error and call it again."
    )]
    async fn oml_validate(
        &self,
        Parameters(a): Parameters<ValidateArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let server = self.clone();
        Ok(blocking("oml_validate", move || {
            let config = server.config()?;
            let mode = resolve_mode(a.check.mode.as_deref(), &config)?;
            let profile = a.check.profile.clone().unwrap_or_else(|| "default".into());
            let params: Vec<(String, String)> =
                a.check.params.clone().into_iter().flatten().collect();
            let reg = osiris_runner::modules::build_registry(&server.opts.global);
            let label = a.file.clone().unwrap_or_else(|| "pipeline.yaml".into());
            let report = osiris_oml::check(
                &label,
                &a.oml,
                &reg,
                &osiris_oml::Options {
                    mode,
                    profile: &profile,
                    profile_explicit: a.check.profile.is_some(),
                    params: &params,
                    env: &param_env,
                },
            );
            Ok(json!({
                "ok": report.errors() == 0,
                "file": label,
                "mode": mode.as_str(),
                "errors": report.errors(),
                "warnings": report.warnings(),
                "diagnostics": diagnostics_json(&report.diagnostics),
            }))
        })
        .await)
    }

    #[tool(
        description = "Compile a pipeline (a `path` inside the project, or `oml` text) into a run manifest, as `osiris compile` does: returns the compile directory, the manifest hash and the diagnostics. A pipeline with errors is a tool error carrying the first error's code and every diagnostic."
    )]
    async fn compile(
        &self,
        Parameters(a): Parameters<CompileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let file = match self.pipeline(a.path.as_deref(), a.oml.as_deref()) {
            Ok(f) => f,
            Err(f) => return Ok(fail_result(&f)),
        };
        let mut args: Vec<OsString> = vec!["compile".into(), "--format=json".into()];
        match a.check.child_args() {
            Ok(c) => args.extend(c),
            Err(f) => return Ok(fail_result(&f)),
        }
        args.push("--".into());
        args.push(file.clone().into());
        Ok(child_result(self.child(args).await, |mut v| {
            normalize_reports(&mut v);
            v["pipeline_file"] = json!(file);
            v
        }))
    }

    #[tool(
        description = "Run a pipeline (a `path` inside the project: OML, a manifest.yaml or a compile directory; or `oml` text), as `osiris run` does. `dry_run: true` checks manifest, drivers and connections without moving data; a real run needs `confirm: true`. Returns the run summary (status, steps, rows, run_id, run directory). A failed run is a tool error with the osiris error code and the summary."
    )]
    async fn run(&self, Parameters(a): Parameters<RunArgs>) -> Result<CallToolResult, ErrorData> {
        if !a.dry_run && !a.confirm {
            return Ok(fail_result(&mcp_fail(
                Exit::Validation,
                Code::MCP_E004,
                "a real run needs `confirm: true`",
                "pass `dry_run: true` to check the pipeline without running it, or `confirm: true` to run it (it reads and writes data through the project's connections)",
            )));
        }
        let file = match self.pipeline(a.path.as_deref(), a.oml.as_deref()) {
            Ok(f) => f,
            Err(f) => return Ok(fail_result(&f)),
        };
        let mut args: Vec<OsString> = vec!["run".into(), "--format=json".into()];
        if a.dry_run {
            args.push("--dry-run".into());
        }
        if let Some(n) = a.retries {
            args.push(format!("--retries={n}").into());
        }
        match a.check.child_args() {
            Ok(c) => args.extend(c),
            Err(f) => return Ok(fail_result(&f)),
        }
        args.extend(child::connection_args(&self.opts));
        args.push("--".into());
        args.push(file.clone().into());
        Ok(child_result(self.child(args).await, |mut v| {
            v["pipeline_file"] = json!(file);
            v
        }))
    }

    #[tool(
        description = "Past runs, newest first (the project's run index): run_id, pipeline, profile, status, exit code, start, duration, steps, rows read and written, run directory."
    )]
    async fn runs_list(
        &self,
        Parameters(a): Parameters<RunsListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.opts.project.clone();
        Ok(blocking("runs_list", move || {
            if let Some(s) = a.status.as_deref()
                && !["succeeded", "failed", "cancelled", "crashed", "running"].contains(&s)
            {
                return Err(mcp_fail(
                    Exit::Validation,
                    Code::MCP_E009,
                    &format!("invalid status `{s}`"),
                    "use `succeeded`, `failed`, `cancelled`, `crashed` or `running`",
                ));
            }
            let runs = osiris_runner::history::list(
                &project,
                &osiris_runner::history::Filter {
                    pipeline: a.pipeline.as_deref(),
                    status: a.status.as_deref(),
                    limit: Some(a.limit.unwrap_or(20)),
                },
            )?;
            Ok(redact::json(&json!({ "runs": runs })))
        })
        .await)
    }

    #[tool(
        description = "One past run: status, exit code, error, failed step, per-step status, attempts, rows and durations, and the files of its run directory."
    )]
    async fn runs_show(
        &self,
        Parameters(a): Parameters<RunsShowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.opts.project.clone();
        Ok(blocking("runs_show", move || {
            let shown = osiris_runner::history::show(&project, &a.run_id)?;
            Ok(redact::json(&shown.to_json()))
        })
        .await)
    }

    #[tool(
        description = "The connections this project defines: family, alias, reference (`@family.alias`, what a step's `connection` takes), whether it is the family's default, whether every variable it needs is set, and the names of the fields it has. Never a value."
    )]
    async fn connections_list(&self) -> Result<CallToolResult, ErrorData> {
        let mut args: Vec<OsString> =
            vec!["connections".into(), "list".into(), "--format=json".into()];
        args.extend(child::connection_args(&self.opts));
        Ok(child_result(self.child(args).await, |v| {
            let conns: Vec<Value> = v["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let fields: Vec<Value> = c["fields"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| f["name"].clone())
                        .collect();
                    json!({
                        "family": c["family"],
                        "alias": c["alias"],
                        "reference": c["reference"],
                        "default": c["default"],
                        "ready": c["ready"],
                        "missing_env": c["missing_env"],
                        "fields": fields,
                    })
                })
                .collect();
            json!({ "connections": conns })
        }))
    }

    #[tool(
        description = "What a connection holds: tables (or files), columns with source and Arrow types, nullability, primary keys, row estimates. Schema only: sample rows only when `samples` > 0 and the project allows it (`discovery.llm_samples: true` in osiris.yaml). Cached like `osiris discovery run`."
    )]
    async fn discovery_run(
        &self,
        Parameters(a): Parameters<DiscoveryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if osiris_oml::check::parse_connection(&a.reference).is_none() {
            return Ok(fail_result(&mcp_fail(
                Exit::Validation,
                Code::MCP_E009,
                &format!("`{}` is not a connection reference", a.reference),
                "write `@family.alias` (or `@family` for its default); connections_list shows them",
            )));
        }
        let allowed = match self.config() {
            Ok(c) => c.discovery.llm_samples,
            Err(f) => return Ok(fail_result(&f)),
        };
        let samples = a.samples.unwrap_or(0);
        if samples > 0 && !allowed {
            return Ok(fail_result(&mcp_fail(
                Exit::Config,
                Code::MCP_E005,
                "sample rows are not shared with an MCP client in this project",
                "call discovery_run without `samples` for the schema; to allow rows, set `discovery: { llm_samples: true }` in osiris.yaml",
            )));
        }
        let mut args: Vec<OsString> = vec![
            "discovery".into(),
            "run".into(),
            "--format=json".into(),
            format!("--samples={}", samples.min(100)).into(),
        ];
        if a.refresh {
            args.push("--refresh".into());
        }
        args.extend(child::connection_args(&self.opts));
        args.push("--".into());
        args.push(a.reference.clone().into());
        Ok(child_result(self.child(args).await, move |mut v| {
            if samples == 0 {
                drop_samples(&mut v);
            }
            v
        }))
    }
}

/// Removes every `samples` list (a cached result may hold rows from an earlier `--samples N`).
fn drop_samples(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("samples");
            m.values_mut().for_each(drop_samples);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_samples),
        _ => {}
    }
}

const INSTRUCTIONS: &str = "osiris compiles and runs data pipelines written in OML (YAML). To write one: \
call build_context (or components_list and component_spec) and connections_list, write the OML, call \
oml_validate and fix every diagnostic until ok is true, then compile, then run with dry_run: true and, when \
the user agrees, confirm: true. Reference connections as `@family.alias`; never write a secret into a \
pipeline. discovery_run shows tables and columns of a connection.";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("osiris", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}
