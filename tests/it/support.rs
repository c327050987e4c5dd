//! Shared helpers of the integration tests: the isolated `osiris` command, a local HTTP(S) server, the run
//! directory readers and the test plugins.
//!
//! Every test runs the binary through [`osiris`], so no result depends on the machine: each command gets its own
//! HOME and XDG directories, no `OSIRIS_*` variable of the caller, an empty plugin path and an empty machine
//! policy (the machine's `/etc/osiris/policy.yaml` is never read).

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

// ---------------------------------------------------------------------------------------------------------------
// The osiris command
// ---------------------------------------------------------------------------------------------------------------

/// `osiris` in `cwd`, isolated from the machine and the caller:
///
/// - HOME is a fresh empty directory, and `XDG_CONFIG_HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME` and
///   `XDG_STATE_HOME` lie below it (so the user plugin directory is [`user_plugin_dir`] of it); [`Osiris::home`]
///   names another one;
/// - every `OSIRIS_*` variable of the test process is removed; `OSIRIS_PLUGIN_PATH` is empty
///   ([`Osiris::plugin_path`] sets one) and `OSIRIS_POLICY_FILE` names an empty file ([`Osiris::policy_file`]
///   names another), so `/etc/osiris/policy.yaml` is never read;
/// - `NO_COLOR=1`; `CARGO_HOME` and `RUSTUP_HOME` keep pointing at the caller's toolchain, for the commands
///   that run cargo (`plugins pack`).
///
/// ```ignore
/// let out = osiris(dir).args(["run", "p.yaml"]).env("TOKEN", "t").output();
/// ```
pub fn osiris(cwd: impl AsRef<Path>) -> Osiris {
    let isolation = tempfile::Builder::new()
        .prefix("osiris-it-home-")
        .tempdir()
        .expect("a temporary directory");
    let home = isolation.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let policy = isolation.path().join("machine-policy.yaml");
    std::fs::write(&policy, "").unwrap();
    let mut o = Osiris {
        cwd: cwd.as_ref().to_path_buf(),
        args: Vec::new(),
        env: BTreeMap::new(),
        stdin: None,
        stdout: None,
        stderr: None,
        tty: false,
        _isolation: isolation,
    };
    let real_home = std::env::var_os("HOME").map(PathBuf::from);
    for (var, dir) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        let value =
            std::env::var_os(var).or_else(|| real_home.as_ref().map(|h| h.join(dir).into()));
        if let Some(value) = value {
            o.env.insert(var.into(), Some(value));
        }
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OSIRIS_") {
            o.env.insert(name, None);
        }
    }
    o.home(&home)
        .plugin_path("")
        .policy_file(&policy)
        .env("NO_COLOR", "1")
}

/// The user plugin directory of osiris under an isolated `home` (`$XDG_DATA_HOME/osiris/plugins`).
pub fn user_plugin_dir(home: &Path) -> PathBuf {
    home.join(".local/share/osiris/plugins")
}

/// An isolated `osiris` command being put together; see [`osiris`].
pub struct Osiris {
    cwd: PathBuf,
    args: Vec<OsString>,
    /// `None`: removed from the environment.
    env: BTreeMap<OsString, Option<OsString>>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    tty: bool,
    /// The default HOME and machine policy; removed when the command has ended.
    _isolation: tempfile::TempDir,
}

impl Osiris {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I>(mut self, args: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.insert(
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        );
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.insert(key.as_ref().to_os_string(), None);
        self
    }

    /// HOME is `dir`, and the XDG directories lie below it (the user plugin directory is
    /// [`user_plugin_dir`]`(dir)`): for a test that puts something there or looks at it.
    pub fn home(self, dir: &Path) -> Self {
        self.env("HOME", dir)
            .env("XDG_CONFIG_HOME", dir.join(".config"))
            .env("XDG_DATA_HOME", dir.join(".local/share"))
            .env("XDG_CACHE_HOME", dir.join(".cache"))
            .env("XDG_STATE_HOME", dir.join(".local/state"))
    }

    /// `OSIRIS_PLUGIN_PATH` (empty by default).
    pub fn plugin_path(self, path: impl AsRef<OsStr>) -> Self {
        self.env("OSIRIS_PLUGIN_PATH", path)
    }

    /// `OSIRIS_POLICY_FILE`: the machine policy (an empty file by default).
    pub fn policy_file(self, path: impl AsRef<OsStr>) -> Self {
        self.env("OSIRIS_POLICY_FILE", path)
    }

