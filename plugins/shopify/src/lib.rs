//! osiris-plugin-shopify: the osiris component `shopify.extractor` (customers, orders and products from the
//! Shopify Admin REST API).
//!
//! A third-party plugin: it depends on `osiris-plugin-sdk` only and is loaded from a plugin directory, never
//! linked into the host. `export_ocp!` exports the component under the entry symbol
//! `osiris_ocp_shopify_extractor`; `osiris plugins pack` writes that name into the package manifest.
//!
//! One page of the API is one record batch, fetched when the host pulls it. Every column is text: scalars as
//! their JSON text without quotes, nested objects and lists as JSON.
//!
//! Invariant: the access token is only ever written into the `X-Shopify-Access-Token` request header, and only
//! for URLs built from `shop_url`; it never reaches an error, a log line or a metric.

use osiris_plugin_sdk::arrow_array::{ArrayRef, RecordBatch, RecordBatchReader, StringArray};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use osiris_plugin_sdk::{BatchStream, Context, Driver, ErrorKind, PluginError, Streams};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The component's spec, embedded so the host can check it against the packaged copy.
pub const SPEC: &str = include_str!("../spec.yaml");

/// The component name (`name:` in spec.yaml).
pub const COMPONENT: &str = "shopify.extractor";

/// Longest wait a `Retry-After` header may ask for, in seconds.
const MAX_RETRY_AFTER_SECS: f64 = 60.0;
/// Largest response body read, in bytes.
const MAX_BODY: u64 = 256 * 1024 * 1024;
const RESOURCES: [&str; 3] = ["customers", "orders", "products"];

osiris_plugin_sdk::export_ocp! {
    entry: osiris_ocp_shopify_extractor,
    name: env!("CARGO_PKG_NAME"),
    version: env!("CARGO_PKG_VERSION"),
    components: [
        osiris_plugin_sdk::Component { name: COMPONENT, spec_yaml: SPEC, driver: || Box::new(ShopifyExtractor) },
    ],
}

/// The driver. One instance may serve several steps at once: per-step state lives in the stream.
pub struct ShopifyExtractor;

/// The step config, with the connection's `shop_url` and `access_token` underneath.
struct Config {
    shop_url: String,
    access_token: String,
    api_version: String,
    resource: String,
    limit: u64,
    max_pages: u64,
    fields: Option<Vec<String>>,
    timeout: u64,
    max_retries: u32,
}

fn config_error(message: impl Into<String>) -> PluginError {
    PluginError::config(format!("{COMPONENT}: {}", message.into()))
        .with_help("`osiris components spec shopify.extractor` lists the fields")
}

fn uint(cfg: &Map<String, Value>, key: &str, default: u64) -> Result<u64, PluginError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            config_error(format!("`{key}` must be a non-negative integer, not `{v}`"))
        }),
    }
}

/// Non-secret text field.
fn text(cfg: &Map<String, Value>, key: &str) -> Result<Option<String>, PluginError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(config_error(format!("`{key}` must be a string, not `{v}`"))),
    }
}

