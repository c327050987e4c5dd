//! Connection settings (the resolved `@mysql.<alias>` connection overlaid with the step's inline fields),
//! connecting with the requested TLS mode, error classification, and the thread helper.
//!
//! Invariant: no message built here contains a password; server and driver messages carry none.

use mysql_async::{Conn, Opts, OptsBuilder, SslOpts};
use osiris_plugin_dbcommon::DEFAULT_CONNECT_TIMEOUT;
use osiris_plugin_sdk::{ErrorKind, PluginError};
use serde_json::{Map, Value};
use std::time::Duration;

pub use osiris_plugin_dbcommon::{merged, on_thread, str_field};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ssl {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

pub struct Settings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: Option<String>,
    pub ssl: Ssl,
    /// `host:port/database`, for messages.
    pub label: String,
    /// The longest connecting (TCP, TLS, handshake, session setup) may take: `connect_timeout`, default 15 s.
    pub connect_timeout: Duration,
    /// The longest the server may stay silent once the session is open: `read_timeout`, default 600 s.
    pub read_timeout: Duration,
}

/// The code of a connection field the plugin cannot use.
const CONFIG: &str = "MYSQL-CONFIG";

fn cfg_err(msg: impl Into<String>) -> PluginError {
    PluginError::new(ErrorKind::Config, CONFIG, msg)
}

pub fn settings(m: &Map<String, Value>) -> Result<Settings, PluginError> {
    let host = str_field(m, "host").unwrap_or("localhost").to_string();
    let port = match m.get("port") {
        None | Some(Value::Null) => 3306,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| cfg_err(format!("`port` must be 1..65535, got {n}")))?,
        Some(Value::String(s)) => s
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| cfg_err(format!("`port` must be 1..65535, got `{s}`")))?,
        Some(other) => return Err(cfg_err(format!("`port` must be a number, got {other}"))),
    };
    let user = str_field(m, "user")
        .or_else(|| str_field(m, "username"))
        .ok_or_else(|| {
            cfg_err("no `user` to connect as")
                .with_help("add `user` to the mysql connection in osiris_connections.yaml")
        })?
        .to_string();
    let password = m
        .get("password")
        .and_then(Value::as_str)
        .map(str::to_string);
    let database = str_field(m, "database").map(str::to_string);
    let ssl = match str_field(m, "ssl_mode") {
        None => Ssl::Preferred,
        Some(s) => match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "disabled" => Ssl::Disabled,
            "preferred" => Ssl::Preferred,
            "required" => Ssl::Required,
            "verify_ca" => Ssl::VerifyCa,
            "verify_identity" => Ssl::VerifyIdentity,
            _ => {
                return Err(
                    cfg_err(format!("`ssl_mode`: unknown value `{s}`")).with_help(
                        "use one of disabled, preferred, required, verify_ca, verify_identity",
                    ),
                );
            }
        },
    };
    let label = format!("{host}:{port}/{}", database.as_deref().unwrap_or(""));
    let connect_timeout =
        osiris_plugin_dbcommon::connect_timeout(m, CONFIG)?.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let read_timeout = osiris_plugin_dbcommon::read_timeout(m, CONFIG)?
        .unwrap_or(osiris_plugin_dbcommon::DEFAULT_READ_TIMEOUT);
    Ok(Settings {
        host,
        port,
        user,
        password,
        database,
        ssl,
        label,
        connect_timeout,
        read_timeout,
    })
}

fn opts(s: &Settings, ssl: Option<SslOpts>) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(s.host.clone())
        .tcp_port(s.port)
        .user(Some(s.user.clone()))
        .pass(s.password.clone())
        .db_name(s.database.clone())
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl)
        // UTC session, strict value checks (an error instead of a silent truncation), plain quoting. `setup`, not
        // `init`: the pool's reset (COM_RESET_CONNECTION) runs these again.
        .setup(vec![
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4",
            "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES', 'NO_BACKSLASH_ESCAPES')",
        ])
        .into()
}

/// Connects within `s.connect_timeout` (default 15 s). `preferred` tries TLS first and falls back to a plain connection when the server
/// offers none.
pub async fn connect(s: &Settings) -> Result<Conn, PluginError> {
    let ssl = match s.ssl {
        Ssl::Disabled => None,
        Ssl::Preferred | Ssl::Required => Some(
            SslOpts::default()
                .with_danger_accept_invalid_certs(true)
                .with_danger_skip_domain_validation(true),
        ),
        Ssl::VerifyCa => Some(SslOpts::default().with_danger_skip_domain_validation(true)),
        Ssl::VerifyIdentity => Some(SslOpts::default()),
    };
    let tls = ssl.is_some();
    match try_connect(s, opts(s, ssl)).await {
        Err(e)
            if s.ssl == Ssl::Preferred
                && tls
                && matches!(
                    e,
                    Attempt::Driver(mysql_async::Error::Driver(
                        mysql_async::DriverError::NoClientSslFlagFromServer
                    ))
                ) =>
        {
            try_connect(s, opts(s, None))
                .await
                .map_err(|e| e.into_error(s))
        }
        Err(e) => Err(e.into_error(s)),
        Ok(c) => Ok(c),
    }
}

