//! `shopify.extractor`, the reference third-party plugin (plugins/shopify): packed with `osiris plugins pack`,
//! installed with `osiris plugins install` into a project's plugin directory, and run through `osiris run`
//! against a local HTTP server that speaks three pages of customers with `Link` headers and one 429.
//!
//! The plugin builds into `$CARGO_TARGET_DIR/shopify` (kept between runs, so reruns are fast).

use crate::support::{
    HttpServer, Reply, code, files, jsonl, osiris, repo_root, run_dir, serve, text,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TOKEN: &str = "shpat-pl4nted-shopify-71c0";

/// Serves `replies` in order (see [`serve`]); a request without the expected token gets a 401 instead of its
/// reply.
fn shop(replies: Vec<Reply>) -> HttpServer {
    serve(replies)
        .check(|r| {
            (r.header("x-shopify-access-token") != Some(TOKEN))
                .then(|| Reply::new(401, r#"{"errors":"[API] Invalid API key or access token"}"#))
        })
        .start()
}

fn page(port: u16, customers: &str, next: Option<&str>) -> Reply {
    let base = format!("http://127.0.0.1:{port}/admin/api/2024-07/customers.json");
    let reply = Reply::ok(format!(r#"{{"customers": {customers}}}"#));
    match next {
        Some(cursor) => reply.header(
            "Link",
            format!(
                "<{base}?limit=2&page_info=prev0>; rel=\"previous\", <{base}?limit=2&page_info={cursor}>; rel=\"next\""
            ),
        ),
        None => reply,
    }
}

/// `osiris plugins pack --manifest-path plugins/shopify --out OUT`, building into `$CARGO_TARGET_DIR/shopify`.
fn pack(cwd: &Path, out: &Path) {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("shopify"),
        None => repo_root().join("target/shopify"),
    };
    let crate_dir = repo_root().join("plugins/shopify");
    let o = osiris(cwd)
        .args(["plugins", "pack", "--manifest-path"])
        .arg(&crate_dir)
        .arg("--out")
        .arg(out)
        .cargo_target_dir(target)
        .output();
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
    let o = osiris(&project)
        .args(["plugins", "install", dist.to_str().unwrap()])
        .output();
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
    let server = shop(vec![
        page(
            0,
            r#"[{"id": 101, "email": "ann@example.com", "verified_email": true, "addresses": [{"city": "Oslo"}]},
                {"id": 102, "email": "bob@example.com", "verified_email": false, "addresses": []}]"#,
            Some("cur1"),
        ),
        Reply::new(429, r#"{"errors":"Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}"#)
            .header("Retry-After", 1),
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
        server.port(),
        "resource: customers\nlimit: 2\nfields: [id, email, verified_email, addresses, note]\nmax_retries: 2",
    );
    let o = osiris(&project)
        .args(["-v", "run", "p.yaml"])
        .env("SHOPIFY_TOKEN", TOKEN)
        .output();
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
        let seen = server.requests();
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
    // Every request gets the 401 of `shop`: the token sent is not the one it expects.
    let server = shop(vec![page(0, "[]", None)]);
    pipeline(&project, server.port(), "resource: orders");
    let wrong = "shpat-wrong-token-0d9e";
    let o = osiris(&project)
        .args(["-v", "run", "p.yaml"])
        .env("SHOPIFY_TOKEN", wrong)
        .output();
    let (stdout, stderr) = text(&o);
    assert_eq!(code(&o), 4, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("SHOPIFY-AUTH"), "an auth failure: {stderr}");
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(stderr.contains("customers"), "names the step: {stderr}");
    assert_eq!(server.requests().len(), 1, "a refused token is not retried");
    assert_eq!(
        server.requests()[0].target,
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
