//! The one OML validator, shared by `osiris oml validate` and `osiris compile`.
//!
//! Invariant: checking never stops at the first problem; it returns everything it found, each placed at
//! file:line:col with the step id, and a plan only when there is no error.
//! Invariant: no secret value reaches a diagnostic: messages name fields, and the source shown under a
//! diagnostic has inline secret values masked.

use crate::catalog::{Catalog, Override, SpecView};
use crate::dag::{self, EdgeKind};
use crate::params::{self, ParamInputs, Params};
use crate::secrets::{self, Finding};
use crate::sql;
use osiris_core::codes::Code;
use osiris_core::diag::{Diagnostic, Severity, did_you_mean};
use osiris_core::yaml::{Flavor, SourceDoc, child};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const OML_VERSION: &str = "0.1.0";

pub(crate) const TOP_KEYS: &[&str] = &[
    "oml_version",
    "name",
    "steps",
    "description",
    "metadata",
    "schedule",
    "params",
    "profiles",
];
pub(crate) const STEP_KEYS: &[&str] = &[
    "id",
    "component",
    "mode",
    "config",
    "needs",
    "inputs",
    "description",
];

/// How strictly component configs are checked (`--mode`, `OSIRIS_VALIDATION`, `validation.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Config-schema violations are errors; findings that cannot change what runs are warnings.
    #[default]
    Warn,
    /// Every warning is an error too.
    Strict,
    /// Config schemas and connection-field rules are not checked (structure, wiring, parameters and inline
    /// secrets still are).
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "warn" => Some(Mode::Warn),
            "strict" => Some(Mode::Strict),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Warn => "warn",
            Mode::Strict => "strict",
            Mode::Off => "off",
        }
    }
}

pub struct Options<'a> {
    pub mode: Mode,
    pub profile: &'a str,
    pub profile_explicit: bool,
    pub params: &'a [(String, String)],
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A step ready to compile.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub id: String,
    pub component: String,
    pub driver: String,
    /// Component mode: extract | write | transform.
    pub mode: String,
    /// Params resolved, spec defaults applied, `connection` kept as a reference.
    pub config: Map<String, Value>,
    /// Upstream step ids in declaration order.
    pub needs: Vec<String>,
    /// Input alias -> upstream step id.
    pub inputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub oml_version: String,
    pub profile: String,
    /// Stable topological order.
    pub steps: Vec<PlannedStep>,
    /// The OML with parameters substituted (the `params`/`profiles` sections as written).
    pub resolved_oml: Value,
    pub params: BTreeMap<String, Value>,
    /// Component name -> (spec version, spec fingerprint) for every component used.
    pub components: BTreeMap<String, (String, String)>,
}

pub struct Report {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
    /// The source with inline secret values masked, for rendering diagnostics.
    pub display_source: String,
    pub plan: Option<Plan>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(Some(&self.display_source)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// OML step mode -> component mode.
pub fn component_mode(oml_mode: &str) -> Option<&'static str> {
    match oml_mode {
        "read" => Some("extract"),
        "write" => Some("write"),
        "transform" => Some("transform"),
        _ => None,
    }
}

pub(crate) fn oml_mode_of(component_mode: &str) -> Option<&'static str> {
    match component_mode {
        "extract" => Some("read"),
        "write" | "load" => Some("write"),
        "transform" => Some("transform"),
        _ => None,
    }
}

/// A parsed connection reference `@family` or `@family.alias`.
pub fn parse_connection(s: &str) -> Option<(&str, Option<&str>)> {
    let rest = s.strip_prefix('@')?;
    let (family, alias) = match rest.split_once('.') {
        Some((f, a)) => (f, Some(a)),
        None => (rest, None),
    };
    let fam_ok = family.starts_with(|c: char| c.is_ascii_lowercase())
        && family
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let alias_ok = alias.is_none_or(|a| {
        !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    (fam_ok && alias_ok).then_some((family, alias))
}

fn valid_step_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

struct Ctx<'a> {
    doc: &'a SourceDoc,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, d: Diagnostic, pointer: &str, prefer_key: bool) {
        let d = self.doc.at(d, pointer, prefer_key);
        self.diags.push(d);
    }

    /// Places at the value for scalars, at the key for containers and missing nodes.
    fn push_best(&mut self, d: Diagnostic, pointer: &str) {
        let scalar = self.doc.spans.contains_key(pointer)
            && self
                .doc
                .value
                .pointer(pointer)
                .is_some_and(|v| !v.is_object() && !v.is_array());
        self.push(d, pointer, !scalar);
    }
}

/// A step as written, after the structural checks.
struct Draft {
    index: usize,
    ptr: String,
    id: Option<String>,
    component: Option<String>,
    /// Component mode.
    mode: Option<&'static str>,
    config: Map<String, Value>,
    raw_config: Value,
    needs: Option<Vec<String>>,
    /// alias -> step id
    inputs: Vec<(String, String)>,
}

/// Runs every check on one OML text.
pub fn check(file: &str, text: &str, catalog: &dyn Catalog, opts: &Options<'_>) -> Report {
    let doc = match SourceDoc::parse(file, text, Flavor::Oml) {
        Ok(d) => d,
        Err(d) => {
            return Report {
                file: file.into(),
                diagnostics: vec![*d],
                display_source: text.into(),
                plan: None,
            };
        }
    };
    let mut cx = Ctx {
        doc: &doc,
        diags: Vec::new(),
    };
    let mut secret_values: Vec<secrets::Written> = Vec::new();

    check_top_level(&mut cx);

    // Parameters, then the document with parameters substituted (everything outside params/profiles).
    let params = params::resolve(
        &doc,
        &ParamInputs {
            profile: opts.profile,
            profile_explicit: opts.profile_explicit,
            cli: opts.params,
            env: opts.env,
        },
        &mut cx.diags,
    );
    let resolved = substitute_doc(&mut cx, &params);

    let steps_val = resolved
        .get("steps")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut drafts: Vec<Draft> = Vec::new();
    for (i, step) in steps_val.iter().enumerate() {
        if let Some(d) = check_step_shape(&mut cx, i, step) {
            drafts.push(d);
        }
    }

    check_unique_ids(&mut cx, &drafts);
    let all_ids: Vec<String> = drafts.iter().filter_map(|d| d.id.clone()).collect();

    // Components, modes, connections, configs, secrets, SQL parameters.
    let (planned_cfg, components) =
        check_components(&mut cx, &drafts, catalog, opts, &params, &mut secret_values);

    // Wiring.
    let wired = check_wiring(&mut cx, &drafts, &all_ids, &resolved);

    // Strict mode: every warning is an error, under the code the table gives its strict form (a warning
    // without one keeps its code).
    if opts.mode == Mode::Strict {
        for d in &mut cx.diags {
            if d.severity == Severity::Warning {
                d.severity = Severity::Error;
                d.code = d.code.promoted().unwrap_or(d.code);
            }
        }
    }
    let diagnostics = sorted(std::mem::take(&mut cx.diags));
    let display_source = secrets::mask_source(text, &secret_values);
    let plan = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        build_plan(
            &drafts,
            &wired,
            &planned_cfg,
            components,
            &resolved,
            &params,
            opts,
        )
    };
    Report {
        file: file.into(),
        diagnostics,
        display_source,
        plan,
    }
}

/// Phase 2: every step id is used once.
fn check_unique_ids(cx: &mut Ctx<'_>, drafts: &[Draft]) {
    let doc = cx.doc;
    let mut first_seen: BTreeMap<String, usize> = BTreeMap::new();
    for d in drafts {
        if let Some(id) = &d.id {
            if let Some(&prev) = first_seen.get(id) {
                let prev_pos = doc.locate(&format!("/steps/{prev}/id"), false);
                cx.push(
                    Diagnostic::error(Code::OML_E013, format!("duplicate step id `{id}`"))
                        .step(id)
                        .label("already used by another step", id.chars().count())
                        .help(format!(
                            "give each step its own id (the first `{id}` is at line {})",
                            prev_pos.line
                        )),
                    &format!("{}/id", d.ptr),
                    false,
                );
            } else {
                first_seen.insert(id.clone(), d.index);
            }
        }
    }
}

