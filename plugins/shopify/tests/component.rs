//! Tests of `shopify.extractor` through the built plugin library, loaded the way osiris loads it.
//! Runs against a local HTTP server are in the osiris integration tests (tests/it/shopify.rs).

use osiris_plugin_sdk::ErrorKind;
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::json;
use osiris_plugin_sdk::testing::{self, TestContext};

/// The cdylib cargo built next to this test binary, loaded through its entry symbol.
fn module() -> Module {
    let path = testing::built_cdylib("shopify_extractor");
    testing::load_cdylib(&path, "osiris_ocp_shopify_extractor").expect("the plugin library loads")
}

#[test]
fn spec_is_valid() {
    if let Err(problems) = testing::check_spec(shopify_extractor::SPEC) {
        panic!("spec.yaml has problems:\n{}", problems.join("\n"));
    }
}

#[test]
fn the_library_exports_the_component_with_its_spec() {
    let module = module();
    testing::check_module(&module).unwrap_or_else(|p| panic!("{}", p.join("\n")));
    let names: Vec<&str> = module
        .components()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["shopify.extractor"]);
    assert_eq!(module.plugin_name(), env!("CARGO_PKG_NAME"));
}

#[test]
fn a_missing_shop_url_is_a_config_error() {
    let err = testing::run_collect(
        &module(),
        shopify_extractor::COMPONENT,
        &json!({ "resource": "customers", "access_token": "shpat-secret-1" }),
        TestContext::new(),
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.contains("shop_url"), "{err}");
    assert!(!err.to_string().contains("shpat-secret-1"), "{err}");
}

#[test]
fn an_unreachable_shop_is_a_connection_error_without_the_token() {
    // Port 9 on localhost (discard) refuses connections on a test machine.
    let err = testing::run_collect(
        &module(),
        shopify_extractor::COMPONENT,
        &json!({
            "resource": "orders",
            "shop_url": "http://127.0.0.1:9",
            "access_token": "shpat-secret-2",
            "max_retries": 0,
        }),
        TestContext::new(),
        Default::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connection, "{err}");
    assert!(
        !format!("{err} {:?}", err.help).contains("shpat-secret-2"),
        "{err}"
    );
}