enum Attempt {
    Timeout,
    Driver(mysql_async::Error),
}

impl Attempt {
    fn into_error(self, s: &Settings) -> PluginError {
        match self {
            Attempt::Timeout => PluginError::new(
                ErrorKind::Connection,
                "timeout",
                format!(
                    "connecting to MySQL at {} timed out after {} s: no answer from the server",
                    s.label,
                    s.connect_timeout.as_secs()
                ),
            )
            .with_help(
                "check `host`, `port` and firewalls between here and the server (is a MySQL server \
                 listening there?); `connect_timeout` of the connection sets the limit in seconds (default 15)",
            ),
            Attempt::Driver(e) => connect_error(s, &e),
        }
    }
}

async fn try_connect(s: &Settings, opts: Opts) -> Result<Conn, Attempt> {
    match tokio::time::timeout(s.connect_timeout, Conn::new(opts)).await {
        Err(_) => Err(Attempt::Timeout),
        Ok(Err(e)) => Err(Attempt::Driver(e)),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Classifies a failed connection: codes `refused`, `auth_failed`, `timeout`, `unknown_database`, `tls`,
/// otherwise `connect_failed`.
pub fn connect_error(s: &Settings, e: &mysql_async::Error) -> PluginError {
    match e {
        mysql_async::Error::Server(se) => match se.code {
            1045 | 1044 | 1698 => PluginError::new(
                ErrorKind::Auth,
                "auth_failed",
                format!("MySQL at {} refused the credentials: {}", s.label, se.message),
            )
            .with_help("check `user` and `password` of the connection"),
            1049 => PluginError::new(
                ErrorKind::Config,
                "unknown_database",
                format!("MySQL at {}: {}", s.label, se.message),
            )
            .with_help("check `database` of the connection (`SHOW DATABASES` lists them)"),
            _ => PluginError::new(
                ErrorKind::Connection,
                "connect_failed",
                format!("connecting to MySQL at {} failed: {}", s.label, se.message),
            ),
        },
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => PluginError::new(
                ErrorKind::Connection,
                "refused",
                format!(
                    "MySQL at {} refused the connection (is the server running and listening there?)",
                    s.label
                ),
            )
            .with_help("check `host` and `port` of the connection"),
            std::io::ErrorKind::TimedOut => PluginError::new(
                ErrorKind::Connection,
                "timeout",
                format!("connecting to MySQL at {} timed out", s.label),
            ),
            _ => PluginError::new(
                ErrorKind::Connection,
                "connect_failed",
                format!("connecting to MySQL at {} failed: {io}", s.label),
            ),
        },
        mysql_async::Error::Io(mysql_async::IoError::Tls(t)) => PluginError::new(
            ErrorKind::Connection,
            "tls",
            format!("TLS with MySQL at {} failed: {t}", s.label),
        )
        .with_help("check `ssl_mode`: `required` encrypts without checking the certificate"),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            PluginError::new(
                ErrorKind::Connection,
                "tls",
                format!("MySQL at {} does not offer TLS, and `ssl_mode` requires it", s.label),
            )
            .with_help("enable TLS on the server, or set `ssl_mode: preferred`")
        }
        other => PluginError::new(
            ErrorKind::Connection,
            "connect_failed",
            format!("connecting to MySQL at {} failed: {other}", s.label),
        ),
    }
}

/// A failed statement: integrity and value errors are data errors; missing objects and SQL errors are config
/// errors.
pub fn db_error(e: &mysql_async::Error, doing: &str) -> PluginError {
    match e {
        mysql_async::Error::Server(se) => {
            let (kind, code) = match se.code {
                1062 | 1451 | 1452 | 1048 | 1216 | 1217 | 1557 | 1586 | 3819 | 4025 => {
                    (ErrorKind::Data, "MYSQL-CONSTRAINT")
                }
                1264 | 1265 | 1292 | 1366 | 1406 | 1367 | 3140 | 1690 | 4038 => {
                    (ErrorKind::Data, "MYSQL-DATA")
                }
                1146 | 1054 | 1064 | 1049 | 1051 | 1109 | 1142 | 1143 => {
                    (ErrorKind::Config, "MYSQL-SQL")
                }
                1045 | 1044 => (ErrorKind::Auth, "auth_failed"),
                1317 | 3024 | 1969 => (ErrorKind::Cancelled, "MYSQL-CANCELLED"),
                _ => (ErrorKind::Internal, "MYSQL-SERVER"),
            };
            PluginError::new(
                kind,
                code,
                format!(
                    "{doing}: {} (error {}, SQLSTATE {})",
                    se.message, se.code, se.state
                ),
            )
        }
        mysql_async::Error::Io(io) => PluginError::new(
            ErrorKind::Connection,
            "MYSQL-IO",
            format!("{doing}: the connection failed: {io}"),
        ),
        other => PluginError::new(
            ErrorKind::Internal,
            "MYSQL-DRIVER",
            format!("{doing}: {other}"),
        ),
    }
}

/// Quotes an identifier: `` `name` `` with inner backticks doubled.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}
