//! `osiris-test-arrow55`: the `test.echo` driver built against arrow 55, offered as `test.echo55`.

#[allow(dead_code)]
#[path = "../../echo/src/driver.rs"]
mod driver;

// The SDK must see the same arrow as this crate (arrow 55): this does not compile if they differ.
const _: fn(arrow_array::RecordBatch) -> osiris_plugin_sdk::arrow_array::RecordBatch =
    |batch| batch;
const _: fn(arrow_schema::SchemaRef) -> osiris_plugin_sdk::arrow_schema::SchemaRef =
    |schema| schema;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_test_arrow55,
    name: "osiris-test-arrow55", version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component {
            name: "test.echo55",
            spec_yaml: include_str!("../spec.yaml"),
            driver: || Box::new(driver::Echo),
        },
    ],
}

include!("../../marker.rs");