/// What [`check_components`] hands on: each step's (driver, config) by step index, and each component used with
/// its (version, spec fingerprint).
type Components = (
    BTreeMap<usize, (String, Map<String, Value>)>,
    BTreeMap<String, (String, String)>,
);

/// Phase 3: each step's component, mode, connection, config, secrets and SQL parameters.
fn check_components(
    cx: &mut Ctx<'_>,
    drafts: &[Draft],
    catalog: &dyn Catalog,
    opts: &Options<'_>,
    params: &Params,
    secret_values: &mut Vec<secrets::Written>,
) -> Components {
    let mut planned_cfg: BTreeMap<usize, (String, Map<String, Value>)> = BTreeMap::new();
    let mut components: BTreeMap<String, (String, String)> = BTreeMap::new();
    for d in drafts {
        let sid = d.id.clone().unwrap_or_else(|| format!("#{}", d.index + 1));
        let spec = d.component.as_deref().and_then(|c| catalog.spec(c));
        let secret_ptrs: Vec<String> = spec
            .as_ref()
            .map(|s| s.secret_pointers.to_vec())
            .unwrap_or_default();
        check_secrets(cx, d, &sid, &secret_ptrs, secret_values);
        check_sql_params(cx, d, &sid, params);
        let Some(name) = d.component.as_deref() else {
            continue;
        };
        let Some(spec) = spec else {
            let mut diag = catalog.unknown_component(name).step(&sid);
            if diag.label.is_none() {
                diag = diag.label("not in the registry", name.chars().count());
            }
            if diag.code.family() != Code::OML_E104.family() {
                diag.code = Code::OML_E104;
            }
            cx.push(diag, &format!("{}/component", d.ptr), false);
            continue;
        };
        components.insert(
            spec.name.to_string(),
            (spec.version.to_string(), spec.fingerprint.to_string()),
        );
        if let Some(mode) = d.mode {
            let supported = spec
                .modes
                .iter()
                .any(|m| m == mode || (mode == "write" && m == "load"));
            if !supported {
                let oml: Vec<String> = spec
                    .modes
                    .iter()
                    .filter_map(|m| oml_mode_of(m))
                    .map(|m| format!("`{m}`"))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                cx.push(
                    Diagnostic::error(Code::OML_E021, format!("component `{name}` does not support mode `{}`", oml_mode_of(mode).unwrap_or(mode)))
                        .step(&sid)
                        .component(name)
                        .label(format!("`{name}` supports {}", spec.modes.join(", ")), 1)
                        .help(if oml.is_empty() {
                            format!("`{name}` cannot be a pipeline step; pick another component")
                        } else {
                            format!("use mode {} with this component, or pick a component that supports this mode", oml.join(" or "))
                        }),
                    &format!("{}/mode", d.ptr),
                    false,
                );
            }
        }
        let conn = check_connection(cx, d, &sid, &spec);
        let config = check_config(cx, d, &sid, &spec, catalog, opts.mode, conn.is_some());
        planned_cfg.insert(d.index, (spec.driver.to_string(), config));
    }

    (planned_cfg, components)
}

/// The DAG of the steps and each step's named inputs (alias -> upstream step).
struct Wired {
    nodes: Vec<dag::Node>,
    wiring: dag::Wiring,
    step_inputs: Vec<BTreeMap<String, String>>,
}

/// Phase 4: inputs and `needs` name existing steps, no cycle, every writer has an input; each step's inputs.
fn check_wiring(cx: &mut Ctx<'_>, drafts: &[Draft], all_ids: &[String], resolved: &Value) -> Wired {
    let index_of: BTreeMap<&str, usize> = drafts
        .iter()
        .enumerate()
        .filter_map(|(k, d)| d.id.as_deref().map(|id| (id, k)))
        .collect();
    for d in drafts {
        for (alias, step) in &d.inputs {
            if !index_of.contains_key(step.as_str()) {
                let sid = d.id.clone().unwrap_or_default();
                let mut diag = Diagnostic::error(
                    Code::OML_E033,
                    format!("input `{alias}` reads from unknown step `{step}`"),
                )
                .step(&sid);
                diag = match did_you_mean(step, all_ids.iter().map(String::as_str)) {
                    Some(s) => diag.help(format!("did you mean `${{{s}.df}}`?")),
                    None => diag.help(format!("steps in this pipeline: {}", all_ids.join(", "))),
                };
                cx.push(
                    diag.label("no such step", 1),
                    &child(&format!("{}/inputs", d.ptr), alias),
                    false,
                );
            }
        }
    }
    let nodes: Vec<dag::Node> = drafts
        .iter()
        .map(|d| dag::Node {
            id: d.id.clone().unwrap_or_else(|| format!("#{}", d.index + 1)),
            needs: d.needs.clone(),
            input_steps: d
                .inputs
                .iter()
                .map(|(_, s)| s.clone())
                .filter(|s| index_of.contains_key(s.as_str()))
                .collect(),
        })
        .collect();
    let wiring = dag::wire(&nodes);
    for (k, pos, id) in &wiring.unknown_needs {
        let d = &drafts[*k];
        let mut diag = Diagnostic::error(
            Code::OML_E030,
            format!("step `{}` needs unknown step `{id}`", nodes[*k].id),
        )
        .step(&nodes[*k].id);
        diag = match did_you_mean(id, all_ids.iter().map(String::as_str)) {
            Some(s) => diag.help(format!("did you mean `{s}`?")),
            None => diag.help(format!("steps in this pipeline: {}", all_ids.join(", "))),
        };
        cx.push(
            diag.label("no such step", id.chars().count()),
            &format!("{}/needs/{pos}", d.ptr),
            false,
        );
    }
    for cyc in &wiring.cycles {
        let chain: Vec<String> = cyc.iter().map(|&k| format!("`{}`", nodes[k].id)).collect();
        let mut implicit = Vec::new();
        for w in cyc.windows(2) {
            let (up, down) = (w[0], w[1]);
            if wiring.upstream[down]
                .iter()
                .any(|(j, kind)| *j == up && *kind == EdgeKind::Implicit)
            {
                implicit.push(format!(
                    "`{}` has no `needs`, so it runs after the previous step `{}`",
                    nodes[down].id, nodes[up].id
                ));
            }
        }
        let mut help = "remove one of these dependencies; `->` means \"feeds\"".to_string();
        if !implicit.is_empty() {
            help = format!(
                "{}; add `needs: []` (or the real upstream steps) to break the implicit link",
                implicit.join("; ")
            );
        }
        let first = &drafts[cyc[0]];
        let ptr = if first.needs.is_some() {
            format!("{}/needs", first.ptr)
        } else {
            format!("{}/id", first.ptr)
        };
        cx.push(
            Diagnostic::error(
                Code::OML_E031,
                format!("dependency cycle: {}", chain.join(" -> ")),
            )
            .step(&nodes[cyc[0]].id)
            .label("part of the cycle", 1)
            .help(help),
            &ptr,
            true,
        );
    }
    let step_inputs = step_inputs(cx, drafts, all_ids, resolved, &index_of, &nodes, &wiring);
    Wired {
        nodes,
        wiring,
        step_inputs,
    }
}

