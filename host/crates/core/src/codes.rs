//! Every stable code osiris reports, each defined once: its string, its severity and a one-line summary.
//! docs/errors.md documents each with its fix; the tests below keep the two equal.
//!
//! Invariant: a code never changes meaning, and a retired number is never reused ([`RETIRED`]). Code outside
//! this file names a code only through [`Code`], never as a string literal, and every code is reported
//! somewhere (both checked over `host/crates` by tests/it/codes.rs, which also triggers each code through the
//! CLI).
//!
//! The `OCP-*` codes are raised inside plugins by the plugin SDK, which depends on no osiris crate: they are
//! defined there (`osiris_plugin_sdk::CODES`) and listed here too; `osiris-plugins` checks that the two agree.

use crate::diag::Severity;

macro_rules! codes {
    ($($name:ident = $code:literal, $severity:ident, $summary:literal;)*) => {
        /// A stable code of docs/errors.md. Printed and serialized as its string (`OML-E013`).
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $(#[doc = $summary] $name,)*
        }

        impl Code {
            /// Every code, in the order of docs/errors.md.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// Whether the code is reported as an error or as a warning.
            pub const fn severity(self) -> Severity {
                match self {
                    $(Code::$name => Severity::$severity,)*
                }
            }

            /// What the code means, in one line (docs/errors.md has the whole story and the fix).
            pub const fn summary(self) -> &'static str {
                match self {
                    $(Code::$name => $summary,)*
                }
            }

            /// The Rust name of the code (`OML_E013`), for the tests that look for it in the sources.
            pub const fn ident(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }
        }
    };
}

