//! `shopify.extractor`, the reference third-party plugin (plugins/shopify): packed with `osiris plugins pack`,
//! installed with `osiris plugins install` into a project's plugin directory, and run through `osiris run`
//! against a local HTTP server that speaks three pages of customers with `Link` headers and one 429.
//!
//! The plugin builds into `$CARGO_TARGET_DIR/shopify` (kept between runs, so reruns are fast).

use crate::run::{code, files, jsonl, osiris, run_dir, text};
use crate::support::repo_root;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "shpat-pl4nted-shopify-71c0";

/// One request the server saw: its target (path and query), lower-cased headers, when it arrived.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    headers: Vec<(String, String)>,
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

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Serves `replies` in order, one per connection, then stops; it also stops after 90 s. A request without the
/// expected token gets a 401 instead of its reply.
fn serve(replies: Vec<Reply>) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut replies = replies.into_iter();
        while Instant::now() < deadline && replies.len() > 0 {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
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
            let request = Seen {
                target,
                headers,
                at: Instant::now(),
            };
            log.lock().unwrap().push(request.clone());
            let mut reply = replies.next().unwrap();
            if request.header("x-shopify-access-token") != Some(TOKEN) {
                reply = Reply {
                    status: 401,
                    headers: vec![],
                    body: r#"{"errors":"[API] Invalid API key or access token"}"#.into(),
                };
            }
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                reply.status,
                reply.body.len()
            );
            for (n, v) in &reply.headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut w = stream;
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(reply.body.as_bytes());
            let _ = w.flush();
        }
    });
    (port, seen)
}

fn page(port: u16, customers: &str, next: Option<&str>) -> Reply {
    let base = format!("http://127.0.0.1:{port}/admin/api/2024-07/customers.json");
    let headers = match next {
        Some(cursor) => vec![(
            "Link",
            format!(
                "<{base}?limit=2&page_info=prev0>; rel=\"previous\", <{base}?limit=2&page_info={cursor}>; rel=\"next\""
            ),
        )],
        None => vec![],
    };
    Reply {
        status: 200,
        headers,
        body: format!(r#"{{"customers": {customers}}}"#),
    }
}

/// `osiris plugins pack --manifest-path plugins/shopify --out OUT`, building into `$CARGO_TARGET_DIR/shopify`.
fn pack(cwd: &Path, out: &Path) {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("shopify"),
        None => repo_root().join("target/shopify"),
    };
    let crate_dir = repo_root().join("plugins/shopify");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_osiris"))
        .current_dir(cwd)
        .args(["plugins", "pack", "--manifest-path"])
        .arg(&crate_dir)
        .arg("--out")
        .arg(out)
        .env("HOME", cwd)
        .env("NO_COLOR", "1")
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("the osiris binary runs");
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "pack:\nstdout:\n{stdout}\nstderr:\n{stderr}");
}

/// A project with the plugin installed in `.osiris/plugins`, a connection `@shopify.test` to the shop at
/// 127.0.0.1:`port` whose token comes from `SHOPIFY_TOKEN`, and the pipeline `p.yaml` (`step_config` indented by
/// the caller for the step's `config:` block) writing `out.csv`.
fn installed_project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    // Not about signatures: the project opts in to the unsigned build packed here (issue 13: refused by default).
    std::fs::write(
        project.join("osiris.yaml"),
        "plugins:\n  allow_unsigned: true\nrun:\n  logs_dir: run_logs\n",
    )
    .unwrap();
    let dist = tmp.path().join("dist/osiris-plugin-shopify");
    pack(tmp.path(), &dist);
    let o = osiris(
        &project,
        &["plugins", "install", dist.to_str().unwrap()],
        &[],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(
        code(&o),
        0,
        "install:\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        project
            .join(".osiris/plugins/osiris-plugin-shopify/osiris-plugin.toml")
            .is_file()
    );
    (tmp, project)
}

fn pipeline(project: &Path, port: u16, step_config: &str) {
    std::fs::write(
        project.join("osiris_connections.yaml"),
        format!(
            "version: \"1.0\"\nconnections:\n  shopify:\n    test:\n      default: true\n      shop_url: http://127.0.0.1:{port}\n      access_token: ${{SHOPIFY_TOKEN}}\n"
        ),
    )
    .unwrap();
    let config: String = step_config
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    std::fs::write(
        project.join("p.yaml"),
        format!(
            "oml_version: \"0.1.0\"\nname: shop\nsteps:\n  - id: customers\n    component: shopify.extractor\n    mode: read\n    config:\n      connection: \"@shopify.test\"\n{config}  - id: out\n    component: filesystem.csv_writer\n    mode: write\n    needs: [customers]\n    config:\n      path: out.csv\n"
        ),
    )
    .unwrap();
}

