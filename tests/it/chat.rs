//! `osiris chat` (issue 12, part 3) through the binary against a scripted model server on 127.0.0.1: each test
//! starts a small thread-per-connection HTTP server that answers requests in the order they arrive with the
//! replies it was given (OpenAI Chat Completions or Anthropic Messages), and records every request (path,
//! headers, body, time) for the assertions. Nothing leaves the machine.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-9f8e7d6c5b4a-never-printed";
/// A literal secret in the project's connections file and one in the secrets file.
const PLANTED: &str = "PLANTED-conn-s3cret-4711";
const PLANTED_FILE: &str = "PLANTED-file-s3cret-0815";
/// The value of `${BACKUP_KEY}`, which the connections file references.
const PLANTED_ENV: &str = "PLANTED-env-s3cret-2342";

/// One scripted answer.
#[derive(Clone)]
enum Reply {
    /// HTTP 200 with the model's text in the provider's shape.
    Text(String),
    /// Any status, extra headers and a raw body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Waits, then answers.
    After(Duration, Box<Reply>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    at: Instant,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("the request body is JSON")
    }
}

/// The scripted model server; stops when dropped.
struct FakeLlm {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl FakeLlm {
    fn start(api: Api, script: Vec<Reply>) -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (reqs, flag) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (reqs, script) = (reqs.clone(), script.clone());
                std::thread::spawn(move || serve(conn, api, &reqs, &script));
            }
        });
        FakeLlm {
            addr,
            requests,
            stop,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, api: Api, reqs: &Mutex<Vec<Request>>, script: &Mutex<VecDeque<Reply>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // the wake-up connection of Drop
    }
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    reqs.lock().unwrap().push(Request {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let reply = script.lock().unwrap().pop_front().unwrap_or_else(|| {
        Reply::Status(500, vec![], "the test script has no more replies".into())
    });
    respond(conn, api, reply);
}

fn respond(mut conn: TcpStream, api: Api, reply: Reply) {
    let (status, extra, body) = match reply {
        Reply::After(d, r) => {
            std::thread::sleep(d);
            return respond(conn, api, *r);
        }
        Reply::Text(t) => {
            let body = match api {
                Api::OpenAi => serde_json::json!({
                    "id": "chatcmpl-test", "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}],
                }),
                Api::Anthropic => serde_json::json!({
                    "id": "msg_test", "type": "message", "role": "assistant",
                    "content": [{"type": "text", "text": t}], "stop_reason": "end_turn",
                }),
            };
            (200, vec![], body.to_string())
        }
        Reply::Status(s, h, b) => (s, h, b),
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body.as_bytes());
    let _ = conn.flush();
}

/// A scratch project with connections holding planted literal secrets (as a careless user might write them).
struct Project {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::write(root.join("osiris.yaml"), "").unwrap();
        std::fs::write(
            root.join("osiris_connections.yaml"),
            format!(
                "version: \"1.0\"\nconnections:\n  supabase:\n    main:\n      default: true\n      url: https://abcdefgh.supabase.co\n      service_role_key: {PLANTED}\n      password: {PLANTED}\n    backup:\n      url: https://ijklmnop.supabase.co\n      service_role_key: \"${{BACKUP_KEY}}\"\n  mysql:\n    default:\n      host: 127.0.0.1\n      user: root\n      password: {PLANTED}\n      database: shop\n  filesystem:\n    local:\n      default: true\n      base_dir: .\n"
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("secrets.yaml"),
            format!("connections:\n  supabase:\n    backup:\n      password: {PLANTED_FILE}\n"),
        )
        .unwrap();
        Project { _tmp: tmp, root }
    }

    /// `osiris ARGS` in the project: no inherited `OSIRIS_*`, the model settings for `llm` (if any).
    fn osiris(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = crate::support::osiris(&self.root)
            .home(&self.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .env("BACKUP_KEY", PLANTED_ENV);
        for (k, v) in env {
            cmd = cmd.env(k, v);
        }
        cmd.output()
    }

    /// `osiris chat --prompt PROMPT --out OUT EXTRA...` against `llm`.
    fn chat(
        &self,
        llm: &FakeLlm,
        prompt: &str,
        out: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let base = llm.base_url();
        let mut all_env = vec![
            ("OSIRIS_LLM_BASE_URL", base.as_str()),
            ("OSIRIS_LLM_MODEL", "test-model"),
            ("OSIRIS_LLM_API_KEY", KEY),
        ];
        all_env.extend_from_slice(env);
        let mut args = vec![
            "chat",
            "--prompt",
            prompt,
            "--out",
            out,
            "--secrets-file",
            "secrets.yaml",
        ];
        args.extend_from_slice(extra);
        self.osiris(&args, &all_env)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

fn fenced(yaml: &str) -> String {
    format!("Here is the pipeline:\n\n```yaml\n{yaml}```\n\nIt reads the table and writes it.")
}

/// The key and the planted secrets appear in no output and no request body; the key travels only in its header.
fn assert_private(o: &Output, llm: &FakeLlm) {
    for s in [KEY, PLANTED, PLANTED_FILE, PLANTED_ENV] {
        assert!(!stdout(o).contains(s), "`{s}` on stdout:\n{}", show(o));
        assert!(!stderr(o).contains(s), "`{s}` on stderr:\n{}", show(o));
        for r in llm.requests() {
            assert!(!r.body.contains(s), "`{s}` in a request body: {}", r.body);
            assert!(!r.path.contains(s));
        }
    }
}

/// Every file under `dir` (recursively) is free of `needle`.
fn assert_no_file_contains(dir: &Path, needle: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_no_file_contains(&p, needle);
        } else if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(needle),
                "`{needle}` in {}",
                p.display()
            );
        }
    }
}

