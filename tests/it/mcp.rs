//! Issue 12, part 2: `osiris mcp` driven as an MCP client drives it: spawn it, `initialize`, `tools/list`,
//! call every tool over stdio (JSON-RPC 2.0, one message a line), a broken pipeline's diagnostics, a run with
//! secrets planted in the connections file, the secrets file, a `${VAR}` substitution and `OSIRIS_CONN__*`
//! (no byte the server writes holds one), and streamable HTTP on loopback only.

use crate::run::{pipeline, project};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tools the issue names, sorted.
const TOOLS: [&str; 11] = [
    "build_context",
    "compile",
    "component_spec",
    "components_list",
    "connections_list",
    "discovery_run",
    "oml_schema",
    "oml_validate",
    "run",
    "runs_list",
    "runs_show",
];

/// A plain JSON-RPC client of a spawned `osiris mcp`. Every byte the server writes (stdout and stderr) is kept
/// for the secret checks.
struct Client {
    child: crate::support::Running,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    next_id: u64,
}

fn osiris_cmd(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> crate::support::Osiris {
    let mut cmd = crate::support::osiris(dir).home(dir).args(args);
    for (k, v) in envs {
        cmd = cmd.env(k, v);
    }
    cmd
}

impl Client {
    fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Client {
        let mut all = vec!["mcp"];
        all.extend_from_slice(args);
        let mut child = osiris_cmd(dir, &all, envs)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = channel();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (out, kept) = (child.stdout.take().unwrap(), stdout.clone());
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut line = String::new();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        kept.lock().unwrap().extend_from_slice(line.as_bytes());
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (mut err, kept) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut c = Client {
            child,
            stdin,
            lines,
            stdout,
            stderr,
            next_id: 1,
        };
        let init = c.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": { "name": "osiris-it", "version": "1" },
            }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "osiris", "{init}");
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        c.send(&json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        c
    }

    fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_string(msg).unwrap();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a request and waits for the response with its id (every line on stdout must be JSON-RPC).
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| {
                    panic!(
                        "no answer to `{method}` ({e}); stderr:\n{}",
                        self.stderr_text()
                    )
                });
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout is not JSON-RPC ({e}): {line:?}"));
            assert_eq!(v["jsonrpc"], "2.0", "{v}");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    /// `tools/call`: the result (`structuredContent`, checked against the text content) and `isError`.
    fn call(&mut self, tool: &str, args: Value) -> (Value, bool) {
        let r = self.request("tools/call", json!({ "name": tool, "arguments": args }));
        let result = &r["result"];
        assert!(
            result.is_object(),
            "`{tool}` answered a JSON-RPC error: {r}"
        );
        let structured = result["structuredContent"].clone();
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Value>(text).ok().as_ref(),
            Some(&structured),
            "`{tool}`: the text content is the structured content"
        );
        (structured, result["isError"] == json!(true))
    }

    fn ok(&mut self, tool: &str, args: Value) -> Value {
        let (v, is_error) = self.call(tool, args);
        assert!(!is_error, "`{tool}` failed: {v}");
        v
    }

    /// A tool error (`isError`, `ok: false`, an exit code).
    fn fail(&mut self, tool: &str, args: Value) -> Value {
        let (v, is_error) = self.call(tool, args);
        assert!(is_error, "`{tool}` should have failed: {v}");
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["exit_code"].as_u64().is_some_and(|c| c > 0), "{v}");
        v
    }

    /// A tool error with its osiris error code.
    fn err(&mut self, tool: &str, args: Value) -> (String, Value) {
        let v = self.fail(tool, args);
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("`{tool}`: the tool error carries an osiris code: {v}"))
            .to_string();
        (code, v)
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).to_string()
    }

    /// Everything the server wrote so far, stdout then stderr.
    fn transcript(&self) -> Vec<u8> {
        let mut all = self.stdout.lock().unwrap().clone();
        all.extend_from_slice(&self.stderr.lock().unwrap());
        all
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CONNECTIONS: &str = "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n";

/// extract (CSV through `@filesystem.local`) -> write (CSV).
fn copy_pipeline(name: &str) -> String {
    format!(
        "oml_version: \"0.1.0\"\nname: {name}\nsteps:\n  - id: extract\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      connection: \"@filesystem.local\"\n      path: orders.csv\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [extract]\n    config:\n      path: out/copy.csv\n"
    )
}

/// Line 6 names a component that does not exist, line 14 a config field the writer does not have, line 16 a
/// step that does not exist.
const BROKEN: &str = "oml_version: \"0.1.0\"
name: broken
steps:
  - id: extract
    mode: read
    component: filesystem.csv_extractr
    config:
      path: data/orders.csv
  - id: write
    component: filesystem.csv_writer
    mode: write
    config:
      path: out/x.csv
      delimeter: \";\"
    needs:
      - nowhere
";

#[test]
fn mcp_lists_its_tools_and_answers_every_one_over_stdio() {
    let p = project(&[
        ("copy.yaml", &copy_pipeline("copy")),
        ("osiris_connections.yaml", CONNECTIONS),
    ]);
    let mut c = Client::start(p.path(), &[], &[]);

    let list = c.request("tools/list", json!({}));
    let mut names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, TOOLS, "{list}");
    for t in list["result"]["tools"].as_array().unwrap() {
        assert!(
            t["description"].as_str().is_some_and(|d| d.len() > 40),
            "{t}"
        );
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
    }

    // The catalogue, a spec, the schema and the context: in-process, from the registry.
    let comps = c.ok("components_list", json!({}));
    let names: Vec<&str> = comps["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"filesystem.csv_extractor"), "{comps}");
    assert!(names.contains(&"duckdb.processor"), "{comps}");
    let writers = c.ok("components_list", json!({ "mode": "write" }));
    assert!(
        writers["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["modes"].as_array().unwrap().contains(&json!("write"))),
        "{writers}"
    );
    let spec = c.ok("component_spec", json!({ "name": "filesystem.csv_writer" }));
    assert_eq!(spec["spec"]["name"], "filesystem.csv_writer");
    assert!(
        spec["spec"]["configSchema"]["properties"]["path"].is_object(),
        "{spec}"
    );
    let (code, e) = c.err("component_spec", json!({ "name": "filesystem.csv_writr" }));
    assert!(
        code.starts_with("OML-E") || code.starts_with("CLI-E"),
        "{e}"
    );
    assert!(
        e["error"]["help"]
            .as_str()
            .is_some_and(|h| h.contains("filesystem.csv_writer")),
        "did-you-mean: {e}"
    );
    let schema = c.ok("oml_schema", json!({}));
    assert_eq!(schema["required"], json!(["oml_version", "name", "steps"]));
    let step = &schema["$defs"]["step"];
    assert!(
        step["properties"]["component"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("filesystem.csv_extractor")),
        "{step}"
    );
    assert!(
        step["allOf"].as_array().unwrap().iter().any(
            |c| c["if"]["properties"]["component"]["const"] == "filesystem.csv_writer"
                && c["then"]["properties"]["config"]["properties"]["path"].is_object()
        ),
        "per-component config schemas: {step}"
    );
    let ctx = c.ok(
        "build_context",
        json!({ "components": ["filesystem.csv_extractor", "filesystem.csv_writer"] }),
    );
    assert_eq!(
        ctx["components"],
        json!(["filesystem.csv_extractor", "filesystem.csv_writer"]),
        "{ctx}"
    );
    assert!(ctx["tokens"].as_u64().unwrap() > 0, "{ctx}");
    assert!(
        ctx["text"]
            .as_str()
            .unwrap()
            .contains("filesystem.csv_writer"),
        "{ctx}"
    );
    assert!(ctx["context"]["rules"].is_array(), "{ctx}");

    // Validation: a valid pipeline, and a broken one with every diagnostic located.
    let v = c.ok("oml_validate", json!({ "oml": copy_pipeline("copy") }));
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["errors"], 0, "{v}");
    let v = c.ok(
        "oml_validate",
        json!({ "oml": BROKEN, "file": "broken.yaml" }),
    );
    assert_eq!(v["ok"], false, "{v}");
    let diags = v["diagnostics"].as_array().unwrap();
    assert_eq!(
        v["errors"].as_u64().unwrap() as usize,
        diags.iter().filter(|d| d["severity"] == "error").count()
    );
    for d in diags {
        for key in ["code", "line", "column", "pointer", "help", "message"] {
            assert!(d.get(key).is_some(), "`{key}` in every diagnostic: {d}");
        }
        assert_eq!(d["file"], "broken.yaml", "{d}");
    }
    let at = |code: &str| -> &Value {
        diags
            .iter()
            .find(|d| d["code"] == code)
            .unwrap_or_else(|| panic!("{code} in {v}"))
    };
    let unknown = at("OML-E104");
    assert_eq!(
        (unknown["line"].as_u64(), unknown["column"].as_u64()),
        (Some(6), Some(16)),
        "{unknown}"
    );
    assert_eq!(unknown["pointer"], "/steps/0/component");
    assert!(
        unknown["help"]
            .as_str()
            .unwrap()
            .contains("filesystem.csv_extractor"),
        "{unknown}"
    );
    assert!(
        diags
            .iter()
            .any(|d| d["line"] == 14 && d["pointer"] == "/steps/1/config/delimeter"),
        "the misspelt config field, at its line: {v}"
    );
    assert!(
        diags
            .iter()
            .any(|d| d["line"] == 16 && d["message"].as_str().unwrap().contains("nowhere")),
        "the unknown upstream step, at its line: {v}"
    );

    // Compile: a path inside the project, OML text, a broken pipeline, paths that are refused.
    let compiled = c.ok("compile", json!({ "path": "copy.yaml" }));
    assert_eq!(compiled["ok"], true, "{compiled}");
    let hash = compiled["manifest_hash"].as_str().unwrap();
    let dir = compiled["dir"].as_str().unwrap();
    assert!(
        p.path().join(dir).join("manifest.yaml").is_file(),
        "{compiled}"
    );
    let again = c.ok("compile", json!({ "oml": copy_pipeline("copy") }));
    assert_eq!(
        again["manifest_hash"], hash,
        "the same pipeline, the same manifest"
    );
    let saved = again["pipeline_file"].as_str().unwrap();
    assert!(saved.starts_with(".osiris/mcp/pipelines/oml-"), "{again}");
    assert_eq!(
        std::fs::read_to_string(p.path().join(saved)).unwrap(),
        copy_pipeline("copy")
    );
    let (code, e) = c.err("compile", json!({ "oml": BROKEN }));
    assert_eq!(code, "OML-E104", "the first error's code: {e}");
    assert_eq!(e["exit_code"], 2, "{e}");
    let d = e["result"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "OML-E104")
        .expect("diagnostics");
    assert_eq!(d["line"], 6, "{e}");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.yaml"), copy_pipeline("x")).unwrap();
    for refused in [
        outside.path().join("x.yaml").display().to_string(),
        "../x.yaml".to_string(),
        "osiris_connections.yaml".to_string(),
        "osiris.yaml".to_string(),
        "no-such.yaml".to_string(),
    ] {
        let (code, e) = c.err("compile", json!({ "path": refused }));
        assert_eq!(code, "MCP-E003", "{refused}: {e}");
    }
    let (code, _) = c.err("compile", json!({}));
    assert_eq!(code, "MCP-E003");

    // Run: refused without confirm, a dry run, a real run.
    let (code, e) = c.err("run", json!({ "path": "copy.yaml" }));
    assert_eq!(code, "MCP-E004", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("confirm"),
        "{e}"
    );
    assert!(!p.path().join("out/copy.csv").exists(), "nothing ran");
    let dry = c.ok("run", json!({ "path": "copy.yaml", "dry_run": true }));
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["steps"][0]["connection"], "@filesystem.local", "{dry}");
    assert!(
        !p.path().join("out/copy.csv").exists(),
        "a dry run writes nothing"
    );
    let ran = c.ok("run", json!({ "path": "copy.yaml", "confirm": true }));
    assert_eq!(ran["status"], "succeeded", "{ran}");
    assert_eq!(ran["rows_written"], 20, "{ran}");
    assert_eq!(
        std::fs::read_to_string(p.path().join("out/copy.csv"))
            .unwrap()
            .lines()
            .count(),
        21
    );
    let run_id = ran["run_id"].as_str().unwrap().to_string();

    // Past runs.
    let runs = c.ok("runs_list", json!({}));
    assert_eq!(runs["runs"][0]["run_id"], run_id.as_str(), "{runs}");
    let none = c.ok("runs_list", json!({ "status": "failed" }));
    assert_eq!(none["runs"], json!([]), "{none}");
    let (code, _) = c.err("runs_list", json!({ "status": "done" }));
    assert_eq!(code, "MCP-E009");
    let shown = c.ok("runs_show", json!({ "run_id": &run_id[..8] }));
    assert_eq!(shown["run_id"], run_id.as_str(), "a unique prefix: {shown}");
    assert_eq!(shown["status"], "succeeded");
    assert_eq!(shown["steps"].as_array().unwrap().len(), 2, "{shown}");
    assert!(
        shown["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with("status.json")),
        "{shown}"
    );
    let (code, _) = c.err("runs_show", json!({ "run_id": "run-000000000000" }));
    assert_eq!(code, "RUN-E007");

    // Connections: names, never values.
    let conns = c.ok("connections_list", json!({}));
    assert_eq!(
        conns,
        json!({ "connections": [{
            "family": "filesystem", "alias": "local", "reference": "@filesystem.local",
            "default": true, "ready": true, "missing_env": [], "fields": ["base_dir"],
        }]}),
    );

    // Discovery: schema only; samples refused while the project does not allow them.
    let d = c.ok("discovery_run", json!({ "reference": "@filesystem.local" }));
    assert_eq!(d["connection"], "@filesystem.local", "{d}");
    let text = d.to_string();
    assert!(
        text.contains("orders.csv") && text.contains("customer"),
        "{d}"
    );
    assert!(!text.contains("acme"), "no row data: {d}");
    let (code, e) = c.err(
        "discovery_run",
        json!({ "reference": "@filesystem.local", "samples": 2 }),
    );
    assert_eq!(code, "MCP-E005", "{e}");
    assert!(
        e["error"]["help"].as_str().unwrap().contains("llm_samples"),
        "{e}"
    );
    let (code, _) = c.err("discovery_run", json!({ "reference": "--help" }));
    assert_eq!(code, "MCP-E009");
    let (code, _) = c.err("oml_validate", json!({ "oml": BROKEN, "mode": "loose" }));
    assert_eq!(code, "MCP-E009");
    // Resolving a connection that does not exist fails in the child (exit 5; this message has no code).
    let e = c.fail("discovery_run", json!({ "reference": "@mysql.nowhere" }));
    assert_eq!(e["exit_code"], 5, "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("`mysql`"),
        "{e}"
    );

    // With `discovery.llm_samples: true` the rows come back when asked for.
    std::fs::write(
        p.path().join("osiris.yaml"),
        "run:\n  logs_dir: run_logs\ndiscovery:\n  llm_samples: true\n",
    )
    .unwrap();
    let d = c.ok(
        "discovery_run",
        json!({ "reference": "@filesystem.local", "samples": 2, "refresh": true }),
    );
    assert!(d.to_string().contains("acme"), "sample rows: {d}");
    let d = c.ok("discovery_run", json!({ "reference": "@filesystem.local" }));
    assert!(
        !d.to_string().contains("acme"),
        "no samples unless asked: {d}"
    );

    // Still alive after every error above, and stdout carried JSON-RPC only.
    let list = c.request("tools/list", json!({}));
    assert_eq!(
        list["result"]["tools"].as_array().unwrap().len(),
        TOOLS.len()
    );
    let stdout = String::from_utf8(c.stdout.lock().unwrap().clone()).unwrap();
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
    }
}

