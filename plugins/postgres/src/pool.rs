//! Connection pooling of PostgreSQL sessions through the shared pool of the database plugins
//! ([`osiris_plugin_dbcommon::pool`]: one I/O runtime for the plugin, per distinct connection settings a small
//! pool of idle sessions that later steps of the same process reuse, the metrics `connections_opened` and
//! `connections_reused`). This module says what that pool needs to know about a PostgreSQL session.
//!
//! Invariant: a session goes back to the pool only after [`RESET`] found no transaction open and reset the
//! session (cursors, role, settings, LISTEN, advisory locks, temporary tables, sequences state) and set it up
//! again (UTC, UTF-8); a session that fails any of this is closed. Callers release only after a commit, a
//! rollback-free read or a finished COPY; every error path drops.
//!
//! Invariant: an idle session is checked with a round trip before it is handed out; one that died (server
//! restart, idle timeout on the server, a terminated backend) is closed and replaced, never surfaced.
//!
//! Invariant: the pool key holds every connection setting, credentials included. It lives in memory only, has
//! no `Debug`, and is never formatted into a message.

use crate::conn::{self, Settings};
use osiris_plugin_dbcommon::{Database, Pools};
use osiris_plugin_sdk::PluginError;
use std::future::Future;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, SimpleQueryMessage};

/// Checks that no transaction was open (the first statement of a transaction sees its own start time as
/// `transaction_timestamp()`), then resets what a step or a user's query could have changed in the session.
/// `DISCARD ALL` is not used: it would deallocate the client's cached type-lookup statements.
const RESET: &str = "SELECT transaction_timestamp() = statement_timestamp(); \
     CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL; UNLISTEN *; \
     SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES; \
     SET TIME ZONE 'UTC'; SET client_encoding = 'UTF8'";

/// The plugin's sessions: one runtime (threads `osiris-pg-io`), the pools, the exit hook.
pub static POOLS: Pools<Pg> = Pools::new("osiris-pg-io");

/// A session lent to one step (derefs to the [`Session`]).
pub type Pooled = osiris_plugin_dbcommon::Pooled<Pg>;

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
}

/// PostgreSQL (and Supabase's), as the shared pool sees it.
pub struct Pg;

/// Every connection setting, credentials included. Deliberately without `Debug`.
#[derive(PartialEq, Eq, Hash)]
pub struct Key(Vec<u8>);

impl Database for Pg {
    type Settings = Settings;
    type Key = Key;
    type Session = Session;

    fn pools() -> &'static Pools<Pg> {
        &POOLS
    }

    fn key(s: &Settings) -> Key {
        // The Config's Debug output covers every field except the password, which it redacts.
        let mut k = format!("{:?}\0{:?}\0", s.config, s.tls).into_bytes();
        if let Some(pw) = s.config.get_password() {
            k.push(1);
            k.extend_from_slice(pw);
        }
        Key(k)
    }

    fn label(s: &Settings) -> &str {
        &s.label
    }

    fn connect(s: &Settings) -> impl Future<Output = Result<Session, PluginError>> + Send {
        conn::connect(s)
    }

    async fn ping(session: &mut Session) -> bool {
        !session.client.is_closed() && session.client.simple_query("SELECT 1").await.is_ok()
    }

    /// [`RESET`]; clean only when it ran without error and found no transaction open.
    async fn reset(session: &mut Session) -> bool {
        if session.client.is_closed() {
            return false;
        }
        match session.client.simple_query(RESET).await {
            Ok(messages) => {
                messages.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0) == Some("t")),
                    _ => None,
                }) == Some(true)
            }
            Err(_) => false,
        }
    }

    /// Drops the client, upon which the connection task sends a Terminate message and ends; resolves when it
    /// has.
    fn quit(session: Session) -> impl Future<Output = ()> + Send + 'static {
        let Session { client, task } = session;
        drop(client);
        async move {
            let _ = task.await;
        }
    }

    /// Stops the connection task at once, whatever is in flight (an unfinished COPY, an open transaction: the
    /// server rolls back).
    fn abandon(session: Session) {
        session.task.abort();
    }
}

#[cfg(test)]
mod tests {
    //! The release rules against the local PostgreSQL server (127.0.0.1:5432, user `postgres`, trust auth),
    //! in the server's `postgres` database (nothing is created there). Skipped when the server is unreachable,
    //! unless `OSIRIS_REQUIRE_DATABASES=1`.
    use super::*;
    use crate::conn::Flavor;
    use osiris_plugin_dbcommon::pool::MAX_IDLE;
    use osiris_plugin_dbcommon::testing::{Origin, Postgres, TestServer, checkout};
    use serde_json::json;

    /// Settings no other test uses (the application name is part of the pool key).
    fn settings(app: &str) -> Settings {
        let m = json!({"host": "127.0.0.1", "user": "postgres", "database": "postgres", "sslmode": "disable"});
        let mut s = conn::settings(Flavor::Postgres, m.as_object().unwrap()).unwrap();
        s.config.application_name(app);
        s
    }

    /// Checks out a session and returns it with where it came from and its backend pid.
    async fn take(s: &Settings) -> (Pooled, Origin, i32) {
        let (p, origin) = checkout::<Pg>(s).await;
        let pid: i32 = p
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        (p, origin, pid)
    }

    #[test]
    fn a_session_with_an_open_transaction_is_closed_not_pooled() {
        if !Postgres::available("a_session_with_an_open_transaction_is_closed_not_pooled") {
            return;
        }
        let s = settings("osiris-pool-test-tx");
        POOLS.runtime().unwrap().block_on(async {
            let (p, from, pid) = take(&s).await;
            assert_eq!(from, Origin::Opened);
            p.release().await;
            let (p, from, again) = take(&s).await;
            assert_eq!((from, again), (Origin::Reused, pid));
            p.client().batch_execute("BEGIN; SELECT 1").await.unwrap();
            p.release().await;
            let (p, from, other) = take(&s).await;
            assert_eq!(
                from,
                Origin::Opened,
                "the session left in a transaction was not pooled"
            );
            assert_ne!(other, pid);
            // An aborted transaction (an error inside it) is not clean either.
            p.client().batch_execute("BEGIN").await.unwrap();
            assert!(p.client().batch_execute("SELECT 1/0").await.is_err());
            p.release().await;
            let (p, from, _) = take(&s).await;
            assert_eq!(from, Origin::Opened);
            drop(p); // dropped, not released: closed
            let (_, from, _) = take(&s).await;
            assert_eq!(from, Origin::Opened);
        });
    }

    #[test]
    fn release_resets_the_session_and_the_pool_keeps_at_most_max_idle() {
        if !Postgres::available("release_resets_the_session_and_the_pool_keeps_at_most_max_idle") {
            return;
        }
        let s = settings("osiris-pool-test-reset");
        POOLS.runtime().unwrap().block_on(async {
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
            assert_eq!((from, again), (Origin::Reused, pid));
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
            assert_eq!(POOLS.idle(&s), MAX_IDLE);
        });
    }
}
