//! The SDK's driver compliance kit on `graphql.extractor`, through the entry the cdylib exports
//! (`Module::from_static(&OCP_ENTRY)`), against a tiny local GraphQL server serving two cursor pages.

// An integration test links every dependency of its package; most of them are the library's, not its own.
#![allow(unused_crate_dependencies)]

use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::{self, Value, json};
use osiris_plugin_sdk::testing::{Case, Compliance};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bearer token the connection carries; it must never reach a log line or an error.
const TOKEN: &str = "gql-compliance-token-7c2e";

const QUERY: &str = "query Items($after: String) { items(first: 2, after: $after) { nodes { id name } pageInfo { hasNextPage endCursor } } }";

fn module() -> Arc<Module> {
    Arc::new(
        Module::from_static(&osiris_plugin_graphql::OCP_ENTRY).expect("the GraphQL plugin loads"),
    )
}

/// A local GraphQL endpoint at `POST /graphql`: without `after` the first page (two items, `hasNextPage: true`,
/// `endCursor: "c2"`), with `after: "c2"` the last page (one item). A request without the bearer token gets a
/// 401. Serves at most `max_requests` requests and stops after 60 s either way. Returns the port and the
/// `after` variable of every request served.
fn serve_items(max_requests: usize) -> (u16, Arc<Mutex<Vec<Value>>>) {
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
            let mut authorization = None;
            let mut length = 0usize;
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    let name = name.trim();
                    if name.eq_ignore_ascii_case("authorization") {
                        authorization = Some(value.trim().to_string());
                    } else if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0u8; length.min(1 << 20)];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let after = request["variables"]["after"].clone();
            log.lock().unwrap().push(after.clone());
            let (status, body) = if authorization.as_deref() != Some(&format!("Bearer {TOKEN}")) {
                (401, json!({"errors": [{"message": "unauthorized"}]}))
            } else if target != "/graphql" {
                (404, json!({"errors": [{"message": "not found"}]}))
            } else if after == json!("c2") {
                (
                    200,
                    json!({"data": {"items": {
                        "nodes": [{"id": 3, "name": "gamma"}],
                        "pageInfo": {"hasNextPage": false, "endCursor": "c3"},
                    }}}),
                )
            } else {
                (
                    200,
                    json!({"data": {"items": {
                        "nodes": [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}],
                        "pageInfo": {"hasNextPage": true, "endCursor": "c2"},
                    }}}),
                )
            };
            let body = body.to_string();
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut w = stream;
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(body.as_bytes());
            let _ = w.flush();
        }
    });
    (port, seen)
}

fn config() -> Value {
    json!({
        "query": QUERY,
        "pagination_enabled": true,
        "pagination_path": "data.items.pageInfo",
        "data_path": "data.items.nodes",
        "max_retries": 0,
    })
}

#[test]
fn graphql_extractor_is_compliant() {
    // The valid run reads 2 pages, the run cancelled after the first batch 1, the one cancelled before it
    // none: 8 leaves room without letting a runaway pager hang the server.
    let (port, seen) = serve_items(8);
    let mut bad = config();
    bad["max_pages"] = json!("two");
    let mut unreachable = config();
    unreachable["endpoint"] = json!("http://127.0.0.1:1/graphql");
    let report = Compliance::new(module(), "graphql.extractor", config())
        .connection(json!({
            "endpoint": format!("http://127.0.0.1:{port}/graphql"),
            "auth_type": "bearer",
            "auth_token": TOKEN,
        }))
        .bad_config(bad)
        // Nothing listens on port 1: the connection is refused.
        .unreachable(Case::new(unreachable))
        .secrets([TOKEN])
        .timeout(Duration::from_secs(20))
        .run();
    // Two pages make two batches, so every check applies: none may be skipped.
    report.assert_all_passed(&[]);
    let afters = seen.lock().unwrap().clone();
    assert!(
        afters.contains(&json!("c2")),
        "the valid run followed the cursor: {afters:?}"
    );
}