#[test]
fn mcp_never_returns_a_planted_secret() {
    const IN_FILE: &str = "mcp-pl4nted-in-connections-file-6b1d";
    const IN_ENV_VAR: &str = "mcp-pl4nted-via-env-substitution-0e92";
    const IN_SECRETS_FILE: &str = "mcp-pl4nted-in-secrets-file-c3a7";
    const IN_CONN_ENV: &str = "mcp-pl4nted-in-osiris-conn-env-58f0";
    const IN_DOTENV: &str = "mcp-pl4nted-in-dotenv-a91c";
    let all = [IN_FILE, IN_ENV_VAR, IN_SECRETS_FILE, IN_CONN_ENV, IN_DOTENV];
    // The failing query quotes every secret, so DuckDB's error (with its `LINE 1:` excerpt) carries them all
    // into the child's output before osiris masks them.
    let query = format!(
        "SELECT no_such_column, '{IN_FILE}', '{IN_ENV_VAR}', '{IN_SECRETS_FILE}', '{IN_CONN_ENV}', '{IN_DOTENV}' FROM df"
    );
    let p = project(&[
        (
            "leaky.yaml",
            &pipeline(
                "leaky",
                "      connection: \"@filesystem.local\"\n      path: orders.csv",
                &query,
            ),
        ),
        ("copy.yaml", &copy_pipeline("copy")),
        (
            "osiris_connections.yaml",
            &format!(
                "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      default: true\n      base_dir: data\n      password: {IN_FILE}\n      api_token: ${{OSIRIS_IT_PLANTED}}\n      client_secret: ${{DOTENV_PLANTED}}\n"
            ),
        ),
        (
            "secrets.yaml",
            &format!(
                "version: \"1.0\"\nconnections:\n  filesystem:\n    local:\n      secret: {IN_SECRETS_FILE}\n"
            ),
        ),
        (".env", &format!("DOTENV_PLANTED={IN_DOTENV}\n")),
    ]);
    let mut c = Client::start(
        p.path(),
        &["--secrets-file", "secrets.yaml"],
        &[
            ("OSIRIS_IT_PLANTED", IN_ENV_VAR),
            ("OSIRIS_CONN__FILESYSTEM__LOCAL__DB_PASSWORD", IN_CONN_ENV),
        ],
    );

    // The run fails in DuckDB, whose error quoted every secret: masked before it reaches the client.
    let (code, e) = c.err("run", json!({ "path": "leaky.yaml", "confirm": true }));
    assert!(code.starts_with("RUN-E"), "a run error's code: {e}");
    assert_eq!(e["exit_code"], 4, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("no_such_column") && text.contains("***"),
        "the masked error: {e}"
    );
    let run_id = e["result"]["run_id"]
        .as_str()
        .expect("the failed run's summary")
        .to_string();
    // The same through OML text, a dry run and the other tools that touch connections or runs.
    let oml = std::fs::read_to_string(p.path().join("leaky.yaml")).unwrap();
    c.fail("run", json!({ "oml": oml, "confirm": true }));
    c.ok("run", json!({ "path": "copy.yaml", "dry_run": true }));
    c.ok("run", json!({ "path": "copy.yaml", "confirm": true }));
    c.ok("compile", json!({ "path": "leaky.yaml" }));
    c.ok("oml_validate", json!({ "oml": oml }));
    let shown = c.ok("runs_show", json!({ "run_id": run_id }));
    assert_eq!(shown["status"], "failed", "{shown}");
    c.ok("runs_list", json!({}));
    let conns = c.ok("connections_list", json!({}));
    let mut fields: Vec<&str> = conns["connections"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "api_token",
            "base_dir",
            "client_secret",
            "db_password",
            "password",
            "secret"
        ],
        "every field by name, from every source: {conns}"
    );
    c.ok("discovery_run", json!({ "reference": "@filesystem.local" }));
    c.ok("build_context", json!({}));
    // The secrets file and .env cannot be handed to the compiler as a pipeline either.
    for f in ["secrets.yaml", ".env", "osiris_connections.yaml"] {
        let (code, _) = c.err("compile", json!({ "path": f }));
        assert_eq!(code, "MCP-E003", "{f}");
    }

    let transcript = c.transcript();
    let seen = String::from_utf8_lossy(&transcript);
    assert!(seen.len() > 10_000, "the transcript holds every answer");
    for s in all {
        assert!(
            !transcript.windows(s.len()).any(|w| w == s.as_bytes()),
            "{s} in what the MCP server wrote:\n{seen}"
        );
    }
}

