//! `graphql.extractor` through the real binary against a local HTTP server answering canned GraphQL pages.

use crate::support::{Reply, Request, code, files, json, jsonl, osiris, run_dir, serve, text};
use serde_json::{Value, json};
use std::time::Duration;

/// A project with osiris.yaml, the given extra files and a pipeline `name` reading with `config` (indented
/// by the caller for the step's `config:` block) and writing `out.csv`.
fn project(name: &str, config: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("osiris.yaml"),
        "run:\n  logs_dir: run_logs\n",
    )
    .unwrap();
    let config: String = config.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        tmp.path().join("p.yaml"),
        format!(
            "oml_version: \"0.1.0\"\nname: {name}\nsteps:\n  - id: fetch\n    component: graphql.extractor\n    mode: read\n    config:\n{config}  - id: out\n    component: filesystem.csv_writer\n    mode: write\n    needs: [fetch]\n    config:\n      path: out.csv\n"
        ),
    )
    .unwrap();
    for (f, t) in extra {
        std::fs::write(tmp.path().join(f), t).unwrap();
    }
    tmp
}

const QUERY: &str = "query: \"query Items($after: String) { items(first: 2, after: $after) { nodes { id name owner { login } score } pageInfo { hasNextPage endCursor } } }\"";

fn page(nodes: Value, next: Option<&str>) -> Value {
    json!({ "data": { "items": {
        "nodes": nodes,
        "pageInfo": { "hasNextPage": next.is_some(), "endCursor": next },
    }}})
}

#[test]
fn graphql_pages_through_cursors_into_csv() {
    let server = serve(vec![
        Reply::ok(page(
            json!([
                {"id": 1, "name": "alpha", "owner": {"login": "ann"}, "score": 1.5},
                {"id": 2, "name": "beta, inc", "owner": {"login": "bob"}, "score": 2}
            ]),
            Some("c1"),
        )),
        Reply::ok(page(
            json!([
                {"id": 3, "name": "gamma", "owner": null, "score": null},
                {"id": 4, "name": "delta", "owner": {"login": "dan"}, "score": 4.25}
            ]),
            Some("c2"),
        )),
        Reply::ok(page(
            json!([{"id": 5, "name": "eps", "owner": {"login": "eve"}, "score": 5.5}]),
            None,
        )),
    ])
    .start();
    let url = server.url("/graphql");
    let p = project(
        "gqlpages",
        &format!(
            "endpoint: {url}\n{QUERY}\nvariables: {{ first: 2 }}\npagination_enabled: true\npagination_path: data.items.pageInfo\ndata_path: data.items.nodes\nretry_delay: 0.1"
        ),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,name,owner.login,score\n1,alpha,ann,1.5\n2,\"beta, inc\",bob,2.0\n3,gamma,,\n4,delta,dan,4.25\n5,eps,eve,5.5\n"
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].json()["variables"], json!({"first": 2}));
    assert_eq!(
        seen[1].json()["variables"],
        json!({"first": 2, "after": "c1"})
    );
    assert_eq!(
        seen[2].json()["variables"],
        json!({"first": 2, "after": "c2"})
    );
    assert!(
        seen[0].json()["query"]
            .as_str()
            .unwrap()
            .starts_with("query Items")
    );
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    let rd = run_dir(p.path(), "default", "gqlpages");
    let metrics = jsonl(&rd.join("metrics.jsonl"));
    assert!(
        metrics
            .iter()
            .any(|m| m["metric"] == "rows_read" && m["step"] == "fetch" && m["value"] == 5),
        "{metrics:?}"
    );
}

#[test]
fn graphql_retries_a_429_after_retry_after() {
    let server = serve(vec![
        Reply::new(429, json!({"message": "slow down"})).header("Retry-After", 1),
        // Key order is kept: `id` before `active` in the response, so in the CSV.
        Reply::ok(r#"{"data": {"users": [{"id": 7, "active": true}]}}"#),
    ])
    .start();
    let url = server.url("/graphql");
    let p = project(
        "gqlretry",
        &format!(
            "endpoint: {url}\nquery: \"{{ users {{ id active }} }}\"\ndata_path: data.users\nretry_delay: 0.1\nmax_retries: 2"
        ),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,active\n7,true\n"
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "the server saw the retry: {seen:?}");
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 is honoured over retry_delay 0.1: waited {waited:?}"
    );
}

