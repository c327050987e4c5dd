//! OML as a JSON Schema (draft 2020-12), for tools and models that write pipelines: the document's keys, each
//! step's keys, and for every component in the catalogue its OML modes and its `configSchema` (an `if`/`then`
//! per component). The validator stays the authority: a document the schema accepts can still fail on
//! wiring, parameters or connections, and `${params.x}` placeholders are only checked by the validator.

use crate::check::{OML_VERSION, STEP_KEYS, TOP_KEYS, oml_mode_of};
use serde_json::{Map, Value, json};

/// The schema of one top-level key of an OML document.
fn top_key(key: &str) -> Value {
    match key {
        "oml_version" => {
            json!({ "const": OML_VERSION, "description": "always the string \"0.1.0\" (quoted)" })
        }
        "name" => {
            json!({ "type": "string", "minLength": 1, "description": "the pipeline's name; its slug is the pipeline id" })
        }
        "steps" => json!({ "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/step" } }),
        "description" => json!({ "type": "string" }),
        "metadata" => json!({ "type": "object" }),
        "schedule" => json!({ "description": "kept as written; not used by osiris" }),
        "params" => json!({
            "type": "object",
            "description": "parameter name -> default value; `${params.NAME}` in any step value takes it (OSIRIS_PARAM_NAME, the profile and --param override it)",
            "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
        }),
        "profiles" => json!({
            "type": "object",
            "description": "profile name -> { params: { NAME: value } }, chosen with --profile",
            "additionalProperties": { "type": "object", "properties": { "params": { "type": "object" } } },
        }),
        other => {
            unreachable!("OML top-level key `{other}` has no schema: add it to `schema::top_key`")
        }
    }
}

/// The schema of one key of a step.
fn step_key(key: &str) -> Value {
    match key {
        "id" => json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$",
            "description": "unique in the pipeline; its output table in SQL is `df_<id>`",
        }),
        "component" => {
            json!({ "type": "string", "description": "`family.role`, e.g. `mysql.extractor` (see the `component` enum)" })
        }
        "mode" => json!({ "enum": ["read", "write", "transform"] }),
        "config" => {
            json!({ "type": "object", "description": "checked against the component's configSchema; `connection: \"@family.alias\"` references a connection" })
        }
        "needs" => json!({
            "type": "array",
            "items": { "type": "string" },
            "description": "step ids that run first; without `needs` or `inputs` a step reads the step before it",
        }),
        "inputs" => json!({
            "type": "object",
            "additionalProperties": { "type": "string" },
            "description": "input alias -> upstream step id",
        }),
        "description" => json!({ "type": "string" }),
        other => unreachable!("OML step key `{other}` has no schema: add it to `schema::step_key`"),
    }
}

/// What [`json_schema`] needs to know of one component.
pub struct ComponentSchema<'a> {
    pub name: &'a str,
    /// The component's modes as its spec writes them (`extract`, `write`, `transform`, ...).
    pub modes: &'a [String],
    pub config_schema: &'a Value,
}

/// The OML document schema for these components (in the order given).
pub fn json_schema<'a>(components: impl IntoIterator<Item = ComponentSchema<'a>>) -> Value {
    let top: Map<String, Value> = TOP_KEYS
        .iter()
        .map(|k| (k.to_string(), top_key(k)))
        .collect();
    let mut step_props: Map<String, Value> = STEP_KEYS
        .iter()
        .map(|k| (k.to_string(), step_key(k)))
        .collect();
    let mut names = Vec::new();
    let mut per_component = Vec::new();
    for c in components {
        let mut modes: Vec<&str> = c.modes.iter().filter_map(|m| oml_mode_of(m)).collect();
        modes.sort();
        modes.dedup();
        names.push(c.name.to_string());
        per_component.push(json!({
            "if": { "properties": { "component": { "const": c.name } }, "required": ["component"] },
            "then": { "properties": { "mode": { "enum": modes }, "config": c.config_schema } },
        }));
    }
    step_props["component"]["enum"] = json!(names);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "OML pipeline",
        "description": format!("an osiris pipeline, OML {OML_VERSION}; custom keys start with `x-`"),
        "type": "object",
        "required": ["oml_version", "name", "steps"],
        "properties": top,
        "patternProperties": { "^x-": {} },
        "additionalProperties": false,
        "$defs": {
            "step": {
                "type": "object",
                "required": ["id", "component", "mode"],
                "properties": step_props,
                "patternProperties": { "^x-": {} },
                "additionalProperties": false,
                "allOf": per_component,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_validator_accepts_is_in_the_schema() {
        let modes = vec!["extract".to_string(), "discover".to_string()];
        let cfg = json!({ "type": "object", "required": ["path"] });
        let s = json_schema([ComponentSchema {
            name: "filesystem.csv_extractor",
            modes: &modes,
            config_schema: &cfg,
        }]);
        let top = s["properties"].as_object().unwrap();
        assert_eq!(top.len(), TOP_KEYS.len());
        assert!(TOP_KEYS.iter().all(|k| top.contains_key(*k)));
        let step = &s["$defs"]["step"];
        let props = step["properties"].as_object().unwrap();
        assert!(STEP_KEYS.iter().all(|k| props.contains_key(*k)));
        assert_eq!(
            step["properties"]["component"]["enum"],
            json!(["filesystem.csv_extractor"])
        );
        // Component modes become OML modes (`extract` is written `read`; `discover` has none).
        assert_eq!(
            step["allOf"][0]["then"]["properties"]["mode"],
            json!({ "enum": ["read"] })
        );
        assert_eq!(step["allOf"][0]["then"]["properties"]["config"], cfg);
        assert_eq!(s["properties"]["oml_version"]["const"], OML_VERSION);
    }
}
