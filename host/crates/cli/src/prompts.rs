//! `osiris prompts build-context`: the context a language model writes pipelines from (the OML rules and the
//! component catalogue, see `osiris_llm::context`), written to a file and printed; cached by spec fingerprint.

use super::{Format, Global};
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_llm::context::{self, CacheStatus};
use osiris_runner::modules;
use std::path::PathBuf;

/// Where the context and its cache live, under the project root.
pub const PROMPTS_DIR: &str = ".osiris_prompts";

#[derive(clap::Subcommand, Debug)]
pub enum PromptsCmd {
    /// Build the context for a model: OML rules and, per component, modes, capabilities, fields (required,
    /// enums, defaults), secret field names and examples. Cached until a spec changes.
    BuildContext(BuildContextArgs),
}

#[derive(clap::Args, Debug)]
pub struct BuildContextArgs {
    /// Write the context here [default: .osiris_prompts/context.json in the project, context.txt with
    /// `--format text`].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only these components (comma-separated, or the flag repeated) [default: every component].
    #[arg(long, value_delimiter = ',', value_name = "A,B,...")]
    pub components: Vec<String>,
    /// `json`: the context as compact JSON in the file, and on stdout with its token count and cache status;
    /// `text`: the prompt text in the file and on stdout.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// The context of `components` (all when empty) from the project's cache, or built and stored: the key comes
/// from the verified spec files alone, so a hit builds no registry and checks no spec. Plugin refusals are
/// reported as any command reports them; a cache that cannot be written is a warning.
pub fn load(g: &Global, components: &[String]) -> Result<(context::Context, CacheStatus), Fail> {
    let dir = g.project_root().join(PROMPTS_DIR);
    let verified = modules::verify_plugins(g);
    let key = context::cache_key(&modules::offered_fingerprints(&verified), components);
    let mut verified = Some(verified);
    let (ctx, status, cache_problem) = context::cached(&dir, &key, components, || {
        let v = verified.take().expect("the registry is built once");
        modules::registry_from(g, v)
    })
    .map_err(|d| Fail::new(Exit::Validation, d.render(None)))?;
    if let Some(v) = &verified {
        // a cache hit: the refusals `registry_from` would have reported
        modules::report_plugin_problems(g, v);
    }
    if let Some(p) = cache_problem {
        errln!("warning: {p}");
    }
    Ok((ctx, status))
}

pub fn run(g: &Global, c: PromptsCmd) -> CmdResult {
    let PromptsCmd::BuildContext(a) = c;
    // The project file must be readable as for any command (plugins: are in it).
    osiris_core::config::ProjectConfig::load(&g.config)?;
    let components: Vec<String> = a
        .components
        .iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect();
    let dir = g.project_root().join(PROMPTS_DIR);
    let (ctx, status) = load(g, &components)?;
    let json = a.format == Format::Json;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| dir.join(if json { "context.json" } else { "context.txt" }));
    let body = if json { &ctx.json } else { &ctx.text };
    context::write_atomic(&out, body.as_bytes()).map_err(|e| {
        Fail::new(
            Exit::Config,
            format!(
                "error: cannot write the context to `{}`: {e}\n  = help: check that the directory is writable, or give another file with --out",
                out.display()
            ),
        )
    })?;
    let shown = out.display().to_string();
    if json {
        let doc: serde_json::Value = serde_json::from_str(&ctx.json).expect("the context is JSON");
        outln!(
            "{}",
            serde_json::json!({
                "ok": true,
                "file": shown,
                "tokens": ctx.tokens,
                "tokenizer": "cl100k_base",
                "cache": if status == CacheStatus::Hit { "hit" } else { "rebuilt" },
                "fingerprint": ctx.fingerprint,
                "components": ctx.components,
                "context": doc,
                "text": ctx.text,
            })
        );
    } else {
        out!("{}", ctx.text);
    }
    errln!(
        "context: {} component{}, {} tokens (cl100k_base), {} -> {shown}",
        ctx.components.len(),
        if ctx.components.len() == 1 { "" } else { "s" },
        ctx.tokens,
        status.as_str(),
    );
    Ok(Exit::Ok)
}
