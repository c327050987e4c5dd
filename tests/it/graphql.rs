//! `graphql.extractor` through the real binary against a local HTTP server answering canned GraphQL pages.

use crate::run::{code, files, json, jsonl, osiris, run_dir, text};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server saw: lower-cased header names, the parsed JSON body, when it arrived.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Value,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A canned answer: status, extra headers, JSON body (as text, so key order is the test's).
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn ok(body: impl ToString) -> Reply {
    Reply {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

/// Serves `replies` in order, one per connection (`Connection: close`), then stops; it also stops after 60 s
/// without all replies taken. `check` may replace a reply (e.g. refuse a request without the right token).
fn serve(
    replies: Vec<Reply>,
    check: fn(&Seen) -> Option<Reply>,
) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut replies = replies.into_iter();
        while Instant::now() < deadline {
            let (stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap(); // request line
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (n, v) = l.split_once(':').unwrap();
                headers.push((n.trim().to_lowercase(), v.trim().to_string()));
            }
            let len: usize = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let request = Seen {
                headers,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                at: Instant::now(),
            };
            log.lock().unwrap().push(request.clone());
            let Some(next) = replies.next() else {
                break;
            };
            let reply = check(&request).unwrap_or(next);
            let body = reply.body;
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                body.len()
            );
            for (n, v) in &reply.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut w = stream;
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(body.as_bytes());
            let _ = w.flush();
            if replies.len() == 0 {
                break;
            }
        }
    });
    (url, seen)
}