fn messages(r: &Request) -> Vec<serde_json::Value> {
    r.json()["messages"].as_array().cloned().unwrap_or_default()
}

const BAD: &str = r#"oml_version: "0.1.0"
name: copy-users
steps:
  - id: read-users
    component: supabase.extractor
    mode: read
    config:
      connection: "@supabase.main"
      table: users
      colour: blue
  - id: write-users
    component: supabase.wrtier
    mode: write
    config:
      connection: "@supabase.backup"
      table: users
"#;

const GOOD: &str = r#"oml_version: "0.1.0"
name: copy-users
steps:
  - id: read-users
    component: supabase.extractor
    mode: read
    config:
      connection: "@supabase.main"
      table: users
  - id: write-users
    component: supabase.writer
    mode: write
    config:
      connection: "@supabase.backup"
      table: users
"#;

/// Issue 12: a first reply with an unknown field and a wrong component name, a second valid one: the valid
/// pipeline is saved, the second request carries the first reply's diagnostics, and nothing secret is sent.
#[test]
fn chat_repairs_with_the_diagnostics_and_saves_the_valid_pipeline() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![Reply::Text(fenced(BAD)), Reply::Text(fenced(GOOD))],
    );
    let out = p.chat(
        &llm,
        "copy the users table from @supabase.main to @supabase.backup",
        "copy.yaml",
        &[],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(p.path("copy.yaml")).unwrap(), GOOD);
    assert_eq!(stdout(&out), GOOD, "the final pipeline on stdout");
    let err = stderr(&out);
    assert!(err.contains("attempt 1/3: 2 errors"), "{err}");
    assert!(
        err.contains("OML-E104") && err.contains("supabase.wrtier"),
        "{err}"
    );
    assert!(err.contains("colour"), "{err}");
    assert!(err.contains("attempt 2/3: valid"), "{err}");

    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(r.json()["model"], "test-model");
    }
    let first = messages(&reqs[0]);
    assert_eq!(first.len(), 2, "system and the prompt");
    assert_eq!(first[0]["role"], "system");
    let system = first[0]["content"].as_str().unwrap();
    assert!(
        system.contains("supabase.writer mode write"),
        "the context is in the system prompt"
    );
    assert!(
        system.contains("@supabase.main")
            && system.contains("@supabase.backup")
            && system.contains("@mysql.default"),
        "connection names are sent: {system}"
    );
    assert!(
        !system.contains("abcdefgh.supabase.co"),
        "connection fields are not sent"
    );
    assert_eq!(
        first[1]["content"],
        "copy the users table from @supabase.main to @supabase.backup"
    );
    let second = messages(&reqs[1]);
    assert_eq!(second.len(), 4, "system, prompt, first reply, diagnostics");
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["content"], fenced(BAD));
    let repair = second[3]["content"].as_str().unwrap();
    assert_eq!(second[3]["role"], "user");
    for part in [
        "OML-E104",
        "`supabase.wrtier`",
        "did you mean `supabase.writer`",
        "colour",
        "copy.yaml:12:16",
    ] {
        assert!(
            repair.contains(part),
            "the repair request should carry `{part}`:\n{repair}"
        );
    }
    assert_private(&out, &llm);

    let compiled = p.osiris(&["compile", "copy.yaml"], &[]);
    assert_eq!(compiled.status.code(), Some(0), "{}", show(&compiled));
    // the context chat sent is the project's cached one
    let ctx = p.osiris(&["prompts", "build-context"], &[]);
    assert!(stderr(&ctx).contains("cache hit"), "{}", show(&ctx));
}

