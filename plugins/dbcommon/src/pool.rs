//! Connection pooling, generic over a [`Database`]: one I/O runtime per plugin, and per distinct connection
//! settings a small pool of idle sessions that later steps of the same process (one `osiris run`) reuse.
//!
//! A plugin declares `static POOLS: Pools<MyDatabase> = Pools::new("osiris-my-io");` and implements
//! [`Database`] for a type of its own. A step takes a session with [`Pools::checkout`] (an idle one that still
//! answers [`Database::ping`], or a new one) and gives it back with [`Pooled::release`] when it finished
//! cleanly; dropping a [`Pooled`] instead abandons the session ([`Database::abandon`]). Each checkout reports
//! the metric `connections_opened` or `connections_reused` (value 1) to the step.
//!
//! Nobody ever waits for a session: a pool only keeps idle ones (at most [`MAX_IDLE`]), and a checkout that
//! finds none opens one. A wait could stall a pipeline whose steps stream into each other over the same
//! connection.
//!
//! Invariant: a session goes back to the pool only through [`Pooled::release`], and only when
//! [`Database::reset`] says it is clean within [`CHECK_TIMEOUT`]; otherwise it is abandoned. Callers release
//! only after a commit or a fully read result; every error path drops.
//!
//! Invariant: an idle session is pinged before it is handed out; one that died (server restart, a server-side
//! idle timeout, a killed backend) is abandoned and replaced, never surfaced. An idle session older than
//! [`IDLE_TIMEOUT`] is closed instead of reused, and a background sweep closes those every [`SWEEP_EVERY`].
//!
//! Invariant: the pool key holds every connection setting, credentials included. It lives in memory only, and
//! nothing here formats it (a [`Database::Key`] need not, and should not, implement `Debug`).
//!
//! At process exit (through `osiris_plugin_sdk::on_process_exit`) every idle session is ended politely with
//! [`Database::quit`], waiting at most [`EXIT_WAIT`] for all of them together.

use crate::cancel::unless_cancelled;
use osiris_plugin_sdk::{Context, PluginError};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

/// Idle sessions kept per pool; a session released while the pool holds this many is closed.
pub const MAX_IDLE: usize = 4;
/// An idle session older than this is closed instead of reused.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the ping before reuse and the reset on release may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing a clean session politely may take before it is simply dropped.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often idle sessions past [`IDLE_TIMEOUT`] are closed in the background.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// How long the process may wait at exit for idle sessions to say goodbye.
pub const EXIT_WAIT: Duration = Duration::from_secs(1);

/// What the pool needs to know about one database's sessions. Implemented by a type of the plugin's own (the
/// session type itself is usually the driver's).
pub trait Database: Sized + 'static {
    /// The resolved connection settings a session is opened from.
    type Settings: Sync;
    /// Every connection setting, credentials included: sessions are shared only between equal keys.
    type Key: Eq + Hash + Send + 'static;
    /// An open session.
    type Session: Send + 'static;

    /// The plugin's one `static` [`Pools`] of this database.
    fn pools() -> &'static Pools<Self>;
    fn key(s: &Self::Settings) -> Self::Key;
    /// Where the settings point, for messages (`host:port/database`, never a secret).
    fn label(s: &Self::Settings) -> &str;
    /// Opens a new, set-up session within the settings' own connect timeout. Runs on the plugin's runtime.
    fn connect(
        s: &Self::Settings,
    ) -> impl Future<Output = Result<Self::Session, PluginError>> + Send;
    /// Whether an idle session still answers (a round trip). The pool bounds it by [`CHECK_TIMEOUT`].
    fn ping(session: &mut Self::Session) -> impl Future<Output = bool> + Send;
    /// Puts a session a step is done with back into the state [`Database::connect`] left it in (no open
    /// transaction, no temporary tables or locks, the session settings of a new one), and says whether it
    /// did; `false` (or taking longer than [`CHECK_TIMEOUT`]) abandons the session. Runs on the plugin's
    /// runtime.
    fn reset(session: &mut Self::Session) -> impl Future<Output = bool> + Send;
    /// Ends a session with nothing in flight politely (so the server logs no aborted client); resolves once
    /// the server was told. Spawned on the plugin's runtime, bounded by [`CLOSE_TIMEOUT`] (or [`EXIT_WAIT`]).
    fn quit(session: Self::Session) -> impl Future<Output = ()> + Send + 'static;
    /// Ends a session whose state is unknown (a step that stopped mid-result, a failed reset or ping) at once,
    /// without waiting for anything and without draining what is in flight. May be called on any thread.
    fn abandon(session: Self::Session);
}

