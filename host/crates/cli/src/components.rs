//! `osiris components`: browse the catalogue, print specs and example configurations, validate specs.

use super::{Format, Global};
use crate::LevelArg;
use osiris_core::codes::Code;
use osiris_core::diag::Diagnostic;
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_registry::{ComponentSpec, Registry, Source, check};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

#[derive(clap::Subcommand, Debug)]
pub enum ComponentsCmd {
    /// List components: name, version, modes, capabilities, whether a driver is available.
    List(ListArgs),
    /// Print a component's spec (YAML as written, or JSON).
    Spec(SpecArgs),
    /// Print an example step configuration for a component, as YAML.
    ConfigExample(ConfigExampleArgs),
    /// Validate component specs and report every problem with file:line:col and a fix.
    Validate(ValidateArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only components whose driver is available (linked in or loaded from a plugin).
    #[arg(long)]
    pub runnable: bool,
    /// Only components supporting this mode (extract, write, transform, discover, ...).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    Yaml,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// Component name, e.g. mysql.extractor.
    pub name: String,
    #[arg(long, value_enum, default_value_t = SpecFormat::Yaml)]
    pub format: SpecFormat,
}

#[derive(clap::Args, Debug)]
pub struct ConfigExampleArgs {
    /// Component name, e.g. mysql.extractor.
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Component name, or the path of a spec.yaml file.
    #[arg(
        required_unless_present = "all",
        conflicts_with = "all",
        value_name = "NAME|FILE"
    )]
    pub target: Option<String>,
    /// Validate every component in the registry.
    #[arg(long)]
    pub all: bool,
    /// basic: spec schema; enhanced: + semantic rules; strict: + examples, llmHints and descriptions.
    #[arg(long, value_enum, default_value_t = LevelArg::Enhanced)]
    pub level: LevelArg,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(g: &Global, c: ComponentsCmd) -> CmdResult {
    match c {
        ComponentsCmd::List(a) => list(g, a),
        ComponentsCmd::Spec(a) => spec(g, a),
        ComponentsCmd::ConfigExample(a) => config_example(g, a),
        ComponentsCmd::Validate(a) => validate(g, a),
    }
}

/// One row of `components list --format json`.
#[derive(Serialize, Debug)]
struct Row<'a> {
    name: &'a str,
    version: &'a str,
    modes: &'a [String],
    capabilities: Vec<&'a str>,
    description: &'a str,
    runnable: bool,
    source: &'a str,
    /// For a plugin's component: `"at_load"`. Listing read only the plugin's manifest, signature and spec files;
    /// its library is hashed (and loaded) when a command runs the component, or by `osiris plugins list`.
    #[serde(skip_serializing_if = "Option::is_none")]
    library_check: Option<&'static str>,
    #[serde(skip)]
    title: &'a str,
}