/// Issue 12: a model that never gets it right ends with exit 2, every attempt's errors, and nothing saved.
#[test]
fn chat_that_never_validates_exits_2_with_every_attempts_errors() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![
            Reply::Text(fenced(BAD)),
            Reply::Text("Sorry, I am not sure what you mean.".into()),
            Reply::Text(fenced(BAD)),
        ],
    );
    // secrets typed into the prompt (a literal of the connections file, a `${VAR}` value) go out masked
    let prompt = format!("copy users; the keys are {PLANTED} and {PLANTED_ENV}");
    let out = p.chat(&llm, &prompt, "copy.yaml", &["--max-attempts", "3"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert_eq!(
        messages(&llm.requests()[0])[1]["content"],
        "copy users; the keys are *** and ***"
    );
    assert!(!p.path("copy.yaml").exists(), "nothing saved");
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    for part in [
        "attempt 1/3: 2 errors",
        "attempt 2/3: 1 error",
        "LLM-E002",
        "attempt 3/3: 2 errors",
        "LLM-E003",
    ] {
        assert!(err.contains(part), "`{part}` in:\n{err}");
    }
    assert_eq!(err.matches("OML-E104").count(), 2, "{err}");
    assert_eq!(llm.requests().len(), 3, "bounded by --max-attempts");
    let last = messages(&llm.requests()[2]);
    assert_eq!(
        last.len(),
        6,
        "system, prompt, reply, repair, reply, repair"
    );
    assert!(
        last[5]["content"]
            .as_str()
            .unwrap()
            .contains("holds no pipeline")
    );
    assert_private(&out, &llm);
}

/// Issue 12 acceptance, with scripted model replies standing in for a real model: the three guided prompts
/// each end in a pipeline that validates and compiles with no manual edit.
#[test]
fn guided_prompts_end_in_pipelines_that_validate_and_compile() {
    let append = GOOD.replace("copy-users", "supabase-copy-append");
    let merge_missing_key = r#"oml_version: "0.1.0"
name: supabase-copy-merge
steps:
  - id: extract
    component: supabase.extractor
    mode: read
    config:
      connection: "@supabase.main"
      table: customers
  - id: merge
    component: supabase.writer
    mode: write
    config:
      connection: "@supabase.backup"
      table: customers
      write_mode: merge
"#;
    let merge = format!("{merge_missing_key}      primary_key: id\n");
    let mysql = r#"oml_version: "0.1.0"
name: mysql-to-supabase
steps:
  - id: extract_orders
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      table: orders
  - id: load_orders
    component: supabase.writer
    mode: write
    needs: [extract_orders]
    config:
      connection: "@supabase.main"
      table: orders
      write_mode: merge
      primary_key: id
"#;
    let cases: Vec<(&str, Vec<Reply>, String, usize)> = vec![
        (
            "copy a Supabase table to another Supabase table (append)",
            vec![Reply::Text(fenced(&append))],
            append.clone(),
            1,
        ),
        (
            "copy a Supabase table to another Supabase table (merge on id)",
            // the model forgets the key merge needs; the diagnostics make it add it
            vec![
                Reply::Text(fenced(merge_missing_key)),
                Reply::Text(fenced(&merge)),
            ],
            merge.clone(),
            2,
        ),
        (
            "MySQL table into Supabase, merge on id",
            vec![Reply::Text(mysql.to_string())], // plain YAML, no fence
            mysql.to_string(),
            1,
        ),
    ];
    for (i, (prompt, script, expected, requests)) in cases.into_iter().enumerate() {
        let p = Project::new();
        let llm = FakeLlm::start(Api::OpenAi, script);
        let file = format!("guided{i}.yaml");
        let out = p.chat(&llm, prompt, &file, &[], &[]);
        assert_eq!(out.status.code(), Some(0), "{prompt}: {}", show(&out));
        assert_eq!(
            std::fs::read_to_string(p.path(&file)).unwrap(),
            expected,
            "{prompt}"
        );
        assert_eq!(llm.requests().len(), requests, "{prompt}");
        if requests == 2 {
            let repair = messages(&llm.requests()[1])[3]["content"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(repair.contains("primary_key"), "{repair}");
        }
        assert_private(&out, &llm);
        let v = p.osiris(&["oml", "validate", &file], &[]);
        assert_eq!(v.status.code(), Some(0), "{prompt}: {}", show(&v));
        let c = p.osiris(&["compile", &file], &[]);
        assert_eq!(c.status.code(), Some(0), "{prompt}: {}", show(&c));
        assert_no_file_contains(&p.path("build"), PLANTED);
    }
}

/// HTTP 429 with `Retry-After` is waited out (at least the seconds it names), a 5xx is retried, and the key is
/// never printed in the retry warnings.
#[test]
fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![
            Reply::Status(
                429,
                vec![("Retry-After", "1".into())],
                r#"{"error":{"message":"rate limited"}}"#.into(),
            ),
            Reply::Status(503, vec![], r#"{"error":{"message":"overloaded"}}"#.into()),
            Reply::Text(fenced(GOOD)),
        ],
    );
    let out = p.chat(
        &llm,
        "copy users",
        "copy.yaml",
        &[],
        &[("OSIRIS_LLM_MAX_RETRIES", "3")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 3);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
    assert_eq!(reqs[0].body, reqs[2].body, "a retry sends the same request");
    let err = stderr(&out);
    assert!(
        err.contains("HTTP 429") && err.contains("retry 1/3 in 1.0s"),
        "{err}"
    );
    assert!(
        err.contains("HTTP 503") && err.contains("retry 2/3"),
        "{err}"
    );
    assert_private(&out, &llm);
}

/// A request that takes longer than the timeout is retried; retries are bounded and end in a clear error
/// (exit 4, the endpoint named, the key not).
#[test]
fn timeouts_are_retried_and_retries_are_bounded() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![
            Reply::After(Duration::from_secs(3), Box::new(Reply::Text(fenced(GOOD)))),
            Reply::Text(fenced(GOOD)),
        ],
    );
    let out = p.chat(
        &llm,
        "copy users",
        "copy.yaml",
        &[],
        &[("OSIRIS_LLM_TIMEOUT_SECONDS", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(stderr(&out).contains("timed out"), "{}", show(&out));
    assert_eq!(llm.requests().len(), 2);

    let p = Project::new();
    let down = FakeLlm::start(
        Api::OpenAi,
        vec![
            Reply::Status(
                500,
                vec![],
                format!("internal error, your key {KEY} is fine"),
            ),
            Reply::Status(502, vec![], String::new()),
        ],
    );
    let out = p.chat(
        &down,
        "copy users",
        "copy.yaml",
        &[],
        &[("OSIRIS_LLM_MAX_RETRIES", "1")],
    );
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("LLM-E020") && err.contains("2 attempt(s)") && err.contains(&down.base_url()),
        "{err}"
    );
    assert_eq!(down.requests().len(), 2);
    assert!(!p.path("copy.yaml").exists());
    assert_private(&out, &down);
}

/// A refused key is a configuration error (exit 5), and a key the server echoes back is masked.
#[test]
fn a_refused_key_exits_5_and_an_echoed_key_is_masked() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![Reply::Status(
            401,
            vec![],
            format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#),
        )],
    );
    let out = p.chat(&llm, "copy users", "copy.yaml", &[], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("LLM-E021") && err.contains("HTTP 401") && err.contains("OSIRIS_LLM_API_KEY"),
        "{err}"
    );
    assert!(err.contains("Incorrect API key provided: ***"), "{err}");
    assert_eq!(
        llm.requests().len(),
        1,
        "an authentication failure is not retried"
    );
    assert_private(&out, &llm);
}