codes! {
    // SPEC: component specs.
    SPEC_E001 = "SPEC-E001", Error, "the spec file is not valid YAML";
    SPEC_E010 = "SPEC-E010", Error, "a required key of the spec is missing";
    SPEC_E011 = "SPEC-E011", Error, "unknown key in the spec";
    SPEC_E012 = "SPEC-E012", Error, "a spec value has the wrong type";
    SPEC_E013 = "SPEC-E013", Error, "a spec value is not one of the allowed values";
    SPEC_E014 = "SPEC-E014", Error, "a spec string has the wrong format";
    SPEC_E015 = "SPEC-E015", Error, "a spec number, string or list is out of range";
    SPEC_E016 = "SPEC-E016", Error, "a spec list repeats an item that must be unique";
    SPEC_E017 = "SPEC-E017", Error, "a spec value matches none, or several, of the accepted forms";
    SPEC_E019 = "SPEC-E019", Error, "another violation of the spec schema";
    SPEC_E020 = "SPEC-E020", Error, "`configSchema` is not a valid JSON Schema";
    SPEC_E021 = "SPEC-E021", Error, "`configSchema` does not compile";
    SPEC_E030 = "SPEC-E030", Error, "a secret or redaction pointer names no field of `configSchema`";
    SPEC_E031 = "SPEC-E031", Error, "an `x-connection-fields` name is not a property of `configSchema`";
    SPEC_E032 = "SPEC-E032", Error, "an osiris version bound of `x-runtime` is not a semantic version";
    SPEC_E033 = "SPEC-E033", Error, "`max_osiris_version` is older than `min_osiris_version`";
    SPEC_E034 = "SPEC-E034", Error, "an example's `config` does not validate against `configSchema`";
    SPEC_E035 = "SPEC-E035", Error, "`configSchema.required` names a field that is not in `properties`";
    SPEC_E036 = "SPEC-E036", Error, "a connection field is listed in `configSchema.required`";
    SPEC_E037 = "SPEC-E037", Error, "a plugin's component needs another osiris version";
    SPEC_E038 = "SPEC-E038", Error, "a different spec with the same name is already registered";
    SPEC_E050 = "SPEC-E050", Error, "(strict) the spec has no `examples`";
    SPEC_E051 = "SPEC-E051", Error, "(strict) the spec has no `llmHints`";
    SPEC_E052 = "SPEC-E052", Error, "(strict) a configuration property has no `description`";
    SPEC_E053 = "SPEC-E053", Error, "(strict) the spec has no `title` or no `description`";
    SPEC_W001 = "SPEC-W001", Warning, "mode `load` is deprecated";
    SPEC_W002 = "SPEC-W002", Warning, "a property's `default` does not validate against its own schema";
    SPEC_W003 = "SPEC-W003", Warning, "capability `discover` is true but `modes` lacks `discover`";
    SPEC_W004 = "SPEC-W004", Warning, "the spec's directory is not named after the component";

    // CFG: step configurations against their component's `configSchema`.
    CFG_E001 = "CFG-E001", Error, "unknown configuration field";
    CFG_E002 = "CFG-E002", Error, "a required configuration field is missing";
    CFG_E003 = "CFG-E003", Error, "a configuration field has the wrong type";
    CFG_E004 = "CFG-E004", Error, "a configuration value is not allowed";
    CFG_E005 = "CFG-E005", Error, "a configuration value has the wrong format";
    CFG_E006 = "CFG-E006", Error, "a configuration value is out of range or has the wrong length";
    CFG_E007 = "CFG-E007", Error, "a configuration list repeats an item that must be unique";
    CFG_E008 = "CFG-E008", Error, "a configuration value matches none, or several, of the accepted forms";
    CFG_E009 = "CFG-E009", Error, "another configuration rule is violated";
    CFG_E010 = "CFG-E010", Error, "the component's `configSchema` does not compile (a bug in the spec)";

    // CONF: osiris.yaml and the machine policy.
    CONF_E001 = "CONF-E001", Error, "`osiris.yaml` or the machine policy cannot be read";
    CONF_E002 = "CONF-E002", Error, "unknown key in `osiris.yaml` or the machine policy";
    CONF_E003 = "CONF-E003", Error, "a value of `osiris.yaml` or the machine policy has the wrong type or is not allowed";
    CONF_W001 = "CONF-W001", Warning, "`osiris.yaml` is writable by group or others";
    CONF_W002 = "CONF-W002", Warning, "a connections, secrets or `.env` file is writable by group or others";

    // CLI: command-line usage.
    CLI_E001 = "CLI-E001", Error, "no component supports the mode given";
    CLI_E002 = "CLI-E002", Error, "the spec file given cannot be read";
    CLI_E003 = "CLI-E003", Error, "`osiris init` would overwrite existing files";
    CLI_E004 = "CLI-E004", Error, "`osiris init` cannot create a directory or write a file";
    CLI_E005 = "CLI-E005", Error, "the command line is not valid";
    CLI_E006 = "CLI-E006", Error, "`osiris chat` without `--prompt` needs a terminal";
    CLI_E007 = "CLI-E007", Error, "`osiris chat`: the `--out` file exists";
    CLI_E008 = "CLI-E008", Error, "`osiris docs generate --check`: a generated page is stale, missing or left over";

    // PLUGIN: plugin packages and trust.
    PLUGIN_E001 = "PLUGIN-E001", Error, "plugin package unreadable";
    PLUGIN_E002 = "PLUGIN-E002", Error, "plugin ABI not supported";
    PLUGIN_E003 = "PLUGIN-E003", Error, "plugin built for another platform";
    PLUGIN_E004 = "PLUGIN-E004", Error, "osiris version outside the plugin's range";
    PLUGIN_E005 = "PLUGIN-E005", Error, "plugin not on the allowlist";
    PLUGIN_E006 = "PLUGIN-E006", Error, "unsigned plugin refused";
    PLUGIN_E007 = "PLUGIN-E007", Error, "plugin signature invalid";
    PLUGIN_E008 = "PLUGIN-E008", Error, "plugin signed by an untrusted key";
    PLUGIN_E009 = "PLUGIN-E009", Error, "signing key not trusted for this plugin name";
    PLUGIN_E010 = "PLUGIN-E010", Error, "plugin file changed after packaging";
    PLUGIN_E011 = "PLUGIN-E011", Error, "plugin library failed to load";
    PLUGIN_E012 = "PLUGIN-E012", Error, "loaded plugin differs from its verified manifest";
    PLUGIN_E013 = "PLUGIN-E013", Error, "plugin ships an invalid component spec";
    PLUGIN_E014 = "PLUGIN-E014", Error, "two plugins provide the same component";
    PLUGIN_E015 = "PLUGIN-E015", Error, "plugin component clashes with a built-in";
    PLUGIN_E017 = "PLUGIN-E017", Error, "invalid plugin or component name";
    PLUGIN_E018 = "PLUGIN-E018", Error, "refusing to write outside the directory";
    PLUGIN_E019 = "PLUGIN-E019", Error, "component family outside the signing key's scope";
    PLUGIN_E020 = "PLUGIN-E020", Error, "older build of a plugin than a validly signed one found";
    PLUGIN_E021 = "PLUGIN-E021", Error, "plugin files writable by other users";
    PLUGIN_E022 = "PLUGIN-E022", Error, "plugin library depends on a non-system library";
    PLUGIN_E023 = "PLUGIN-E023", Error, "plugin built with `panic = \"abort\"`";
    PLUGIN_W001 = "PLUGIN-W001", Warning, "plugin shadowed by a higher-precedence directory";
    PLUGIN_W002 = "PLUGIN-W002", Warning, "plugins disabled";
    PLUGIN_W003 = "PLUGIN-W003", Warning, "unusable `plugins:` setting";

    // OCP: raised by the plugin SDK at the plugin boundary (inside RUN-E004 messages).
    OCP_INVALID_BATCH = "OCP-INVALID-BATCH", Error, "a loaded plugin produced a batch that breaks the Arrow format";
    OCP_STREAM_ERROR = "OCP-STREAM-ERROR", Error, "a stream failed without a message or breaks the C Stream Interface";
    OCP_PANIC = "OCP-PANIC", Error, "the plugin panicked";
    OCP_POISONED = "OCP-POISONED", Error, "the plugin panicked earlier in this process and is not called again";
    OCP_UNKNOWN_COMPONENT = "OCP-UNKNOWN-COMPONENT", Error, "a plugin was asked for a component it does not offer";

    // OML: pipelines.
    OML_E001 = "OML-E001", Error, "the pipeline file cannot be read";
    OML_E002 = "OML-E002", Error, "the pipeline file is not valid YAML";
    OML_E003 = "OML-E003", Error, "a required top-level key is missing";
    OML_E004 = "OML-E004", Error, "`oml_version` is not `\"0.1.0\"`";
    OML_E005 = "OML-E005", Error, "a key of an older pipeline format";
    OML_E006 = "OML-E006", Error, "unknown top-level key";
    OML_E007 = "OML-E007", Error, "a top-level value has the wrong type";
    OML_E010 = "OML-E010", Error, "a step is not a mapping";
    OML_E011 = "OML-E011", Error, "a step lacks `id`, `component` or `mode`";
    OML_E012 = "OML-E012", Error, "unknown step key";
    OML_E013 = "OML-E013", Error, "two steps share an id";
    OML_E014 = "OML-E014", Error, "invalid step id";
    OML_E015 = "OML-E015", Error, "a step value has the wrong type";
    OML_E016 = "OML-E016", Error, "`mode` is not `read`, `write` or `transform`";
    OML_W017 = "OML-W017", Warning, "a component mode (`extract`, `load`) written where an OML mode belongs";
    OML_E017 = "OML-E017", Error, "`OML-W017` with `--mode strict`";
    OML_E021 = "OML-E021", Error, "the component does not support the step's mode";
    OML_E022 = "OML-E022", Error, "the step config does not match the component's `configSchema`";
    OML_E023 = "OML-E023", Error, "`config.connection` is not a connection reference";
    OML_E024 = "OML-E024", Error, "the connection's family is not the component's";
    OML_E025 = "OML-E025", Error, "a step overrides a connection field that may not be overridden";
    OML_W026 = "OML-W026", Warning, "a step overrides a connection field whose override the spec warns about";
    OML_E026 = "OML-E026", Error, "`OML-W026` with `--mode strict`";
    OML_E030 = "OML-E030", Error, "`needs` names a step that does not exist";
    OML_E031 = "OML-E031", Error, "the steps depend on each other in a cycle";
    OML_E032 = "OML-E032", Error, "a writer step has no upstream step that produces data";
    OML_E033 = "OML-E033", Error, "an `inputs` entry is not a valid step output reference";
    OML_E034 = "OML-E034", Error, "an `inputs` name is already the automatic alias of another upstream step";
    OML_E035 = "OML-E035", Error, "an `inputs` entry names a writer step, which has no output";
    OML_W035 = "OML-W035", Warning, "SQL reads `input_df`, which no step provides";
    OML_E036 = "OML-E036", Error, "`OML-W035` with `--mode strict` (not OML-E035, which is another error)";
    OML_E037 = "OML-E037", Error, "a writer with `commit: per_chunk` is not fed straight by one extractor that sets `chunk_by`";
    OML_E040 = "OML-E040", Error, "inline secret: a secret-bearing field holds a literal value";
    OML_E041 = "OML-E041", Error, "a secret-bearing field takes a parameter";
    OML_E050 = "OML-E050", Error, "a parameter has no value";
    OML_E051 = "OML-E051", Error, "a parameter value would change the shape of an SQL statement";
    OML_E052 = "OML-E052", Error, "a parameter is malformed or its value does not fit its type";
    OML_E053 = "OML-E053", Error, "`--profile` names a profile the file does not define";
    OML_W054 = "OML-W054", Warning, "`--param` names a parameter the pipeline neither declares nor uses";
    OML_E054 = "OML-E054", Error, "`OML-W054` with `--mode strict`";
    OML_E060 = "OML-E060", Error, "the compile output cannot be written";
    OML_E104 = "OML-E104", Error, "unknown component";

    // MCP: the MCP server (`osiris mcp`).
    MCP_E001 = "MCP-E001", Error, "`--http ADDR` is not a loopback address and port";
    MCP_E002 = "MCP-E002", Error, "the `--http` address cannot be bound";
    MCP_E003 = "MCP-E003", Error, "a tool's pipeline is missing, outside the project, or a file of secrets or settings";
    MCP_E004 = "MCP-E004", Error, "a real run was not confirmed (`confirm: true`)";
    MCP_E005 = "MCP-E005", Error, "sample rows were asked for and the project does not share them with MCP clients";
    MCP_E006 = "MCP-E006", Error, "the server cannot start its child `osiris` process";
    MCP_E007 = "MCP-E007", Error, "a tool panicked (a bug)";
    MCP_E008 = "MCP-E008", Error, "a pipeline given as OML text cannot be saved";
    MCP_E009 = "MCP-E009", Error, "a tool argument is not valid";

    // LLM: `osiris prompts build-context` and `osiris chat`.
    LLM_E001 = "LLM-E001", Error, "`prompts build-context --components` names a component not in the registry";
    LLM_E002 = "LLM-E002", Error, "a chat attempt: the model's reply holds no pipeline";
    LLM_E003 = "LLM-E003", Error, "`chat`: no valid pipeline after the last attempt";
    LLM_E010 = "LLM-E010", Error, "no model endpoint configured, or it is not an http(s) URL";
    LLM_E011 = "LLM-E011", Error, "no model configured";
    LLM_E012 = "LLM-E012", Error, "no API key for an endpoint that is not on this machine";
    LLM_E013 = "LLM-E013", Error, "`llm.api_key` in osiris.yaml is not a `${VAR}` reference";
    LLM_E014 = "LLM-E014", Error, "an `OSIRIS_LLM_*` value is not allowed";
    LLM_E020 = "LLM-E020", Error, "the model endpoint gave no answer within the retries";
    LLM_E021 = "LLM-E021", Error, "the model endpoint refused the request";
    LLM_E022 = "LLM-E022", Error, "the model endpoint's answer is not what the provider's API returns";

    // RUN: running a pipeline.
    RUN_E001 = "RUN-E001", Error, "the manifest directory is unusable";
    RUN_E002 = "RUN-E002", Error, "a step's component has no driver";
    RUN_E003 = "RUN-E003", Error, "the run directory cannot be created";
    RUN_E004 = "RUN-E004", Error, "a step failed";
    RUN_E005 = "RUN-E005", Error, "a step's connection cannot be resolved";
    RUN_E006 = "RUN-E006", Error, "the run cannot make progress (a bug)";
    RUN_E007 = "RUN-E007", Error, "no recorded run has that id, or the prefix starts several ids";
    RUN_E008 = "RUN-E008", Error, "a connection sets a field that no component of its family reads";
    RUN_E009 = "RUN-E009", Error, "a run report cannot be made: the run directory is gone or the page cannot be written";
    RUN_E010 = "RUN-E010", Error, "a dead-letter item cannot be found, read or replayed";
    RUN_E011 = "RUN-E011", Error, "an incremental step's state cannot be used, or a per-chunk writer is not fed by a chunked extractor";
    RUN_E012 = "RUN-E012", Error, "`osiris run --resume RUN_ID` cannot resume that run";

}

