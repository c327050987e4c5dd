//! Which endpoint `osiris chat` asks, from `OSIRIS_LLM_*` variables over the `llm:` section of osiris.yaml.
//!
//! **Invariant:** the API key is held in an [`ApiKey`], whose `Debug` and `Display` print `***`; it is read
//! from the environment only (osiris.yaml names the variable), and no message of this crate contains it.

use osiris_core::codes::Code;
use osiris_core::config::{LlmConfig, LlmProvider};
use osiris_core::exit::{Exit, Fail};
use std::time::Duration;

pub const ENV_PROVIDER: &str = "OSIRIS_LLM_PROVIDER";
pub const ENV_BASE_URL: &str = "OSIRIS_LLM_BASE_URL";
pub const ENV_MODEL: &str = "OSIRIS_LLM_MODEL";
pub const ENV_API_KEY: &str = "OSIRIS_LLM_API_KEY";
pub const ENV_TIMEOUT: &str = "OSIRIS_LLM_TIMEOUT_SECONDS";
pub const ENV_MAX_RETRIES: &str = "OSIRIS_LLM_MAX_RETRIES";

/// Seconds one request may take, unless configured.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
/// Retries of one request after a timeout, a network error, HTTP 429 or a 5xx, unless configured.
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// An API key. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }
    /// The key, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Everything needed to reach a model.
#[derive(Debug, Clone)]
pub struct Settings {
    pub provider: LlmProvider,
    /// Without a trailing `/`; requests go to `{base_url}/chat/completions` or `{base_url}/messages`.
    pub base_url: String,
    pub model: String,
    /// `None` only for an endpoint on this machine (loopback), which a local server (llama.cpp, Ollama, vLLM)
    /// does not need a key for.
    pub api_key: Option<ApiKey>,
    pub timeout: Duration,
    pub max_retries: u32,
}

impl Settings {
    /// The URL requests are posted to.
    pub fn endpoint(&self) -> String {
        match self.provider {
            LlmProvider::Openai => format!("{}/chat/completions", self.base_url),
            LlmProvider::Anthropic => format!("{}/messages", self.base_url),
        }
    }

    pub fn provider_name(&self) -> &'static str {
        match self.provider {
            LlmProvider::Openai => "openai",
            LlmProvider::Anthropic => "anthropic",
        }
    }
}

fn fail(code: Code, message: String, help: String) -> Fail {
    Fail::new(
        Exit::Config,
        format!("error[{code}]: {message}\n  = help: {help}"),
    )
}

/// Resolves the settings: each `OSIRIS_LLM_*` variable that is set (and not empty) wins over its key in
/// `llm:`. A missing endpoint, model or key is `LLM-E010`/`-E011`/`-E012` (exit 5) naming the variable to set;
/// an `llm.api_key` that is not a `${VAR}` reference is `LLM-E013` and its value is never shown.
pub fn resolve(cfg: &LlmConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, Fail> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let provider = match var(ENV_PROVIDER) {
        Some(p) => match p.trim().to_ascii_lowercase().as_str() {
            "openai" => LlmProvider::Openai,
            "anthropic" => LlmProvider::Anthropic,
            other => {
                return Err(fail(
                    Code::LLM_E014,
                    format!("{ENV_PROVIDER} `{other}` is not a provider"),
                    format!(
                        "set {ENV_PROVIDER} to `openai` (any OpenAI-compatible Chat Completions endpoint) or `anthropic`"
                    ),
                ));
            }
        },
        None => cfg.provider.unwrap_or_default(),
    };
    let example = match provider {
        LlmProvider::Openai => {
            "https://api.openai.com/v1, or http://127.0.0.1:8080/v1 for a local server"
        }
        LlmProvider::Anthropic => "https://api.anthropic.com/v1",
    };
    let base_url = var(ENV_BASE_URL)
        .or_else(|| cfg.base_url.clone().filter(|u| !u.trim().is_empty()))
        .ok_or_else(|| {
            fail(
                Code::LLM_E010,
                "no model endpoint is configured".to_string(),
                format!("set {ENV_BASE_URL} (e.g. {example}) or `llm.base_url` in osiris.yaml"),
            )
        })?;
    let base_url = base_url.trim().trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(fail(
            Code::LLM_E010,
            format!("the model endpoint `{base_url}` is not an http:// or https:// URL"),
            format!("set {ENV_BASE_URL} (or `llm.base_url`) to a URL such as {example}"),
        ));
    }
    let model = var(ENV_MODEL)
        .or_else(|| cfg.model.clone().filter(|m| !m.trim().is_empty()))
        .ok_or_else(|| {
            fail(
                Code::LLM_E011,
                "no model is configured".to_string(),
                format!("set {ENV_MODEL} (e.g. gpt-4o-mini, claude-sonnet-4-5, or the name a local server serves) or `llm.model` in osiris.yaml"),
            )
        })?;
    let api_key = match var(ENV_API_KEY) {
        Some(k) => Some(ApiKey::new(k.trim())),
        None => {
            match &cfg.api_key {
                Some(reference) => {
                    let name = reference
                    .trim()
                    .strip_prefix("${")
                    .and_then(|r| r.strip_suffix('}'))
                    .filter(|n| {
                        !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
                    .ok_or_else(|| {
                        fail(
                            Code::LLM_E013,
                            "`llm.api_key` in osiris.yaml is not a reference to an environment variable".to_string(),
                            format!("never write the key into osiris.yaml: write `api_key: \"${{MY_KEY_VARIABLE}}\"` and export the key in that variable (or in {ENV_API_KEY})"),
                        )
                    })?;
                    Some(ApiKey::new(var(name).ok_or_else(|| {
                    fail(
                        Code::LLM_E012,
                        format!("`{name}`, named by `llm.api_key` in osiris.yaml, is not set"),
                        format!("export {name} (or {ENV_API_KEY}) with the API key"),
                    )
                })?.trim()))
                }
                None => None,
            }
        }
    };
    if api_key.is_none() && !is_loopback(&base_url) {
        return Err(fail(
            Code::LLM_E012,
            format!("no API key for the model endpoint `{base_url}`"),
            format!(
                "set {ENV_API_KEY} (or `llm.api_key: \"${{VAR}}\"` in osiris.yaml); only an endpoint on this machine (127.0.0.1, localhost) may go without one"
            ),
        ));
    }
    let number = |name: &str| -> Result<Option<u64>, Fail> {
        match var(name) {
            None => Ok(None),
            Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                fail(
                    Code::LLM_E014,
                    format!("{name} `{}` is not a whole number", v.trim()),
                    format!("set {name} to a number, or unset it"),
                )
            }),
        }
    };
    let timeout = number(ENV_TIMEOUT)?
        .or(cfg.timeout_seconds)
        .unwrap_or(DEFAULT_TIMEOUT_SECS)
        .max(1);
    let max_retries = number(ENV_MAX_RETRIES)?
        .map(|n| n.min(10) as u32)
        .or(cfg.max_retries)
        .unwrap_or(DEFAULT_MAX_RETRIES)
        .min(10);
    Ok(Settings {
        provider,
        base_url,
        model: model.trim().to_string(),
        api_key,
        timeout: Duration::from_secs(timeout),
        max_retries,
    })
}

