//! `osiris-mcp`: the Model Context Protocol server behind `osiris mcp`, built on the official Rust SDK (`rmcp`).
//! It speaks MCP over stdio (JSON-RPC 2.0, one message a line) or streamable HTTP on a loopback address, and
//! offers the tools of docs/llm.md ("MCP server"): the catalogue, specs, the OML schema, the LLM context,
//! validation, compile, run, past runs, connections (names only) and discovery (schema only by default).
//!
//! It owns: the tools ([`tools`]), the child `osiris` processes that compile, run, discover and list
//! connections ([`child`]), the pattern-based redaction of everything a child returns ([`redact`]), and the
//! loopback check of `--http` ([`loopback`]).
//!
//! It may not: hold a secret. It never reads the secrets file, `.env` or an `OSIRIS_CONN__*` variable, and never
//! resolves a connection: whatever needs a secret runs in a child `osiris` (the same binary), whose output
//! osiris has already redacted with every secret value it resolved and which passes through [`redact`] again
//! before it is returned (docs/adr/0012-mcp-secret-boundary.md). Nor may it print outside the protocol: on
//! stdio, stdout carries JSON-RPC messages only; logs and notices go to stderr through the caller's sinks.
//! A failing tool is an MCP tool error (`isError`) carrying the osiris error code, never a crashed server.

// Dev-dependencies serve the unit tests' fixtures; the unit-test build links them all.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod child;
pub mod redact;
pub mod tools;

use osiris_core::codes::Code;
use osiris_core::exit::{Exit, Fail};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// What the server needs to know, resolved by the front end (`osiris mcp`).
#[derive(Debug, Clone)]
pub struct Options {
    /// The project and plugin settings; passed on to every child (`--config`, `--plugin-dir`, ...).
    pub global: osiris_core::Global,
    /// The absolute project directory (where osiris.yaml is, or would be).
    pub project: PathBuf,
    /// The `osiris` binary the children run (`std::env::current_exe()`).
    pub exe: PathBuf,
    /// `--connections FILE`, handed to the children as given (never opened here).
    pub connections: Option<PathBuf>,
    /// `--secrets-file FILE`, handed to the children as given (never opened here).
    pub secrets_file: Option<PathBuf>,
}

/// `--http ADDR`: an IP address and port on the loopback interface (`127.0.0.1:PORT`, `[::1]:PORT`, or
/// `localhost:PORT` for 127.0.0.1). Anything else is refused (MCP-E001): the server compiles and runs
/// pipelines with the project's connections and must not be reachable from another machine.
pub fn loopback(addr: &str) -> Result<SocketAddr, Fail> {
    let parsed = addr.parse::<SocketAddr>().ok().or_else(|| {
        let port = addr.strip_prefix("localhost:")?.parse::<u16>().ok()?;
        Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
    });
    match parsed {
        Some(a) if a.ip().is_loopback() => Ok(a),
        Some(a) => Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `--http {addr}` is not a loopback address (`{}` is reachable from other machines)\n  = help: serve on loopback only, e.g. `--http 127.0.0.1:{}`; the MCP server runs pipelines with this project's connections",
                Code::MCP_E001,
                a.ip(),
                a.port()
            ),
        )),
        None => Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `--http {addr}` is not an address and port\n  = help: write e.g. `--http 127.0.0.1:8765` (loopback only; port 0 picks a free one)",
                Code::MCP_E001
            ),
        )),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Fail> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Fail::new(
                Exit::Internal,
                format!("error: cannot start the MCP server's runtime: {e}"),
            )
        })
}

fn serve_error(what: &str, e: impl std::fmt::Display) -> Fail {
    Fail::new(
        Exit::Internal,
        format!("error: the MCP server stopped: {what}: {e}"),
    )
}

/// Serves MCP on stdin/stdout until the client closes stdin.
pub fn serve_stdio(opts: Options) -> Result<(), Fail> {
    use rmcp::ServiceExt;
    runtime()?.block_on(async move {
        let service = tools::Server::new(opts)
            .serve(rmcp::transport::stdio())
            .await
            .map_err(|e| serve_error("initialization failed", e))?;
        service
            .waiting()
            .await
            .map_err(|e| serve_error("the session ended with an error", e))?;
        Ok(())
    })
}

/// Serves MCP over streamable HTTP (stateless, JSON responses) on `addr`, which [`loopback`] has checked, at
/// the path `/mcp`. `listening` is told the bound address (port 0 picks a free one) once connections are
/// accepted. Runs until the process is stopped.
pub fn serve_http(
    opts: Options,
    addr: SocketAddr,
    listening: impl FnOnce(SocketAddr),
) -> Result<(), Fail> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    if !addr.ip().is_loopback() {
        return Err(loopback(&addr.to_string()).expect_err("not a loopback address"));
    }
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            Fail::new(
                Exit::Config,
                format!(
                    "error[{}]: cannot listen on `{addr}`: {e}\n  = help: pick another port (0 picks a free one)", Code::MCP_E002
                ),
            )
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| serve_error("no local address", e))?;
        // Host validation (DNS rebinding) stays on: only loopback names and this port are accepted.
        let port = bound.port();
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_allowed_hosts([
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]);
        let service = StreamableHttpService::new(
            move || Ok(tools::Server::new(opts.clone())),
            LocalSessionManager::default().into(),
            config,
        );
        let service = TowerToHyperService::new(service);
        listening(bound);
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    continue;
                }
            };
            if !peer.ip().is_loopback() {
                continue;
            }
            let service = service.clone();
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secret boundary as code: no line of this crate loads connections, reads `.env` or walks the
    /// environment (it reads `OSIRIS_VALIDATION` and `OSIRIS_PARAM_*` by name only).
    #[test]
    fn no_code_of_this_crate_reads_a_secret() {
        let sources = [
            ("lib.rs", include_str!("lib.rs")),
            ("tools.rs", include_str!("tools.rs")),
            ("child.rs", include_str!("child.rs")),
            ("redact.rs", include_str!("redact.rs")),
        ];
        let banned = [
            "Connections",
            "LoadOptions",
            "secrets::Env",
            "env::vars",
            "literal_secrets",
            "OSIRIS_CONN__",
            "read_to_string",
            "fs::read(",
        ];
        for (file, src) in sources {
            let code = src.split("#[cfg(test)]").next().unwrap_or(src);
            for (n, line) in code.lines().enumerate() {
                let line = line.trim_start();
                if line.starts_with("//") {
                    continue;
                }
                for b in banned {
                    assert!(!line.contains(b), "{file}:{}: `{b}` in `{line}`", n + 1);
                }
            }
        }
    }

    #[test]
    fn only_loopback_addresses_are_served() {
        assert_eq!(
            loopback("127.0.0.1:8765").unwrap(),
            "127.0.0.1:8765".parse().unwrap()
        );
        assert_eq!(loopback("[::1]:0").unwrap(), "[::1]:0".parse().unwrap());
        assert_eq!(
            loopback("localhost:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        for bad in ["0.0.0.0:8765", "192.168.1.5:80", "[::]:1"] {
            let f = loopback(bad).unwrap_err();
            assert!(
                f.message.starts_with("error[MCP-E001]") && f.message.contains("loopback"),
                "{f}"
            );
            assert_eq!(f.exit, Exit::Validation);
        }
        assert!(
            loopback("example.com:80")
                .unwrap_err()
                .message
                .contains("not an address")
        );
    }
}
