//! osiris plugin SDK: the only crate a component author depends on.
//!
//! - [`Driver`], [`Context`], [`PluginError`]: what an author implements and uses.
//! - [`spawn_reader`] ([`channel`]): stream Arrow batches from a producer thread (a database client) to the
//!   host through a bounded channel.
//! - [`export_ocp!`]: exports the plugin's components under one versioned, uniquely named entry.
//! - [`abi`]: the FFI-safe module layout (abi_stable), checked by the host before use.
//! - `host` (feature `host`): what the osiris host uses to call a plugin, linked or loaded.
//! - `testing` (feature `testing`): the author test kit (spec checks, loading the built cdylib, running a
//!   component on in-memory batches).
//!
//! See `docs/adr/0003-plugin-abi.md` for the ABI and its versioning rules.

pub mod abi;
pub mod channel;
mod context;
mod driver;
mod exit;
mod export;
mod panic;
mod stream;

#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "testing")]
pub mod testing;

pub use abi::{ABI_VERSION, SDK_VERSION, StaticEntry};
pub use channel::{BatchSender, ChannelReader, batch_from_arrays, spawn_reader};
pub use driver::{
    BatchStream, Component, Context, ContextBackend, Driver, ErrorKind, Level, PluginError,
    Streams, take_input,
};
pub use exit::on_process_exit;
pub use stream::{
    CODES, INVALID_BATCH_CODE, PANIC_CODE, POISONED_CODE, STREAM_ERROR_CODE, UNKNOWN_COMPONENT_CODE,
};

pub use arrow_array;
pub use arrow_schema;
pub use serde_json;

/// Used by [`export_ocp!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::{DriverCache, PluginDef};
}
