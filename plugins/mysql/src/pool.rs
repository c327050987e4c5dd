//! Connection pooling of MySQL/MariaDB sessions through the shared pool of the database plugins
//! ([`osiris_plugin_dbcommon::pool`]: one I/O runtime for the plugin, per distinct connection settings a small
//! pool of idle sessions that later steps of the same process reuse, the metrics `connections_opened` and
//! `connections_reused`). This module says what that pool needs to know about a MySQL session.
//!
//! mysql_async's own `Pool` is not used: it makes a caller wait when the pool is at its size, which can stall a
//! pipeline whose steps stream into each other over the same connection; it cannot tell a reused session from
//! a new one; and it would need the `preferred` TLS fallback of [`conn::connect`] rebuilt around it.
//!
//! Invariant: a session goes back to the pool only after `COM_RESET_CONNECTION` (rolls back any transaction,
//! drops temporary tables, releases locks, clears session and user variables and prepared statements), which
//! also sets the session up again (UTC, utf8mb4, strict mode: `setup` of [`conn::connect`]'s options); a
//! session that fails this is closed. Callers release only after a commit or a fully read result; every error
//! path drops.
//!
//! Invariant: an idle session is pinged before it is handed out; one that died (server restart,
//! `wait_timeout`, `KILL`) is closed and replaced, never surfaced.
//!
//! Invariant: the pool key holds every connection setting, credentials included. It lives in memory only, has
//! no `Debug`, and is never formatted into a message.

use crate::conn::{self, Settings, Ssl};
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use osiris_plugin_dbcommon::{Database, Pools};
use osiris_plugin_sdk::PluginError;
use std::future::Future;

/// The plugin's sessions: one runtime (threads `osiris-mysql-io`), the pools, the exit hook.
pub static POOLS: Pools<MySql> = Pools::new("osiris-mysql-io");

/// A session lent to one step (derefs to the `Conn`).
pub type Pooled = osiris_plugin_dbcommon::Pooled<MySql>;

/// MySQL and MariaDB, as the shared pool sees them.
pub struct MySql;

/// Every connection setting, credentials included. Deliberately without `Debug`.
#[derive(PartialEq, Eq, Hash)]
pub struct Key {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: Option<String>,
    ssl: Ssl,
}

impl Database for MySql {
    type Settings = Settings;
    type Key = Key;
    type Session = Conn;

    fn pools() -> &'static Pools<MySql> {
        &POOLS
    }

    fn key(s: &Settings) -> Key {
        Key {
            host: s.host.clone(),
            port: s.port,
            user: s.user.clone(),
            password: s.password.clone(),
            database: s.database.clone(),
            ssl: s.ssl,
        }
    }

    fn label(s: &Settings) -> &str {
        &s.label
    }

    fn connect(s: &Settings) -> impl Future<Output = Result<Conn, PluginError>> + Send {
        conn::connect(s)
    }

    async fn ping(conn: &mut Conn) -> bool {
        conn.ping().await.is_ok()
    }

    /// `COM_RESET_CONNECTION`, after which mysql_async runs the options' `setup` statements again; `false` on
    /// an error or a server without the command.
    async fn reset(conn: &mut Conn) -> bool {
        matches!(conn.reset().await, Ok(true))
    }

    /// `COM_QUIT`, then the socket. Only for sessions with nothing in flight: mysql_async reads any unfinished
    /// result to its end before it sends `COM_QUIT`, which for an abandoned multi-million-row result takes
    /// seconds.
    async fn quit(conn: Conn) {
        let _ = conn.disconnect().await;
    }

    /// Drops the socket on a thread outside any runtime, where mysql_async neither drains an unfinished
    /// result nor sends anything. The server sees the client go away.
    fn abandon(conn: Conn) {
        // Not joined: the thread only drops a socket. Should the spawn fail, the closure (and the session) is
        // dropped here instead.
        let _ = std::thread::Builder::new()
            .name("osiris-mysql-close".into())
            .spawn(move || drop(conn));
    }
}

#[cfg(test)]
mod tests {
    //! The release rules against the local MariaDB/MySQL server (127.0.0.1:3306, user `root`, no password).
    //! Each test works in a database of its own, so each has a pool of its own (the database is part of the
    //! pool key): tests run in parallel and would otherwise take each other's sessions. Skipped when the server
    //! is unreachable, unless `OSIRIS_REQUIRE_DATABASES=1`.
    use super::*;
    use osiris_plugin_dbcommon::pool::MAX_IDLE;
    use osiris_plugin_dbcommon::testing::{Db, MariaDb, Origin, TestServer, checkout};
    use serde_json::json;
    use std::time::Duration;

