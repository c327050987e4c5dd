//! `osiris chat`: describe a pipeline in words, get OML that validates. One-shot with `--prompt TEXT --out
//! FILE`, interactive on a terminal. The loop itself (providers, validation, repair) is `osiris_llm::chat`.

use super::{Format, Global};
use crate::front::{self, CheckArgs};
use osiris_core::codes::Code;
use osiris_core::exit::{CmdResult, Exit, Fail};
use osiris_core::secrets::{Connections, LoadOptions, Redactor, Strategy};
use osiris_llm::chat::{self, Attempt, Check, Client, Conversation, Outcome, config};
use osiris_llm::context;
use serde_json::json;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The settings `chat --help` lists after the options.
pub const AFTER_HELP: &str = "\
Model endpoint (variables win over the `llm:` section of osiris.yaml; see docs/llm.md):
  OSIRIS_LLM_PROVIDER         openai (OpenAI-compatible Chat Completions; default) or anthropic
  OSIRIS_LLM_BASE_URL         required, e.g. https://api.openai.com/v1 or http://127.0.0.1:11434/v1
  OSIRIS_LLM_MODEL            required, the model name
  OSIRIS_LLM_API_KEY          the key; not needed for a server on 127.0.0.1 or localhost
  OSIRIS_LLM_TIMEOUT_SECONDS  per request (default 120)
  OSIRIS_LLM_MAX_RETRIES      after a timeout, HTTP 429 or 5xx (default 3)
The model is sent the component context, connection names, what you type and the diagnostics:
never a secret value, a row or a file's contents.
Exit codes: 0 saved, 2 no valid pipeline, 4 no answer, 5 endpoint, model or key missing or refused";

#[derive(clap::Args, Debug)]
pub struct ChatArgs {
    /// What the pipeline should do (one-shot mode; without it `chat` is interactive and needs a terminal).
    #[arg(long, value_name = "TEXT", requires = "out")]
    pub prompt: Option<String>,
    /// Where the valid pipeline is saved (nothing is saved unless it validates).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace `--out` when it exists.
    #[arg(long)]
    pub force: bool,
    /// Answers asked for per request: the first, then one per repair.
    #[arg(long, value_name = "N", default_value_t = chat::DEFAULT_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: u32,
    /// Compile and run the saved pipeline.
    #[arg(long)]
    pub run: bool,
    /// Connections file [default: osiris_connections.yaml in the project directory]; only the connection
    /// names are sent to the model.
    #[arg(long, value_name = "FILE")]
    pub connections: Option<PathBuf>,
    /// Secrets file (same shape); none of its values is sent, and any typed in a prompt is masked.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[command(flatten)]
    pub check: CheckArgs,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// What every request of a session needs.
struct Session<'a> {
    g: &'a Global,
    a: &'a ChatArgs,
    settings: front::Settings,
    registry: osiris_registry::Registry,
    client: Client,
    conversation: Conversation,
}

