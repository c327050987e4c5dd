//! Connection pooling: one I/O runtime for the whole plugin, and per distinct connection settings a small pool
//! of idle MySQL/MariaDB sessions that later steps of the same process (one `osiris run`) reuse.
//!
//! A step takes a session with [`checkout`] (an idle one that answers a ping, or a new one) and gives it back
//! with [`Pooled::release`] when it finished cleanly; dropping a [`Pooled`] instead closes the session.
//! Each checkout reports the metric `connections_opened` or `connections_reused` (value 1) to the step.
//!
//! mysql_async's own `Pool` is not used: it makes a caller wait when the pool is at its size, which can stall a
//! pipeline whose steps stream into each other over the same connection; it cannot tell a reused session from
//! a new one; and it would need the `preferred` TLS fallback of [`conn::connect`] rebuilt around it.
//!
//! Invariant: a session goes back to the pool only through [`Pooled::release`], which resets it with
//! `COM_RESET_CONNECTION` (rolls back any transaction, drops temporary tables, releases locks, clears session
//! and user variables and prepared statements) and sets the session up again (UTC, utf8mb4, strict mode); a
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
use osiris_plugin_sdk::{Context, ErrorKind, PluginError};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Idle sessions kept per pool; a session released while the pool holds this many is closed.
pub const MAX_IDLE: usize = 4;
/// An idle session older than this is closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the ping before reuse and the reset on release may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing a session (`COM_QUIT`) may take before the socket is simply dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle sessions past [`IDLE_TIMEOUT`] are closed in the background.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

static RT: OnceLock<Runtime> = OnceLock::new();

/// The plugin's I/O runtime (two worker threads), started on first use and never stopped: pooled sessions'
/// sockets are registered with it, so sessions outlive the step that opened them. Drive futures with
/// `runtime()?.block_on(..)` from a thread that is not itself inside a runtime.
pub fn runtime() -> Result<&'static Runtime, PluginError> {
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("osiris-mysql-io")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start the I/O runtime: {e}")))?;
    // Another thread may have won the race; the spare runtime is dropped here, outside any runtime.
    Ok(RT.get_or_init(|| rt))
}

/// Closes a clean session politely (`COM_QUIT`, then the socket), in the background on the plugin's runtime.
/// Only for sessions with nothing in flight: mysql_async reads any unfinished result to its end before it
/// sends `COM_QUIT`, which for an abandoned multi-million-row result takes seconds.
fn close(conn: Conn) {
    if std::thread::panicking() {
        return; // mysql_async's drop closes the socket without spawning
    }
    match runtime() {
        Ok(rt) => {
            rt.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.disconnect()).await;
            });
        }
        Err(_) => drop(conn),
    }
}

/// Closes a session whose state is unknown (a step that stopped mid-result, a failed reset or ping) at once:
/// the socket is dropped on a thread outside any runtime, where mysql_async neither drains an unfinished
/// result nor sends anything. The server sees the client go away.
fn abandon(conn: Conn) {
    // Not joined: the thread only drops a socket. Should the spawn fail, the closure (and the session) is
    // dropped here instead.
    let _ = std::thread::Builder::new()
        .name("osiris-mysql-close".into())
        .spawn(move || drop(conn));
}

/// Every connection setting, credentials included. Deliberately without `Debug`.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    database: Option<String>,
    ssl: Ssl,
}

impl Key {
    fn of(s: &Settings) -> Key {
        Key {
            host: s.host.clone(),
            port: s.port,
            user: s.user.clone(),
            password: s.password.clone(),
            database: s.database.clone(),
            ssl: s.ssl,
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    /// The most recently released session that is not past the idle timeout; expired ones are closed.
    fn take(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.conn);
            }
            close(i.conn);
        }
        None
    }

    fn put(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE {
            drop(idle);
            close(conn);
            return;
        }
        idle.push(Idle {
            conn,
            since: Instant::now(),
        });
    }

    fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let (keep, expired): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut *idle)
            .into_iter()
            .partition(|i| i.since.elapsed() < IDLE_TIMEOUT);
        *idle = keep;
        drop(idle);
        for i in expired {
            close(i.conn);
        }
    }
}