    /// A database of the test's own and the settings of a session in it.
    fn own_database() -> (Db<MariaDb>, Settings) {
        let db = Db::<MariaDb>::new("osiris_pool_unit");
        let m = json!({"host": "127.0.0.1", "port": 3306, "user": "root", "database": db.name, "ssl_mode": "disabled"});
        let s = conn::settings(m.as_object().unwrap()).unwrap();
        (db, s)
    }

    /// Checks out a session and returns it with where it came from and its connection id.
    async fn take(s: &Settings) -> (Pooled, Origin, u32) {
        let (p, origin) = checkout::<MySql>(s).await;
        let id = p.id();
        (p, origin, id)
    }

    #[test]
    fn release_rolls_back_and_resets_the_session() {
        if !MariaDb::available("release_rolls_back_and_resets_the_session") {
            return;
        }
        let (_db, s) = own_database();
        POOLS.runtime().unwrap().block_on(async {
            let (mut p, from, id) = take(&s).await;
            assert_eq!(from, Origin::Opened);
            p.query_drop(
                "CREATE TEMPORARY TABLE osiris_leftover (x INT) ENGINE = InnoDB; SET @mark = 'left'; \
                 SET time_zone = '+09:00'; START TRANSACTION; INSERT INTO osiris_leftover VALUES (1)",
            )
            .await
            .unwrap();
            p.release().await;
            let (mut p, from, again) = take(&s).await;
            assert_eq!((from, again), (Origin::Reused, id));
            let row: Option<(Option<String>, String, u64)> = p
                .query_first(
                    "SELECT @mark, @@session.time_zone, \
                     (SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = CONNECTION_ID())",
                )
                .await
                .unwrap();
            assert_eq!(row, Some((None, "+00:00".to_string(), 0)));
            let leftover: Result<Option<u64>, _> =
                p.query_first("SELECT COUNT(*) FROM osiris_leftover").await;
            assert!(leftover.is_err(), "the temporary table was dropped");
            // The failed statement left the session usable, but a step that failed never releases: dropped.
            drop(p);
            let (p, from, other) = take(&s).await;
            assert_eq!(from, Origin::Opened);
            assert_ne!(other, id);

            // More sessions released at once than the pool keeps: the extra ones are closed.
            let mut lent = vec![p];
            for _ in 0..MAX_IDLE + 1 {
                lent.push(take(&s).await.0);
            }
            for p in lent {
                p.release().await;
            }
            assert_eq!(POOLS.idle(&s), MAX_IDLE);
        });
    }

    /// A step that stops in the middle of a huge result (cancelled, failed downstream) drops its session: it
    /// is closed at once, not drained first (mysql_async reads every remaining row before `COM_QUIT`; here a
    /// billion rows). Observed through the server's `Rows_sent` (global: the other tests of this binary send
    /// a handful of rows).
    #[test]
    fn a_session_dropped_mid_result_is_closed_at_once() {
        if !MariaDb::available("a_session_dropped_mid_result_is_closed_at_once") {
            return;
        }
        let (_db, s) = own_database();
        let rt = POOLS.runtime().unwrap();
        let sent = || {
            MariaDb::sql(None, "SHOW GLOBAL STATUS LIKE 'Rows_sent'")
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        let before = sent();
        let id = rt.block_on(async {
            let (mut p, _, id) = take(&s).await;
            {
                let mut result = p
                    .query_iter("SELECT seq FROM seq_1_to_1000000000")
                    .await
                    .unwrap();
                let mut stream = result.stream::<u64>().await.unwrap().unwrap();
                use futures_util::StreamExt;
                for _ in 0..10 {
                    stream.next().await.unwrap().unwrap();
                }
            }
            drop(p);
            id
        });
        // The server sees the session go within seconds (polled from a separate session).
        let mut watcher = rt.block_on(conn::connect(&s)).unwrap();
        let gone = rt.block_on(async {
            for _ in 0..100 {
                let n: Option<u64> = watcher
                    .exec_first(
                        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
                        (id,),
                    )
                    .await
                    .unwrap();
                if n == Some(0) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        });
        assert!(
            gone,
            "connection {id} still on the server 10 s after its session was dropped mid-result"
        );
        // Draining would have pulled millions of rows through before `COM_QUIT` (about 1.8M here within the
        // close timeout); closing at once leaves what fits into the socket buffers (about 10k).
        let sent = sent() - before;
        assert!(
            sent < 200_000,
            "the server sent {sent} rows after the first 10: the abandoned result was drained"
        );
    }
}
