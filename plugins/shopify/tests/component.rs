//! Tests of `shopify.extractor` through the built plugin library, loaded the way osiris loads it.
//! The compliance kit runs it against a tiny local HTTP server below; full pipeline runs against a local
//! server are in the osiris integration tests (tests/it/shopify.rs).

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_sdk::ErrorKind;
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::json;
use osiris_plugin_sdk::testing::{self, Case, Compliance, Outcome, TestContext, checks};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// The token the compliance runs present; it must never reach a log line or an error.
const COMPLIANCE_TOKEN: &str = "shpat-compliance-9d41";

/// A local shop answering `GET /admin/api/2024-07/customers.json`: the first page (two customers, with a
/// `Link: <...page_info=p2>; rel="next"` header) or, for `page_info=p2`, the last page (one customer). A request
/// without the token gets a 401. Serves at most `max_requests` requests and stops after 60 s either way.
fn serve_customers(max_requests: usize) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < max_requests && Instant::now() < deadline {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            served += 1;
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut token = None;
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.trim().eq_ignore_ascii_case("x-shopify-access-token")
                {
                    token = Some(value.trim().to_string());
                }
            }
            log.lock().unwrap().push(target.clone());
            let base = format!("http://127.0.0.1:{port}/admin/api/2024-07/customers.json");
            let (status, link, body) = if token.as_deref() != Some(COMPLIANCE_TOKEN) {
                (
                    401,
                    None,
                    r#"{"errors":"[API] Invalid API key or access token"}"#,
                )
            } else if !target.starts_with("/admin/api/2024-07/customers.json") {
                (404, None, r#"{"errors":"Not Found"}"#)
            } else if target.contains("page_info=p2") {
                (
                    200,
                    None,
                    r#"{"customers": [{"id": 3, "email": "c@example.com"}]}"#,
                )
            } else {
                (
                    200,
                    Some(format!("<{base}?limit=2&page_info=p2>; rel=\"next\"")),
                    r#"{"customers": [{"id": 1, "email": "a@example.com"}, {"id": 2, "email": "b@example.com"}]}"#,
                )
            };
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(link) = link {
                head.push_str(&format!("Link: {link}\r\n"));
            }
            head.push_str("\r\n");
            let mut w = stream;
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(body.as_bytes());
            let _ = w.flush();
        }
    });
    (port, seen)
}

#[test]
fn the_loaded_extractor_passes_the_compliance_kit() {
    // The valid run reads 2 pages, the run cancelled after the first batch at most 2, the one cancelled
    // before it none: 8 leaves room without letting a runaway pager hang the server.
    let (port, seen) = serve_customers(8);
    let report = Compliance::new(
        module(),
        shopify_extractor::COMPONENT,
        json!({"resource": "customers", "limit": 2, "max_retries": 0}),
    )
    .connection(json!({
        "shop_url": format!("http://127.0.0.1:{port}"),
        "access_token": COMPLIANCE_TOKEN,
    }))
    .bad_config(json!({"resource": "nope"}))
    // Nothing listens on port 1: the connection is refused.
    .unreachable(
        Case::new(json!({"resource": "customers", "max_retries": 0})).connection(json!({
            "shop_url": "http://127.0.0.1:1",
            "access_token": COMPLIANCE_TOKEN,
        })),
    )
    .secrets([COMPLIANCE_TOKEN])
    .timeout(Duration::from_secs(20))
    .run();
    // Two pages make two batches, so every check applies: none may be skipped.
    report.assert_all_passed(&[]);
    let targets = seen.lock().unwrap().clone();
    assert!(
        targets
            .iter()
            .any(|t| t.ends_with("customers.json?limit=2&page_info=p2")),
        "the valid run followed the `next` link: {targets:?}"
    );
}

#[test]
fn a_wrong_typed_field_is_a_config_error_for_the_compliance_kit() {
    let report = Compliance::new(
        module(),
        shopify_extractor::COMPONENT,
        json!({"resource": "customers"}),
    )
    .bad_config(json!({
        "resource": "customers",
        "limit": "two",
        "shop_url": "http://127.0.0.1:1",
        "access_token": COMPLIANCE_TOKEN,
    }))
    .run();
    assert_eq!(
        report.outcome(checks::BAD_CONFIG),
        Some(&Outcome::Passed),
        "{report}"
    );
}
