//! `graphql.extractor`: posts a GraphQL query, turns the records at `data_path` into Arrow record batches, one
//! batch per page, following cursors while the API says there is a next page.
//!
//! `run` fetches the first page (to fix the schema); every later page is fetched as the host pulls the stream.
//! Invariant: no message or log line built here contains a header value, the token or the user name. Errors
//! quote the endpoint, HTTP statuses and the API's own GraphQL error messages only.

use crate::ordered::Json;
use crate::records::{self, Row, kind, walk};
use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use base64::Engine;
use osiris_plugin_sdk::{Context, Driver, ErrorKind, PluginError, Streams};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::time::Duration;

pub const NAME: &str = "graphql.extractor";

/// Largest response body accepted.
const MAX_BODY: u64 = 512 * 1024 * 1024;
/// Longest wait a `Retry-After` header may ask for.
const MAX_RETRY_AFTER_SECS: u64 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    #[allow(dead_code)]
    connection: Option<String>,
    #[serde(default)]
    endpoint: Option<String>,
    query: String,
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    auth_type: Option<String>,
    #[serde(default)]
    auth_token: Option<String>,
    #[serde(default)]
    auth_username: Option<String>,
    #[serde(default)]
    auth_header_name: Option<String>,
    #[serde(default)]
    pagination_enabled: bool,
    #[serde(default = "default_pagination_path")]
    pagination_path: String,
    #[serde(default = "default_cursor_field")]
    pagination_cursor_field: String,
    #[serde(default = "default_has_next_field")]
    pagination_has_next_field: String,
    #[serde(default = "default_variable_name")]
    pagination_variable_name: String,
    #[serde(default)]
    max_pages: u64,
    #[serde(default = "default_data_path")]
    data_path: String,
    #[serde(default = "yes")]
    flatten_result: bool,
    #[serde(default = "default_timeout")]
    timeout: u64,
    #[serde(default = "default_max_retries")]
    max_retries: u32,
    #[serde(default = "default_retry_delay")]
    retry_delay: f64,
    #[serde(default = "yes")]
    validate_ssl: bool,
    #[serde(default)]
    incremental: Option<Incremental>,
    /// The host's read window (incremental runs): the mark goes into `incremental.variable`.
    #[serde(default, rename = "_window")]
    window: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Incremental {
    cursor: Value,
    variable: String,
    #[serde(default)]
    initial_value: Option<Value>,
    #[serde(default)]
    primary_key: Option<Value>,
}

impl Config {
    /// The query variables: `variables`, plus the incremental mark (or `initial_value`) under
    /// `incremental.variable` when the host passed a window. Without one the variable is not sent (null in the
    /// query), so the first run reads everything.
    fn variables(&self) -> Map<String, Value> {
        let mut vars = self.variables.clone();
        if let (Some(inc), Some(w)) = (&self.incremental, &self.window)
            && let Some(v) = w.pointer("/where/0/values/0")
        {
            vars.insert(inc.variable.clone(), v.clone());
        }
        vars
    }
}

fn default_pagination_path() -> String {
    "data.pageInfo".into()
}
fn default_cursor_field() -> String {
    "endCursor".into()
}
fn default_has_next_field() -> String {
    "hasNextPage".into()
}
fn default_variable_name() -> String {
    "after".into()
}
fn default_data_path() -> String {
    "data".into()
}
fn yes() -> bool {
    true
}
fn default_timeout() -> u64 {
    30
}
fn default_max_retries() -> u32 {
    3
}
fn default_retry_delay() -> f64 {
    1.0
}