/// The pool of each connection key.
type ByKey<D> = Mutex<HashMap<<D as Database>::Key, Arc<Pool<D>>>>;

/// One plugin's pools: its I/O runtime and, per connection key, the idle sessions. Lives in a `static`.
pub struct Pools<D: Database> {
    thread_name: &'static str,
    idle_timeout: Duration,
    rt: OnceLock<Runtime>,
    pools: OnceLock<ByKey<D>>,
    started: Once,
}

impl<D: Database> Pools<D> {
    /// Empty pools whose runtime's threads are called `thread_name` (e.g. `osiris-mysql-io`).
    pub const fn new(thread_name: &'static str) -> Pools<D> {
        Pools {
            thread_name,
            idle_timeout: IDLE_TIMEOUT,
            rt: OnceLock::new(),
            pools: OnceLock::new(),
            started: Once::new(),
        }
    }

    #[cfg(test)]
    const fn with_idle_timeout(mut self, idle_timeout: Duration) -> Pools<D> {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The plugin's I/O runtime (two worker threads), started on first use and never stopped: pooled sessions'
    /// sockets and connection tasks live on it, so sessions outlive the step that opened them. Drive futures
    /// with `runtime()?.block_on(..)` from a thread that is not itself inside a runtime.
    pub fn runtime(&self) -> Result<&Runtime, PluginError> {
        if let Some(rt) = self.rt.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(self.thread_name)
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| PluginError::internal(format!("cannot start the I/O runtime: {e}")))?;
        // Another thread may have won the race; the spare runtime is dropped here, outside any runtime.
        Ok(self.rt.get_or_init(|| rt))
    }

    /// An idle pooled session that still answers, or a new one. Must run on [`Pools::runtime`].
    pub async fn checkout(
        &'static self,
        s: &D::Settings,
        ctx: &Context,
    ) -> Result<Pooled<D>, PluginError> {
        let pool = self.pool_for(s);
        while let Some(mut session) = pool.take() {
            if matches!(
                tokio::time::timeout(CHECK_TIMEOUT, D::ping(&mut session)).await,
                Ok(true)
            ) {
                ctx.metric("connections_reused", 1.0, Some("connections"));
                ctx.debug(&format!("reusing a pooled connection to {}", D::label(s)));
                return Ok(Pooled {
                    session: Some(session),
                    pool,
                });
            }
            ctx.debug(&format!(
                "a pooled connection to {} no longer answers; replacing it",
                D::label(s)
            ));
            D::abandon(session);
        }
        Self::open_in(s, ctx, pool).await
    }

    /// Always a new session (a connection check must really connect), released into the pool afterwards like
    /// any other. Must run on [`Pools::runtime`].
    pub async fn open(
        &'static self,
        s: &D::Settings,
        ctx: &Context,
    ) -> Result<Pooled<D>, PluginError> {
        Self::open_in(s, ctx, self.pool_for(s)).await
    }

    /// How many idle sessions the pool of these settings holds now.
    pub fn idle(&self, s: &D::Settings) -> usize {
        let pools = self.map().lock().unwrap_or_else(|e| e.into_inner());
        pools.get(&D::key(s)).map_or(0, |p| p.len())
    }

    async fn open_in(
        s: &D::Settings,
        ctx: &Context,
        pool: Arc<Pool<D>>,
    ) -> Result<Pooled<D>, PluginError> {
        // Connecting may take up to the connect timeout: stop waiting as soon as the host cancels (Ctrl-C, or
        // another step failed) instead of holding the step for the rest of it.
        let what = format!("connecting to {}", D::label(s));
        let session = unless_cancelled(ctx, &what, D::connect(s)).await?;
        ctx.metric("connections_opened", 1.0, Some("connections"));
        ctx.debug(&format!("opened a connection to {}", D::label(s)));
        Ok(Pooled {
            session: Some(session),
            pool,
        })
    }