const TOKEN: &str = "tok-pl4nted-graphql-8d31e";

fn require_token(s: &Request) -> Option<Reply> {
    if s.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
        None
    } else {
        Some(Reply::new(401, json!({"message": "bad credentials"})))
    }
}

#[test]
fn graphql_bearer_token_is_sent_and_never_written() {
    let server = serve(vec![Reply::ok(
        r#"{"data": {"viewer": {"login": "octo", "id": 42}}}"#,
    )])
    .check(require_token)
    .start();
    let url = server.url("/graphql");
    let conns = format!(
        "version: \"1.0\"\nconnections:\n  graphql:\n    api:\n      endpoint: {url}\n      auth_type: bearer\n      auth_token: ${{OSIRIS_IT_GQL_TOKEN}}\n"
    );
    let p = project(
        "gqlauth",
        "connection: \"@graphql.api\"\nquery: \"{ viewer { login id } }\"\ndata_path: data.viewer",
        &[("osiris_connections.yaml", &conns)],
    );
    let o = osiris(p.path())
        .args(["-v", "run", "p.yaml"])
        .env("OSIRIS_IT_GQL_TOKEN", TOKEN)
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "login,id\nocto,42\n"
    );
    {
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
    assert!(!stdout.contains(TOKEN), "token on stdout:\n{stdout}");
    assert!(!stderr.contains(TOKEN), "token on stderr:\n{stderr}");
    let rd = run_dir(p.path(), "default", "gqlauth");
    let cleaned = json(&rd.join("artifacts/fetch/cleaned_config.json"));
    assert_eq!(cleaned["connection"], "@graphql.api", "{cleaned}");
    for f in files(p.path()) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(!t.contains(TOKEN), "token in {}:\n{t}", f.display());
    }
}

#[test]
fn graphql_errors_fail_the_step_with_their_messages() {
    let server = serve(vec![Reply::ok(json!({
        "data": null,
        "errors": [
            {"message": "Cannot query field \"nope\" on type \"Query\"."},
            {"message": "second problem"}
        ]
    }))])
    .start();
    let url = server.url("/graphql");
    let p = project(
        "gqlerrors",
        &format!("endpoint: {url}\nquery: \"{{ nope }}\"\nmax_retries: 0"),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("Cannot query field \"nope\" on type \"Query\".")
            && stderr.contains("second problem"),
        "{stderr}"
    );
    assert!(stderr.contains("fetch"), "names the step: {stderr}");
    assert!(!p.path().join("out.csv").exists());
}

fn require_api_key(s: &Request) -> Option<Reply> {
    if s.header("x-shop-key") == Some("key-pl4nted-55c1") {
        None
    } else {
        Some(Reply::new(403, "{}"))
    }
}

#[test]
fn graphql_api_key_header_and_max_pages() {
    let server = serve(vec![
        Reply::ok(page(json!([{"id": 1}, {"id": 2}]), Some("c1"))),
        Reply::ok(page(json!([{"id": 3}]), Some("c2"))),
        Reply::ok(page(json!([{"id": 4}]), None)),
    ])
    .check(require_api_key)
    .start();
    let url = server.url("/graphql");
    let conns = format!(
        "version: \"1.0\"\nconnections:\n  graphql:\n    shop:\n      endpoint: {url}\n      auth_type: api_key\n      auth_header_name: X-Shop-Key\n      auth_token: ${{OSIRIS_IT_GQL_KEY}}\n"
    );
    let p = project(
        "gqlkey",
        &format!(
            "connection: \"@graphql.shop\"\n{QUERY}\npagination_enabled: true\npagination_path: data.items.pageInfo\ndata_path: data.items.nodes\nmax_pages: 2"
        ),
        &[("osiris_connections.yaml", &conns)],
    );
    let o = osiris(p.path())
        .args(["run", "p.yaml"])
        .env("OSIRIS_IT_GQL_KEY", "key-pl4nted-55c1")
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id\n1\n2\n3\n"
    );
    assert_eq!(server.requests().len(), 2, "max_pages: 2 stops paging");
}