/// The step config with the connection's fields underneath: step fields win. Connection keys the spec does not
/// know (e.g. `default`) are dropped.
fn merged(config: &Value, ctx: &Context) -> Value {
    const CONNECTION_FIELDS: [&str; 6] = [
        "endpoint",
        "headers",
        "auth_type",
        "auth_token",
        "auth_username",
        "auth_header_name",
    ];
    let mut out = Map::new();
    if let Some(Value::Object(conn)) = ctx.connection() {
        for (k, v) in conn {
            if CONNECTION_FIELDS.contains(&k.as_str()) {
                out.insert(k, v);
            }
        }
    }
    if let Value::Object(cfg) = config {
        for (k, v) in cfg {
            if k != "component" {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Everything needed to send requests.
struct Client {
    agent: ureq::Agent,
    endpoint: String,
    /// Header name and value; values are secret and never formatted into text.
    headers: Vec<(String, String)>,
    query: String,
    max_retries: u32,
    retry_delay: f64,
    ctx: Context,
}

impl Client {
    fn new(cfg: &Config, ctx: &Context) -> Result<Client, PluginError> {
        let endpoint = cfg.endpoint.clone().filter(|e| !e.is_empty()).ok_or_else(|| {
            PluginError::config("no `endpoint`: neither the step nor its connection names the GraphQL URL")
                .with_help("set `endpoint: https://…/graphql` in the step, or in the `@graphql.<alias>` connection")
        })?;
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(PluginError::config(format!(
                "`endpoint` `{endpoint}` is not an http:// or https:// URL"
            )));
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (k, v) in &cfg.headers {
            let v = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                _ => {
                    return Err(PluginError::config(format!(
                        "header `{k}` must be a string, not {}",
                        records::value_kind(v)
                    )));
                }
            };
            headers.push((k.clone(), v));
        }
        let token = cfg.auth_token.as_deref().filter(|t| !t.is_empty());
        let auth_type = cfg.auth_type.as_deref().unwrap_or("none");
        let need_token = |what: &str| {
            token.ok_or_else(|| {
                PluginError::config(format!("{what} authentication needs `auth_token`"))
                    .with_help("set `auth_token` in the `@graphql.<alias>` connection (e.g. `auth_token: ${GRAPHQL_TOKEN}`)")
            })
        };
        match auth_type {
            "none" => {}
            "bearer" => {
                let t = need_token("bearer")?;
                headers.push(("Authorization".into(), format!("Bearer {t}")));
            }
            "basic" => {
                let t = need_token("basic")?;
                let user = cfg
                    .auth_username
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        PluginError::config("basic authentication needs `auth_username`").with_help(
                            "set `auth_username` and `auth_token` (the password) in the connection",
                        )
                    })?;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{t}"));
                headers.push(("Authorization".into(), format!("Basic {encoded}")));
            }
            "api_key" => {
                let t = need_token("api_key")?;
                let name = cfg
                    .auth_header_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "X-API-Key".into());
                headers.push((name, t.to_string()));
            }
            other => {
                return Err(PluginError::config(format!(
                    "`auth_type` `{other}` is not one of none, bearer, basic, api_key"
                )));
            }
        }
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(!cfg.validate_ssl)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(cfg.timeout.max(1))))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        if !cfg.validate_ssl {
            ctx.warn(&format!(
                "TLS certificate verification is off for {endpoint} (`validate_ssl: false`)"
            ));
        }
        Ok(Client {
            agent,
            endpoint,
            headers,
            query: cfg.query.clone(),
            max_retries: cfg.max_retries,
            retry_delay: cfg.retry_delay.max(0.0),
            ctx: ctx.clone(),
        })
    }

    /// One page: posts the query with `variables`, retrying network errors, 429 and 5xx with exponential
    /// backoff (a `Retry-After` in seconds wins). Returns the parsed response, which has no GraphQL `errors`.
    fn fetch(&self, variables: &Map<String, Value>, page: u64) -> Result<Json, PluginError> {
        let body = json!({ "query": self.query, "variables": variables }).to_string();
        let mut attempt: u32 = 0;
        loop {
            self.ctx.check_cancelled()?;
            let (why, retry_after) = match self.send_once(&body) {
                Ok(r) if (200..300).contains(&r.status) => return self.parse(&r.text, page),
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    (format!("HTTP {}", r.status), r.retry_after)
                }
                Ok(r) => return Err(self.http_error(r.status, &r.text, page)),
                // Retrying cannot make a refused certificate acceptable.
                Err(Failure::Certificate(why)) => return Err(self.certificate_error(&why, page)),
                Err(Failure::Transport(why)) => (why, None),
            };
            if attempt >= self.max_retries {
                return Err(PluginError::new(
                    ErrorKind::Connection,
                    "GRAPHQL-HTTP",
                    format!(
                        "page {page}: {} failed after {} attempt(s): {why}",
                        self.endpoint,
                        attempt + 1
                    ),
                )
                .with_help("check that the endpoint is reachable; raise `max_retries` or `retry_delay` for a flaky or rate-limited API"));
            }
            let backoff = self.retry_delay * 2f64.powi(attempt as i32);
            let wait = retry_after
                .map(|s| s.min(MAX_RETRY_AFTER_SECS) as f64)
                .unwrap_or(backoff);
            attempt += 1;
            self.ctx.warn(&format!(
                "page {page}: {} answered {why}; retry {attempt}/{} in {wait:.1}s",
                self.endpoint, self.max_retries
            ));
            self.sleep(Duration::from_secs_f64(wait))?;
        }
    }

    /// Sleeps in short slices so cancellation is seen.
    fn sleep(&self, d: Duration) -> Result<(), PluginError> {
        let until = std::time::Instant::now() + d;
        while std::time::Instant::now() < until {
            self.ctx.check_cancelled()?;
            let left = until.saturating_duration_since(std::time::Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        Ok(())
    }

    /// Sends once: the reply, or why there is none (a text that never carries header values).
    fn send_once(&self, body: &str) -> Result<Reply, Failure> {
        let mut req = self
            .agent
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send(body).map_err(|e| match certificate_problem(&e) {
            Some(why) => Failure::Certificate(why),
            None => Failure::Transport(transport_error(&e)),
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.trim().parse::<u64>().ok());
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| {
                Failure::Transport(format!(
                    "reading the response failed: {}",
                    transport_error(&e)
                ))
            })?;
        Ok(Reply {
            status,
            retry_after,
            text,
        })
    }

    /// The server's TLS certificate was refused (`validate_ssl: true`): names the endpoint, why, and the fixes.
    fn certificate_error(&self, why: &str, page: u64) -> PluginError {
        PluginError::new(
            ErrorKind::Connection,
            "GRAPHQL-TLS",
            format!(
                "page {page}: the TLS certificate of {} is not trusted: {why}",
                self.endpoint
            ),
        )
        .with_help(
            "give the server a certificate from a public certificate authority (osiris trusts the Mozilla root \
             store it is built with), or, for a test server or a trusted network only, set `validate_ssl: false` \
             in the step's config to skip certificate verification",
        )
    }

    fn http_error(&self, status: u16, text: &str, page: u64) -> PluginError {
        let snippet: String = text.chars().take(300).collect();
        let (kind, code, help) = match status {
            401 | 403 => (
                ErrorKind::Auth,
                "GRAPHQL-AUTH",
                "check `auth_type` and the credentials of the connection",
            ),
            404 => (ErrorKind::Config, "GRAPHQL-HTTP", "check `endpoint`"),
            _ => (
                ErrorKind::Data,
                "GRAPHQL-HTTP",
                "check the query and its variables",
            ),
        };
        PluginError::new(
            kind,
            code,
            format!(
                "page {page}: {} answered HTTP {status}: {}",
                self.endpoint,
                snippet.trim()
            ),
        )
        .with_help(help)
    }

    fn parse(&self, text: &str, page: u64) -> Result<Json, PluginError> {
        let v: Json = serde_json::from_str(text).map_err(|e| {
            PluginError::new(
                ErrorKind::Data,
                "GRAPHQL-RESPONSE",
                format!(
                    "page {page}: the response of {} is not JSON: {e}",
                    self.endpoint
                ),
            )
            .with_help("check that `endpoint` is the GraphQL URL (not a web page)")
        })?;
        if let Some(Json::Array(errors)) = v.get("errors")
            && !errors.is_empty()
        {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| match e.get("message") {
                    Some(Json::String(m)) => m.clone(),
                    _ => e.to_value().to_string(),
                })
                .collect();
            return Err(PluginError::new(
                ErrorKind::Data,
                "GRAPHQL-ERRORS",
                format!(
                    "page {page}: the GraphQL API answered with {} error(s): {}",
                    messages.len(),
                    messages.join("; ")
                ),
            )
            .with_help("fix the query or its variables"));
        }
        Ok(v)
    }
}