impl Config {
    fn parse(step_id: &str, config: &Value, ctx: &Context) -> Result<Config, PluginError> {
        let mut cfg = Map::new();
        if let Some(Value::Object(conn)) = ctx.connection() {
            for (k, v) in conn {
                if k == "shop_url" || k == "access_token" {
                    cfg.insert(k, v);
                }
            }
        }
        if let Value::Object(step) = config {
            for (k, v) in step {
                cfg.insert(k.clone(), v.clone());
            }
        }
        let shop_url = text(&cfg, "shop_url")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                PluginError::config(format!(
                    "step `{step_id}`: no `shop_url`: neither the step nor its connection names the shop"
                ))
                .with_help("set `shop_url: https://<shop>.myshopify.com` in the `@shopify.<alias>` connection")
            })?;
        if !(shop_url.starts_with("http://") || shop_url.starts_with("https://")) {
            return Err(config_error(format!(
                "`shop_url` `{shop_url}` is not an http:// or https:// URL"
            )));
        }
        let access_token = match cfg.get("access_token") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            // The value is secret: say what is wrong without showing it.
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(PluginError::config(format!(
                    "step `{step_id}`: no `access_token` for {shop_url}"
                ))
                .with_help(
                    "set `access_token: ${SHOPIFY_TOKEN}` in the `@shopify.<alias>` connection",
                ));
            }
            Some(_) => return Err(config_error("`access_token` must be a string")),
        };
        let resource = text(&cfg, "resource")?.ok_or_else(|| {
            config_error(format!(
                "`resource` is required: one of {}",
                RESOURCES.join(", ")
            ))
        })?;
        if !RESOURCES.contains(&resource.as_str()) {
            return Err(config_error(format!(
                "`resource` `{resource}` is not one of {}",
                RESOURCES.join(", ")
            )));
        }
        let api_version = text(&cfg, "api_version")?.unwrap_or_else(|| "2024-07".into());
        if api_version.is_empty()
            || !api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(config_error(format!(
                "`api_version` `{api_version}` is not a version like `2024-07`"
            )));
        }
        let limit = uint(&cfg, "limit", 250)?;
        if !(1..=250).contains(&limit) {
            return Err(config_error(format!(
                "`limit` must be between 1 and 250, not {limit}"
            )));
        }
        let fields = match cfg.get("fields") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut out: Vec<String> = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) if !s.is_empty() && !out.iter().any(|o| o == s) => {
                            out.push(s.to_string())
                        }
                        _ => {
                            return Err(config_error(format!(
                                "`fields` must list distinct, non-empty field names; `{item}` is not one"
                            )));
                        }
                    }
                }
                Some(out)
            }
            Some(v) => {
                return Err(config_error(format!(
                    "`fields` must be a non-empty list of field names, not `{v}`"
                )));
            }
        };
        Ok(Config {
            shop_url: shop_url.trim_end_matches('/').to_string(),
            access_token,
            api_version,
            resource,
            limit,
            max_pages: uint(&cfg, "max_pages", 0)?,
            fields,
            timeout: uint(&cfg, "timeout", 30)?.max(1),
            max_retries: u32::try_from(uint(&cfg, "max_retries", 3)?).unwrap_or(u32::MAX),
        })
    }

    /// The list endpoint, without query string.
    fn endpoint(&self) -> String {
        format!(
            "{}/admin/api/{}/{}.json",
            self.shop_url, self.api_version, self.resource
        )
    }
}

/// One HTTP answer.
struct Reply {
    status: u16,
    /// `Retry-After` in seconds (may be fractional; an HTTP date is ignored).
    retry_after: Option<f64>,
    /// The `page_info` cursor of the `rel="next"` link, if any.
    next: Option<String>,
    text: String,
}

fn transport_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the request timed out (see `timeout`)".into(),
        ureq::Error::Io(io) => format!("network error: {io}"),
        ureq::Error::Http(_) => "a header name or value is not valid HTTP".into(),
        ureq::Error::ConnectionFailed => "the connection failed".into(),
        ureq::Error::HostNotFound => "the host was not found".into(),
        other => other.to_string(),
    }
}

/// The `page_info` of the `rel="next"` entry of a `Link` header:
/// `<https://shop/admin/api/v/customers.json?limit=2&page_info=abc>; rel="next", <...>; rel="previous"`.
pub fn next_page_info(link: &str) -> Option<String> {
    link.split(',').find_map(|entry| {
        let (url, params) = entry.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        if !is_next {
            return None;
        }
        let url = url.trim().trim_start_matches('<').trim_end_matches('>');
        let query = url.split_once('?')?.1;
        query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == "page_info" && !v.is_empty()).then(|| v.to_string())
        })
    })
}

/// Fetches pages on demand.
struct Pager {
    cfg: Config,
    agent: ureq::Agent,
    ctx: Context,
    /// The cursor of the next page; `None` before the first page.
    page_info: Option<String>,
    pages: u64,
    done: bool,
}