#[test]
fn graphql_type_change_on_a_later_page_names_the_column() {
    let server = serve(vec![
        Reply::ok(page(json!([{"id": 1}]), Some("c1"))),
        Reply::ok(page(json!([{"id": "one"}]), None)),
    ])
    .start();
    let url = server.url("/graphql");
    let p = project(
        "gqltype",
        &format!(
            "endpoint: {url}\n{QUERY}\npagination_enabled: true\npagination_path: data.items.pageInfo\ndata_path: data.items.nodes"
        ),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("page 2") && stderr.contains("`id`") && stderr.contains("int64"),
        "{stderr}"
    );
}

const TLS_REPLY: &str =
    r#"{"data": {"items": [{"id": 1, "name": "over tls"}, {"id": 2, "name": "self-signed"}]}}"#;

#[test]
fn graphql_tls_self_signed_certificate_is_refused_by_default_with_the_fix() {
    let server = serve(vec![Reply::ok(TLS_REPLY)]).tls().start();
    let p = project(
        "gqltlsrefused",
        &format!(
            "endpoint: {}\nquery: \"{{ items {{ id name }} }}\"\ndata_path: data.items\nretry_delay: 0.1",
            server.url("/graphql")
        ),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(
        code(&o),
        4,
        "a refused certificate is a run error\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("GRAPHQL-TLS"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the TLS certificate of {} is not trusted",
            server.url("/graphql")
        )),
        "names the endpoint: {stderr}"
    );
    assert!(
        stderr.contains("unknown issuer"),
        "says why (self-signed): {stderr}"
    );
    assert!(
        stderr.contains("`validate_ssl: false`") && stderr.contains("certificate authority"),
        "names both fixes: {stderr}"
    );
    assert!(stderr.contains("fetch"), "names the step: {stderr}");
    assert_eq!(
        server.connections(),
        1,
        "a refused certificate is not retried (max_retries defaults to 3)"
    );
    assert!(server.requests().is_empty(), "no request was sent");
    assert!(!p.path().join("out.csv").exists());
}

#[test]
fn graphql_tls_validate_ssl_false_reads_from_a_self_signed_server() {
    let server = serve(vec![Reply::ok(TLS_REPLY)]).tls().start();
    let p = project(
        "gqltlsoff",
        &format!(
            "endpoint: {}\nquery: \"{{ items {{ id name }} }}\"\ndata_path: data.items\nvalidate_ssl: false",
            server.url("/graphql")
        ),
        &[],
    );
    let o = osiris(p.path()).args(["run", "p.yaml"]).output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,name\n1,over tls\n2,self-signed\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].json()["query"], "{ items { id name } }");
    assert!(
        stderr.contains(&format!(
            "TLS certificate verification is off for {}",
            server.url("/graphql")
        )),
        "the warning is shown: {stderr}"
    );
}

#[test]
fn graphql_incremental_sends_the_mark_as_a_variable_and_moves_it_after_the_write() {
    let rec = |id: u32, at: &str| json!({"id": id, "updatedAt": at});
    let server = serve(vec![
        Reply::ok(json!({"data": {"items": [rec(1, "2026-01-01T00:00:00Z"), rec(2, "2026-01-02T00:00:00Z")]}})),
        Reply::ok(json!({"data": {"items": [rec(3, "2026-01-03T00:00:00Z")]}})),
    ])
    .start();
    let url = server.url("/graphql");
    let p = project(
        "gqlincr",
        &format!(
            "endpoint: {url}\nquery: \"query Items($since: String) {{ items(updatedAfter: $since) {{ id updatedAt }} }}\"\nvariables: {{ first: 100 }}\ndata_path: data.items\nincremental:\n  cursor: updatedAt\n  variable: since"
        ),
        &[],
    );
    for _ in 0..2 {
        let o = osiris(p.path()).args(["run", "p.yaml"]).output();
        let (stdout, stderr) = text(&o);
        assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    }
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The first run sends no mark (the query reads everything), the second the greatest `updatedAt` read.
    assert_eq!(seen[0].json()["variables"], json!({"first": 100}));
    assert_eq!(
        seen[1].json()["variables"],
        json!({"first": 100, "since": "2026-01-02T00:00:00Z"})
    );
    let state = json(&p.path().join(".osiris/state/default/gqlincr/fetch.json"));
    assert_eq!(state["value"], json!(["2026-01-03T00:00:00Z"]), "{state}");
    assert_eq!(state["kinds"], json!(["text"]));
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,updatedAt\n3,2026-01-03T00:00:00Z\n"
    );
}
