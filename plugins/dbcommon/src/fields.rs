//! Reading a database step's fields: the resolved connection with the step's inline fields on top, the fields
//! every database plugin reads the same way (`connect_timeout`, `read_timeout`), and the thread a blocking driver call runs on.
//!
//! Invariant: no message built here contains a field's value other than the timeouts' own.

use osiris_plugin_sdk::{Context, ErrorKind, PluginError};
use serde_json::{Map, Value};
use std::time::Duration;

/// The step config with the connection's fields underneath: inline fields win.
pub fn merged(config: &Value, ctx: &Context) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(Value::Object(conn)) = ctx.connection() {
        for (k, v) in conn {
            out.insert(k, v);
        }
    }
    if let Value::Object(cfg) = config {
        for (k, v) in cfg {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A writer's key columns (`field` names the setting: `primary_key`, `upsert_keys`) must all be input columns.
pub fn keys_among_inputs(
    field: &str,
    keys: &[String],
    names: &[String],
) -> Result<(), PluginError> {
    match keys.iter().find(|k| !names.contains(k)) {
        Some(k) => Err(PluginError::config(format!(
            "`{field}` column `{k}` is not among the input columns ({})",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

/// A string field; an empty string counts as absent.
pub fn str_field<'a>(m: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    m.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// How long opening a session may take when the connection does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `connect_timeout`: whole seconds from 1 to 3600 (a number or a numeric string), `None` when absent or null.
/// A bad value is a `Config` error with the plugin's `code` (e.g. `MYSQL-CONFIG`).
pub fn connect_timeout(
    m: &Map<String, Value>,
    code: &str,
) -> Result<Option<Duration>, PluginError> {
    seconds(m, "connect_timeout", 3600, DEFAULT_CONNECT_TIMEOUT, code)
}

/// How long the server may stay silent while a step waits for it when the connection does not say.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(600);

/// `read_timeout`: whole seconds from 1 to 86400, the longest a step waits for the next answer of the server
/// once the session is open (the query's first row, the next rows): a stalled network or a hung server is a
/// `timeout` connection error after that long instead of a run that never ends. `None` when absent or null.
pub fn read_timeout(m: &Map<String, Value>, code: &str) -> Result<Option<Duration>, PluginError> {
    seconds(m, "read_timeout", 86_400, DEFAULT_READ_TIMEOUT, code)
}

fn seconds(
    m: &Map<String, Value>,
    field: &str,
    max: u64,
    default: Duration,
    code: &str,
) -> Result<Option<Duration>, PluginError> {
    let bad = |got: String| {
        PluginError::new(
            ErrorKind::Config,
            code,
            format!("`{field}` must be a whole number of seconds from 1 to {max}, got {got}"),
        )
        .with_help(format!(
            "e.g. `{field}: {}` (the default)",
            default.as_secs()
        ))
    };
    let secs = match m.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| bad(n.to_string()))?,
        Some(Value::String(s)) => s.trim().parse::<u64>().map_err(|_| bad(format!("`{s}`")))?,
        Some(other) => return Err(bad(other.to_string())),
    };
    if !(1..=max).contains(&secs) {
        return Err(bad(secs.to_string()));
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// Awaits `fut` for at most `limit`: the server's answer to what the step is `doing` (e.g. "reading the rows").
/// Past the limit the step fails with a `timeout` connection error naming `label` (`host:port/db`, no secret)
/// and the limit; the caller drops the session (a session with a request in flight cannot go back to a pool).
pub async fn within<T>(
    limit: Duration,
    label: &str,
    doing: &str,
    fut: impl std::future::Future<Output = Result<T, PluginError>>,
) -> Result<T, PluginError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(PluginError::new(
            ErrorKind::Connection,
            "timeout",
            format!(
                "{doing} from {label}: no answer from the server for {} s (the network stalled or the server hangs)",
                limit.as_secs()
            ),
        )
        .with_help(
            "check the network between here and the server and the server's load; `read_timeout` of the \
             connection sets the limit in seconds (default 600): raise it for a query that takes longer than \
             that before its first row",
        )),
    }
}

/// Runs `f` on a fresh thread: `Runtime::block_on` must not be called from inside another runtime (the host
/// calls drivers on its own runtime's blocking threads). A panic in `f` resumes on the calling thread.
pub fn on_thread<T: Send>(
    f: impl FnOnce() -> Result<T, PluginError> + Send,
) -> Result<T, PluginError> {
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_columns_must_be_input_columns() {
        let names = vec!["id".to_string(), "name".to_string()];
        assert!(keys_among_inputs("primary_key", &["id".to_string()], &names).is_ok());
        let e = keys_among_inputs("upsert_keys", &["id".to_string(), "ID".to_string()], &names)
            .unwrap_err();
        assert_eq!(
            e.message,
            "`upsert_keys` column `ID` is not among the input columns (`id`, `name`)"
        );
    }
    use osiris_plugin_sdk::testing::TestContext;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn inline_fields_win_over_the_connection() {
        let ctx = Context::new(TestContext::with_connection(
            json!({"host": "db", "port": 1, "user": "u"}),
        ));
        let m = merged(&json!({"port": 2, "table": "t"}), &ctx);
        assert_eq!(
            Value::Object(m),
            json!({"host": "db", "port": 2, "user": "u", "table": "t"})
        );
        let m = fields(json!({"a": "", "b": "x", "c": 3}));
        assert_eq!(
            (str_field(&m, "a"), str_field(&m, "b"), str_field(&m, "c")),
            (None, Some("x"), None)
        );
    }

    #[test]
    fn connect_timeout_takes_whole_seconds_from_1_to_3600() {
        let t = |v: Value| connect_timeout(&fields(json!({ "connect_timeout": v })), "DB-CONFIG");
        assert_eq!(
            connect_timeout(&fields(json!({})), "DB-CONFIG").unwrap(),
            None
        );
        assert_eq!(t(Value::Null).unwrap(), None);
        assert_eq!(t(json!(1)).unwrap(), Some(Duration::from_secs(1)));
        assert_eq!(t(json!(" 3600 ")).unwrap(), Some(Duration::from_secs(3600)));
        for (bad, shown) in [
            (json!(0), "0"),
            (json!(3601), "3601"),
            (json!(1.5), "1.5"),
            (json!(-1), "-1"),
            (json!("soon"), "`soon`"),
            (json!(true), "true"),
        ] {
            let e = t(bad).unwrap_err();
            assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Config, "DB-CONFIG"));
            assert_eq!(
                e.message,
                format!(
                    "`connect_timeout` must be a whole number of seconds from 1 to 3600, got {shown}"
                )
            );
            assert_eq!(
                e.help.as_deref(),
                Some("e.g. `connect_timeout: 15` (the default)")
            );
        }
    }

    #[test]
    fn read_timeout_takes_whole_seconds_from_1_to_86400() {
        let t = |v: Value| read_timeout(&fields(json!({ "read_timeout": v })), "DB-CONFIG");
        assert_eq!(read_timeout(&fields(json!({})), "DB-CONFIG").unwrap(), None);
        assert_eq!(t(json!(86400)).unwrap(), Some(Duration::from_secs(86400)));
        let e = t(json!(86401)).unwrap_err();
        assert_eq!(
            e.message,
            "`read_timeout` must be a whole number of seconds from 1 to 86400, got 86401"
        );
        assert_eq!(
            e.help.as_deref(),
            Some("e.g. `read_timeout: 600` (the default)")
        );
    }

    #[test]
    fn a_wait_past_read_timeout_is_a_timeout_connection_error_naming_server_and_limit() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<u8, PluginError>(1)
        };
        let e = rt
            .block_on(within(
                Duration::from_millis(50),
                "db:3306/app",
                "reading the rows",
                slow,
            ))
            .unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Connection, "timeout")
        );
        assert!(
            e.message.starts_with(
                "reading the rows from db:3306/app: no answer from the server for 0 s"
            ),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("`read_timeout`"));
        let fast = async { Ok::<u8, PluginError>(7) };
        assert_eq!(
            rt.block_on(within(Duration::from_secs(1), "db", "x", fast))
                .unwrap(),
            7
        );
    }
}