fn list(g: &Global, a: ListArgs) -> CmdResult {
    let reg = osiris_runner::modules::build_registry(g);
    if let Some(m) = &a.mode {
        let known = known_modes(&reg);
        if !known.iter().any(|k| k == m) {
            let hint = match osiris_core::diag::did_you_mean(m, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? "),
                None => String::new(),
            };
            let d = Diagnostic::error(Code::CLI_E001, format!("no component supports mode `{m}`"))
                .help(format!(
                    "{hint}modes in use: {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            return Err(Fail::new(Exit::Validation, d.render(None)));
        }
    }
    let rows: Vec<Row> = reg
        .iter()
        .filter(|s| !a.runnable || s.runnable)
        .filter(|s| a.mode.as_ref().is_none_or(|m| s.supports_mode(m)))
        .map(|s| Row {
            name: &s.name,
            version: &s.version,
            modes: &s.modes,
            capabilities: s
                .capabilities
                .iter()
                .filter(|(_, on)| **on)
                .map(|(k, _)| k.as_str())
                .collect(),
            description: &s.description,
            title: if s.title.is_empty() {
                &s.description
            } else {
                &s.title
            },
            runnable: s.runnable,
            source: s.source.label(),
            library_check: match s.source {
                Source::Plugin { .. } => Some("at_load"),
                Source::Builtin => None,
            },
        })
        .collect();
    match a.format {
        Format::Json => outln!("{}", to_json(&rows)?),
        Format::Text => {
            let header = ["NAME", "VERSION", "MODES", "RUNNABLE", "SOURCE", "TITLE"];
            let cells: Vec<[String; 6]> = rows
                .iter()
                .map(|r| {
                    [
                        r.name.to_string(),
                        r.version.to_string(),
                        r.modes.join(","),
                        if r.runnable { "yes" } else { "no" }.to_string(),
                        r.source.to_string(),
                        r.title.to_string(),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for row in &cells {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cols: &[String]| {
                let mut s = String::new();
                for (i, c) in cols.iter().enumerate() {
                    if i + 1 == cols.len() {
                        s.push_str(c);
                    } else {
                        s.push_str(&format!("{c:<w$}  ", w = widths[i]));
                    }
                }
                s
            };
            outln!("{}", line(&header.map(String::from)));
            for row in &cells {
                outln!("{}", line(row));
            }
            if rows.is_empty() {
                errln!("no component matches");
            }
        }
    }
    Ok(Exit::Ok)
}

fn known_modes(reg: &Registry) -> Vec<String> {
    let mut m: Vec<String> = reg.iter().flat_map(|s| s.modes.iter().cloned()).collect();
    m.sort();
    m.dedup();
    m
}

fn lookup<'r>(reg: &'r Registry, name: &str) -> Result<&'r ComponentSpec, Fail> {
    reg.get(name)
        .ok_or_else(|| Fail::new(Exit::Validation, reg.unknown_component(name).render(None)))
}

fn spec(g: &Global, a: SpecArgs) -> CmdResult {
    let reg = osiris_runner::modules::build_registry(g);
    let spec = lookup(&reg, &a.name)?;
    match a.format {
        SpecFormat::Yaml => out!("{}", spec.text),
        SpecFormat::Json => outln!("{}", to_json(&spec.raw)?),
    }
    Ok(Exit::Ok)
}

fn config_example(g: &Global, a: ConfigExampleArgs) -> CmdResult {
    let reg = osiris_runner::modules::build_registry(g);
    let spec = lookup(&reg, &a.name)?;
    let title = spec
        .examples
        .first()
        .and_then(|e| e.get("title"))
        .and_then(Value::as_str);
    let (comment, yaml) = match (title, spec.example_config_yaml(0)) {
        (Some(title), Some(yaml)) => (format!("# {}: {title}", spec.name), yaml),
        _ => {
            let yaml =
                serde_yaml::to_string(&minimal_config(&spec.config_schema)).map_err(|e| {
                    Fail::new(
                        Exit::Internal,
                        format!("internal error (a bug, please report it): {e}"),
                    )
                })?;
            (
                format!("# {}: required fields and defaults", spec.name),
                yaml,
            )
        }
    };
    outln!("{comment}\n{}", yaml.trim_end());
    Ok(Exit::Ok)
}

/// Required fields (a default, the first allowed value, or a placeholder) plus every field with a default.
pub fn minimal_config(schema: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let props = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = props {
        for (name, p) in props {
            if let Some(d) = p.get("default") {
                out.insert(name.clone(), d.clone());
            } else if required.contains(&name.as_str()) {
                let v = if let Some(first) = p
                    .get("enum")
                    .and_then(Value::as_array)
                    .and_then(|e| e.first())
                {
                    first.clone()
                } else {
                    match p.get("type").and_then(Value::as_str) {
                        Some("integer") | Some("number") => {
                            p.get("minimum").cloned().unwrap_or(Value::from(0))
                        }
                        Some("boolean") => Value::Bool(false),
                        Some("array") => Value::Array(Vec::new()),
                        Some("object") => Value::Object(Default::default()),
                        _ => Value::String(format!("<{name}>")),
                    }
                };
                out.insert(name.clone(), v);
            }
        }
    }
    for r in required {
        out.entry(r.to_string())
            .or_insert_with(|| Value::String(format!("<{r}>")));
    }
    Value::Object(out)
}

/// One validated spec in `components validate --format json`.
#[derive(Serialize)]
struct Checked {
    file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<String>,
    ok: bool,
    diagnostics: Vec<Diagnostic>,
}

fn validate(g: &Global, a: ValidateArgs) -> CmdResult {
    let mut targets: Vec<(String, String)> = Vec::new(); // (file label, text)
    if a.all {
        let reg = osiris_runner::modules::build_registry(g);
        targets.extend(reg.iter().map(|s| (s.file.clone(), s.text.to_string())));
    } else if let Some(t) = &a.target {
        let path = Path::new(t);
        let looks_like_file =
            t.ends_with(".yaml") || t.ends_with(".yml") || t.contains('/') || t.contains('\\');
        if path.is_file() || looks_like_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Fail::new(
                    Exit::Validation,
                    Diagnostic::error(Code::CLI_E002, format!("cannot read `{t}`: {e}"))
                        .help("give the path of a spec.yaml file, or a component name such as `mysql.extractor`")
                        .render(None),
                )
            })?;
            targets.push((t.clone(), text));
        } else {
            let reg = osiris_runner::modules::build_registry(g);
            let spec = lookup(&reg, t)?;
            targets.push((spec.file.clone(), spec.text.to_string()));
        }
    }
    let mut results = Vec::new();
    let mut errors = 0;
    let mut warnings = 0;
    for (file, text) in &targets {
        let report = check::check_text(file, text, a.level.into(), Source::Builtin);
        errors += report.diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += report.diagnostics.iter().filter(|d| !d.is_error()).count();
        if a.format == Format::Text {
            for d in &report.diagnostics {
                errln!("{}", d.render(Some(text)));
            }
            let status = if report.has_errors() { "invalid" } else { "ok" };
            let name = report.name.clone().unwrap_or_else(|| "?".to_string());
            outln!("{status:<8} {name} ({file})");
        }
        results.push(Checked {
            file: file.clone(),
            component: report.name.clone(),
            ok: !report.has_errors(),
            diagnostics: report.diagnostics,
        });
    }
    match a.format {
        Format::Json => outln!("{}", to_json(&results)?),
        Format::Text => {
            let level = format!("{:?}", a.level).to_lowercase();
            errln!(
                "{} spec{} checked at level `{level}`: {errors} error{}, {warnings} warning{}",
                targets.len(),
                if targets.len() == 1 { "" } else { "s" },
                if errors == 1 { "" } else { "s" },
                if warnings == 1 { "" } else { "s" },
            );
        }
    }
    Ok(if errors > 0 {
        Exit::Validation
    } else {
        Exit::Ok
    })
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> Result<String, Fail> {
    serde_json::to_string_pretty(v).map_err(|e| {
        Fail::new(
            Exit::Internal,
            format!("internal error (a bug, please report it): {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minimal_config_has_required_fields_and_defaults() {
        let schema = json!({
            "type": "object",
            "properties": {
                "path": {"type": "string"},
                "mode": {"type": "string", "enum": ["append", "replace"]},
                "batch": {"type": "integer", "minimum": 100},
                "header": {"type": "boolean", "default": true},
                "optional": {"type": "string"}
            },
            "required": ["path", "mode", "batch"]
        });
        assert_eq!(
            minimal_config(&schema),
            json!({"path": "<path>", "mode": "append", "batch": 100, "header": true})
        );
    }
}