fn pools() -> &'static Mutex<HashMap<Key, Arc<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<Key, Arc<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

/// Every pool made so far (the sweep and the exit hook visit them all).
fn all_pools() -> Vec<Arc<Pool>> {
    pools()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect()
}

/// How long the process may wait at exit for idle sessions to say goodbye.
const EXIT_WAIT: Duration = Duration::from_secs(1);

/// At process exit: ends every idle session politely (`COM_QUIT`, so the server counts no aborted client and
/// logs no aborted connection) and waits up to [`EXIT_WAIT`] for them.
pub fn close_idle_sessions() {
    let Some(rt) = RT.get() else { return };
    let all = all_pools();
    let conns: Vec<Conn> = all
        .iter()
        .flat_map(|p| std::mem::take(&mut *p.idle.lock().unwrap_or_else(|e| e.into_inner())))
        .map(|i| i.conn)
        .collect();
    if conns.is_empty() {
        return;
    }
    rt.block_on(async {
        let quits = conns.into_iter().map(|c| async move {
            let _ = c.disconnect().await;
        });
        let _ = tokio::time::timeout(EXIT_WAIT, futures_util::future::join_all(quits)).await;
    });
}

/// The pool for these settings; the first call also starts the background sweep of expired idle sessions
/// and arranges for idle sessions to be closed politely when the process exits.
fn pool_for(s: &Settings) -> Arc<Pool> {
    static SWEEPER: OnceLock<()> = OnceLock::new();
    SWEEPER.get_or_init(|| {
        osiris_plugin_sdk::on_process_exit(close_idle_sessions);
        let Ok(rt) = runtime() else { return };
        rt.spawn(async {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let all = all_pools();
                for p in all {
                    p.sweep();
                }
            }
        });
    });
    pools()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(Key::of(s))
        .or_default()
        .clone()
}

/// A session lent to one step (derefs to the `Conn`). Dropping it closes the session; [`Pooled::release`]
/// gives it back.
pub struct Pooled {
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until released")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until released")
    }
}

impl Pooled {
    /// Resets the session and gives it back to the pool; a session that cannot be reset (an error, a server
    /// without `COM_RESET_CONNECTION`) is closed. Never fails: the step's work is done either way.
    pub async fn release(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match tokio::time::timeout(CHECK_TIMEOUT, conn.reset()).await {
            Ok(Ok(true)) => self.pool.put(conn),
            _ => abandon(conn),
        }
    }
}

impl Pooled {
    /// Closes the session now (`COM_QUIT`), for a step that failed: it is never reused.
    pub async fn discard(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.disconnect()).await;
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Dropped without release: the step stopped, maybe in the middle of a result.
            abandon(conn);
        }
    }
}

/// An idle pooled session that still answers, or a new one. Must run on [`runtime`].
pub async fn checkout(s: &Settings, ctx: &Context) -> Result<Pooled, PluginError> {
    let pool = pool_for(s);
    while let Some(mut conn) = pool.take() {
        if matches!(
            tokio::time::timeout(CHECK_TIMEOUT, conn.ping()).await,
            Ok(Ok(()))
        ) {
            ctx.metric("connections_reused", 1.0, Some("connections"));
            ctx.debug(&format!("reusing a pooled connection to {}", s.label));
            return Ok(Pooled {
                conn: Some(conn),
                pool,
            });
        }
        ctx.debug(&format!(
            "a pooled connection to {} no longer answers; replacing it",
            s.label
        ));
        abandon(conn);
    }
    open_in(s, ctx, pool).await
}

