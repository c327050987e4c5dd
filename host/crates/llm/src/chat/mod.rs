//! `osiris chat`: ask a model for a pipeline, check its answer with the validator of `osiris oml validate`
//! (and compile it in memory), send the diagnostics back until it is valid or the attempts run out.
//!
//! What a model receives: the system prompt (the [`crate::context`] text and the names of the project's
//! connections), what the user typed, its own replies, and the validator's diagnostics of those replies.
//! Everything the user side sends passes through the caller's [`Redactor`] first, so a secret value known to the
//! project (a literal in the connections or secrets file) never leaves the machine, even if typed.

pub mod config;
pub mod extract;
pub mod provider;

pub use provider::{Client, Message, Model, Role};

use osiris_core::codes::Code;
use osiris_core::diag::Diagnostic;
use osiris_core::exit::Fail;
use osiris_core::secrets::Redactor;
use osiris_oml::{Options, Report};
use osiris_registry::Registry;
use std::time::{Duration, Instant};

/// Attempts per request, unless `--max-attempts` says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// How a model's pipeline is checked: the registry and the validator options of `osiris oml validate`, and
/// the file name diagnostics point at.
pub struct Check<'a> {
    pub registry: &'a Registry,
    pub options: &'a Options<'a>,
    pub file: &'a str,
}

/// A pipeline checked: the validator's report and, when valid, the hash of the manifest it compiles to.
pub struct Checked {
    pub report: Report,
    pub manifest_hash: Option<String>,
}

impl Check<'_> {
    /// Validates `text` with [`osiris_oml::check`] and, without errors, compiles the plan in memory
    /// ([`osiris_compiler::build`]); nothing is written.
    pub fn run(&self, text: &str) -> Checked {
        let report = osiris_oml::check(self.file, text, self.registry, self.options);
        let manifest_hash = report
            .plan
            .as_ref()
            .filter(|_| report.errors() == 0)
            .map(|plan| osiris_compiler::build(plan).manifest_hash);
        Checked {
            report,
            manifest_hash,
        }
    }
}

/// One answer of the model and what the check found.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// From 1.
    pub number: u32,
    pub reply: String,
    /// The OML taken from the reply ([`extract::pipeline`]).
    pub pipeline: Option<String>,
    /// The validator's diagnostics, or one `LLM-E002` when the reply holds no pipeline.
    pub diagnostics: Vec<Diagnostic>,
    /// The diagnostics as `osiris oml validate` prints them (what the model is sent back).
    pub rendered: String,
    pub errors: usize,
    pub warnings: usize,
    /// `Some` when valid: the hash of the manifest the pipeline compiles to.
    pub manifest_hash: Option<String>,
    /// The pipeline's `name`, when valid.
    pub name: Option<String>,
    /// Waiting for the model.
    pub model_time: Duration,
    /// Extracting, validating and compiling (the overhead per attempt).
    pub check_time: Duration,
}

impl Attempt {
    pub fn ok(&self) -> bool {
        self.manifest_hash.is_some()
    }
}

/// Every attempt of one request; the last is the valid one when there is one.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// The valid pipeline, if an attempt produced one.
    pub fn valid(&self) -> Option<&Attempt> {
        self.attempts.last().filter(|a| a.ok())
    }
}

/// A conversation with a model about one pipeline; later requests refine it.
pub struct Conversation {
    system: String,
    messages: Vec<Message>,
    redactor: std::sync::Arc<Redactor>,
}

impl Conversation {
    /// `context` is the [`crate::context::Context::text`]; `connections` the project's connection names
    /// (`@family.alias`), never their fields.
    pub fn new(
        context: &str,
        connections: &[String],
        redactor: std::sync::Arc<Redactor>,
    ) -> Conversation {
        let mut system = String::from(
            "You write data pipelines for osiris in OML (YAML). Answer with the complete pipeline in one ```yaml block. \
             Write nothing secret: reference connections by name, never hosts, users, passwords or keys.\n\n",
        );
        system.push_str(context);
        if connections.is_empty() {
            system.push_str(
                "No connections are configured yet: reference `@<family>.default` and say which connections to create.\n",
            );
        } else {
            system.push_str("Connections of this project (reference them exactly): ");
            system.push_str(&connections.join(", "));
            system.push('\n');
        }
        Conversation {
            system: redactor.text(&system),
            messages: Vec::new(),
            redactor,
        }
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    fn say(&mut self, text: &str) {
        self.messages.push(Message {
            role: Role::User,
            content: self.redactor.text(text),
        });
    }

    /// Asks for `prompt`, checking each answer with `check` and sending its diagnostics back, at most
    /// `max_attempts` times (at least once). `on_attempt` sees each attempt as it is checked. A failure to
    /// reach the model ends the request (`Err`); an answer that never validates is an [`Outcome`] without a
    /// valid attempt.
    pub fn ask(
        &mut self,
        model: &dyn Model,
        prompt: &str,
        check: &Check<'_>,
        max_attempts: u32,
        on_attempt: &mut dyn FnMut(&Attempt),
    ) -> Result<Outcome, Fail> {
        self.say(prompt);
        let mut attempts = Vec::new();
        for number in 1..=max_attempts.max(1) {
            let asked = Instant::now();
            let reply = model.complete(&self.system, &self.messages)?;
            let model_time = asked.elapsed();
            self.messages.push(Message {
                role: Role::Assistant,
                content: reply.clone(),
            });
            let checked_at = Instant::now();
            let attempt = assess(number, reply, check, model_time, checked_at);
            on_attempt(&attempt);
            let ok = attempt.ok();
            if !ok && number < max_attempts {
                let repair = repair_message(&attempt);
                self.say(&repair);
            }
            attempts.push(attempt);
            if ok {
                break;
            }
        }
        Ok(Outcome { attempts })
    }
}

fn assess(
    number: u32,
    reply: String,
    check: &Check<'_>,
    model_time: Duration,
    started: Instant,
) -> Attempt {
    let pipeline = extract::pipeline(&reply);
    let (diagnostics, rendered, manifest_hash, name) = match &pipeline {
        Some(text) => {
            let c = check.run(text);
            let name = c.report.plan.as_ref().map(|p| p.name.clone());
            (
                c.report.diagnostics.clone(),
                c.report.render(),
                c.manifest_hash,
                name,
            )
        }
        None => {
            let d = Diagnostic::error(Code::LLM_E002, "the reply holds no pipeline")
                .help("answer with the complete pipeline in one ```yaml block");
            let r = d.render(None);
            (vec![d], r, None, None)
        }
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    Attempt {
        number,
        pipeline,
        warnings: diagnostics.len() - errors,
        errors,
        diagnostics,
        rendered,
        name: name.filter(|_| manifest_hash.is_some()),
        manifest_hash,
        reply,
        model_time,
        check_time: started.elapsed(),
    }
}

/// What the model is told about a failed attempt: every diagnostic, as `osiris oml validate` prints it.
pub fn repair_message(a: &Attempt) -> String {
    if a.pipeline.is_none() {
        return "Your reply holds no pipeline. Answer with the complete pipeline in one ```yaml block."
            .to_string();
    }
    format!(
        "`osiris oml validate` found {} error{} in your pipeline:\n\n{}\n\nFix every error and answer with the complete corrected pipeline in one ```yaml block.",
        a.errors,
        if a.errors == 1 { "" } else { "s" },
        a.rendered.trim_end()
    )
}

#[cfg(test)]
mod tests;