impl Pager {
    fn new(cfg: Config, ctx: &Context) -> Pager {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(cfg.timeout)))
            .http_status_as_error(false)
            .build()
            .into();
        Pager {
            cfg,
            agent,
            ctx: ctx.clone(),
            page_info: None,
            pages: 0,
            done: false,
        }
    }

    /// The URL of the next page. Only the cursor is taken from the server's `Link` header: the token goes to
    /// `shop_url` and nowhere else.
    fn url(&self) -> String {
        let mut url = format!("{}?limit={}", self.cfg.endpoint(), self.cfg.limit);
        if let Some(fields) = &self.cfg.fields {
            url.push_str("&fields=");
            url.push_str(&fields.join(","));
        }
        if let Some(p) = &self.page_info {
            url.push_str("&page_info=");
            url.push_str(p);
        }
        url
    }

    fn send_once(&self, url: &str) -> Result<Reply, String> {
        let resp = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .header("X-Shopify-Access-Token", self.cfg.access_token.as_str())
            .call()
            .map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after")
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0);
        let next = header("link").as_deref().and_then(next_page_info);
        let text = resp
            .into_body()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| format!("reading the response failed: {}", transport_error(&e)))?;
        Ok(Reply {
            status,
            retry_after,
            next,
            text,
        })
    }

    /// One page, retrying 429, 5xx and network errors up to `max_retries` times (`Retry-After` wins over the
    /// exponential backoff).
    fn fetch(&self, page: u64) -> Result<Reply, PluginError> {
        let url = self.url();
        let endpoint = self.cfg.endpoint();
        let mut attempt: u32 = 0;
        loop {
            self.ctx.check_cancelled()?;
            let (why, retry_after, network) = match self.send_once(&url) {
                Ok(r) if (200..300).contains(&r.status) => return Ok(r),
                Ok(r) if r.status == 429 || r.status >= 500 => {
                    (format!("HTTP {}", r.status), r.retry_after, false)
                }
                Ok(r) => return Err(self.http_error(r.status, &r.text, page)),
                Err(e) => (e, None, true),
            };
            if attempt >= self.cfg.max_retries {
                let kind = if network {
                    ErrorKind::Connection
                } else {
                    ErrorKind::Data
                };
                return Err(PluginError::new(
                    kind,
                    if network { "SHOPIFY-CONNECTION" } else { "SHOPIFY-HTTP" },
                    format!(
                        "page {page}: {endpoint} failed after {} attempt(s): {why}",
                        attempt + 1
                    ),
                )
                .with_help("check that `shop_url` is reachable; raise `max_retries` for a rate-limited shop"));
            }
            let backoff = 0.5 * 2f64.powi(attempt as i32);
            let wait = retry_after
                .map(|s| s.min(MAX_RETRY_AFTER_SECS))
                .unwrap_or(backoff);
            attempt += 1;
            self.ctx.warn(&format!(
                "page {page}: {endpoint} answered {why}; retry {attempt}/{} in {wait:.1}s",
                self.cfg.max_retries
            ));
            self.sleep(Duration::from_secs_f64(wait))?;
        }
    }

    /// Sleeps in short slices so cancellation is seen.
    fn sleep(&self, d: Duration) -> Result<(), PluginError> {
        let until = Instant::now() + d;
        while Instant::now() < until {
            self.ctx.check_cancelled()?;
            let left = until.saturating_duration_since(Instant::now());
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
        Ok(())
    }

    fn http_error(&self, status: u16, text: &str, page: u64) -> PluginError {
        let snippet: String = text.chars().take(300).collect();
        let (kind, code, help) = match status {
            401 | 403 => (
                ErrorKind::Auth,
                "SHOPIFY-AUTH",
                "check the `access_token` of the connection and the app's access scopes",
            ),
            404 => (
                ErrorKind::Config,
                "SHOPIFY-HTTP",
                "check `shop_url`, `api_version` and `resource`",
            ),
            _ => (
                ErrorKind::Data,
                "SHOPIFY-HTTP",
                "check the step's config (`fields`, `limit`)",
            ),
        };
        let snippet = snippet.replace(&self.cfg.access_token, "***");
        PluginError::new(
            kind,
            code,
            format!(
                "page {page}: {} answered HTTP {status}: {}",
                self.cfg.endpoint(),
                snippet.trim()
            ),
        )
        .with_help(help)
    }

    /// The records of the next page, or `None` when there is no next page.
    fn next_page(&mut self) -> Result<Option<Vec<Map<String, Value>>>, PluginError> {
        if self.done || (self.cfg.max_pages > 0 && self.pages >= self.cfg.max_pages) {
            self.done = true;
            return Ok(None);
        }
        let page = self.pages + 1;
        let reply = self.fetch(page)?;
        self.pages = page;
        let resource = &self.cfg.resource;
        let body: Value = serde_json::from_str(&reply.text).map_err(|e| {
            PluginError::new(
                ErrorKind::Data,
                "SHOPIFY-RESPONSE",
                format!(
                    "page {page}: the response of {} is not JSON: {e}",
                    self.cfg.endpoint()
                ),
            )
            .with_help(
                "check that `shop_url` is the shop's base URL (e.g. https://acme.myshopify.com)",
            )
        })?;
        let Some(Value::Array(items)) = body.get(resource.as_str()) else {
            return Err(PluginError::new(
                ErrorKind::Data,
                "SHOPIFY-RESPONSE",
                format!(
                    "page {page}: the response of {} has no `{resource}` list",
                    self.cfg.endpoint()
                ),
            )
            .with_help("check `resource` and `api_version`"));
        };
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(m) => rows.push(m.clone()),
                other => {
                    return Err(PluginError::new(
                        ErrorKind::Data,
                        "SHOPIFY-RESPONSE",
                        format!(
                            "page {page}: an element of `{resource}` is not an object: `{other}`"
                        ),
                    ));
                }
            }
        }
        match reply.next {
            Some(p) => self.page_info = Some(p),
            None => self.done = true,
        }
        Ok(Some(rows))
    }
}