/// One HTTP answer. `retry_after` is the `Retry-After` header in seconds (an HTTP date is ignored).
struct Reply {
    status: u16,
    retry_after: Option<u64>,
    text: String,
}

/// Why a request got no reply.
enum Failure {
    /// The server's TLS certificate was refused: not retried.
    Certificate(String),
    /// Anything else (network, timeout, protocol): retried.
    Transport(String),
}

/// Why the server's certificate was refused, if that is what `e` is. rustls reports it from the handshake,
/// either directly or inside the I/O error of the first read or write.
fn certificate_problem(e: &ureq::Error) -> Option<String> {
    let tls: &rustls::Error = match e {
        ureq::Error::Rustls(r) => r,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    let rustls::Error::InvalidCertificate(c) = tls else {
        return None;
    };
    Some(match c {
        rustls::CertificateError::UnknownIssuer => {
            "it is signed by an unknown issuer (a self-signed \
             certificate, or an authority that is not trusted)"
                .to_string()
        }
        rustls::CertificateError::BadSignature => "its signature does not verify".to_string(),
        other => other.to_string(),
    })
}

fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the request timed out (see `timeout`)".into(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        ureq::Error::Http(_) => "a header name or value is not valid HTTP".into(),
        other => other.to_string(),
    }
}

/// The pager: which page comes next, and with which variables.
struct Pager {
    client: Client,
    variables: Map<String, Value>,
    data_path: String,
    flatten: bool,
    pagination: Option<Pagination>,
    max_pages: u64,
    pages: u64,
    done: bool,
}