/// Each step's inputs: every upstream producer under its `df_<id>` alias (and `df` when there is one), then
/// the step's own `inputs:`; writers without input and inputs naming writers are errors.
fn step_inputs(
    cx: &mut Ctx<'_>,
    drafts: &[Draft],
    all_ids: &[String],
    resolved: &Value,
    index_of: &BTreeMap<&str, usize>,
    nodes: &[dag::Node],
    wiring: &dag::Wiring,
) -> Vec<BTreeMap<String, String>> {
    let aliases = dag::aliases(&all_ids.iter().map(String::as_str).collect::<Vec<_>>());
    let mut step_inputs: Vec<BTreeMap<String, String>> = Vec::new();
    for (k, d) in drafts.iter().enumerate() {
        // Data flows from every upstream that produces output; a writer produces none, so a dependency on a
        // writer only orders the steps (e.g. a reader after the writer whose table it reads). An ordering-only
        // dependency on a producer would deadlock a streaming run (the producer finishes only once its readers
        // have read it), so a reader that needs a producer is handed its stream and may ignore it.
        let ups: Vec<&str> = wiring.upstream[k]
            .iter()
            .filter(|(j, _)| drafts[*j].mode != Some("write"))
            .map(|(j, _)| nodes[*j].id.as_str())
            .collect();
        let miswired = wiring.unknown_needs.iter().any(|(j, _, _)| *j == k)
            || d.inputs
                .iter()
                .any(|(_, st)| !index_of.contains_key(st.as_str()));
        if d.mode == Some("write") && ups.is_empty() && !miswired {
            // The nearest earlier step that produces data (a writer produces none).
            let producer = (0..k).rev().find(|&j| drafts[j].mode != Some("write"));
            let help = if let Some(j) = producer {
                format!(
                    "add `needs: [{}]` or `inputs: {{ df: \"${{{}.df}}\" }}`",
                    nodes[j].id, nodes[j].id
                )
            } else {
                "put the writer after the step that produces its data, or wire it with `needs`/`inputs`".to_string()
            };
            cx.push(
                Diagnostic::error(
                    Code::OML_E032,
                    format!("writer step `{}` has no input", nodes[k].id),
                )
                .step(&nodes[k].id)
                .label("writes nothing: no upstream step produces data", 1)
                .help(help),
                &format!("{}/mode", d.ptr),
                false,
            );
        }
        let mut inputs: BTreeMap<String, String> = BTreeMap::new();
        for u in &ups {
            inputs.insert(dag::alias_for(u, &aliases), u.to_string());
        }
        if ups.len() == 1 {
            inputs.insert("df".into(), ups[0].to_string());
        }
        for (alias, step) in &d.inputs {
            let Some(&j) = index_of.get(step.as_str()) else {
                continue;
            };
            if drafts[j].mode == Some("write") {
                cx.push(
                    Diagnostic::error(
                        Code::OML_E035,
                        format!("input `{alias}` names writer step `{step}`, which produces no data"),
                    )
                    .step(&nodes[k].id)
                    .label("a writer has no output", alias.chars().count())
                    .help(format!(
                        "to run after `{step}`, use `needs: [{step}]`; to read what it wrote, add a reader step \
                         with `needs: [{step}]` and take its output"
                    )),
                    &child(&format!("{}/inputs", d.ptr), alias),
                    true,
                );
                continue;
            }
            match inputs.get(alias) {
                Some(existing) if existing != step => cx.push(
                    Diagnostic::error(Code::OML_E034, format!("input alias `{alias}` already names step `{existing}`"))
                        .step(&nodes[k].id)
                        .label("alias taken", alias.chars().count())
                        .help("pick another alias name; `df_<id>` and `df` are given to upstream steps automatically"),
                    &child(&format!("{}/inputs", d.ptr), alias),
                    true,
                ),
                _ => {
                    inputs.insert(alias.clone(), step.clone());
                }
            }
        }
        // A writer committing per chunk needs its rows in key order, straight from one chunked extractor.
        if d.mode == Some("write")
            && d.config.get("commit").and_then(Value::as_str) == Some("per_chunk")
        {
            let sources: std::collections::BTreeSet<&str> =
                inputs.values().map(String::as_str).collect();
            let fed = match sources.iter().next() {
                Some(src) if sources.len() == 1 => index_of.get(src).is_some_and(|&j| {
                    drafts[j].mode == Some("extract") && drafts[j].config.contains_key("chunk_by")
                }),
                _ => false,
            };
            if !fed {
                let got = match sources.len() {
                    0 => "it has no input".to_string(),
                    1 => format!(
                        "its input `{}` is not an extractor with `chunk_by`",
                        sources.iter().next().unwrap_or(&"")
                    ),
                    n => format!("it has {n} inputs"),
                };
                cx.push(
                    Diagnostic::error(
                        Code::OML_E037,
                        format!("writer step `{}` commits per chunk, but {got}", nodes[k].id),
                    )
                    .step(&nodes[k].id)
                    .label("needs one input from an extractor that sets `chunk_by`", 1)
                    .help("set `chunk_by` (and `chunk_rows`) on the extractor that feeds this writer directly, or drop `commit: per_chunk` (docs/incremental.md)"),
                    &format!("{}/config/commit", d.ptr),
                    true,
                );
            }
        }
        // The predecessor's `input_df` is not an input name here.
        if let Some(Value::Object(cfg)) = resolved.pointer(&format!("{}/config", d.ptr)) {
            for (key, v) in cfg {
                if sql::is_sql_key(key)
                    && let Value::String(s) = v
                    && contains_word(s, "input_df")
                {
                    let fix = if ups.len() == 1 {
                        format!(
                            "write `{}` (or `df`) instead; `osiris upgrade FILE --write` does it",
                            dag::alias_for(ups[0], &aliases)
                        )
                    } else {
                        "read inputs as `df_<step id>` (or `df` with one input)".to_string()
                    };
                    cx.push(
                        Diagnostic::warning(
                            Code::OML_W035,
                            format!("`{key}` reads `input_df`, which no step provides"),
                        )
                        .step(&nodes[k].id)
                        .label("not an input name", 1)
                        .help(fix),
                        &format!("{}/config/{key}", d.ptr),
                        false,
                    );
                }
            }
        }
        step_inputs.push(inputs);
    }

    step_inputs
}

/// The plan of a valid pipeline: its steps in run order with their resolved configs and inputs.
fn build_plan(
    drafts: &[Draft],
    wired: &Wired,
    planned_cfg: &BTreeMap<usize, (String, Map<String, Value>)>,
    components: BTreeMap<String, (String, String)>,
    resolved: &Value,
    params: &Params,
    opts: &Options<'_>,
) -> Option<Plan> {
    wired.wiring.order.as_ref().map(|order| {
        let steps = order
            .iter()
            .map(|&k| {
                let d = &drafts[k];
                let (driver, config) = planned_cfg.get(&d.index).cloned().unwrap_or_default();
                PlannedStep {
                    id: wired.nodes[k].id.clone(),
                    component: d.component.clone().unwrap_or_default(),
                    driver,
                    mode: d.mode.unwrap_or("transform").to_string(),
                    config,
                    needs: wired.wiring.upstream[k]
                        .iter()
                        .map(|(j, _)| wired.nodes[*j].id.clone())
                        .collect(),
                    inputs: wired.step_inputs[k].clone(),
                }
            })
            .collect();
        Plan {
            name: resolved
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            oml_version: OML_VERSION.to_string(),
            profile: opts.profile.to_string(),
            steps,
            resolved_oml: resolved.clone(),
            params: params.values.clone(),
            components,
        }
    })
}

/// Diagnostics in file order (line, column, code, message), without duplicates.
fn sorted(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diagnostics.sort_by(|a, b| {
        (
            a.line.unwrap_or(0),
            a.column.unwrap_or(0),
            &a.code,
            &a.message,
        )
            .cmp(&(
                b.line.unwrap_or(0),
                b.column.unwrap_or(0),
                &b.code,
                &b.message,
            ))
    });
    diagnostics.dedup();
    diagnostics
}

fn contains_word(s: &str, word: &str) -> bool {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let start = from + i;
        let end = start + word.len();
        let before = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let after = end >= b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_');
        if before && after {
            return true;
        }
        from = end;
    }
    false
}