    /// For a command that runs cargo (`plugins pack`): cargo builds into `dir`, without the caller's RUSTFLAGS.
    pub fn cargo_target_dir(self, dir: impl AsRef<OsStr>) -> Self {
        self.env("CARGO_TARGET_DIR", dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
    }

    pub fn stdin(mut self, s: Stdio) -> Self {
        self.stdin = Some(s);
        self
    }

    pub fn stdout(mut self, s: Stdio) -> Self {
        self.stdout = Some(s);
        self
    }

    pub fn stderr(mut self, s: Stdio) -> Self {
        self.stderr = Some(s);
        self
    }

    /// Runs the command on a pseudo-terminal (through util-linux `script`): stdout then carries what osiris
    /// wrote to its terminal, stderr included.
    pub fn on_a_terminal(mut self) -> Self {
        self.tty = true;
        self
    }

    fn command(&mut self) -> Command {
        let bin = env!("CARGO_BIN_EXE_osiris");
        let mut cmd = if self.tty {
            let mut line = shell_quote(OsStr::new(bin));
            for a in &self.args {
                line.push(' ');
                line.push_str(&shell_quote(a));
            }
            let mut c = Command::new("script");
            c.args(["-qec", &line, "/dev/null"]);
            c
        } else {
            let mut c = Command::new(bin);
            c.args(&self.args);
            c
        };
        cmd.current_dir(&self.cwd);
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(s) = self.stdin.take() {
            cmd.stdin(s);
        }
        if let Some(s) = self.stdout.take() {
            cmd.stdout(s);
        }
        if let Some(s) = self.stderr.take() {
            cmd.stderr(s);
        }
        cmd
    }

    /// Runs the command to its end and returns what it printed.
    pub fn output(mut self) -> Output {
        self.command()
            .output()
            .unwrap_or_else(|e| panic!("osiris {:?} does not start: {e}", self.args))
    }

    /// Starts the command; stdout and stderr are piped unless set otherwise.
    pub fn spawn(mut self) -> Running {
        if self.stdout.is_none() {
            self.stdout = Some(Stdio::piped());
        }
        if self.stderr.is_none() {
            self.stderr = Some(Stdio::piped());
        }
        let child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("osiris {:?} does not start: {e}", self.args));
        Running {
            child,
            _isolation: self._isolation,
        }
    }
}

fn shell_quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

/// A started [`Osiris`] command: a [`Child`] that keeps its isolated HOME until it is dropped.
pub struct Running {
    child: Child,
    _isolation: tempfile::TempDir,
}

impl Running {
    pub fn wait_with_output(self) -> Output {
        self.child.wait_with_output().expect("waiting for osiris")
    }
}

impl Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// stdout and stderr, as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The exit code (-1: ended by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

// ---------------------------------------------------------------------------------------------------------------
// What a run leaves behind
// ---------------------------------------------------------------------------------------------------------------

/// The only run directory under `<project>/run_logs/<profile>/<pipeline>/`.
pub fn run_dir(project: &Path, profile: &str, pipeline: &str) -> PathBuf {
    let base = project.join("run_logs").join(profile).join(pipeline);
    let dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "one run directory in {}: {dirs:?}",
        base.display()
    );
    dirs[0].clone()
}

/// The run directory that started last (by its events' first timestamp: names sort by run id within a second).
pub fn newest(dirs: Vec<PathBuf>) -> PathBuf {
    dirs.into_iter()
        .max_by_key(|d| {
            std::fs::read_to_string(d.join("events.jsonl"))
                .ok()
                .and_then(|t| t.lines().next().map(str::to_string))
                .and_then(|l| serde_json::from_str::<Value>(&l).ok())
                .and_then(|v| v["timestamp"].as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .expect("a run directory")
}

/// The lines of a JSON Lines file.
pub fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad JSON line {l:?}: {e}", path.display()))
        })
        .collect()
}

/// The events of a run directory, each envelope of `events.jsonl` (ADR 0015) flattened for assertions: its
/// payload's fields, with `event` (the type), `ts` (the timestamp) and `run_id` (the correlation id).
pub fn events(run_dir: &Path) -> Vec<Value> {
    jsonl(&run_dir.join("events.jsonl"))
        .into_iter()
        .map(|e| {
            let mut flat = e["payload"]
                .as_object()
                .unwrap_or_else(|| panic!("not an envelope: {e}"))
                .clone();
            flat.insert("event".into(), e["type"].clone());
            flat.insert("ts".into(), e["timestamp"].clone());
            flat.insert("run_id".into(), e["correlation_id"].clone());
            Value::Object(flat)
        })
        .collect()
}

pub fn json(path: &Path) -> Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// A local HTTP(S) server
// ---------------------------------------------------------------------------------------------------------------