/// The URL's host is 127.0.0.0/8, `::1` or `localhost`.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_wins_over_osiris_yaml() {
        let cfg = LlmConfig {
            provider: Some(LlmProvider::Anthropic),
            base_url: Some("https://api.anthropic.com/v1/".into()),
            model: Some("from-yaml".into()),
            api_key: Some("${MY_KEY}".into()),
            timeout_seconds: Some(30),
            max_retries: Some(1),
        };
        let s = resolve(&cfg, &env(&[("MY_KEY", "k-123")])).unwrap();
        assert_eq!(s.provider, LlmProvider::Anthropic);
        assert_eq!(s.endpoint(), "https://api.anthropic.com/v1/messages");
        assert_eq!(s.model, "from-yaml");
        assert_eq!(s.api_key.as_ref().unwrap().expose(), "k-123");
        assert_eq!(s.timeout, Duration::from_secs(30));
        let s = resolve(
            &cfg,
            &env(&[
                (ENV_PROVIDER, "openai"),
                (ENV_BASE_URL, "http://127.0.0.1:9/v1"),
                (ENV_MODEL, "m"),
                (ENV_API_KEY, "k-env"),
                (ENV_TIMEOUT, "5"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint(), "http://127.0.0.1:9/v1/chat/completions");
        assert_eq!(s.api_key.as_ref().unwrap().expose(), "k-env");
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.max_retries, 1);
        assert_eq!(format!("{s:?}").matches("k-env").count(), 0);
    }

    #[test]
    fn missing_endpoint_model_or_key_exit_5_naming_the_variable() {
        let none = LlmConfig::default();
        let e = resolve(&none, &env(&[])).unwrap_err();
        assert_eq!(e.exit, Exit::Config);
        assert!(e.message.contains(Code::LLM_E010.as_str()) && e.message.contains(ENV_BASE_URL));
        let e = resolve(&none, &env(&[(ENV_BASE_URL, "https://api.openai.com/v1")])).unwrap_err();
        assert!(e.message.contains(Code::LLM_E011.as_str()) && e.message.contains(ENV_MODEL));
        let e = resolve(
            &none,
            &env(&[
                (ENV_BASE_URL, "https://api.openai.com/v1"),
                (ENV_MODEL, "m"),
            ]),
        )
        .unwrap_err();
        assert!(e.message.contains(Code::LLM_E012.as_str()) && e.message.contains(ENV_API_KEY));
        // a local server needs no key
        let s = resolve(
            &none,
            &env(&[
                (ENV_BASE_URL, "http://localhost:11434/v1"),
                (ENV_MODEL, "m"),
            ]),
        )
        .unwrap();
        assert!(s.api_key.is_none());
    }

    #[test]
    fn a_literal_key_in_osiris_yaml_is_refused_without_showing_it() {
        let cfg = LlmConfig {
            base_url: Some("https://api.openai.com/v1".into()),
            model: Some("m".into()),
            api_key: Some("sk-literal-secret".into()),
            ..Default::default()
        };
        let e = resolve(&cfg, &env(&[])).unwrap_err();
        assert!(e.message.contains(Code::LLM_E013.as_str()), "{}", e.message);
        assert!(!e.message.contains("sk-literal-secret"));
    }

    #[test]
    fn loopback_hosts() {
        for u in [
            "http://127.0.0.1:8080/v1",
            "http://localhost/v1",
            "http://[::1]:8000/v1",
            "http://127.1.2.3/v1",
        ] {
            assert!(is_loopback(u), "{u}");
        }
        for u in [
            "https://api.openai.com/v1",
            "http://10.0.0.1/v1",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback(u), "{u}");
        }
    }
}
