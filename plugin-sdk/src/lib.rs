//! osiris plugin SDK: the only crate a component author depends on.
//!
//! - [`Driver`], [`Context`], [`PluginError`]: what an author implements and uses.
//! - [`export_ocp!`]: exports the plugin's components under one versioned, uniquely named entry.
//! - `abi`: the FFI-safe module layout (abi_stable), checked by the host before use.
//! - `host`: what the osiris host (and the test kit) use to call a plugin, linked or loaded.

mod driver;

pub use driver::{BatchStream, Component, Context, ContextBackend, Driver, ErrorKind, Level, PluginError, Streams};

pub use arrow_array;
pub use arrow_schema;
pub use serde_json;