/// One HTTP/1.1 POST of a JSON-RPC message to the server at `port`: status and body.
fn post(port: u16, host: &str, body: &Value) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

#[test]
fn mcp_http_serves_loopback_only() {
    let p = project(&[("copy.yaml", &copy_pipeline("copy"))]);
    for addr in [
        "0.0.0.0:0",
        "192.0.2.1:8765",
        "[::]:0",
        "example.invalid:80",
    ] {
        let o = osiris_cmd(p.path(), &["mcp", "--http", addr], &[])
            .stdin(Stdio::null())
            .output();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{addr}: {stderr}");
        assert!(stderr.contains("error[MCP-E001]"), "{addr}: {stderr}");
        assert!(stderr.contains("127.0.0.1"), "the fix: {stderr}");
    }

    let mut child = osiris_cmd(p.path(), &["mcp", "--http", "127.0.0.1:0"], &[])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    struct Kill(crate::support::Running);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut server = Kill(child);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("osiris mcp: listening on http://127.0.0.1:")
        .and_then(|r| r.strip_suffix("/mcp"))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the address on stderr: {line:?}"));

    let host = format!("127.0.0.1:{port}");
    let (status, body) = post(
        port,
        &host,
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "osiris-it", "version": "1" } } }),
    );
    assert_eq!(status, 200, "{body}");
    let init: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "osiris", "{init}");
    let (status, body) = post(
        port,
        &host,
        &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
    );
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let mut names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, TOOLS);
    let (status, body) = post(
        port,
        &host,
        &json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "oml_validate", "arguments": { "oml": BROKEN } } }),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let diags = &v["result"]["structuredContent"]["diagnostics"];
    assert!(
        diags
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["code"] == "OML-E104" && d["line"] == 6),
        "{v}"
    );
    // A page on another site that resolves its name to 127.0.0.1 is refused (DNS rebinding).
    let (status, _) = post(
        port,
        "attacker.example",
        &json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list" }),
    );
    assert_eq!(status, 403);
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "the server is still up"
    );
}