struct Pagination {
    path: String,
    cursor_field: String,
    has_next_field: String,
    variable: String,
    last_cursor: Option<Value>,
}

impl Pager {
    /// Fetches the next page: its records (possibly none), or `None` when there is no next page.
    fn next_page(&mut self) -> Result<Option<Vec<Row>>, PluginError> {
        if self.done || (self.max_pages > 0 && self.pages >= self.max_pages) {
            self.done = true;
            return Ok(None);
        }
        self.pages += 1;
        let page = self.pages;
        let response = self.client.fetch(&self.variables, page)?;
        let rows = records::records(&response, &self.data_path, self.flatten)
            .map_err(|e| prefix(e, page))?;
        match &mut self.pagination {
            None => self.done = true,
            Some(p) => {
                let infos =
                    walk(&response, &p.path, "pagination_path").map_err(|e| prefix(e, page))?;
                let info = match infos.as_slice() {
                    [one @ Json::Object(_)] => *one,
                    [] => {
                        self.done = true;
                        return Ok(Some(rows));
                    }
                    _ => {
                        return Err(PluginError::data(format!(
                            "page {page}: `pagination_path` `{}` must lead to one page-info object",
                            p.path
                        )));
                    }
                };
                let has_next = match info.get(&p.has_next_field) {
                    Some(Json::Bool(b)) => *b,
                    None | Some(Json::Null) => false,
                    Some(other) => {
                        return Err(PluginError::data(format!(
                            "page {page}: `{}.{}` is {}, not a boolean",
                            p.path,
                            p.has_next_field,
                            kind(other)
                        ))
                        .with_help("set `pagination_has_next_field` to the page-info field telling whether more pages exist"));
                    }
                };
                if !has_next {
                    self.done = true;
                } else {
                    let cursor = match info.get(&p.cursor_field) {
                        Some(c @ (Json::String(_) | Json::Number(_))) => c.to_value(),
                        _ => {
                            return Err(PluginError::data(format!(
                                "page {page}: `{}.{}` says there is a next page, but `{}.{}` holds no cursor",
                                p.path, p.has_next_field, p.path, p.cursor_field
                            ))
                            .with_help("set `pagination_cursor_field` to the page-info field holding the cursor, and select it in the query"));
                        }
                    };
                    if p.last_cursor.as_ref() == Some(&cursor) {
                        return Err(PluginError::data(format!(
                            "page {page}: the API returned the same cursor as for the previous page; stopping to avoid an endless loop"
                        ))
                        .with_help(format!(
                            "check that the query passes `${}` to the paginated field",
                            p.variable
                        )));
                    }
                    p.last_cursor = Some(cursor.clone());
                    self.variables.insert(p.variable.clone(), cursor);
                }
            }
        }
        Ok(Some(rows))
    }
}

fn prefix(mut e: PluginError, page: u64) -> PluginError {
    e.message = format!("page {page}: {}", e.message);
    e
}

pub struct GraphqlExtractor;

