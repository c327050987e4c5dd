//! `osiris-test-abort`: a plugin built with `panic = "abort"` (see Cargo.toml), offering `test.abort`.
//!
//! Every function of its driver (the factory included) first appends its name to
//! `$OSIRIS_TEST_MARKER_DIR/osiris-test-abort.called`, then `run` panics, which aborts the process. A host that
//! refuses the plugin from its metadata leaves only `osiris-test-abort.loaded` (written at `dlopen`).

use osiris_plugin_sdk::serde_json::Value;
use osiris_plugin_sdk::{Context, Driver, PluginError, Streams};

fn called(what: &str) {
    if let Some(dir) = std::env::var_os("OSIRIS_TEST_MARKER_DIR") {
        use std::io::Write;
        let path = std::path::Path::new(&dir).join("osiris-test-abort.called");
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{what}");
        }
    }
}

struct Abort;

impl Driver for Abort {
    fn run(
        &self,
        step_id: &str,
        _config: &Value,
        _inputs: Streams,
        _ctx: &Context,
    ) -> Result<Streams, PluginError> {
        called("run");
        panic!("test.abort panics in step `{step_id}`");
    }

    fn doctor(&self, _config: &Value, _ctx: &Context) -> Result<Value, PluginError> {
        called("doctor");
        panic!("test.abort panics in doctor");
    }
}

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_test_abort,
    name: "osiris-test-abort", version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "test.abort",
            spec_yaml: include_str!("../spec.yaml"),
            driver: || {
                called("driver");
                Box::new(Abort)
            },
        },
    ],
}

include!("../../marker.rs");