/// Codes no longer issued, with why. Their numbers are never given to another meaning; docs/errors.md keeps
/// a row for each that says `retired`.
pub const RETIRED: &[(&str, &str)] = &[
    (
        "PLUGIN-E016",
        "a plugin that panicked is reported as `OCP-PANIC` and then `OCP-POISONED` inside `RUN-E004`",
    ),
    (
        "OML-W022",
        "a config that the component's `configSchema` refuses is the error `OML-E022` (ADR 0009)",
    ),
];

impl Code {
    /// The error a warning becomes with `--mode strict` (`None` for errors and for warnings of other families,
    /// which strict mode does not promote). Same number as the warning, unless the number is taken.
    pub const fn promoted(self) -> Option<Code> {
        match self {
            Code::OML_W017 => Some(Code::OML_E017),
            Code::OML_W026 => Some(Code::OML_E026),
            Code::OML_W035 => Some(Code::OML_E036),
            Code::OML_W054 => Some(Code::OML_E054),
            _ => None,
        }
    }

    /// The family: the part before the first `-` (`OML`, `PLUGIN`, ...).
    pub fn family(self) -> &'static str {
        self.as_str()
            .split_once('-')
            .map_or(self.as_str(), |(f, _)| f)
    }

    /// The code of a string, if it is one (`"OML-E013"` -> `OML_E013`).
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Codes sort by their string, so diagnostics keep the order they had when codes were strings.
impl Ord for Code {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for Code {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const ERRORS_MD: &str = include_str!("../../../../docs/errors.md");