fn check_top_level(cx: &mut Ctx<'_>) {
    let doc = cx.doc;
    let Some(top) = doc.value.as_object() else {
        return;
    };
    let legacy: &[(&str, &str, &str)] = &[
        (
            "version",
            "`version` belongs to an older pipeline format",
            "write `oml_version: \"0.1.0\"` instead",
        ),
        (
            "connectors",
            "`connectors` belongs to an older pipeline format",
            "remove it and reference connections from each step: `config: { connection: \"@mysql.default\" }`",
        ),
        (
            "tasks",
            "`tasks` belongs to an older pipeline format",
            "rename it to `steps`; each step has `id`, `component`, `mode` and `config`",
        ),
        (
            "outputs",
            "`outputs` belongs to an older pipeline format",
            "write results with a writer step (`mode: write`, e.g. `component: filesystem.csv_writer`)",
        ),
    ];
    for k in top.keys() {
        if let Some((_, what, fix)) = legacy.iter().find(|(l, _, _)| l == k) {
            cx.push(
                Diagnostic::error(Code::OML_E005, *what)
                    .label("not OML v0.1.0", k.chars().count())
                    .help(*fix),
                &child("", k),
                true,
            );
        } else if !TOP_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            let mut d = Diagnostic::error(Code::OML_E006, format!("unknown top-level key `{k}`"))
                .label("not an OML key", k.chars().count());
            d = match did_you_mean(k, TOP_KEYS.iter().copied()) {
                Some(s) => d.help(format!("did you mean `{s}`? (custom keys start with `x-`)")),
                None => d.help(format!(
                    "OML keys are {}; custom keys start with `x-`",
                    TOP_KEYS.join(", ")
                )),
            };
            cx.push(d, &child("", k), true);
        }
    }
    for (key, replaced_by) in [("oml_version", "version"), ("name", ""), ("steps", "tasks")] {
        if !top.contains_key(key) && (replaced_by.is_empty() || !top.contains_key(replaced_by)) {
            let example = match key {
                "oml_version" => "add `oml_version: \"0.1.0\"` at the top",
                "name" => "add `name: my-pipeline`",
                _ => "add `steps:` with at least one step",
            };
            cx.diags.push(
                Diagnostic::error(Code::OML_E003, format!("missing required key `{key}`"))
                    .at(&doc.file, 1, 1)
                    .help(example),
            );
        }
    }
    match top.get("oml_version") {
        None => {}
        Some(Value::String(s)) if s == OML_VERSION => {}
        Some(v) => {
            let shown = match v {
                Value::String(s) => format!("`{s}`"),
                other => format!("{} `{other}`", type_name(other)),
            };
            cx.push(
                Diagnostic::error(Code::OML_E004, format!("unsupported oml_version {shown}"))
                    .label("expected \"0.1.0\"", 1)
                    .help("write `oml_version: \"0.1.0\"` (quoted); it is the only version this osiris reads"),
                "/oml_version",
                false,
            );
        }
    }
    match top.get("name") {
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(v) => cx.push(
            Diagnostic::error(
                Code::OML_E007,
                format!("`name` must be a non-empty string, found {}", type_name(v)),
            )
            .help("write e.g. `name: orders-summary`"),
            "/name",
            false,
        ),
    }
    match top.get("steps") {
        None => {}
        Some(Value::Array(a)) if !a.is_empty() => {}
        Some(v) => cx.push(
            Diagnostic::error(Code::OML_E007, "`steps` must be a non-empty list of steps")
                .label(
                    format!(
                        "found {}",
                        if v.as_array().is_some() {
                            "an empty list"
                        } else {
                            type_name(v)
                        }
                    ),
                    1,
                )
                .help("write `steps:` followed by `- id: ...` entries"),
            "/steps",
            true,
        ),
    }
    for key in ["description"] {
        if let Some(v) = top.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            cx.push(
                Diagnostic::error(
                    Code::OML_E007,
                    format!("`{key}` must be a string, found {}", type_name(v)),
                ),
                &child("", key),
                false,
            );
        }
    }
    for key in ["metadata", "profiles"] {
        if let Some(v) = top.get(key).filter(|v| !v.is_object() && !v.is_null()) {
            cx.push(
                Diagnostic::error(
                    Code::OML_E007,
                    format!("`{key}` must be a mapping, found {}", type_name(v)),
                ),
                &child("", key),
                true,
            );
        }
    }
    if let Some(Value::Object(profiles)) = top.get("profiles") {
        for (name, p) in profiles {
            if !p.is_object() {
                cx.push(
                    Diagnostic::error(Code::OML_E007, format!("profile `{name}` must be a mapping, e.g. `{name}: {{ params: {{ ... }} }}`")),
                    &child("/profiles", name),
                    true,
                );
            }
        }
    }
}

fn substitute_doc(cx: &mut Ctx<'_>, params: &Params) -> Value {
    let doc = cx.doc;
    let Some(top) = doc.value.as_object() else {
        return doc.value.clone();
    };
    let mut out = Map::new();
    let mut missing = Vec::new();
    for (k, v) in top {
        if k == "params" || k == "profiles" {
            out.insert(k.clone(), v.clone());
        } else {
            out.insert(
                k.clone(),
                params::substitute(v, &child("", k), params, &mut missing),
            );
        }
    }
    for (ptr, name) in missing {
        let step = step_of(&doc.value, &ptr);
        let how = format!(
            "give it a default in `params: {{ {name}: ... }}`, set OSIRIS_PARAM_{name}, add it to the profile, or pass --param {name}=VALUE"
        );
        let help = match did_you_mean(&name, params.values.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `${{params.{s}}}`? otherwise {how}"),
            None => how,
        };
        let mut d = Diagnostic::error(Code::OML_E050, format!("unresolved parameter `{name}`"))
            .label("no value", 1)
            .help(help);
        if let Some(s) = step {
            d = d.step(s);
        }
        cx.push(d, &ptr, false);
    }
    Value::Object(out)
}