fn no_check(_: &Seen) -> Option<Reply> {
    None
}

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
    let (url, seen) = serve(
        vec![
            ok(page(
                json!([
                    {"id": 1, "name": "alpha", "owner": {"login": "ann"}, "score": 1.5},
                    {"id": 2, "name": "beta, inc", "owner": {"login": "bob"}, "score": 2}
                ]),
                Some("c1"),
            )),
            ok(page(
                json!([
                    {"id": 3, "name": "gamma", "owner": null, "score": null},
                    {"id": 4, "name": "delta", "owner": {"login": "dan"}, "score": 4.25}
                ]),
                Some("c2"),
            )),
            ok(page(
                json!([{"id": 5, "name": "eps", "owner": {"login": "eve"}, "score": 5.5}]),
                None,
            )),
        ],
        no_check,
    );
    let p = project(
        "gqlpages",
        &format!(
            "endpoint: {url}\n{QUERY}\nvariables: {{ first: 2 }}\npagination_enabled: true\npagination_path: data.items.pageInfo\ndata_path: data.items.nodes\nretry_delay: 0.1"
        ),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,name,owner.login,score\n1,alpha,ann,1.5\n2,\"beta, inc\",bob,2.0\n3,gamma,,\n4,delta,dan,4.25\n5,eps,eve,5.5\n"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0].body["variables"], json!({"first": 2}));
    assert_eq!(
        seen[1].body["variables"],
        json!({"first": 2, "after": "c1"})
    );
    assert_eq!(
        seen[2].body["variables"],
        json!({"first": 2, "after": "c2"})
    );
    assert!(
        seen[0].body["query"]
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
    let (url, seen) = serve(
        vec![
            Reply {
                status: 429,
                headers: vec![("Retry-After", "1".into())],
                body: json!({"message": "slow down"}).to_string(),
            },
            // Key order is kept: `id` before `active` in the response, so in the CSV.
            ok(r#"{"data": {"users": [{"id": 7, "active": true}]}}"#),
        ],
        no_check,
    );
    let p = project(
        "gqlretry",
        &format!(
            "endpoint: {url}\nquery: \"{{ users {{ id active }} }}\"\ndata_path: data.users\nretry_delay: 0.1\nmax_retries: 2"
        ),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,active\n7,true\n"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "the server saw the retry: {seen:?}");
    let waited = seen[1].at - seen[0].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 is honoured over retry_delay 0.1: waited {waited:?}"
    );
}

const TOKEN: &str = "tok-pl4nted-graphql-8d31e";

fn require_token(s: &Seen) -> Option<Reply> {
    if s.header("authorization") == Some(&format!("Bearer {TOKEN}")) {
        None
    } else {
        Some(Reply {
            status: 401,
            headers: vec![],
            body: json!({"message": "bad credentials"}).to_string(),
        })
    }
}

#[test]
fn graphql_bearer_token_is_sent_and_never_written() {
    let (url, seen) = serve(
        vec![ok(r#"{"data": {"viewer": {"login": "octo", "id": 42}}}"#)],
        require_token,
    );
    let conns = format!(
        "version: \"1.0\"\nconnections:\n  graphql:\n    api:\n      endpoint: {url}\n      auth_type: bearer\n      auth_token: ${{OSIRIS_IT_GQL_TOKEN}}\n"
    );
    let p = project(
        "gqlauth",
        "connection: \"@graphql.api\"\nquery: \"{ viewer { login id } }\"\ndata_path: data.viewer",
        &[("osiris_connections.yaml", &conns)],
    );
    let o = osiris(
        p.path(),
        &["-v", "run", "p.yaml"],
        &[("OSIRIS_IT_GQL_TOKEN", TOKEN)],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "login,id\nocto,42\n"
    );
    {
        let seen = seen.lock().unwrap();
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
    let (url, _seen) = serve(
        vec![ok(json!({
            "data": null,
            "errors": [
                {"message": "Cannot query field \"nope\" on type \"Query\"."},
                {"message": "second problem"}
            ]
        }))],
        no_check,
    );
    let p = project(
        "gqlerrors",
        &format!("endpoint: {url}\nquery: \"{{ nope }}\"\nmax_retries: 0"),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
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

fn require_api_key(s: &Seen) -> Option<Reply> {
    if s.header("x-shop-key") == Some("key-pl4nted-55c1") {
        None
    } else {
        Some(Reply {
            status: 403,
            headers: vec![],
            body: "{}".into(),
        })
    }
}

#[test]
fn graphql_api_key_header_and_max_pages() {
    let (url, seen) = serve(
        vec![
            ok(page(json!([{"id": 1}, {"id": 2}]), Some("c1"))),
            ok(page(json!([{"id": 3}]), Some("c2"))),
            ok(page(json!([{"id": 4}]), None)),
        ],
        require_api_key,
    );
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
    let o = osiris(
        p.path(),
        &["run", "p.yaml"],
        &[("OSIRIS_IT_GQL_KEY", "key-pl4nted-55c1")],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id\n1\n2\n3\n"
    );
    assert_eq!(seen.lock().unwrap().len(), 2, "max_pages: 2 stops paging");
}

#[test]
fn graphql_type_change_on_a_later_page_names_the_column() {
    let (url, _seen) = serve(
        vec![
            ok(page(json!([{"id": 1}]), Some("c1"))),
            ok(page(json!([{"id": "one"}]), None)),
        ],
        no_check,
    );
    let p = project(
        "gqltype",
        &format!(
            "endpoint: {url}\n{QUERY}\npagination_enabled: true\npagination_path: data.items.pageInfo\ndata_path: data.items.nodes"
        ),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stderr.contains("page 2") && stderr.contains("`id`") && stderr.contains("int64"),
        "{stderr}"
    );
}

/// A local HTTPS server for the `validate_ssl` tests: a certificate for 127.0.0.1 and localhost made now and
/// signed by itself, so no client trusts it.
struct TlsServer {
    url: String,
    /// TCP connections accepted (each one a TLS handshake attempt).
    connections: Arc<std::sync::atomic::AtomicUsize>,
    /// The JSON bodies of the requests that made it through the handshake.
    bodies: Arc<Mutex<Vec<Value>>>,
}

/// Answers every POST with `reply` (HTTP 200, JSON), one request per connection; stops after 8 connections
/// or 60 s.
fn serve_tls(reply: &'static str) -> TlsServer {
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    use std::sync::atomic::{AtomicUsize, Ordering};

    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a self-signed certificate");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key.into())
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("https://{}/graphql", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (connections.clone(), bodies.clone());
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && count.load(Ordering::SeqCst) < 8 {
            let (tcp, _) = match listener.accept() {
                Ok(s) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            count.fetch_add(1, Ordering::SeqCst);
            tcp.set_nonblocking(false).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            // The handshake runs on the first read: a client that refuses the certificate ends it here.
            let Some(body) = read_http_body(&mut tls) else {
                continue;
            };
            log.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reply.len()
            );
            let _ = tls.write_all(head.as_bytes());
            let _ = tls.write_all(reply.as_bytes());
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    TlsServer {
        url,
        connections,
        bodies,
    }
}

/// The body of one HTTP request (by its Content-Length), or None when the connection failed first.
fn read_http_body(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut len = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':')
            && n.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

const TLS_REPLY: &str =
    r#"{"data": {"items": [{"id": 1, "name": "over tls"}, {"id": 2, "name": "self-signed"}]}}"#;

#[test]
fn graphql_tls_self_signed_certificate_is_refused_by_default_with_the_fix() {
    let server = serve_tls(TLS_REPLY);
    let p = project(
        "gqltlsrefused",
        &format!(
            "endpoint: {}\nquery: \"{{ items {{ id name }} }}\"\ndata_path: data.items\nretry_delay: 0.1",
            server.url
        ),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
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
            server.url
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
        server.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "a refused certificate is not retried (max_retries defaults to 3)"
    );
    assert!(
        server.bodies.lock().unwrap().is_empty(),
        "no request was sent"
    );
    assert!(!p.path().join("out.csv").exists());
}

#[test]
fn graphql_tls_validate_ssl_false_reads_from_a_self_signed_server() {
    let server = serve_tls(TLS_REPLY);
    let p = project(
        "gqltlsoff",
        &format!(
            "endpoint: {}\nquery: \"{{ items {{ id name }} }}\"\ndata_path: data.items\nvalidate_ssl: false",
            server.url
        ),
        &[],
    );
    let o = osiris(p.path(), &["run", "p.yaml"], &[]);
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "id,name\n1,over tls\n2,self-signed\n"
    );
    let bodies = server.bodies.lock().unwrap();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["query"], "{ items { id name } }");
    assert!(
        stderr.contains(&format!(
            "TLS certificate verification is off for {}",
            server.url
        )),
        "the warning is shown: {stderr}"
    );
}