impl Driver for GraphqlExtractor {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        _inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let merged = merged(config, ctx);
        let cfg: Config = serde_json::from_value(merged).map_err(|e| {
            PluginError::config(format!("{NAME}: invalid config: {e}"))
                .with_help("`osiris components show graphql.extractor` lists the fields")
        })?;
        let client = Client::new(&cfg, ctx)?;
        ctx.debug(&format!("step `{step_id}`: querying {}", client.endpoint));
        let pagination = cfg.pagination_enabled.then(|| Pagination {
            path: cfg.pagination_path.clone(),
            cursor_field: cfg.pagination_cursor_field.clone(),
            has_next_field: cfg.pagination_has_next_field.clone(),
            variable: cfg.pagination_variable_name.clone(),
            last_cursor: None,
        });
        let mut pager = Pager {
            client,
            variables: cfg.variables(),
            data_path: cfg.data_path.clone(),
            flatten: cfg.flatten_result,
            pagination,
            max_pages: cfg.max_pages,
            pages: 0,
            done: false,
        };
        // The first page with records fixes the schema; empty leading pages are skipped.
        let mut first: Vec<Row> = Vec::new();
        while let Some(rows) = pager.next_page()? {
            if !rows.is_empty() {
                first = rows;
                break;
            }
        }
        let schema = records::infer(&first);
        let pending = if first.is_empty() {
            None
        } else {
            Some(records::batch(&schema, &first, pager.pages)?)
        };
        let stream = GraphqlStream {
            pager,
            schema,
            pending,
            rows: 0,
            ctx: ctx.clone(),
            finished: false,
        };
        let mut out = Streams::new();
        out.insert("df".to_string(), Box::new(stream));
        Ok(out)
    }
}

/// One page = one batch, fetched as the host pulls.
struct GraphqlStream {
    pager: Pager,
    schema: SchemaRef,
    pending: Option<RecordBatch>,
    rows: u64,
    ctx: Context,
    finished: bool,
}

impl GraphqlStream {
    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            self.ctx.metric("rows_read", self.rows as f64, Some("rows"));
            self.ctx.debug(&format!(
                "read {} rows in {} page(s)",
                self.rows, self.pager.pages
            ));
        }
    }
}

impl Iterator for GraphqlStream {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if let Some(b) = self.pending.take() {
            self.rows += b.num_rows() as u64;
            return Some(Ok(b));
        }
        loop {
            match self.pager.next_page() {
                Ok(None) => {
                    self.finish();
                    return None;
                }
                Ok(Some(rows)) if rows.is_empty() => continue,
                Ok(Some(rows)) => {
                    return match records::batch(&self.schema, &rows, self.pager.pages) {
                        Ok(b) => {
                            self.rows += b.num_rows() as u64;
                            Some(Ok(b))
                        }
                        Err(e) => {
                            self.finished = true;
                            Some(Err(e.into_arrow()))
                        }
                    };
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e.into_arrow()));
                }
            }
        }
    }
}

impl RecordBatchReader for GraphqlStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osiris_plugin_sdk::testing::TestContext;

    fn client(config: Value) -> Result<Client, PluginError> {
        let ctx = TestContext::new().context();
        let cfg: Config = serde_json::from_value(merged(&config, &ctx)).unwrap();
        Client::new(&cfg, &ctx)
    }

    #[test]
    fn basic_and_api_key_headers() {
        let c = client(
            json!({"endpoint": "http://h/g", "query": "{a}", "auth_type": "basic",
            "auth_username": "ann", "auth_token": "pw"}),
        )
        .unwrap();
        assert_eq!(
            c.headers,
            [("Authorization".to_string(), "Basic YW5uOnB3".to_string())]
        );
        let c = client(
            json!({"endpoint": "http://h/g", "query": "{a}", "auth_type": "api_key",
            "auth_token": "k", "headers": {"X-Trace": "t"}}),
        )
        .unwrap();
        assert_eq!(
            c.headers,
            [
                ("X-Trace".to_string(), "t".to_string()),
                ("X-API-Key".to_string(), "k".to_string())
            ]
        );
    }

    #[test]
    fn missing_endpoint_and_token_are_config_errors_without_secrets() {
        let e = client(json!({"query": "{a}", "auth_token": "s3cret"}))
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(
            e.message.contains("`endpoint`") && !e.message.contains("s3cret"),
            "{e}"
        );
        let e = client(
            json!({"endpoint": "http://h/g", "query": "{a}", "auth_type": "basic",
            "auth_token": "s3cret"}),
        )
        .err()
        .unwrap();
        assert!(
            e.message.contains("auth_username") && !e.message.contains("s3cret"),
            "{e}"
        );
    }

    #[test]
    fn refused_certificates_are_told_apart_from_network_errors() {
        let wrapped = |e: rustls::Error| {
            ureq::Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        let unknown = wrapped(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(
            certificate_problem(&unknown).is_some_and(|w| w.contains("unknown issuer")),
            "{unknown}"
        );
        let expired = ureq::Error::Rustls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert!(certificate_problem(&expired).is_some());
        // Not a certificate problem: retried as before.
        let refused = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(certificate_problem(&refused).is_none());
        assert!(certificate_problem(&wrapped(rustls::Error::DecryptError)).is_none());
    }
}