    fn map(&self) -> &ByKey<D> {
        self.pools.get_or_init(Default::default)
    }

    /// Every pool made so far (the sweep and the exit hook visit them all).
    fn all(&self) -> Vec<Arc<Pool<D>>> {
        let pools = self.map().lock().unwrap_or_else(|e| e.into_inner());
        pools.values().cloned().collect()
    }

    /// The pool for these settings; the first call also starts the background sweep of expired idle sessions
    /// and arranges for idle sessions to be closed politely when the process exits.
    fn pool_for(&'static self, s: &D::Settings) -> Arc<Pool<D>> {
        self.started.call_once(|| {
            osiris_plugin_sdk::on_process_exit(close_idle_sessions::<D>);
            let Ok(rt) = self.runtime() else { return };
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    for p in self.all() {
                        p.sweep();
                    }
                }
            });
        });
        self.map()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(D::key(s))
            .or_insert_with(|| {
                Arc::new(Pool {
                    idle: Mutex::new(Vec::new()),
                    timeout: self.idle_timeout,
                })
            })
            .clone()
    }

    /// At process exit: ends every idle session politely and waits up to [`EXIT_WAIT`] for them.
    fn close_idle(&self) {
        let Some(rt) = self.rt.get() else { return };
        let sessions: Vec<D::Session> = self.all().iter().flat_map(|p| p.drain()).collect();
        if sessions.is_empty() {
            return;
        }
        rt.block_on(async {
            let quits = futures_util::future::join_all(sessions.into_iter().map(D::quit));
            let _ = tokio::time::timeout(EXIT_WAIT, quits).await;
        });
    }
}

/// The exit hook of `D`'s pools (a plain `fn`, as `on_process_exit` takes).
fn close_idle_sessions<D: Database>() {
    D::pools().close_idle();
}

/// Ends a clean session politely in the background on the plugin's runtime.
fn close<D: Database>(session: D::Session) {
    if std::thread::panicking() {
        // Spawning now could panic again: the session's own drop closes its socket without spawning.
        drop(session);
        return;
    }
    match D::pools().runtime() {
        Ok(rt) => {
            rt.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, D::quit(session)).await;
            });
        }
        Err(_) => drop(session),
    }
}

struct Idle<S> {
    session: S,
    since: Instant,
}

/// The idle sessions of one connection key.
struct Pool<D: Database> {
    idle: Mutex<Vec<Idle<D::Session>>>,
    timeout: Duration,
}

impl<D: Database> Pool<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<D::Session>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The most recently released session that is not past the idle timeout; expired ones are closed.
    fn take(&self) -> Option<D::Session> {
        let mut idle = self.lock();
        while let Some(i) = idle.pop() {
            if i.since.elapsed() < self.timeout {
                return Some(i.session);
            }
            close::<D>(i.session);
        }
        None
    }

    fn put(&self, session: D::Session) {
        let mut idle = self.lock();
        if idle.len() >= MAX_IDLE {
            drop(idle);
            close::<D>(session);
            return;
        }
        idle.push(Idle {
            session,
            since: Instant::now(),
        });
    }

    fn sweep(&self) {
        let mut idle = self.lock();
        let (keep, expired): (Vec<_>, Vec<_>) = std::mem::take(&mut *idle)
            .into_iter()
            .partition(|i| i.since.elapsed() < self.timeout);
        *idle = keep;
        drop(idle);
        for i in expired {
            close::<D>(i.session);
        }
    }

    fn drain(&self) -> Vec<D::Session> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .map(|i| i.session)
            .collect()
    }
}

/// A session lent to one step (derefs to the session). Dropping it abandons the session; [`Pooled::release`]
/// gives it back, [`Pooled::discard`] closes it politely.
pub struct Pooled<D: Database> {
    session: Option<D::Session>,
    pool: Arc<Pool<D>>,
}

impl<D: Database> Deref for Pooled<D> {
    type Target = D::Session;
    fn deref(&self) -> &D::Session {
        self.session.as_ref().expect("present until released")
    }
}

impl<D: Database> DerefMut for Pooled<D> {
    fn deref_mut(&mut self) -> &mut D::Session {
        self.session.as_mut().expect("present until released")
    }
}