fn step_of(root: &Value, pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix("/steps/")?;
    let idx = rest.split('/').next()?;
    root.pointer(&format!("/steps/{idx}/id")).map(|v| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn check_step_shape(cx: &mut Ctx<'_>, i: usize, step: &Value) -> Option<Draft> {
    let ptr = format!("/steps/{i}");
    let Some(m) = step.as_object() else {
        cx.push(
            Diagnostic::error(
                Code::OML_E010,
                format!(
                    "step {} must be a mapping, found {}",
                    i + 1,
                    type_name(step)
                ),
            )
            .help("write each step as `- id: ...` followed by `component:`, `mode:` and `config:`"),
            &ptr,
            false,
        );
        return None;
    };
    let id = step_id(cx, m, &ptr, i);
    let sid = id.clone().unwrap_or_else(|| format!("#{}", i + 1));
    check_step_keys(cx, m, &ptr, &sid);
    let component = step_component(cx, m, &ptr, &sid);
    let mode = step_mode(cx, m, &ptr, &sid);
    let config = step_config(cx, m, &ptr, &sid);
    let needs = step_needs(cx, m, &ptr, &sid);
    let inputs = step_inputs_decl(cx, m, &ptr, &sid);
    let raw_config = cx
        .doc
        .value
        .pointer(&format!("{ptr}/config"))
        .cloned()
        .unwrap_or(Value::Null);
    Some(Draft {
        index: i,
        ptr,
        id,
        component,
        mode,
        config,
        raw_config,
        needs,
        inputs,
    })
}

/// The step's `id`: a string that is a valid step id (OML-E011, E014, E015).
fn step_id(cx: &mut Ctx<'_>, m: &Map<String, Value>, ptr: &str, i: usize) -> Option<String> {
    match m.get("id") {
        Some(Value::String(s)) if valid_step_id(s) => Some(s.clone()),
        Some(Value::String(s)) => {
            cx.push(
                Diagnostic::error(Code::OML_E014, format!("invalid step id `{s}`"))
                    .label("not a step id", s.chars().count())
                    .help("use letters, digits, `_`, `-` and `.` (not first), at most 128 characters, e.g. `extract-orders`"),
                &format!("{ptr}/id"),
                false,
            );
            None
        }
        Some(v) => {
            cx.push(
                Diagnostic::error(
                    Code::OML_E015,
                    format!("step id must be a string, found {}", type_name(v)),
                )
                .help(format!("quote it: `id: \"{}\"`", crate::params::as_text(v))),
                &format!("{ptr}/id"),
                false,
            );
            None
        }
        None => {
            cx.push(
                Diagnostic::error(Code::OML_E011, format!("step {} has no `id`", i + 1))
                    .help("add `id: <unique name>` (e.g. `id: extract-orders`)"),
                ptr,
                false,
            );
            None
        }
    }
}

/// Unknown step keys (OML-E012), with the key meant when it is a known alias or a near miss.
fn check_step_keys(cx: &mut Ctx<'_>, m: &Map<String, Value>, ptr: &str, sid: &str) {
    for k in m.keys() {
        if STEP_KEYS.contains(&k.as_str()) || k.starts_with("x-") {
            continue;
        }
        let suggestion = match k.as_str() {
            "depends_on" | "dependsOn" | "depends" | "after" | "requires" => Some("needs"),
            "type" | "uses" => Some("component"),
            "with" | "options" | "settings" | "params" => Some("config"),
            "name" => Some("id"),
            _ => did_you_mean(k, STEP_KEYS.iter().copied()),
        };
        let mut d = Diagnostic::error(Code::OML_E012, format!("unknown step key `{k}`"))
            .step(sid)
            .label("not a step key", k.chars().count());
        d = match suggestion {
            Some("needs") if k == "depends_on" => {
                d.help("use `needs` (a list of step ids); `osiris upgrade FILE --write` renames it")
            }
            Some(s) => d.help(format!(
                "did you mean `{s}`? step keys are {}",
                STEP_KEYS.join(", ")
            )),
            None => d.help(format!(
                "step keys are {}; custom keys start with `x-`",
                STEP_KEYS.join(", ")
            )),
        };
        cx.push(d, &child(ptr, k), true);
    }
}

/// The step's `component` name (OML-E011, E015).
fn step_component(
    cx: &mut Ctx<'_>,
    m: &Map<String, Value>,
    ptr: &str,
    sid: &str,
) -> Option<String> {
    match m.get("component") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(v) => {
            cx.push(
                Diagnostic::error(
                    Code::OML_E015,
                    format!(
                        "`component` must be a component name, found {}",
                        type_name(v)
                    ),
                )
                .step(sid)
                .help("e.g. `component: mysql.extractor`; `osiris components list` shows all"),
                &format!("{ptr}/component"),
                false,
            );
            None
        }
        None => {
            cx.push(
                Diagnostic::error(Code::OML_E011, format!("step `{sid}` has no `component`"))
                    .step(sid)
                    .help(
                        "add e.g. `component: mysql.extractor`; `osiris components list` shows all",
                    ),
                ptr,
                true,
            );
            None
        }
    }
}

/// The step's component mode from its OML `mode` (OML-W017 for component spellings, OML-E011, E015, E016).
fn step_mode(
    cx: &mut Ctx<'_>,
    m: &Map<String, Value>,
    ptr: &str,
    sid: &str,
) -> Option<&'static str> {
    match m.get("mode") {
        Some(Value::String(s)) => match s.as_str() {
            "read" | "write" | "transform" => component_mode(s),
            "extract" | "load" => {
                let to = if s == "extract" { "read" } else { "write" };
                cx.push(
                    Diagnostic::warning(
                        Code::OML_W017,
                        format!("step mode `{s}` is spelled `{to}` in OML"),
                    )
                    .step(sid)
                    .label("component mode, not an OML mode", s.chars().count())
                    .help(format!(
                        "write `mode: {to}`; `osiris upgrade FILE --write` rewrites it"
                    )),
                    &format!("{ptr}/mode"),
                    false,
                );
                Some(if s == "extract" { "extract" } else { "write" })
            }
            other => {
                let mut d =
                    Diagnostic::error(Code::OML_E016, format!("invalid step mode `{other}`"))
                        .step(sid)
                        .label("not an OML mode", other.chars().count());
                d = match did_you_mean(other, ["read", "write", "transform"]) {
                    Some(s) => d.help(format!(
                        "did you mean `{s}`? modes are read, write, transform"
                    )),
                    None => d.help("modes are read, write, transform"),
                };
                cx.push(d, &format!("{ptr}/mode"), false);
                None
            }
        },
        Some(v) => {
            cx.push(
                Diagnostic::error(
                    Code::OML_E015,
                    format!("`mode` must be a string, found {}", type_name(v)),
                )
                .step(sid)
                .help("modes are read, write, transform"),
                &format!("{ptr}/mode"),
                false,
            );
            None
        }
        None => {
            cx.push(
                Diagnostic::error(Code::OML_E011, format!("step `{sid}` has no `mode`"))
                    .step(sid)
                    .help("add `mode: read`, `mode: write` or `mode: transform`"),
                ptr,
                true,
            );
            None
        }
    }
}

/// The step's `config` mapping (OML-E015; absent or null is empty).
fn step_config(
    cx: &mut Ctx<'_>,
    m: &Map<String, Value>,
    ptr: &str,
    sid: &str,
) -> Map<String, Value> {
    match m.get("config") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(c)) => c.clone(),
        Some(v) => {
            cx.push(
                Diagnostic::error(
                    Code::OML_E015,
                    format!("`config` must be a mapping, found {}", type_name(v)),
                )
                .step(sid)
                .help("write the component settings as `config: { key: value }`"),
                &format!("{ptr}/config"),
                true,
            );
            Map::new()
        }
    }
}

/// The step's `needs` list (OML-E015); `None` when absent or unusable, `Some([])` for `needs: []` or null.
fn step_needs(
    cx: &mut Ctx<'_>,
    m: &Map<String, Value>,
    ptr: &str,
    sid: &str,
) -> Option<Vec<String>> {
    match m.get("needs") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for (k, v) in a.iter().enumerate() {
                match v {
                    Value::String(s) => out.push(s.clone()),
                    other => cx.push(
                        Diagnostic::error(
                            Code::OML_E015,
                            format!(
                                "`needs` entries must be step ids, found {}",
                                type_name(other)
                            ),
                        )
                        .step(sid),
                        &format!("{ptr}/needs/{k}"),
                        false,
                    ),
                }
            }
            Some(out)
        }
        Some(Value::String(s)) => {
            cx.push(
                Diagnostic::error(Code::OML_E015, "`needs` must be a list of step ids")
                    .step(sid)
                    .label("a single string", 1)
                    .help(format!("write `needs: [{s}]`")),
                &format!("{ptr}/needs"),
                false,
            );
            None
        }
        Some(v) => {
            cx.push(
                Diagnostic::error(
                    Code::OML_E015,
                    format!("`needs` must be a list of step ids, found {}", type_name(v)),
                )
                .step(sid)
                .help("write e.g. `needs: [extract-orders]`, or `needs: []` for none"),
                &format!("{ptr}/needs"),
                false,
            );
            None
        }
    }
}

/// The step's `inputs:` as (alias, step id) pairs (OML-E015, E033).
fn step_inputs_decl(
    cx: &mut Ctx<'_>,
    m: &Map<String, Value>,
    ptr: &str,
    sid: &str,
) -> Vec<(String, String)> {
    let mut inputs = Vec::new();
    match m.get("inputs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(im)) => {
            for (alias, v) in im {
                let iptr = child(&format!("{ptr}/inputs"), alias);
                if !params::valid_name(alias) {
                    cx.push(
                        Diagnostic::error(Code::OML_E033, format!("invalid input name `{alias}`"))
                            .step(sid)
                            .label("not an input name", alias.chars().count())
                            .help("use letters, digits and `_` (e.g. `df`, `orders`)"),
                        &iptr,
                        true,
                    );
                    continue;
                }
                match v.as_str().and_then(parse_input_ref) {
                    Some((step, "df")) => inputs.push((alias.clone(), step.to_string())),
                    Some((step, output)) => cx.push(
                        Diagnostic::error(
                            Code::OML_E033,
                            format!("step `{step}` has no output `{output}`"),
                        )
                        .step(sid)
                        .label("unknown output", 1)
                        .help(format!(
                            "every step produces one output, `df`: write `\"${{{step}.df}}\"`"
                        )),
                        &iptr,
                        false,
                    ),
                    None => cx.push(
                        Diagnostic::error(
                            Code::OML_E033,
                            format!("input `{alias}` must reference an upstream output"),
                        )
                        .step(sid)
                        .label("not a `${step.df}` reference", 1)
                        .help("write e.g. `inputs: { df: \"${extract_users.df}\" }`"),
                        &iptr,
                        false,
                    ),
                }
            }
        }
        Some(v) => cx.push(
            Diagnostic::error(
                Code::OML_E015,
                format!("`inputs` must be a mapping, found {}", type_name(v)),
            )
            .step(sid)
            .help("write e.g. `inputs: { df: \"${extract_users.df}\" }`"),
            &format!("{ptr}/inputs"),
            true,
        ),
    }
    inputs
}