/// Issue 12: a missing endpoint or key is exit 5 naming the variable to set, before anything is sent.
#[test]
fn missing_endpoint_or_key_exits_5_naming_the_variable() {
    let p = Project::new();
    let out = p.osiris(
        &["chat", "--prompt", "x", "--out", "x.yaml"],
        &[("OSIRIS_LLM_MODEL", "m")],
    );
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert!(
        stderr(&out).contains("LLM-E010") && stderr(&out).contains("OSIRIS_LLM_BASE_URL"),
        "{}",
        show(&out)
    );

    let out = p.osiris(
        &["chat", "--prompt", "x", "--out", "x.yaml"],
        &[
            ("OSIRIS_LLM_BASE_URL", "https://api.openai.com/v1"),
            ("OSIRIS_LLM_MODEL", "m"),
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert!(
        stderr(&out).contains("LLM-E012") && stderr(&out).contains("OSIRIS_LLM_API_KEY"),
        "{}",
        show(&out)
    );

    // osiris.yaml names the variable; a literal key there is refused and never echoed
    std::fs::write(
        p.path("osiris.yaml"),
        "llm:\n  base_url: https://api.openai.com/v1\n  model: m\n  api_key: sk-literal-in-yaml-123\n",
    )
    .unwrap();
    let out = p.osiris(&["chat", "--prompt", "x", "--out", "x.yaml"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert!(stderr(&out).contains("LLM-E013"), "{}", show(&out));
    assert!(
        !stderr(&out).contains("sk-literal-in-yaml-123")
            && !stdout(&out).contains("sk-literal-in-yaml-123")
    );
    assert!(!p.path("x.yaml").exists());
}

/// The `llm:` section of osiris.yaml with the key by environment reference, and the Anthropic Messages API.
#[test]
fn anthropic_messages_configured_in_osiris_yaml() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::Anthropic,
        vec![Reply::Text(fenced(BAD)), Reply::Text(fenced(GOOD))],
    );
    std::fs::write(
        p.path("osiris.yaml"),
        format!(
            "llm:\n  provider: anthropic\n  base_url: {}\n  model: claude-test\n  api_key: \"${{MY_ANTHROPIC_KEY}}\"\n",
            llm.base_url()
        ),
    )
    .unwrap();
    let out = p.osiris(
        &[
            "chat",
            "--prompt",
            "copy users",
            "--out",
            "copy.yaml",
            "--secrets-file",
            "secrets.yaml",
        ],
        &[("MY_ANTHROPIC_KEY", KEY)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    let r = &reqs[1];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert!(r.header("authorization").is_none());
    let body = r.json();
    assert_eq!(body["model"], "claude-test");
    assert!(body["system"].as_str().unwrap().contains("supabase.writer"));
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(
        msgs.len(),
        3,
        "prompt, first reply, diagnostics (the system prompt is apart)"
    );
    assert!(msgs[2]["content"].as_str().unwrap().contains("OML-E104"));
    assert_eq!(std::fs::read_to_string(p.path("copy.yaml")).unwrap(), GOOD);
    assert_private(&out, &llm);
}

/// `--run` compiles and runs the saved pipeline; no run file holds the key; `--format json` reports attempts.
#[test]
fn run_flag_runs_the_saved_pipeline_and_no_run_file_holds_the_key() {
    let p = Project::new();
    std::fs::write(p.path("in.csv"), "id,name\n1,ada\n2,grace\n").unwrap();
    let csv = r#"oml_version: "0.1.0"
name: csv-copy
steps:
  - id: read
    component: filesystem.csv_extractor
    mode: read
    config:
      connection: "@filesystem.local"
      path: in.csv
  - id: write
    component: filesystem.csv_writer
    mode: write
    config:
      connection: "@filesystem.local"
      path: out.csv
"#;
    let llm = FakeLlm::start(Api::OpenAi, vec![Reply::Text(fenced(csv))]);
    let out = p.chat(
        &llm,
        "copy in.csv to out.csv",
        "csv.yaml",
        &["--run", "--format", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let first_line = stdout(&out).lines().next().unwrap_or_default().to_string();
    let v: serde_json::Value =
        serde_json::from_str(&first_line).unwrap_or_else(|e| panic!("{e}: {}", show(&out)));
    assert_eq!(v["ok"], true);
    assert_eq!(v["file"], "csv.yaml");
    assert_eq!(v["pipeline"], csv);
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
    assert!(v["attempts"][0]["check_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        std::fs::read_to_string(p.path("out.csv")).unwrap(),
        "id,name\n1,ada\n2,grace\n"
    );
    assert!(p.path("run_logs").is_dir());
    assert_no_file_contains(&p.root, KEY);
    assert_private(&out, &llm);
}

/// Without `--prompt`, `chat` is interactive and refuses to start without a terminal; `--out` is not
/// replaced without `--force`.
#[test]
fn chat_needs_a_terminal_or_a_prompt_and_keeps_existing_files() {
    let p = Project::new();
    let out = p.osiris(&["chat"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        stderr(&out).contains("CLI-E006") && stderr(&out).contains("--prompt"),
        "{}",
        show(&out)
    );

    std::fs::write(p.path("copy.yaml"), "mine\n").unwrap();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![Reply::Text(fenced(GOOD)), Reply::Text(fenced(GOOD))],
    );
    let out = p.chat(&llm, "copy users", "copy.yaml", &[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(stderr(&out).contains("CLI-E007"), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(p.path("copy.yaml")).unwrap(),
        "mine\n"
    );
    assert!(llm.requests().is_empty(), "refused before asking the model");
    let out = p.chat(&llm, "copy users", "copy.yaml", &["--force"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(std::fs::read_to_string(p.path("copy.yaml")).unwrap(), GOOD);
}

/// Interactive mode on a terminal (a pseudo-terminal from util-linux `script`): a request, the repair, then
/// `/save` and `/quit`; the conversation keeps the first reply and its diagnostics.
#[test]
fn interactive_chat_on_a_terminal_repairs_saves_and_quits() {
    let p = Project::new();
    let llm = FakeLlm::start(
        Api::OpenAi,
        vec![Reply::Text(fenced(BAD)), Reply::Text(fenced(GOOD))],
    );
    let script = Path::new("/usr/bin/script");
    assert!(
        script.is_file(),
        "util-linux `script` provides the terminal of this test"
    );
    let base = llm.base_url();
    let mut child = crate::support::osiris(&p.root)
        .home(&p.root)
        .args(["chat", "--secrets-file", "secrets.yaml"])
        .env("OSIRIS_LLM_BASE_URL", &base)
        .env("OSIRIS_LLM_MODEL", "test-model")
        .env("OSIRIS_LLM_API_KEY", KEY)
        .on_a_terminal()
        .stdin(std::process::Stdio::piped())
        .spawn();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"copy the users table to the backup project\n/save users.yaml\n/quit\n")
        .unwrap();
    let out = child.wait_with_output();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let screen = stdout(&out);
    for part in [
        "`/save FILE`",
        "attempt 1/3: 2 errors",
        "attempt 2/3: valid",
        "saved users.yaml",
    ] {
        assert!(screen.contains(part), "`{part}` on the terminal:\n{screen}");
    }
    assert_eq!(std::fs::read_to_string(p.path("users.yaml")).unwrap(), GOOD);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        messages(&reqs[1])[3]["content"]
            .as_str()
            .unwrap()
            .contains("OML-E104")
    );
    assert_private(&out, &llm);
}