    /// The codes docs/errors.md documents: the first cell of each table row, with the rest of the row.
    fn documented() -> Vec<(&'static str, &'static str)> {
        ERRORS_MD
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("| ")?;
                let (first, rest) = rest.split_once(" |")?;
                let first = first.trim_matches('`');
                let (family, number) = first.split_once('-')?;
                (!family.is_empty()
                    && family.bytes().all(|b| b.is_ascii_uppercase())
                    && !number.is_empty()
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'))
                .then_some((first, rest))
            })
            .collect()
    }

    #[test]
    fn each_code_is_defined_once_under_its_own_name() {
        let mut seen = BTreeSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} is defined twice");
            assert_eq!(c.ident().replace('_', "-"), c.as_str(), "the name of {c}");
            let kind = c.as_str()[c.family().len() + 1..].chars().next();
            if c.family() != "OCP" {
                let want = match c.severity() {
                    Severity::Error => Some('E'),
                    Severity::Warning => Some('W'),
                };
                assert_eq!(
                    kind, want,
                    "{c}: the letter after the family is its severity"
                );
            }
            assert_eq!(Code::parse(c.as_str()), Some(*c));
            assert!(
                !c.summary().is_empty() && !c.summary().ends_with('.'),
                "{c}"
            );
        }
        for (r, why) in RETIRED {
            assert!(
                Code::parse(r).is_none(),
                "{r} is retired and may not be defined again"
            );
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn every_code_is_documented_and_every_documented_code_is_defined() {
        let docs = documented();
        let mut rows = BTreeSet::new();
        for (code, _) in &docs {
            assert!(rows.insert(*code), "{code} has two rows in docs/errors.md");
        }
        for c in Code::ALL {
            assert!(
                rows.contains(c.as_str()),
                "{c} ({}) has no row in docs/errors.md: add one with its meaning and fix",
                c.summary()
            );
        }
        for (code, row) in &docs {
            match RETIRED.iter().find(|(r, _)| r == code) {
                Some(_) => assert!(
                    row.contains("retired"),
                    "docs/errors.md: the row of {code} must say it is retired"
                ),
                None => assert!(
                    Code::parse(code).is_some(),
                    "docs/errors.md documents {code}, which osiris_core::codes does not define: add it to the \
                     table, or list it in RETIRED and say `retired` in its row"
                ),
            }
        }
    }

    #[test]
    fn strict_mode_gives_every_pipeline_warning_a_distinct_documented_error() {
        let mut targets = BTreeSet::new();
        for c in Code::ALL {
            match c.promoted() {
                Some(e) => {
                    assert_eq!(c.severity(), Severity::Warning, "{c}");
                    assert_eq!(e.severity(), Severity::Error, "{c} -> {e}");
                    assert_eq!(e.family(), c.family());
                    assert!(targets.insert(e), "{e} is the strict form of two warnings");
                    assert!(
                        e.summary() == format!("`{c}` with `--mode strict`")
                            || e.summary()
                                .starts_with(&format!("`{c}` with `--mode strict` (")),
                        "{e} says which warning it promotes"
                    );
                    let row = documented().into_iter().find(|(d, _)| *d == e.as_str());
                    assert!(
                        row.is_some_and(
                            |(_, r)| r.contains("--mode strict") && r.contains(c.as_str())
                        ),
                        "the row of {e} in docs/errors.md names `--mode strict` and {c}"
                    );
                }
                None => assert!(
                    c.family() != "OML" || c.severity() == Severity::Error,
                    "{c}: an OML warning needs its strict-mode error in Code::promoted"
                ),
            }
        }
        for c in Code::ALL {
            if c.summary().contains("with `--mode strict`") {
                assert!(
                    targets.contains(c),
                    "{c} is a strict-mode error but no warning is promoted to it"
                );
            }
        }
        assert_eq!(Code::OML_W035.promoted(), Some(Code::OML_E036));
        assert_ne!(Code::OML_W035.promoted(), Some(Code::OML_E035));
    }
}