/// `${step.output}` -> (step, output); the step id may contain dots, the output is after the last one.
fn parse_input_ref(s: &str) -> Option<(&str, &str)> {
    let inner = s.trim().strip_prefix("${")?.strip_suffix('}')?;
    let (step, out) = inner.rsplit_once('.')?;
    (!step.is_empty() && !out.is_empty()).then_some((step, out))
}

fn check_secrets(
    cx: &mut Ctx<'_>,
    d: &Draft,
    sid: &str,
    secret_ptrs: &[String],
    secret_values: &mut Vec<secrets::Written>,
) {
    for f in secrets::scan(&d.raw_config, secret_ptrs) {
        match f {
            Finding::Literal {
                pointer,
                field,
                value,
            } => {
                let full = format!("{}/config{pointer}", d.ptr);
                let plain = cx.doc.spans.get(&full).is_none_or(|s| s.plain);
                let mut diag = Diagnostic::error(Code::OML_E040, format!("inline secret in `{}`", pointer.trim_start_matches('/').replace('/', ".")))
                    .step(sid)
                    .label("a literal secret value", if plain { 3 } else { 5 })
                    .help(format!(
                        "never write secrets into a pipeline: reference a connection (`connection: \"@family.alias\"`) that supplies `{field}`, or an environment variable (`{field}: \"${{MY_SECRET}}\"`)"
                    ));
                if let Some(c) = &d.component {
                    diag = diag.component(c);
                }
                let pos = cx.doc.locate(&full, false);
                diag = diag.at(&cx.doc.file, pos.line, pos.col).pointer(&full);
                cx.diags.push(diag);
                secret_values.push(secrets::Written {
                    line: pos.line,
                    col: pos.col,
                    len: pos.len,
                    value,
                });
            }
            Finding::Param {
                pointer,
                field,
                name,
            } => {
                cx.push(
                    Diagnostic::error(Code::OML_E041, format!("secret field `{}` takes parameter `{name}`", pointer.trim_start_matches('/').replace('/', ".")))
                        .step(sid)
                        .label("parameter values are written into the compiled config", 1)
                        .help(format!("reference a connection that supplies `{field}`, or an environment variable: `{field}: \"${{MY_SECRET}}\"`")),
                    &format!("{}/config{pointer}", d.ptr),
                    false,
                );
            }
        }
    }
}