/// Resolves once the host has cancelled the step (checked every [`CANCEL_POLL`]).
async fn cancelled(ctx: &Context) {
    while !ctx.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

/// How often a connection attempt checks for cancellation.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// Always a new session (a connection check must really connect), released into the pool afterwards like
/// any other. Must run on [`runtime`].
pub async fn open(s: &Settings, ctx: &Context) -> Result<Pooled, PluginError> {
    open_in(s, ctx, pool_for(s)).await
}

async fn open_in(s: &Settings, ctx: &Context, pool: Arc<Pool>) -> Result<Pooled, PluginError> {
    // Connecting may take up to `connect_timeout`: stop waiting as soon as the host cancels (Ctrl-C, or
    // another step failed).
    let conn = tokio::select! {
        r = conn::connect(s) => r?,
        _ = cancelled(ctx) => {
            return Err(PluginError::new(
                ErrorKind::Cancelled,
                "CANCELLED",
                format!("connecting to {} was cancelled", s.label),
            ));
        }
    };
    ctx.metric("connections_opened", 1.0, Some("connections"));
    ctx.debug(&format!("opened a connection to {}", s.label));
    Ok(Pooled {
        conn: Some(conn),
        pool,
    })
}

#[cfg(test)]
mod tests {
    //! The release rules against the local MariaDB/MySQL server (127.0.0.1:3306, user `root`, no password),
    //! in its `test` database (only a temporary table is created). Skipped when the server is unreachable,
    //! unless `OSIRIS_REQUIRE_DATABASES=1`.
    use super::*;
    use osiris_plugin_sdk::testing::TestContext;
    use serde_json::json;

    fn server(test: &str) -> bool {
        osiris_plugin_sdk::testing::local_service_available("MariaDB", 3306, test)
    }

    /// Checks out a session and returns it with where it came from and its connection id.
    async fn take(s: &Settings) -> (Pooled, &'static str, u32) {
        let m = TestContext::new();
        let p = checkout(s, &Context::new(m.clone())).await.unwrap();
        let id = p.id();
        let names: Vec<String> = m.metrics().into_iter().map(|(n, _, _)| n).collect();
        let from = match names.as_slice() {
            [one] if one == "connections_opened" => "opened",
            [one] if one == "connections_reused" => "reused",
            other => panic!("one connection metric per checkout, got {other:?}"),
        };
        (p, from, id)
    }

    #[test]
    fn release_rolls_back_and_resets_the_session() {
        if !server("release_rolls_back_and_resets_the_session") {
            return;
        }
        let m = json!({"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test", "ssl_mode": "disabled"});
        let s = conn::settings(m.as_object().unwrap()).unwrap();
        runtime().unwrap().block_on(async {
            let (mut p, from, id) = take(&s).await;
            assert_eq!(from, "opened");
            p.query_drop(
                "CREATE TEMPORARY TABLE osiris_leftover (x INT) ENGINE = InnoDB; SET @mark = 'left'; \
                 SET time_zone = '+09:00'; START TRANSACTION; INSERT INTO osiris_leftover VALUES (1)",
            )
            .await
            .unwrap();
            p.release().await;
            let (mut p, from, again) = take(&s).await;
            assert_eq!((from, again), ("reused", id));
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
            assert_eq!(from, "opened");
            assert_ne!(other, id);

            // More sessions released at once than the pool keeps: the extra ones are closed.
            let mut lent = vec![p];
            for _ in 0..MAX_IDLE + 1 {
                lent.push(take(&s).await.0);
            }
            for p in lent {
                p.release().await;
            }
            let idle = pools().lock().unwrap()[&Key::of(&s)].idle.lock().unwrap().len();
            assert_eq!(idle, MAX_IDLE);
        });
    }

    /// A step that stops in the middle of a huge result (cancelled, failed downstream) drops its session: it
    /// is closed at once, not drained first (mysql_async reads every remaining row before `COM_QUIT`; here a
    /// billion rows). Observed through the server's `Rows_sent` (global: the other tests of this binary send
    /// a handful of rows).
    #[test]
    fn a_session_dropped_mid_result_is_closed_at_once() {
        if !server("a_session_dropped_mid_result_is_closed_at_once") {
            return;
        }
        let m = json!({"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test", "ssl_mode": "disabled"});
        let s = conn::settings(m.as_object().unwrap()).unwrap();
        let rt = runtime().unwrap();
        let sent = || {
            let out = std::process::Command::new("mariadb")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-uroot",
                    "-N",
                    "-e",
                    "SHOW GLOBAL STATUS LIKE 'Rows_sent'",
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
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
        let watcher = rt.block_on(conn::connect(&s)).unwrap();
        let mut watcher = watcher;
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