/// One request the server saw: method, target (path and query), lower-cased header names, body, arrival.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A canned answer: status, extra headers, JSON body (as text, so key order is the test's).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl ToString) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// HTTP 200 with `body`.
    pub fn ok(body: impl ToString) -> Reply {
        Reply::new(200, body)
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Check = Box<dyn Fn(&Request) -> Option<Reply> + Send>;

/// A server to start: see [`serve`].
pub struct Serve {
    replies: Vec<Reply>,
    check: Option<Check>,
    tls: bool,
}

/// A server on 127.0.0.1 that answers the requests with `replies` in order, one request per connection
/// (`Connection: close`), and stops when every reply is taken (or after 90 s).
///
/// ```ignore
/// let server = serve(vec![Reply::ok("{}")]).check(require_token).start();
/// ```
pub fn serve(replies: Vec<Reply>) -> Serve {
    Serve {
        replies,
        check: None,
        tls: false,
    }
}

impl Serve {
    /// `check` may answer a request instead of its reply (which is then used up), e.g. refuse one without the
    /// right token.
    pub fn check(mut self, check: impl Fn(&Request) -> Option<Reply> + Send + 'static) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    /// HTTPS, with a certificate for 127.0.0.1 and localhost made now and signed by itself (so no client
    /// trusts it). A client that refuses it uses up no reply.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn start(self) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = self.tls.then(tls_config);
        let server = HttpServer {
            addr,
            scheme: if self.tls { "https" } else { "http" },
            requests: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(AtomicUsize::new(0)),
        };
        let (requests, connections) = (server.requests.clone(), server.connections.clone());
        let check = self.check;
        // The thread lives until every reply is taken or the deadline passes.
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut replies = self.replies.into_iter().peekable();
            while replies.peek().is_some() && Instant::now() < deadline {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                tcp.set_nonblocking(false).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut answer = |stream: &mut dyn ReadWrite| -> bool {
                    // A TLS handshake runs on the first read: a client that refuses the certificate ends it here.
                    let Some(request) = read_request(stream) else {
                        return false;
                    };
                    requests.lock().unwrap().push(request.clone());
                    let next = replies.next().expect("a reply is left");
                    let reply = check.as_ref().and_then(|c| c(&request)).unwrap_or(next);
                    write_reply(stream, &reply);
                    true
                };
                match &tls {
                    None => {
                        let mut tcp = tcp;
                        answer(&mut tcp);
                    }
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                        let mut stream = rustls::StreamOwned::new(conn, tcp);
                        if answer(&mut stream) {
                            stream.conn.send_close_notify();
                            let _ = stream.flush();
                        }
                    }
                }
            }
        });
        server
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a self-signed certificate");
    let cert: CertificateDer<'static> = made.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(made.signing_key.serialize_der());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key.into())
        .unwrap(),
    )
}

/// One HTTP request (its body by Content-Length), or None when the connection failed first.
fn read_request(stream: &mut dyn ReadWrite) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(':')?;
        headers.push((n.trim().to_lowercase(), v.trim().to_string()));
    }
    let len: usize = match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, v)) => v.parse().ok()?,
        None => 0,
    };
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    })
}

fn write_reply(stream: &mut dyn ReadWrite, reply: &Reply) {
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The client may have gone (that is its test's business).
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

/// A started [`serve`] server.
pub struct HttpServer {
    addr: SocketAddr,
    scheme: &'static str,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl HttpServer {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>` (`https` for [`Serve::tls`]).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The requests seen so far, in order.
    pub fn requests(&self) -> MutexGuard<'_, Vec<Request>> {
        self.requests.lock().unwrap()
    }

    /// TCP connections accepted so far (with TLS, each one a handshake attempt).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Test plugins (tests/plugins)
// ---------------------------------------------------------------------------------------------------------------

/// Builds the test plugin `tests/plugins/<name>` (a standalone crate) once per test process and returns the path
/// of its cdylib. Builds go to `$CARGO_TARGET_DIR/test-plugins` (or `target/test-plugins`).
///
/// Panics with cargo's output if the build fails.
pub fn build_test_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, &'static OnceLock<PathBuf>>>> = OnceLock::new();
    let cell: &'static OnceLock<PathBuf> = {
        let mut map = BUILT
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
    };
    cell.get_or_init(|| build(name)).clone()
}

/// The entry symbol of each test plugin (`export_ocp! { entry: .. }`).
pub fn test_plugin_entry(name: &str) -> String {
    format!("osiris_ocp_test_{name}")
}

fn build(name: &str) -> PathBuf {
    let root = repo_root();
    let manifest = root.join("tests/plugins").join(name).join("Cargo.toml");
    assert!(
        manifest.is_file(),
        "no test plugin `{name}`: {} does not exist",
        manifest.display()
    );
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir).join("test-plugins"),
        None => root.join("target/test-plugins"),
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "building test plugin `{name}` failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lib_name = format!("osiris_test_{name}");
    let path = target_dir.join("debug").join(format!(
        "{}{lib_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        path.is_file(),
        "test plugin `{name}` built but {} is missing",
        path.display()
    );
    path
}