/// A cell: scalars as their text, nested values as JSON, null and missing as null.
fn cell(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        nested => Some(nested.to_string()),
    }
}

fn batch(schema: &SchemaRef, rows: &[Map<String, Value>]) -> Result<RecordBatch, PluginError> {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            Arc::new(StringArray::from_iter(
                rows.iter().map(|r| cell(r.get(f.name()))),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| {
        PluginError::new(
            ErrorKind::Internal,
            "SHOPIFY-BATCH",
            format!("building a record batch failed (a bug, please report it): {e}"),
        )
    })
}

fn schema_of(names: impl IntoIterator<Item = String>) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .into_iter()
            .map(|n| Field::new(n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

impl Driver for ShopifyExtractor {
    fn run(
        &self,
        step_id: &str,
        config: &Value,
        _inputs: Streams,
        ctx: &Context,
    ) -> Result<Streams, PluginError> {
        let cfg = Config::parse(step_id, config, ctx)?;
        ctx.debug(&format!("step `{step_id}`: reading {}", cfg.endpoint()));
        let fields = cfg.fields.clone();
        let mut pager = Pager::new(cfg, ctx);
        // The columns: `fields`, or the fields of the first page with records (alphabetically).
        let mut pending = None;
        let schema = match fields {
            Some(f) => schema_of(f),
            None => {
                let mut first = Vec::new();
                while let Some(rows) = pager.next_page()? {
                    if !rows.is_empty() {
                        first = rows;
                        break;
                    }
                }
                let names: BTreeSet<String> =
                    first.iter().flat_map(|r| r.keys().cloned()).collect();
                let schema = schema_of(names);
                if !first.is_empty() {
                    pending = Some(batch(&schema, &first)?);
                }
                schema
            }
        };
        let stream = ShopifyStream {
            pager,
            schema,
            pending,
            rows: 0,
            warned_extra: false,
            finished: false,
        };
        Ok(Streams::from([(
            "df".to_string(),
            Box::new(stream) as BatchStream,
        )]))
    }
}

/// One page = one batch, fetched as the host pulls.
struct ShopifyStream {
    pager: Pager,
    schema: SchemaRef,
    pending: Option<RecordBatch>,
    rows: u64,
    warned_extra: bool,
    finished: bool,
}

impl ShopifyStream {
    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            let ctx = &self.pager.ctx;
            ctx.metric("rows_read", self.rows as f64, Some("rows"));
            ctx.debug(&format!(
                "read {} rows in {} page(s)",
                self.rows, self.pager.pages
            ));
        }
    }

    fn fail(&mut self, e: PluginError) -> Option<Result<RecordBatch, ArrowError>> {
        self.finished = true;
        Some(Err(e.into_arrow()))
    }
}

impl Iterator for ShopifyStream {
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
                    if !self.warned_extra
                        && let Some(extra) = rows
                            .iter()
                            .flat_map(|r| r.keys())
                            .find(|k| self.schema.field_with_name(k).is_err())
                    {
                        self.warned_extra = true;
                        self.pager.ctx.warn(&format!(
                            "page {}: field `{extra}` was not on the first page and is left out; list the columns in `fields`",
                            self.pager.pages
                        ));
                    }
                    return match batch(&self.schema, &rows) {
                        Ok(b) => {
                            self.rows += b.num_rows() as u64;
                            Some(Ok(b))
                        }
                        Err(e) => self.fail(e),
                    };
                }
                Err(e) => return self.fail(e),
            }
        }
    }
}

impl RecordBatchReader for ShopifyStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::next_page_info;

    #[test]
    fn reads_the_next_cursor_of_a_link_header() {
        let link = "<https://a.myshopify.com/admin/api/2024-07/customers.json?limit=2&page_info=prev1>; rel=\"previous\", \
                    <https://a.myshopify.com/admin/api/2024-07/customers.json?limit=2&page_info=nxt2>; rel=\"next\"";
        assert_eq!(next_page_info(link).as_deref(), Some("nxt2"));
        let only_prev = "<https://a/x.json?page_info=p>; rel=\"previous\"";
        assert_eq!(next_page_info(only_prev), None);
        assert_eq!(next_page_info(""), None);
    }
}
