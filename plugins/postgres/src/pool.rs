//! Connection pooling: one I/O runtime for the whole plugin, and per distinct connection settings a small pool
//! of idle PostgreSQL sessions that later steps of the same process (one `osiris run`) reuse.
//!
//! A step takes a session with [`checkout`] (an idle one that answers a round trip, or a new one) and gives it
//! back with [`Pooled::release`] when it finished cleanly; dropping a [`Pooled`] instead closes the session.
//! Each checkout reports the metric `connections_opened` or `connections_reused` (value 1) to the step.
//!
//! Invariant: a session goes back to the pool only through [`Pooled::release`], which first checks that no
//! transaction is open and resets the session (cursors, role, settings, LISTEN, advisory locks, temporary
//! tables, sequences state) and sets the session up again (UTC, UTF-8); a session that fails any of this is
//! closed. Callers release only after a commit, a rollback-free read or a finished COPY; every error path drops.
//!
//! Invariant: an idle session is checked with a round trip before it is handed out; one that died (server
//! restart, idle timeout on the server, a terminated backend) is closed and replaced, never surfaced.
//!
//! Invariant: the pool key holds every connection setting, credentials included. It lives in memory only, has
//! no `Debug`, and is never formatted into a message.

use crate::conn::{self, Settings};
use osiris_plugin_sdk::{Context, ErrorKind, PluginError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Idle sessions kept per pool; a session released while the pool holds this many is closed.
pub const MAX_IDLE: usize = 4;
/// An idle session older than this is closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the liveness check and the reset on release may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often idle sessions past [`IDLE_TIMEOUT`] are closed in the background.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Checks that no transaction was open (the first statement of a transaction sees its own start time as
/// `transaction_timestamp()`), then resets what a step or a user's query could have changed in the session.
/// `DISCARD ALL` is not used: it would deallocate the client's cached type-lookup statements.
const RESET: &str = "SELECT transaction_timestamp() = statement_timestamp(); \
     CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; UNLISTEN *; \
     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; \
     SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'";

static RT: OnceLock<Runtime> = OnceLock::new();

/// The plugin's I/O runtime (two worker threads), started on first use and never stopped: the connection tasks
/// of pooled sessions run on it, so sessions outlive the step that opened them. Drive futures with
/// `runtime()?.block_on(..)` from a thread that is not itself inside a runtime.
pub fn runtime() -> Result<&'static Runtime, PluginError> {
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("osiris-pg-io")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| PluginError::internal(format!("cannot start the I/O runtime: {e}")))?;
    // Another thread may have won the race; the spare runtime is dropped here, outside any runtime.
    Ok(RT.get_or_init(|| rt))
}

/// An open session: the client and the task that drives its socket.
pub struct Session {
    client: Client,
    task: JoinHandle<()>,
}