fn check_sql_params(cx: &mut Ctx<'_>, d: &Draft, sid: &str, params: &Params) {
    fn walk(v: &Value, ptr: &str, key: Option<&str>, out: &mut Vec<(String, String)>) {
        match v {
            Value::String(s) if key.is_some_and(sql::is_sql_key) && s.contains("${params.") => {
                out.push((ptr.to_string(), s.clone()))
            }
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| walk(x, &child(ptr, k), Some(k), out)),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| walk(x, &format!("{ptr}/{i}"), key, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(
        &d.raw_config,
        &format!("{}/config", d.ptr),
        None,
        &mut found,
    );
    for (ptr, template) in found {
        for (name, ctx) in sql::contexts(&template) {
            let Some(value) = params.values.get(&name) else {
                continue;
            };
            if let Err(why) = sql::check(ctx, &params::as_text(value)) {
                cx.push(
                    Diagnostic::error(Code::OML_E051, format!("the value of parameter `{name}` is not safe {}", ctx.describe()))
                        .step(sid)
                        .label("parameter in SQL", 1)
                        .help(format!(
                            "{why}; pass another value, or put the placeholder inside quotes ('${{params.{name}}}') when it is data (see docs/oml.md, \"Parameters in SQL\")"
                        )),
                    &ptr,
                    false,
                );
            }
        }
    }
}

/// Checks `config.connection`; returns the reference when valid.
fn check_connection(cx: &mut Ctx<'_>, d: &Draft, sid: &str, spec: &SpecView<'_>) -> Option<String> {
    let v = d.config.get("connection")?;
    let ptr = format!("{}/config/connection", d.ptr);
    let family = spec.name.split('.').next().unwrap_or(spec.name);
    let Some(s) = v.as_str() else {
        cx.push(
            Diagnostic::error(
                Code::OML_E023,
                format!(
                    "`connection` must be a reference like \"@{family}.default\", found {}",
                    type_name(v)
                ),
            )
            .step(sid)
            .component(spec.name),
            &ptr,
            false,
        );
        return None;
    };
    let Some((fam, _alias)) = parse_connection(s) else {
        cx.push(
            Diagnostic::error(Code::OML_E023, format!("invalid connection reference `{s}`"))
                .step(sid)
                .component(spec.name)
                .label("not `@family.alias`", s.chars().count())
                .help(format!("write `connection: \"@{family}.<alias>\"` (or `\"@{family}\"` for the default alias)")),
            &ptr,
            false,
        );
        return None;
    };
    if fam != family {
        cx.push(
            Diagnostic::error(
                Code::OML_E024,
                format!(
                    "connection `{s}` is a `{fam}` connection, but `{}` needs a `{family}` one",
                    spec.name
                ),
            )
            .step(sid)
            .component(spec.name)
            .label("wrong family", s.chars().count())
            .help(format!(
                "use a `@{family}.<alias>` connection, or a `{fam}.*` component"
            )),
            &ptr,
            false,
        );
        return None;
    }
    Some(s.to_string())
}

fn check_config(
    cx: &mut Ctx<'_>,
    d: &Draft,
    sid: &str,
    spec: &SpecView<'_>,
    catalog: &dyn Catalog,
    mode: Mode,
    has_connection: bool,
) -> Map<String, Value> {
    let schema_props = spec
        .config_schema
        .get("properties")
        .and_then(Value::as_object);
    let declares_connection = schema_props.is_some_and(|p| p.contains_key("connection"));
    let mut for_check = d.config.clone();
    if !declares_connection {
        for_check.remove("connection");
    }
    let conn_fields: BTreeMap<&str, Override> = spec.connection_fields.iter().copied().collect();
    let filter = |problems: Vec<crate::catalog::Problem>| -> Vec<crate::catalog::Problem> {
        problems
            .into_iter()
            .filter(|p| {
                !(has_connection
                    && p.message.contains("required")
                    && conn_fields.keys().any(|f| {
                        p.message.contains(&format!("\"{f}\""))
                            || p.message.contains(&format!("`{f}`"))
                    }))
            })
            .collect()
    };
    // `connection` is checked by `check_connection` (syntax and family), not reported twice.
    let problems: Vec<_> =
        filter(catalog.validate_config(spec.name, &Value::Object(for_check.clone())))
            .into_iter()
            .filter(|p| p.pointer != "/connection")
            .collect();

    if mode != Mode::Off {
        for p in &problems {
            let full = format!("{}/config{}", d.ptr, p.pointer);
            // An error in every mode that checks: a config the schema refuses changes what the step does
            // (an unknown field is ignored and its default used, a missing one fails mid-run).
            let diag = Diagnostic::error(Code::OML_E022, p.message.clone());
            let unknown = p.message.starts_with("unknown");
            let label = if unknown {
                "not a field of this component"
            } else {
                "does not match the component's configSchema"
            };
            let mut diag = diag.step(sid).component(spec.name).label(label, 1);
            if let Some(h) = &p.help {
                diag = diag.help(h.clone());
            }
            if unknown {
                cx.push(diag, &full, true);
            } else {
                cx.push_best(diag, &full);
            }
        }
        if has_connection {
            for (field, policy) in &conn_fields {
                if !d.config.contains_key(*field) {
                    continue;
                }
                let ptr = child(&format!("{}/config", d.ptr), field);
                match policy {
                    Override::Forbidden => cx.push(
                        Diagnostic::error(Code::OML_E025, format!("`{field}` comes from the connection and cannot be overridden in a step"))
                            .step(sid)
                            .component(spec.name)
                            .label("override not allowed", field.chars().count())
                            .help(format!("remove `{field}` here; set it on the connection in osiris_connections.yaml")),
                        &ptr,
                        true,
                    ),
                    Override::Warning => cx.push(
                        Diagnostic::warning(Code::OML_W026, format!("`{field}` overrides the connection's value"))
                            .step(sid)
                            .component(spec.name)
                            .label("overrides the connection", field.chars().count())
                            .help(format!("prefer setting `{field}` on the connection; keep this only if the step really needs another value")),
                        &ptr,
                        true,
                    ),
                    Override::Allowed => {}
                }
            }
        }
    }

    // Spec defaults, except where a connection supplies the field and where a default would make the
    // config invalid (e.g. a default that the schema forbids together with another field).
    let mut config = d.config.clone();
    let mut added = Vec::new();
    if let Some(props) = schema_props {
        for (k, p) in props {
            if config.contains_key(k) || (has_connection && conn_fields.contains_key(k.as_str())) {
                continue;
            }
            if let Some(def) = p.get("default") {
                config.insert(k.clone(), def.clone());
                added.push(k.clone());
            }
        }
    }
    if !added.is_empty() {
        let mut with = config.clone();
        if !declares_connection {
            with.remove("connection");
        }
        let before: BTreeSet<(String, String)> = problems
            .iter()
            .map(|p| (p.pointer.clone(), p.message.clone()))
            .collect();
        let after = filter(catalog.validate_config(spec.name, &Value::Object(with)));
        for p in after {
            if before.contains(&(p.pointer.clone(), p.message.clone())) {
                continue;
            }
            for k in &added {
                if p.pointer == child("", k)
                    || p.pointer.starts_with(&format!("{}/", child("", k)))
                    || p.message.contains(&format!("\"{k}\""))
                {
                    config.remove(k);
                }
            }
        }
    }
    config
}

/// A fake catalogue and a one-call validator for tests, here and in the compiler's tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod tests {
    use super::*;
    use crate::catalog::Problem;
    use serde_json::json;

    /// modes, configSchema, secret pointers, connection fields
    pub type FakeSpec = (Vec<String>, Value, Vec<String>, Vec<(String, Override)>);

    /// A catalogue with a few components and a tiny schema checker (required, type, enum, unknown keys).
    pub struct Fake {
        pub specs: BTreeMap<String, FakeSpec>,
    }

    impl Default for Fake {
        fn default() -> Fake {
            Fake::new()
        }
    }

    impl Fake {
        pub fn new() -> Fake {
            let mut specs = BTreeMap::new();
            specs.insert(
                "mysql.extractor".to_string(),
                (
                    vec!["extract".to_string(), "discover".to_string()],
                    json!({"type": "object", "additionalProperties": false, "properties": {
                        "connection": {"type": "string"}, "host": {"type": "string"}, "password": {"type": "string"},
                        "user": {"type": "string"}, "ssl_mode": {"type": "string"},
                        "query": {"type": "string"}, "table": {"type": "string"}, "batch_size": {"type": "integer", "default": 10000}}}),
                    vec!["/password".to_string()],
                    vec![("password".to_string(), Override::Forbidden), ("user".to_string(), Override::Forbidden),
                         ("ssl_mode".to_string(), Override::Warning), ("host".to_string(), Override::Allowed)],
                ),
            );
            specs.insert(
                "duckdb.processor".to_string(),
                (
                    vec!["transform".to_string()],
                    json!({"type": "object", "additionalProperties": false, "required": ["query"], "properties": {"query": {"type": "string"}}}),
                    vec![],
                    vec![],
                ),
            );
            specs.insert(
                "filesystem.csv_writer".to_string(),
                (
                    vec!["write".to_string()],
                    json!({"type": "object", "additionalProperties": false, "required": ["path"], "properties": {
                        "path": {"type": "string"}, "delimiter": {"type": "string", "default": ","},
                        "quoting": {"type": "string", "enum": ["minimal", "all"], "default": "minimal"}}}),
                    vec![],
                    vec![],
                ),
            );
            specs.insert(
                "graphql.extractor".to_string(),
                (
                    vec!["extract".to_string()],
                    json!({"type": "object", "properties": {"endpoint": {"type": "string"}, "headers": {"type": "object"}}}),
                    vec!["/headers".to_string()],
                    vec![],
                ),
            );
            Fake { specs }
        }
    }

    impl Catalog for Fake {
        fn spec(&self, name: &str) -> Option<SpecView<'_>> {
            self.specs
                .get_key_value(name)
                .map(|(k, (modes, schema, secrets, conn))| SpecView {
                    name: k,
                    version: "1.0.0",
                    modes,
                    config_schema: schema,
                    secret_pointers: secrets,
                    connection_fields: conn.iter().map(|(n, p)| (n.as_str(), *p)).collect(),
                    driver: k,
                    fingerprint: "sha256:00",
                })
        }
        fn validate_config(&self, name: &str, config: &Value) -> Vec<Problem> {
            let (_, schema, _, _) = &self.specs[name];
            let mut out = Vec::new();
            let props = schema["properties"].as_object().unwrap();
            for r in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let r = r.as_str().unwrap();
                if config.get(r).is_none() {
                    out.push(Problem {
                        pointer: String::new(),
                        message: format!("\"{r}\" is a required property"),
                        help: None,
                    });
                }
            }
            for (k, v) in config.as_object().unwrap() {
                match props.get(k) {
                    None if schema.get("additionalProperties") == Some(&json!(false)) => {
                        out.push(Problem {
                            pointer: format!("/{k}"),
                            message: format!("unknown key `{k}`"),
                            help: None,
                        })
                    }
                    None => {}
                    Some(p) => {
                        let ok = match p["type"].as_str() {
                            Some("string") => v.is_string(),
                            Some("integer") => v.is_i64(),
                            Some("object") => v.is_object(),
                            _ => true,
                        };
                        if !ok {
                            out.push(Problem {
                                pointer: format!("/{k}"),
                                message: format!("`{k}` has the wrong type"),
                                help: None,
                            });
                        }
                        if let Some(e) = p.get("enum").and_then(Value::as_array)
                            && !e.contains(v)
                        {
                            out.push(Problem {
                                pointer: format!("/{k}"),
                                message: format!("`{k}` is not one of the allowed values"),
                                help: None,
                            });
                        }
                    }
                }
            }
            out
        }
        fn unknown_component(&self, name: &str) -> Diagnostic {
            let mut d = Diagnostic::error(Code::OML_E104, format!("unknown component `{name}`"));
            if let Some(s) = did_you_mean(name, self.specs.keys().map(String::as_str)) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            d
        }
    }

    pub fn run(text: &str, mode: Mode, cli: &[(&str, &str)]) -> Report {
        let cli: Vec<(String, String)> = cli
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = |_: &str| None;
        let opts = Options {
            mode,
            profile: "default",
            profile_explicit: false,
            params: &cli,
            env: &env,
        };
        check("p.yaml", text, &Fake::new(), &opts)
    }

    #[cfg(test)]
    fn codes(r: &Report) -> Vec<&str> {
        r.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    #[cfg(test)]
    const OK: &str = r#"oml_version: "0.1.0"
name: orders
params:
  since: "2024-01-01"
steps:
  - id: extract-orders
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      query: "SELECT * FROM orders WHERE d >= '${params.since}'"
  - id: agg
    component: duckdb.processor
    mode: transform
    config:
      query: "SELECT COUNT(*) FROM df_extract_orders"
  - id: write
    component: filesystem.csv_writer
    mode: write
    config:
      path: out.csv
"#;

    #[test]
    fn a_valid_pipeline_yields_a_plan() {
        let r = run(OK, Mode::Strict, &[]);
        assert!(r.diagnostics.is_empty(), "{}", r.render());
        let plan = r.plan.unwrap();
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["extract-orders", "agg", "write"]);
        let agg = &plan.steps[1];
        assert_eq!(agg.needs, ["extract-orders"]);
        assert_eq!(
            agg.inputs,
            [
                ("df".to_string(), "extract-orders".to_string()),
                (
                    "df_extract_orders".to_string(),
                    "extract-orders".to_string()
                )
            ]
            .into()
        );
        assert_eq!(
            plan.steps[0].config["query"],
            json!("SELECT * FROM orders WHERE d >= '2024-01-01'")
        );
        assert_eq!(plan.steps[0].config["batch_size"], json!(10000));
        assert_eq!(plan.steps[0].mode, "extract");
        assert_eq!(plan.steps[2].config["quoting"], json!("minimal"));
    }

    #[test]
    fn collects_every_problem_with_positions() {
        let text = "oml_version: \"0.1.0\"\nname: x\nversion: 1\nsteps:\n  - id: a\n    component: mysql.extractr\n    mode: read\n    depends_on: [b]\n  - id: a\n    component: duckdb.processor\n    mode: sideways\n";
        let r = run(text, Mode::Warn, &[]);
        assert_eq!(
            codes(&r),
            [
                "OML-E005", "OML-E104", "OML-E012", "OML-E022", "OML-E013", "OML-E016"
            ],
            "{}",
            r.render()
        );
        let unknown = &r.diagnostics[1];
        assert_eq!((unknown.line, unknown.column), (Some(6), Some(16)));
        assert_eq!(unknown.step.as_deref(), Some("a"));
        assert!(unknown.help.as_deref().unwrap().contains("mysql.extractor"));
        assert!(r.diagnostics[2].help.as_deref().unwrap().contains("needs"));
    }

    /// Issue 21: a config the schema refuses changes what runs, so it is an error in every mode that checks.
    #[test]
    fn config_problems_are_errors_unless_checks_are_off() {
        let text = OK.replace(
            "path: out.csv",
            "path: out.csv\n      quoting: sometimes\n      colour: red",
        );
        for mode in [Mode::Warn, Mode::Strict] {
            let r = run(&text, mode, &[]);
            assert_eq!(codes(&r), ["OML-E022", "OML-E022"], "{mode:?}");
            assert!(r.plan.is_none(), "{mode:?}");
        }
        let strict = run(&text, Mode::Strict, &[]);
        let colour = &strict.diagnostics[1];
        assert_eq!(
            (colour.line, colour.column),
            (Some(23), Some(7)),
            "{}",
            strict.render()
        );
        assert!(run(&text, Mode::Off, &[]).diagnostics.is_empty());
    }

    #[test]
    fn connection_rules() {
        let bad_family = OK.replace("\"@mysql.default\"", "\"@supabase.main\"");
        assert_eq!(codes(&run(&bad_family, Mode::Warn, &[])), ["OML-E024"]);
        let bad_syntax = OK.replace("\"@mysql.default\"", "\"mysql.default\"");
        assert_eq!(codes(&run(&bad_syntax, Mode::Warn, &[])), ["OML-E023"]);
        let overrides = OK.replace(
            "connection: \"@mysql.default\"",
            "connection: \"@mysql\"\n      user: admin\n      ssl_mode: required\n      host: h",
        );
        let r = run(&overrides, Mode::Warn, &[]);
        assert_eq!(codes(&r), ["OML-E025", "OML-W026"], "{}", r.render());
    }

    #[test]
    fn inline_secrets_are_errors_in_every_mode_and_never_shown() {
        let text = OK.replace(
            "connection: \"@mysql.default\"",
            "connection: \"@mysql.default\"\n      password: \"hunter22\"",
        );
        for mode in [Mode::Off, Mode::Warn, Mode::Strict] {
            let r = run(&text, mode, &[]);
            assert!(codes(&r).contains(&"OML-E040"), "{mode:?}: {}", r.render());
            let shown = r.render() + &serde_json::to_string(&r.diagnostics).unwrap();
            assert!(!shown.contains("hunter22"), "{shown}");
        }
        let nested = r#"oml_version: "0.1.0"
name: g
steps:
  - id: g
    component: graphql.extractor
    mode: read
    config:
      endpoint: https://x
      headers:
        Authorization: "Bearer abc.def"
        X-Trace: "${TRACE}"
      variables:
        user-agent: osiris
"#;
        let r = run(nested, Mode::Off, &[]);
        assert_eq!(codes(&r), ["OML-E040"]);
        assert_eq!(r.diagnostics[0].line, Some(10));
        assert!(!r.render().contains("abc.def"));
        let param = nested.replace("\"Bearer abc.def\"", "\"${params.tok}\"");
        let r = run(&param, Mode::Warn, &[("tok", "x")]);
        assert_eq!(codes(&r), ["OML-E041"]);
    }

    #[test]
    fn unresolved_and_unsafe_parameters() {
        let text = OK.replace(
            "'${params.since}'",
            "'${params.since}' AND r = '${params.region}'",
        );
        let r = run(&text, Mode::Warn, &[]);
        assert_eq!(codes(&r), ["OML-E050"]);
        assert_eq!(r.diagnostics[0].line, Some(11));
        let r = run(&text, Mode::Warn, &[("region", "x' OR '1'='1")]);
        assert_eq!(codes(&r), ["OML-E051"]);
        assert!(!r.render().contains("OR '1'"), "{}", r.render());
        assert!(
            run(&text, Mode::Warn, &[("region", "eu-west")])
                .diagnostics
                .is_empty()
        );
        let code_ctx = OK.replace("FROM df_extract_orders", "FROM ${params.t}");
        assert_eq!(
            codes(&run(
                &code_ctx,
                Mode::Warn,
                &[("t", "df_extract_orders; DROP TABLE x")]
            )),
            ["OML-E051"]
        );
        assert!(
            run(&code_ctx, Mode::Warn, &[("t", "df_extract_orders")])
                .diagnostics
                .is_empty()
        );
    }

    #[test]
    fn wiring_errors() {
        let cycle = OK.replace(
            "  - id: extract-orders\n",
            "  - id: extract-orders\n    needs: [agg]\n",
        );
        let r = run(&cycle, Mode::Warn, &[]);
        assert_eq!(codes(&r), ["OML-E031"]);
        assert!(
            r.diagnostics[0]
                .message
                .contains("`extract-orders` -> `agg` -> `extract-orders`"),
            "{}",
            r.render()
        );
        assert!(
            r.diagnostics[0]
                .help
                .as_deref()
                .unwrap()
                .contains("needs: []")
        );
        let unknown = OK.replace(
            "    component: duckdb.processor\n",
            "    component: duckdb.processor\n    needs: [extract_orders]\n",
        );
        let r = run(&unknown, Mode::Warn, &[]);
        assert_eq!(codes(&r), ["OML-E030"]);
        assert!(
            r.diagnostics[0]
                .help
                .as_deref()
                .unwrap()
                .contains("`extract-orders`")
        );
        let orphan = OK.replace(
            "    component: filesystem.csv_writer\n",
            "    component: filesystem.csv_writer\n    needs: []\n",
        );
        assert_eq!(codes(&run(&orphan, Mode::Warn, &[])), ["OML-E032"]);
        let bad_input = OK.replace(
            "    component: duckdb.processor\n",
            "    component: duckdb.processor\n    inputs: {df: \"${extract.df}\"}\n",
        );
        assert_eq!(codes(&run(&bad_input, Mode::Warn, &[])), ["OML-E033"]);
        let legacy = OK.replace("FROM df_extract_orders", "FROM input_df");
        assert_eq!(codes(&run(&legacy, Mode::Warn, &[])), ["OML-W035"]);
    }

    #[test]
    fn named_inputs_imply_needs() {
        let text = OK.replace("    component: filesystem.csv_writer\n", "    component: filesystem.csv_writer\n    inputs: {orders: \"${extract-orders.df}\"}\n");
        let r = run(&text, Mode::Strict, &[]);
        let plan = r.plan.expect("plan");
        let w = plan.steps.iter().find(|s| s.id == "write").unwrap();
        assert_eq!(w.needs, ["extract-orders"]);
        assert_eq!(
            w.inputs.get("orders").map(String::as_str),
            Some("extract-orders")
        );
        assert_eq!(
            w.inputs.get("df").map(String::as_str),
            Some("extract-orders")
        );
    }
}
