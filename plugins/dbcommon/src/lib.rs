//! What the database plugins (`osiris-plugin-mysql`, `osiris-plugin-postgres`) share, written once:
//!
//! - [`pool`]: one I/O runtime per plugin and, per distinct connection settings, a small pool of idle sessions
//!   that later steps of the same process reuse (checkout, release with a reset, idle timeout, background
//!   sweep, polite goodbyes at process exit), generic over a [`Database`] that knows how to open, check, reset
//!   and close its own sessions.
//! - [`cancel`]: waiting for something (a connection attempt) that stops as soon as the host cancels the step.
//! - [`fields`]: reading the merged connection and step fields (`connect_timeout` and friends).
//! - [`window`]: the read window the host passes for incremental and chunked loads, as SQL.
//! - [`extension`]: the Arrow extension types (JSON, UUID text) the plugins put on columns and read back.
//! - [`evolution`]: a writer's `schema_evolution`: which input columns are added or left out, or the one error
//!   naming every column the input and the target table disagree on.
//! - `testing` (feature `testing`): throw-away databases on the local MariaDB and PostgreSQL servers and the
//!   compliance runs both plugins' tests share.
//!
//! A library only, linked into each database plugin: it exports no plugin entry and no component, and it
//! depends on nothing but the plugin SDK, arrow-schema, tokio and JSON, so a plugin that uses it still depends on the SDK
//! alone for everything that crosses the plugin boundary.
//!
//! Invariant: nothing here formats connection settings into a message; settings reach messages only through
//! the label a [`Database`] gives (which holds no secret).

pub mod cancel;
pub mod evolution;
pub mod extension;
pub mod fields;
pub mod pool;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod window;

pub use cancel::{CANCEL_POLL, cancelled, unless_cancelled};
pub use fields::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, connect_timeout, merged, on_thread,
    read_timeout, str_field, within,
};
pub use pool::{Database, Pooled, Pools};