impl Session {
    pub fn new(client: Client, task: JoinHandle<()>) -> Session {
        Session { client, task }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Closes at once, whatever is in flight (an unfinished COPY, an open transaction: the server rolls back).
    fn discard(self) {
        self.task.abort();
    }

    /// Closes politely (a Terminate message) once nothing is in flight.
    fn close(self) {
        drop(self.client);
    }

    async fn alive(&self) -> bool {
        !self.client.is_closed()
            && matches!(
                tokio::time::timeout(CHECK_TIMEOUT, self.client.simple_query("SELECT 1")).await,
                Ok(Ok(_))
            )
    }
}

/// Every connection setting, credentials included. Deliberately without `Debug`.
#[derive(PartialEq, Eq, Hash)]
struct Key(Vec<u8>);

impl Key {
    fn of(s: &Settings) -> Key {
        // The Config's Debug output covers every field except the password, which it redacts.
        let mut k = format!("{:?}\0{:?}\0", s.config, s.tls).into_bytes();
        if let Some(pw) = s.config.get_password() {
            k.push(1);
            k.extend_from_slice(pw);
        }
        Key(k)
    }
}

struct Idle {
    session: Session,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Idle>>,
}

impl Pool {
    /// The most recently released session that is not past the idle timeout; expired ones are closed.
    fn take(&self) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < IDLE_TIMEOUT {
                return Some(i.session);
            }
            i.session.close();
        }
        None
    }

    fn put(&self, session: Session) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() >= MAX_IDLE {
            drop(idle);
            session.close();
            return;
        }
        idle.push(Idle {
            session,
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
            i.session.close();
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

/// At process exit: ends every idle session politely (a Terminate message, so the server does not log a lost
/// client) and waits up to [`EXIT_WAIT`] for their sockets to close.
pub fn close_idle_sessions() {
    let Some(rt) = RT.get() else { return };
    let all = all_pools();
    let mut tasks = Vec::new();
    for p in all {
        let idle = std::mem::take(&mut *p.idle.lock().unwrap_or_else(|e| e.into_inner()));
        for i in idle {
            let Session { client, task } = i.session;
            drop(client); // the connection task sends Terminate and ends
            tasks.push(task);
        }
    }
    if tasks.is_empty() {
        return;
    }
    rt.block_on(async {
        let _ = tokio::time::timeout(EXIT_WAIT, async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await;
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

/// A session lent to one step. Dropping it closes the session; [`Pooled::release`] gives it back.
pub struct Pooled {
    session: Option<Session>,
    pool: Arc<Pool>,
}

impl Pooled {
    pub fn client(&self) -> &Client {
        &self
            .session
            .as_ref()
            .expect("present until released")
            .client
    }

    /// Gives the session back to the pool if it is clean (no open transaction) and resets without error;
    /// otherwise closes it. Never fails: the step's work is done either way.
    pub async fn release(mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        if session.client.is_closed() {
            return session.discard();
        }
        let reset = tokio::time::timeout(CHECK_TIMEOUT, session.client.simple_query(RESET)).await;
        let clean = match reset {
            Ok(Ok(messages)) => {
                messages.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0) == Some("t")),
                    _ => None,
                }) == Some(true)
            }
            _ => false,
        };
        if clean {
            self.pool.put(session);
        } else {
            session.discard();
        }
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session.discard();
        }
    }
}

/// An idle pooled session that still answers, or a new one. Must run on [`runtime`].
pub async fn checkout(s: &Settings, ctx: &Context) -> Result<Pooled, PluginError> {
    let pool = pool_for(s);
    while let Some(session) = pool.take() {
        if session.alive().await {
            ctx.metric("connections_reused", 1.0, Some("connections"));
            ctx.debug(&format!("reusing a pooled connection to {}", s.label));
            return Ok(Pooled {
                session: Some(session),
                pool,
            });
        }
        ctx.debug(&format!(
            "a pooled connection to {} no longer answers; replacing it",
            s.label
        ));
        session.discard();
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
    // another step failed) instead of holding the step for the rest of it.
    let session = tokio::select! {
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
        session: Some(session),
        pool,
    })
}

#[cfg(test)]
mod tests {
    //! The release rules against the local PostgreSQL server (127.0.0.1:5432, user `postgres`, trust auth),
    //! in the server's `postgres` database (nothing is created there). Skipped when the server is unreachable,
    //! unless `OSIRIS_REQUIRE_DATABASES=1`.
    use super::*;
    use crate::conn::Flavor;
    use osiris_plugin_sdk::testing::TestContext;
    use serde_json::json;

    fn server(test: &str) -> bool {
        osiris_plugin_sdk::testing::local_service_available("PostgreSQL", 5432, test)
    }

    /// Settings no other test uses (the application name is part of the pool key).
    fn settings(app: &str) -> Settings {
        let m = json!({"host": "127.0.0.1", "user": "postgres", "database": "postgres", "sslmode": "disable"});
        let mut s = conn::settings(Flavor::Postgres, m.as_object().unwrap()).unwrap();
        s.config.application_name(app);
        s
    }

    /// Checks out a session and returns it with where it came from and its backend pid.
    async fn take(s: &Settings) -> (Pooled, &'static str, i32) {
        let m = TestContext::new();
        let p = checkout(s, &Context::new(m.clone())).await.unwrap();
        let pid: i32 = p
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let names: Vec<String> = m.metrics().into_iter().map(|(n, _, _)| n).collect();
        let from = match names.as_slice() {
            [one] if one == "connections_opened" => "opened",
            [one] if one == "connections_reused" => "reused",
            other => panic!("one connection metric per checkout, got {other:?}"),
        };
        (p, from, pid)
    }

    #[test]
    fn a_session_with_an_open_transaction_is_closed_not_pooled() {
        if !server("a_session_with_an_open_transaction_is_closed_not_pooled") {
            return;
        }
        let s = settings("osiris-pool-test-tx");
        runtime().unwrap().block_on(async {
            let (p, from, pid) = take(&s).await;
            assert_eq!(from, "opened");
            p.release().await;
            let (p, from, again) = take(&s).await;
            assert_eq!((from, again), ("reused", pid));
            p.client().batch_execute("BEGIN; SELECT 1").await.unwrap();
            p.release().await;
            let (p, from, other) = take(&s).await;
            assert_eq!(
                from, "opened",
                "the session left in a transaction was not pooled"
            );
            assert_ne!(other, pid);
            // An aborted transaction (an error inside it) is not clean either.
            p.client().batch_execute("BEGIN").await.unwrap();
            assert!(p.client().batch_execute("SELECT 1/0").await.is_err());
            p.release().await;
            let (p, from, _) = take(&s).await;
            assert_eq!(from, "opened");
            drop(p); // dropped, not released: closed
            let (_, from, _) = take(&s).await;
            assert_eq!(from, "opened");
        });
    }

    #[test]
    fn release_resets_the_session_and_the_pool_keeps_at_most_max_idle() {
        if !server("release_resets_the_session_and_the_pool_keeps_at_most_max_idle") {
            return;
        }
        let s = settings("osiris-pool-test-reset");
        runtime().unwrap().block_on(async {
            let (p, _, pid) = take(&s).await;
            p.client()
                .batch_execute(
                    "CREATE TEMP TABLE osiris_leftover (x int); SET search_path = nowhere; \
                     SET TIME ZONE 'Asia/Tokyo'; SELECT pg_advisory_lock(4242)",
                )
                .await
                .unwrap();
            p.release().await;
            let (p, from, again) = take(&s).await;
            assert_eq!((from, again), ("reused", pid));
            let row = p
                .client()
                .query_one(
                    "SELECT to_regclass('pg_temp.osiris_leftover') IS NULL, current_setting('search_path'), \
                     current_setting('TimeZone'), \
                     (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
                    &[],
                )
                .await
                .unwrap();
            let gone: bool = row.get(0);
            let path: String = row.get(1);
            let tz: String = row.get(2);
            let locks: i64 = row.get(3);
            assert!(gone, "the temporary table was dropped");
            assert_eq!((path.as_str(), tz.as_str(), locks), ("\"$user\", public", "UTC", 0));
            p.release().await;

            // More sessions released at once than the pool keeps: the extra ones are closed.
            let mut lent = Vec::new();
            for _ in 0..MAX_IDLE + 2 {
                lent.push(take(&s).await.0);
            }
            for p in lent {
                p.release().await;
            }
            let idle = pools().lock().unwrap()[&Key::of(&s)].idle.lock().unwrap().len();
            assert_eq!(idle, MAX_IDLE);
        });
    }
}