pub fn run(g: &Global, a: ChatArgs) -> CmdResult {
    let config = osiris_core::config::ProjectConfig::load(&g.config)?;
    let interactive = a.prompt.is_none();
    if interactive && !std::io::stdin().is_terminal() {
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `osiris chat` without `--prompt` is interactive and needs a terminal\n  = help: pass the request in one go: `osiris chat --prompt \"copy table users from @supabase.main to @supabase.backup\" --out users.yaml`",
                Code::CLI_E006
            ),
        ));
    }
    if let Some(out) = &a.out {
        refuse_overwrite(out, a.force)?;
    }
    let settings = config::resolve(&config.llm, &|k| std::env::var(k).ok())?;
    let front_settings = a.check.settings(g, &config)?;
    let project = super::run::project_dir(g);
    let conns = Connections::load(&LoadOptions {
        project_dir: &project,
        connections_file: a.connections.as_deref(),
        secrets_file: a.secrets_file.as_deref(),
    })?;
    let names: Vec<String> = conns
        .families
        .iter()
        .flat_map(|(family, aliases)| {
            aliases
                .keys()
                .map(move |alias| format!("@{family}.{alias}"))
        })
        .collect();
    let redactor = Arc::new(Redactor::new(Strategy::Mask, "***"));
    redactor.add_secrets(conns.literal_secrets());
    // and the values `${VAR}` references resolve to, for the connections that resolve (none is sent; a value
    // typed into a prompt is masked)
    for name in &names {
        if let Ok(r) = conns.resolve(name) {
            redactor.add_secrets(r.secret_values);
        }
    }
    if let Some(k) = &settings.api_key {
        redactor.add_secrets([k.expose()]);
    }
    // The registry the answers are checked against, and the context from the project's cache (shared with
    // `prompts build-context`: the same specs give the same key).
    let registry = osiris_runner::modules::build_registry(g);
    let key = context::cache_key(&context::fingerprints(&registry), &[]);
    let dir = g.project_root().join(super::prompts::PROMPTS_DIR);
    let (ctx, _, cache_problem) = context::cached(&dir, &key, &[], || registry.clone())
        .map_err(|d| Fail::new(Exit::Internal, d.render(None)))?;
    if let Some(p) = cache_problem {
        errln!("warning: {p}");
    }
    if !g.quiet {
        errln!(
            "chat: {} `{}` at {} ({} components in the context, {} tokens; {} connection name{} sent)",
            settings.provider_name(),
            settings.model,
            settings.base_url,
            ctx.components.len(),
            ctx.tokens,
            names.len(),
            if names.len() == 1 { "" } else { "s" }
        );
    }
    let conversation = Conversation::new(&ctx.text, &names, redactor);
    let mut s = Session {
        g,
        a: &a,
        settings: front_settings,
        registry,
        client: Client::new(settings),
        conversation,
    };
    match &a.prompt {
        Some(prompt) => one_shot(&mut s, prompt),
        None => interactive_loop(&mut s),
    }
}

fn refuse_overwrite(out: &Path, force: bool) -> Result<(), Fail> {
    if out.exists() && !force {
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: `{}` exists; `osiris chat` does not replace it\n  = help: add --force, or save to another file",
                Code::CLI_E007,
                out.display()
            ),
        ));
    }
    Ok(())
}

impl Session<'_> {
    fn ask(&mut self, prompt: &str, file: &str) -> Result<Outcome, Fail> {
        let env = |k: &str| std::env::var(k).ok();
        let opts = osiris_oml::Options {
            mode: self.settings.mode,
            profile: &self.settings.profile,
            profile_explicit: self.settings.profile_explicit,
            params: &self.settings.params,
            env: &env,
        };
        let check = Check {
            registry: &self.registry,
            options: &opts,
            file,
        };
        let max = self.a.max_attempts;
        let text = self.a.format == Format::Text;
        self.conversation
            .ask(&self.client, prompt, &check, max, &mut |at| {
                if text {
                    show_attempt(at, max);
                }
            })
    }

    /// `--run`: the saved file, compiled and run as `osiris run FILE` does.
    fn run_file(&self, file: &Path) -> CmdResult {
        super::run::run(
            self.g,
            super::run::RunArgs {
                file: Some(file.to_path_buf()),
                last_compile: false,
                check: self.a.check.clone(),
                out: None,
                secrets_file: self.a.secrets_file.clone(),
                connections: self.a.connections.clone(),
                max_parallel: None,
                retries: 0,
                dry_run: false,
                full_refresh: false,
                resume: None,
                format: self.a.format,
            },
        )
    }
}