impl<D: Database> Pooled<D> {
    /// Resets the session and gives it back to the pool; a session that cannot be reset (within
    /// [`CHECK_TIMEOUT`]) is abandoned. Never fails: the step's work is done either way. Must run on the
    /// plugin's runtime.
    pub async fn release(mut self) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        match tokio::time::timeout(CHECK_TIMEOUT, D::reset(&mut session)).await {
            Ok(true) => self.pool.put(session),
            _ => D::abandon(session),
        }
    }

    /// Closes the session now, politely and within [`CLOSE_TIMEOUT`], for a step that failed with the
    /// session idle: it is never reused.
    pub async fn discard(mut self) {
        if let Some(session) = self.session.take() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, D::quit(session)).await;
        }
    }
}

impl<D: Database> Drop for Pooled<D> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Dropped without release: the step stopped, maybe in the middle of a result.
            D::abandon(session);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The pool's rules on an in-memory database whose sessions record what became of them. Tests run in
    //! parallel in one process: each uses a pool key of its own, and the exit hook (which empties every pool of
    //! its database) runs on a database of its own.
    use super::*;
    use crate::testing::{Origin, checkout};
    use osiris_plugin_sdk::testing::TestContext;
    use std::marker::PhantomData;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// What became of each session (by id), in order.
    static EVENTS: Mutex<Vec<(u32, &'static str)>> = Mutex::new(Vec::new());
    static NEXT_ID: AtomicU32 = AtomicU32::new(1);

    fn events(id: u32) -> Vec<&'static str> {
        let events = EVENTS.lock().unwrap();
        events
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, e)| *e)
            .collect()
    }

    fn event(id: u32, what: &'static str) {
        EVENTS.lock().unwrap().push((id, what));
    }

    /// Waits until session `id` went through `want` (closing runs in the background).
    fn until_events(id: u32, want: &[&str]) {
        for _ in 0..200 {
            if events(id) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(events(id), want, "session {id}");
    }

    struct Session {
        id: u32,
        /// Whether it answers a ping.
        alive: bool,
        /// Whether its reset succeeds.
        clean: bool,
    }

    /// A pool key of the test's own, and whether connecting hangs.
    struct Settings {
        key: &'static str,
        hang: bool,
    }

    fn settings(key: &'static str) -> Settings {
        Settings { key, hang: false }
    }

    /// Which `static` pools a fake database uses.
    trait Statics: Sized + Send + 'static {
        fn pools() -> &'static Pools<Fake<Self>>;
    }

    struct Fake<W>(PhantomData<W>);

    struct Shared;
    struct ForExit;

    // An idle timeout short enough for the expiry test to wait out.
    static SHARED: Pools<Fake<Shared>> =
        Pools::new("osiris-fake-io").with_idle_timeout(Duration::from_millis(300));
    static FOR_EXIT: Pools<Fake<ForExit>> = Pools::new("osiris-fake-exit-io");

    impl Statics for Shared {
        fn pools() -> &'static Pools<Fake<Shared>> {
            &SHARED
        }
    }

    impl Statics for ForExit {
        fn pools() -> &'static Pools<Fake<ForExit>> {
            &FOR_EXIT
        }
    }

    impl<W: Statics> Database for Fake<W> {
        type Settings = Settings;
        type Key = &'static str;
        type Session = Session;

        fn pools() -> &'static Pools<Self> {
            W::pools()
        }
        fn key(s: &Settings) -> &'static str {
            s.key
        }
        fn label(s: &Settings) -> &str {
            s.key
        }
        async fn connect(s: &Settings) -> Result<Session, PluginError> {
            if s.hang {
                std::future::pending::<()>().await;
            }
            Ok(Session {
                id: NEXT_ID.fetch_add(1, Ordering::SeqCst),
                alive: true,
                clean: true,
            })
        }
        async fn ping(session: &mut Session) -> bool {
            session.alive
        }
        async fn reset(session: &mut Session) -> bool {
            event(session.id, "reset");
            session.clean
        }
        async fn quit(session: Session) {
            event(session.id, "quit")
        }
        fn abandon(session: Session) {
            event(session.id, "abandon");
        }
    }

    fn take<W: Statics>(s: &Settings) -> (Pooled<Fake<W>>, Origin) {
        W::pools().runtime().unwrap().block_on(checkout(s))
    }

    fn release<W: Statics>(p: Pooled<Fake<W>>) {
        W::pools().runtime().unwrap().block_on(p.release());
    }

    #[test]
    fn a_released_session_is_reset_and_reused_a_dropped_one_abandoned() {
        let s = settings("reuse");
        let (p, from) = take::<Shared>(&s);
        let first = p.id;
        assert_eq!(from, Origin::Opened);
        release(p);
        let (p, from) = take::<Shared>(&s);
        assert_eq!((from, p.id), (Origin::Reused, first));
        drop(p);
        let (mut p, from) = take::<Shared>(&s);
        assert_eq!(from, Origin::Opened);
        let second = p.id;
        // A session that does not come clean out of its reset is abandoned, not pooled.
        p.clean = false;
        release(p);
        let (p, from) = take::<Shared>(&s);
        assert_eq!(from, Origin::Opened);
        assert_eq!(events(first), ["reset", "abandon"]);
        assert_eq!(events(second), ["reset", "abandon"]);
        drop(p);
    }

    #[test]
    fn a_pooled_session_that_no_longer_answers_is_replaced() {
        let s = settings("dead");
        let (mut p, _) = take::<Shared>(&s);
        let dead = p.id;
        // It resets fine, then dies while idle (a server restart).
        p.alive = false;
        release(p);
        let (p, from) = take::<Shared>(&s);
        assert_eq!(from, Origin::Opened);
        assert_ne!(p.id, dead);
        assert_eq!(events(dead), ["reset", "abandon"]);
    }

    #[test]
    fn the_pool_keeps_at_most_max_idle_and_closes_the_rest_politely() {
        let s = settings("max");
        let lent: Vec<_> = (0..MAX_IDLE + 2).map(|_| take::<Shared>(&s).0).collect();
        let ids: Vec<u32> = lent.iter().map(|p| p.id).collect();
        for p in lent {
            release(p);
        }
        assert_eq!(SHARED.idle(&s), MAX_IDLE);
        for &extra in &ids[MAX_IDLE..] {
            until_events(extra, &["reset", "quit"]);
        }
        // The most recently pooled session comes out first.
        let (p, from) = take::<Shared>(&s);
        assert_eq!((from, p.id), (Origin::Reused, ids[MAX_IDLE - 1]));
        assert_eq!(SHARED.idle(&s), MAX_IDLE - 1);
    }

    #[test]
    fn an_idle_session_past_the_idle_timeout_is_closed_not_reused() {
        let s = settings("expiry");
        let (p, _) = take::<Shared>(&s);
        let old = p.id;
        release(p);
        std::thread::sleep(SHARED.idle_timeout + Duration::from_millis(50));
        let (p, from) = take::<Shared>(&s);
        assert_eq!(from, Origin::Opened);
        assert_ne!(p.id, old);
        until_events(old, &["reset", "quit"]);
    }

    #[test]
    fn a_connection_attempt_stops_when_the_step_is_cancelled() {
        let s = Settings {
            key: "cancel",
            hang: true,
        };
        let m = TestContext::new();
        m.cancel();
        let err = SHARED
            .runtime()
            .unwrap()
            .block_on(SHARED.checkout(&s, &Context::new(m.clone())))
            .err()
            .expect("the checkout was cancelled");
        assert_eq!(err.message, "connecting to cancel was cancelled");
        assert!(m.metrics().is_empty(), "no connection was opened");
    }

    #[test]
    fn idle_sessions_say_goodbye_at_exit() {
        let (a, b) = (settings("exit-a"), settings("exit-b"));
        let (pa, _) = take::<ForExit>(&a);
        let (pb, _) = take::<ForExit>(&b);
        let (ia, ib) = (pa.id, pb.id);
        release(pa);
        release(pb);
        // The hook as the SDK runs it at exit: on a thread of its own, outside any runtime.
        std::thread::spawn(close_idle_sessions::<Fake<ForExit>>)
            .join()
            .unwrap();
        assert_eq!(events(ia), ["reset", "quit"]);
        assert_eq!(events(ib), ["reset", "quit"]);
        assert_eq!((FOR_EXIT.idle(&a), FOR_EXIT.idle(&b)), (0, 0));
    }
}
