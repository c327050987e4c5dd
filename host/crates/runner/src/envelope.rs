//! The envelope every event travels in (ADR 0015): each line of a run's `events.jsonl`, and each item of the
//! dead-letter queue ([`crate::dlq`]).
//!
//! ```json
//! {"id": "run-0123456789ab-e00007", "correlation_id": "run-0123456789ab", "timestamp": "2026-...Z",
//!  "source": "runner", "type": "step_complete", "schema_ref": "osiris/events/step_complete.v1",
//!  "payload": {"step": "extract", "rows_read": 20, ...}}
//! ```
//!
//! `correlation_id` ties together everything one run (or one compile) emitted; `id` is unique and orders the
//! envelopes of one correlation. `schema_ref` names the JSON Schema of the payload: the file
//! `host/crates/runner/schemas/events/<type>.v1.json`, embedded here ([`SCHEMAS`]); the envelope itself is
//! described by `envelope.v1.json`.

use serde_json::{Map, Value, json};

/// The JSON Schema of the envelope itself.
pub const ENVELOPE_SCHEMA: &str = include_str!("../schemas/events/envelope.v1.json");

/// `(type, JSON Schema of its payload)` for every type an envelope may carry.
pub const SCHEMAS: &[(&str, &str)] = &[
    (
        "run_start",
        include_str!("../schemas/events/run_start.v1.json"),
    ),
    (
        "step_start",
        include_str!("../schemas/events/step_start.v1.json"),
    ),
    (
        "step_retry",
        include_str!("../schemas/events/step_retry.v1.json"),
    ),
    (
        "step_rerun",
        include_str!("../schemas/events/step_rerun.v1.json"),
    ),
    (
        "step_complete",
        include_str!("../schemas/events/step_complete.v1.json"),
    ),
    (
        "step_error",
        include_str!("../schemas/events/step_error.v1.json"),
    ),
    (
        "step_cancelled",
        include_str!("../schemas/events/step_cancelled.v1.json"),
    ),
    (
        "run_cancel",
        include_str!("../schemas/events/run_cancel.v1.json"),
    ),
    (
        "run_abandon",
        include_str!("../schemas/events/run_abandon.v1.json"),
    ),
    (
        "incremental_window",
        include_str!("../schemas/events/incremental_window.v1.json"),
    ),
    (
        "state_advanced",
        include_str!("../schemas/events/state_advanced.v1.json"),
    ),
    (
        "state_kept",
        include_str!("../schemas/events/state_kept.v1.json"),
    ),
    (
        "chunk_committed",
        include_str!("../schemas/events/chunk_committed.v1.json"),
    ),
    (
        "run_resumed",
        include_str!("../schemas/events/run_resumed.v1.json"),
    ),
    ("run_end", include_str!("../schemas/events/run_end.v1.json")),
    (
        "compile_error",
        include_str!("../schemas/events/compile_error.v1.json"),
    ),
];

/// `osiris/events/<type>.v1`.
pub fn schema_ref(kind: &str) -> String {
    format!("osiris/events/{kind}.v1")
}

/// The payload schema of `schema_ref`, when it is one of [`SCHEMAS`].
pub fn schema_of(schema_ref: &str) -> Option<&'static str> {
    let kind = schema_ref
        .strip_prefix("osiris/events/")?
        .strip_suffix(".v1")?;
    SCHEMAS.iter().find(|(k, _)| *k == kind).map(|(_, s)| *s)
}

/// Who emits envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Compiler,
    Runner,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Compiler => "compiler",
            Source::Runner => "runner",
        }
    }
}

/// An envelope of `kind` with `payload` (an object), numbered `seq` within `correlation_id`.
pub fn make(
    correlation_id: &str,
    seq: u64,
    source: Source,
    kind: &str,
    timestamp: &str,
    payload: Map<String, Value>,
) -> Value {
    json!({
        "id": format!("{correlation_id}-e{seq:05}"),
        "correlation_id": correlation_id,
        "timestamp": timestamp,
        "source": source.as_str(),
        "type": kind,
        "schema_ref": schema_ref(kind),
        "payload": Value::Object(payload),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_json_and_found_by_its_ref() {
        for (kind, text) in SCHEMAS {
            let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(v["type"], "object", "{kind}");
            assert_eq!(schema_of(&schema_ref(kind)), Some(*text));
        }
        assert!(serde_json::from_str::<Value>(ENVELOPE_SCHEMA).is_ok());
        assert_eq!(schema_of("osiris/events/nope.v1"), None);
    }
}