fn show_attempt(at: &Attempt, max: u32) {
    if at.ok() {
        errln!(
            "attempt {}/{max}: valid{} (model {:.1}s, check {:.1} ms)",
            at.number,
            if at.warnings > 0 {
                format!(
                    ", {} warning{}",
                    at.warnings,
                    if at.warnings == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            },
            at.model_time.as_secs_f64(),
            at.check_time.as_secs_f64() * 1000.0
        );
        if at.warnings > 0 {
            errln!("{}", at.rendered.trim_end());
        }
    } else {
        errln!(
            "attempt {}/{max}: {} error{}{}",
            at.number,
            at.errors,
            if at.errors == 1 { "" } else { "s" },
            if at.number < max {
                ", asking again with the diagnostics"
            } else {
                ""
            }
        );
        errln!("{}", at.rendered.trim_end());
    }
}

fn attempts_json(o: &Outcome) -> serde_json::Value {
    o.attempts
        .iter()
        .map(|a| {
            json!({
                "number": a.number,
                "ok": a.ok(),
                "errors": a.errors,
                "warnings": a.warnings,
                "diagnostics": a.diagnostics,
                "model_ms": a.model_time.as_millis() as u64,
                "check_ms": (a.check_time.as_secs_f64() * 1000.0),
            })
        })
        .collect()
}

fn save(out: &Path, text: &str) -> Result<(), Fail> {
    context::write_atomic(out, text.as_bytes()).map_err(|e| {
        Fail::new(
            Exit::Config,
            format!(
                "error: cannot save the pipeline to `{}`: {e}\n  = help: check that the directory is writable, or give another --out",
                out.display()
            ),
        )
    })
}

fn one_shot(s: &mut Session<'_>, prompt: &str) -> CmdResult {
    let out = s.a.out.clone().expect("clap: --prompt requires --out");
    let shown = out.display().to_string();
    let outcome = s.ask(prompt, &shown)?;
    let json = s.a.format == Format::Json;
    let Some(valid) = outcome.valid() else {
        let n = outcome.attempts.len();
        if json {
            outln!(
                "{}",
                json!({ "ok": false, "file": null, "attempts": attempts_json(&outcome) })
            );
        }
        return Err(Fail::new(
            Exit::Validation,
            format!(
                "error[{}]: no valid pipeline after {n} attempt{}; nothing was saved\n  = help: describe the pipeline in more detail, or raise --max-attempts",
                Code::LLM_E003,
                if n == 1 { "" } else { "s" }
            ),
        ));
    };
    let text = valid.pipeline.clone().unwrap_or_default();
    save(&out, &text)?;
    if json {
        outln!(
            "{}",
            json!({
                "ok": true,
                "file": shown,
                "name": valid.name,
                "manifest_hash": valid.manifest_hash,
                "pipeline": text,
                "attempts": attempts_json(&outcome),
            })
        );
    } else {
        out!("{text}");
        errln!(
            "saved `{}` to {shown}",
            valid.name.as_deref().unwrap_or_default()
        );
    }
    if s.a.run {
        return s.run_file(&out);
    }
    Ok(Exit::Ok)
}

const HELP: &str = "describe the pipeline; `/save FILE` saves the last valid one, `/run` runs the saved file, `/quit` (or Ctrl-D) ends";

fn interactive_loop(s: &mut Session<'_>) -> CmdResult {
    errln!("{HELP}");
    let stdin = std::io::stdin();
    let mut last_valid: Option<String> = None;
    let mut saved: Option<PathBuf> = None;
    let label =
        s.a.out
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "pipeline.yaml".to_string());
    loop {
        crate::out::flush();
        crate::out::eprompt("> ");
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            break;
        }
        if line == "/help" {
            errln!("{HELP}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("/save") {
            let Some(text) = &last_valid else {
                errln!("nothing to save yet: no valid pipeline");
                continue;
            };
            let target = match rest.trim() {
                "" => s.a.out.clone(),
                f => Some(PathBuf::from(f)),
            };
            let Some(target) = target else {
                errln!("give a file: `/save pipelines/copy.yaml`");
                continue;
            };
            if let Err(f) = refuse_overwrite(&target, s.a.force).and_then(|_| save(&target, text)) {
                errln!("{}", f.message.trim_end());
                continue;
            }
            errln!("saved {}", target.display());
            saved = Some(target);
            continue;
        }
        if line == "/run" {
            match &saved {
                Some(f) => {
                    if let Err(f) = s.run_file(f) {
                        errln!("{}", f.message.trim_end());
                    }
                }
                None => errln!("save the pipeline first: `/save FILE`"),
            }
            continue;
        }
        match s.ask(line, &label) {
            Ok(outcome) => match outcome.valid() {
                Some(v) => {
                    let text = v.pipeline.clone().unwrap_or_default();
                    out!("{text}");
                    crate::out::flush();
                    errln!("valid: `/save FILE` to keep it, or ask for a change");
                    last_valid = Some(text);
                }
                None => errln!(
                    "no valid pipeline after {} attempts: say more, or ask again",
                    outcome.attempts.len()
                ),
            },
            Err(f) => errln!("{}", f.message.trim_end()),
        }
    }
    Ok(Exit::Ok)
}
