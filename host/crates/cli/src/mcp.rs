//! `osiris mcp [--http 127.0.0.1:PORT]`: the MCP server (osiris-mcp) on stdio, or on streamable HTTP on a
//! loopback address. Only the flags are resolved here.

use super::Global;
use osiris_core::exit::{CmdResult, Exit, Fail};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct McpArgs {
    /// Serve streamable HTTP on this loopback address (`127.0.0.1:PORT`, `[::1]:PORT`; port 0 picks a free one)
    /// at `/mcp`, instead of stdio. Any other address is refused.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Connections file the tools' child processes use [default: osiris_connections.yaml in the project].
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Secrets file the tools' child processes use (the server itself never opens it).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

pub fn run(g: &Global, a: McpArgs) -> CmdResult {
    // Checked before anything else: a refused address starts nothing.
    let http = a.http.as_deref().map(osiris_mcp::loopback).transpose()?;
    let cwd = std::env::current_dir().map_err(|e| {
        Fail::new(
            Exit::Config,
            format!("error: cannot read the working directory: {e}"),
        )
    })?;
    let exe = std::env::current_exe().map_err(|e| {
        Fail::new(
            Exit::Internal,
            format!("error: cannot find the osiris binary to run tools with: {e}"),
        )
    })?;
    // Children run in the project directory, so every path they are given is absolute.
    let mut global = g.resolved.clone();
    global.config = absolute(&cwd, &global.config);
    global.plugin_dirs = global
        .plugin_dirs
        .iter()
        .map(|d| absolute(&cwd, d))
        .collect();
    let opts = osiris_mcp::Options {
        project: global.project_root(),
        global,
        exe,
        connections: a.connections.as_deref().map(|p| absolute(&cwd, p)),
        secrets_file: a.secrets_file.as_deref().map(|p| absolute(&cwd, p)),
    };
    match http {
        None => osiris_mcp::serve_stdio(opts)?,
        Some(addr) => osiris_mcp::serve_http(opts, addr, |bound| {
            errln!("osiris mcp: listening on http://{bound}/mcp");
        })?,
    }
    Ok(Exit::Ok)
}
