//! First-party CSV components: `filesystem.csv_extractor` and `filesystem.csv_writer`.
//!
//! Built as a `cdylib` (loadable OCP, entry symbol `osiris_ocp_csv`) and as an `rlib` that the host links in
//! through the same entry.

// The integration tests' dev-dependencies (proptest) are linked into the unit tests too.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod common;
mod discover;
mod extractor;
mod scan;
mod writer;

pub use extractor::CsvExtractor;
pub use writer::CsvWriter;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_csv,
    name: "osiris-csv",
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "filesystem.csv_extractor",
            spec_yaml: include_str!("../../../components/filesystem.csv_extractor/spec.yaml"),
            driver: || Box::new(CsvExtractor),
        },
        osiris_plugin_sdk::Component {
            name: "filesystem.csv_writer",
            spec_yaml: include_str!("../../../components/filesystem.csv_writer/spec.yaml"),
            driver: || Box::new(CsvWriter),
        },
    ],
}

#[cfg(test)]
mod tests;
