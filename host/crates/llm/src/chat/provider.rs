//! One request to a model: OpenAI-compatible Chat Completions or Anthropic Messages over `ureq`, with
//! bounded retries after a timeout, a network error, HTTP 429 (honouring `Retry-After`) or a 5xx.
//!
//! **Invariant:** no message this module returns or reports contains the API key: it goes into one request
//! header and nowhere else, and any text from the server is passed through [`scrub`] first.

use super::config::Settings;
use osiris_core::codes::Code;
use osiris_core::config::LlmProvider;
use osiris_core::exit::{Exit, Fail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The longest `Retry-After` honoured; a longer one is waited for this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The first backoff after a failure without `Retry-After`; doubled on each retry.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The largest reply body read.
const MAX_BODY: u64 = 8 * 1024 * 1024;
/// How much of an error body is quoted in a message.
const QUOTED: usize = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What answers a conversation: the HTTP client below, or a scripted stand-in in tests and benchmarks.
pub trait Model {
    /// The model's reply to `messages` under the system prompt `system`.
    fn complete(&self, system: &str, messages: &[Message]) -> Result<String, Fail>;
}

/// An HTTP client for one endpoint.
pub struct Client {
    settings: Settings,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(settings: Settings) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(settings.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("osiris/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client { settings, agent }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The request body (no key in it: the key travels in a header).
    pub fn body(&self, system: &str, messages: &[Message]) -> Value {
        let role = |r: Role| match r {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        match self.settings.provider {
            LlmProvider::Openai => {
                let mut all = vec![json!({ "role": "system", "content": system })];
                all.extend(
                    messages
                        .iter()
                        .map(|m| json!({ "role": role(m.role), "content": m.content })),
                );
                json!({ "model": self.settings.model, "messages": all, "temperature": 0 })
            }
            LlmProvider::Anthropic => json!({
                "model": self.settings.model,
                "max_tokens": 4096,
                "system": system,
                "messages": messages
                    .iter()
                    .map(|m| json!({ "role": role(m.role), "content": m.content }))
                    .collect::<Vec<_>>(),
                "temperature": 0,
            }),
        }
    }

    fn send_once(&self, body: &str) -> Result<Reply, String> {
        let s = &self.settings;
        let mut req = self
            .agent
            .post(s.endpoint())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        match (s.provider, &s.api_key) {
            (LlmProvider::Openai, Some(k)) => {
                req = req.header("Authorization", format!("Bearer {}", k.expose()));
            }
            (LlmProvider::Anthropic, key) => {
                req = req.header("anthropic-version", "2023-06-01");
                if let Some(k) = key {
                    req = req.header("x-api-key", k.expose());
                }
            }
            (LlmProvider::Openai, None) => {}
        }
        let resp = req.send(body).map_err(|e| transport(&e))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Duration::from_secs_f64);
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("reading the reply failed: {}", transport(&e)))?;
        Ok(Reply {
            status,
            retry_after,
            text,
        })
    }

    /// The text of a successful reply.
    fn parse(&self, text: &str) -> Result<String, Fail> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            self.fail(
                Exit::Run,
                Code::LLM_E022,
                format!("the reply is not JSON ({e})"),
                "check that the base URL points at the API (it usually ends in /v1)".to_string(),
            )
        })?;
        let content = match self.settings.provider {
            LlmProvider::Openai => v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(str::to_string),
            LlmProvider::Anthropic => v.get("content").and_then(Value::as_array).map(|parts| {
                parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("")
            }),
        };
        content.ok_or_else(|| {
            let expected = match self.settings.provider {
                LlmProvider::Openai => "`choices[0].message.content`",
                LlmProvider::Anthropic => "`content[].text`",
            };
            self.fail(
                Exit::Run,
                Code::LLM_E022,
                format!("the reply has no {expected}"),
                format!(
                    "check {} (`openai` or `anthropic`) matches the endpoint",
                    super::config::ENV_PROVIDER
                ),
            )
        })
    }

    fn fail(&self, exit: Exit, code: Code, why: String, help: String) -> Fail {
        Fail::new(
            exit,
            scrub(
                &format!(
                    "error[{code}]: model endpoint `{}`: {why}\n  = help: {help}",
                    self.settings.endpoint()
                ),
                &self.settings,
            ),
        )
    }
}

struct Reply {
    status: u16,
    retry_after: Option<Duration>,
    text: String,
}

impl Model for Client {
    fn complete(&self, system: &str, messages: &[Message]) -> Result<String, Fail> {
        let body = self.body(system, messages).to_string();
        let max = self.settings.max_retries;
        let mut attempt: u32 = 0;
        loop {
            let started = Instant::now();
            let (why, retry_after) = match self.send_once(&body) {
                Ok(r) if (200..300).contains(&r.status) => return self.parse(&r.text),
                Ok(r) if r.status == 429 || r.status >= 500 => (
                    format!("HTTP {}{}", r.status, quote(&r.text)),
                    r.retry_after,
                ),
                Ok(r) => {
                    let help = match r.status {
                        401 | 403 => format!(
                            "the endpoint refused the API key: check {}",
                            super::config::ENV_API_KEY
                        ),
                        404 => format!(
                            "check {} (requests go to {{base}}/chat/completions or {{base}}/messages) and {}",
                            super::config::ENV_BASE_URL,
                            super::config::ENV_MODEL
                        ),
                        _ => format!(
                            "check {} and {}",
                            super::config::ENV_MODEL,
                            super::config::ENV_PROVIDER
                        ),
                    };
                    return Err(self.fail(
                        Exit::Config,
                        Code::LLM_E021,
                        format!("HTTP {}{}", r.status, quote(&r.text)),
                        help,
                    ));
                }
                Err(why) => (why, None),
            };
            if attempt >= max {
                return Err(self.fail(
                    Exit::Run,
                    Code::LLM_E020,
                    format!("no answer after {} attempt(s): {why}", attempt + 1),
                    format!(
                        "check that the endpoint is up; raise {} or {} for a slow or rate-limited service",
                        super::config::ENV_TIMEOUT,
                        super::config::ENV_MAX_RETRIES
                    ),
                ));
            }
            let backoff = FIRST_BACKOFF * 2u32.pow(attempt.min(6));
            let wait = retry_after
                .map(|d| d.min(MAX_RETRY_AFTER))
                .unwrap_or(backoff);
            attempt += 1;
            osiris_core::notice::warn(&scrub(
                &format!(
                    "warning: model endpoint `{}`: {why} after {:.1}s; retry {attempt}/{max} in {:.1}s",
                    self.settings.endpoint(),
                    started.elapsed().as_secs_f64(),
                    wait.as_secs_f64()
                ),
                &self.settings,
            ));
            std::thread::sleep(wait);
        }
    }
}

/// `: <first characters of the body>` for an error message, on one line.
fn quote(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTED)
        .collect();
    let t = t.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// Removes the API key from a text (a server may echo it in an error).
pub fn scrub(text: &str, settings: &Settings) -> String {
    match &settings.api_key {
        Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "***"),
        _ => text.to_string(),
    }
}

fn transport(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the request timed out".to_string(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        ureq::Error::ConnectionFailed => "the connection failed".to_string(),
        ureq::Error::HostNotFound => "the host was not found".to_string(),
        other => format!("request failed: {other}"),
    }
}