fn assert_token_nowhere(project: &Path, stdout: &str, stderr: &str) {
    assert!(!stdout.contains(TOKEN), "token on stdout:\n{stdout}");
    assert!(!stderr.contains(TOKEN), "token on stderr:\n{stderr}");
    for f in files(project) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(!t.contains(TOKEN), "token in {}", f.display());
    }
}

#[test]
fn shopify_plugin_pages_through_customers_with_retry_and_never_writes_the_token() {
    let (_tmp, project) = installed_project();
    let (port, seen) = serve(vec![
        page(
            0,
            r#"[{"id": 101, "email": "ann@example.com", "verified_email": true, "addresses": [{"city": "Oslo"}]},
                {"id": 102, "email": "bob@example.com", "verified_email": false, "addresses": []}]"#,
            Some("cur1"),
        ),
        Reply {
            status: 429,
            headers: vec![("Retry-After", "1".into())],
            body: r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#.into(),
        },
        page(
            0,
            r#"[{"id": 103, "email": null, "verified_email": true, "addresses": [], "note": "vip, \"gold\""}]"#,
            Some("cur2"),
        ),
        page(
            0,
            r#"[{"id": 104, "email": "dan@example.com", "verified_email": true, "addresses": null}]"#,
            None,
        ),
    ]);
    // The Link headers were built with port 0: the plugin takes only the cursor from them, so this also shows
    // that the token is sent to `shop_url` and nowhere else.
    pipeline(
        &project,
        port,
        "resource: customers\nlimit: 2\nfields: [id, email, verified_email, addresses, note]\nmax_retries: 2",
    );
    let o = osiris(
        &project,
        &["-v", "run", "p.yaml"],
        &[("SHOPIFY_TOKEN", TOKEN)],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(project.join("out.csv")).unwrap(),
        "id,email,verified_email,addresses,note\n\
         101,ann@example.com,true,\"[{\"\"city\"\":\"\"Oslo\"\"}]\",\n\
         102,bob@example.com,false,[],\n\
         103,,true,[],\"vip, \"\"gold\"\"\"\n\
         104,dan@example.com,true,,\n"
    );

    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "three pages and one retry: {seen:?}");
        for s in seen.iter() {
            assert_eq!(s.header("x-shopify-access-token"), Some(TOKEN), "{s:?}");
        }
        let fields = "fields=id,email,verified_email,addresses,note";
        assert_eq!(
            seen[0].target,
            format!("/admin/api/2024-07/customers.json?limit=2&{fields}")
        );
        assert_eq!(
            seen[1].target,
            format!("/admin/api/2024-07/customers.json?limit=2&{fields}&page_info=cur1")
        );
        assert_eq!(seen[2].target, seen[1].target, "the 429 is retried");
        assert_eq!(
            seen[3].target,
            format!("/admin/api/2024-07/customers.json?limit=2&{fields}&page_info=cur2")
        );
        let waited = seen[2].at - seen[1].at;
        assert!(
            waited >= Duration::from_millis(950),
            "Retry-After: 1 is honoured: waited {waited:?}"
        );
    }
    assert!(stderr.contains("429"), "the retry is logged: {stderr}");

    let rd = run_dir(&project, "default", "shop");
    let metrics = jsonl(&rd.join("metrics.jsonl"));
    assert!(
        metrics
            .iter()
            .any(|m| m["metric"] == "rows_read" && m["step"] == "customers" && m["value"] == 4),
        "{metrics:?}"
    );
    assert_token_nowhere(&project, &stdout, &stderr);
}

#[test]
fn shopify_plugin_refused_token_is_an_auth_failure_without_the_token() {
    let (_tmp, project) = installed_project();
    // Every request gets the 401 of `serve`: the token sent is not the one it expects.
    let (port, seen) = serve(vec![page(0, "[]", None)]);
    pipeline(&project, port, "resource: orders");
    let wrong = "shpat-wrong-token-0d9e";
    let o = osiris(
        &project,
        &["-v", "run", "p.yaml"],
        &[("SHOPIFY_TOKEN", wrong)],
    );
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("SHOPIFY-AUTH"), "an auth failure: {stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("customers"), "names the step: {stderr}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a refused token is not retried"
    );
    assert_eq!(
        seen.lock().unwrap()[0].target,
        "/admin/api/2024-07/orders.json?limit=250"
    );
    assert!(
        !stdout.contains(wrong) && !stderr.contains(wrong),
        "{stderr}"
    );
    for f in files(&project) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).to_string();
        assert!(!t.contains(wrong), "token in {}", f.display());
    }
    assert!(!project.join("out.csv").exists());
}
