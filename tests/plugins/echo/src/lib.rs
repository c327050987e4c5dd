//! `osiris-test-echo`: a test plugin (cdylib) offering `test.echo`.

mod driver;

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_test_echo,
    name: "osiris-test-echo", version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component { name: "test.echo", spec_yaml: driver::SPEC, driver: || Box::new(driver::Echo) },
    ],
}

include!("../../marker.rs");
