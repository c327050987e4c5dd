//! Discovery: what a connection holds (tables, columns with source and Arrow types, primary keys, row-count
//! estimates, sample rows), asked of the family's extractor through the plugin host API, and cached in
//! `.osiris/cache/discovery/`.
//!
//! INVARIANTS:
//! - The cache key is a fingerprint of everything the result depends on: component name and version, spec
//!   fingerprint, the connection reference, the canonical options, and a hash of the resolved connection's
//!   non-secret fields. Changing any of them misses the cache; no "stale entry kept after options changed".
//! - No secret value is part of the key material or of a cache file: secret fields are left out of the
//!   connection hash (URL-like values keep everything but their password), and the stored result has already
//!   been through the redactor.

use crate::modules::{ModuleSet, OneShotCtx, Provider};
use osiris_core::exit::{Exit, Fail};
use osiris_core::secrets::{Redactor, is_secret_key};
use osiris_plugin_sdk::ContextBackend;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where cache files live, relative to the project directory.
pub const CACHE_DIR: &str = ".osiris/cache/discovery";

/// Options that change what `discover` returns (part of the cache key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub samples: u64,
}

impl Options {
    /// The canonical JSON form, also the config handed to the driver (with `connection`).
    pub fn canonical(&self) -> Value {
        json!({ "samples": self.samples })
    }
}

/// The outcome of one discovery (fresh or from the cache).
#[derive(Debug, Clone)]
pub struct Discovered {
    pub connection: String,
    pub component: String,
    pub cached: bool,
    pub fetched_at: String,
    pub fingerprint: String,
    /// The driver's JSON, secrets masked.
    pub result: Value,
}

impl Discovered {
    pub fn to_json(&self) -> Value {
        json!({
            "connection": self.connection,
            "component": self.component,
            "cached": self.cached,
            "fetched_at": self.fetched_at,
            "fingerprint": self.fingerprint,
            "result": self.result,
        })
    }
}

/// The extractor of `family` that discovery asks: `<family>.extractor` first, then any `<family>.*extractor`.
pub fn pick_component(modules: &ModuleSet, family: &str) -> Result<(String, Provider), Fail> {
    let mut candidates: Vec<(&String, &Provider)> = modules
        .components()
        .filter(|(name, _)| {
            name.split_once('.')
                .is_some_and(|(f, role)| f == family && role.ends_with("extractor"))
        })
        .collect();
    candidates.sort_by_key(|(name, _)| (name.as_str() != format!("{family}.extractor"), *name));
    match candidates.first() {
        Some((name, p)) => Ok(((*name).clone(), (*p).clone())),
        None => {
            let families: std::collections::BTreeSet<&str> = modules
                .components()
                .filter(|(n, _)| n.ends_with("extractor"))
                .filter_map(|(n, _)| n.split_once('.').map(|(f, _)| f))
                .collect();
            Err(Fail::new(
                Exit::Validation,
                format!(
                    "error: connection family `{family}` has no extractor component, so it cannot be discovered\n  = help: families with an extractor: {}",
                    families
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }
}

/// Hash of the resolved connection without its secrets: pointing an alias at another host or database
/// changes it; rotating a password does not.
pub fn connection_hash(fields: &Value, secret_values: &[String]) -> String {
    let mut kept = serde_json::Map::new();
    if let Some(obj) = fields.as_object() {
        for (k, v) in obj {
            let url_like = v.as_str().is_some_and(|s| s.contains("://"));
            if is_secret_key(k) && !url_like {
                continue;
            }
            let original = v.as_str().unwrap_or_default();
            let v = match v.as_str() {
                Some(s) if url_like => Value::String(strip_url_password(s)),
                Some(s) if secret_values.iter().any(|x| x == s) => continue,
                _ => v.clone(),
            };
            // A URL may still carry another secret outside its userinfo (a `${VAR}` token in the query):
            // then it is left out whole.
            if url_like
                && secret_values
                    .iter()
                    .any(|x| x != original && v.as_str().is_some_and(|s| s.contains(x.as_str())))
            {
                continue;
            }
            kept.insert(k.clone(), v);
        }
    }
    sha256_canonical(&Value::Object(kept))
}

/// `scheme://user:password@host/...` -> `scheme://user@host/...`; other text unchanged.
fn strip_url_password(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let Some(at) = authority.rfind('@') else {
        return s.to_string();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    format!(
        "{}://{}@{}{}",
        &s[..scheme_end],
        user,
        &authority[at + 1..],
        &rest[auth_end..]
    )
}

fn sha256_canonical(v: &Value) -> String {
    let mut s = String::new();
    osiris_registry::canonical_json(v, &mut s);
    format!("sha256:{}", hex::encode(Sha256::digest(s.as_bytes())))
}

/// Everything the cache key is made of.
pub struct KeyMaterial<'a> {
    pub component: &'a str,
    pub component_version: &'a str,
    pub spec_fingerprint: &'a str,
    pub connection: &'a str,
    pub options: &'a Options,
    pub connection_hash: &'a str,
    /// For a filesystem connection: what is under `base_dir` (see [`files_state`]).
    pub source_state: Option<&'a str>,
}

/// sha256 of the canonical JSON of the key material.
pub fn fingerprint(k: &KeyMaterial) -> String {
    let mut v = json!({
        "component": k.component,
        "component_version": k.component_version,
        "spec_fingerprint": k.spec_fingerprint,
        "connection": k.connection,
        "options": k.options.canonical(),
        "connection_hash": k.connection_hash,
    });
    if let Some(state) = k.source_state {
        v["source_state"] = Value::String(state.to_string());
    }
    sha256_canonical(&v)
}

/// The state of the data files under `base_dir` that a file extractor's discovery describes: sha256 of every
/// CSV/TSV file's relative path, size and modification time, walked as discovery walks (hidden entries and
/// symbolic links to directories skipped, 8 levels deep). Any file added, removed, rewritten or touched gives
/// another state, so a cached description never outlives the files it describes. Only metadata is read.
pub fn files_state(base_dir: &Path) -> String {
    fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
        if depth > 8 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let path = format!("{rel}{name}");
            if ft.is_dir() {
                walk(&e.path(), &format!("{path}/"), depth + 1, out);
                continue;
            }
            let lower = name.to_ascii_lowercase();
            let data = [".csv", ".tsv", ".csv.gz", ".tsv.gz"]
                .iter()
                .any(|x| lower.ends_with(x));
            // `metadata` follows a symbolic link to a file, as reading it would.
            let Ok(md) = std::fs::metadata(e.path()) else {
                continue;
            };
            if !data || !md.is_file() {
                continue;
            }
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            out.push(format!("{path}\t{}\t{mtime}", md.len()));
        }
    }
    let mut lines = Vec::new();
    walk(base_dir, "", 0, &mut lines);
    lines.sort();
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(lines.join("\n").as_bytes()))
    )
}

fn cache_file(project: &Path, fingerprint: &str) -> PathBuf {
    let hex = fingerprint.trim_start_matches("sha256:");
    project.join(CACHE_DIR).join(format!("{hex}.json"))
}

/// A fresh cache entry for `fingerprint`, if any (older than `ttl_seconds` = none; unreadable = none).
fn read_cache(project: &Path, fingerprint: &str, ttl_seconds: u64) -> Option<Discovered> {
    let path = cache_file(project, fingerprint);
    let text = std::fs::read_to_string(&path).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    // The file name is the key, but check the content too: a renamed or hand-edited file never matches.
    if v.get("fingerprint").and_then(Value::as_str) != Some(fingerprint) {
        return None;
    }
    let fetched = v.get("fetched_at_unix").and_then(Value::as_i64)?;
    let now = chrono::Utc::now().timestamp();
    if ttl_seconds == 0 || now < fetched || (now - fetched) as u64 >= ttl_seconds {
        return None;
    }
    Some(Discovered {
        connection: v.get("connection")?.as_str()?.to_string(),
        component: v.get("component")?.as_str()?.to_string(),
        cached: true,
        fetched_at: v.get("fetched_at")?.as_str()?.to_string(),
        fingerprint: fingerprint.to_string(),
        result: v.get("result")?.clone(),
    })
}

/// Writes the entry atomically (temp file + rename). Failure to cache is a warning, not an error.
fn write_cache(project: &Path, d: &Discovered, fetched_unix: i64) {
    let path = cache_file(project, &d.fingerprint);
    let body = json!({
        "fingerprint": d.fingerprint,
        "connection": d.connection,
        "component": d.component,
        "fetched_at": d.fetched_at,
        "fetched_at_unix": fetched_unix,
        "result": d.result,
    });
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            std::process::id(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        std::fs::write(
            &tmp,
            serde_json::to_string_pretty(&body).unwrap_or_default() + "\n",
        )?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        tracing::warn!(
            "could not write the discovery cache `{}`: {e}",
            path.display()
        );
    }
}

/// One discovery request, already resolved.
pub struct Request<'a> {
    pub project: &'a Path,
    pub reference: &'a str,
    pub component: &'a str,
    pub provider: &'a Provider,
    pub component_version: &'a str,
    pub spec_fingerprint: &'a str,
    pub connection_fields: &'a Value,
    pub secret_values: &'a [String],
    pub options: &'a Options,
    pub ttl_seconds: u64,
    pub refresh: bool,
    pub redactor: Arc<Redactor>,
}

/// From the cache when a fresh entry has the same fingerprint (and `refresh` is off); else asks the driver
/// and caches the (masked) result.
pub fn discover(r: &Request) -> Result<Discovered, Fail> {
    let conn_hash = connection_hash(r.connection_fields, r.secret_values);
    let state = r.component.starts_with("filesystem.").then(|| {
        // Without `base_dir`, file paths resolve against the working directory, as in a run.
        let dir = r.connection_fields.get("base_dir").and_then(Value::as_str);
        files_state(Path::new(dir.unwrap_or(".")))
    });
    let fp = fingerprint(&KeyMaterial {
        component: r.component,
        component_version: r.component_version,
        spec_fingerprint: r.spec_fingerprint,
        connection: r.reference,
        options: r.options,
        connection_hash: &conn_hash,
        source_state: state.as_deref(),
    });
    if !r.refresh
        && let Some(hit) = read_cache(r.project, &fp, r.ttl_seconds)
    {
        tracing::info!(fingerprint = %fp, "discovery cache hit");
        return Ok(hit);
    }
    let mut config = r.options.canonical();
    config["connection"] = Value::String(r.reference.to_string());
    if r.component.starts_with("filesystem.") {
        // File extractors discover a path: the connection's base_dir itself.
        config["path"] = Value::String(".".into());
    }
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ctx: Arc<dyn ContextBackend> = Arc::new(OneShotCtx {
        connection: r.connection_fields.clone(),
        redactor: r.redactor.clone(),
        cancel: cancel.clone(),
    });
    let (module, component) = (r.provider.module.clone(), r.component.to_string());
    let call = move || module.discover(&component, &config, ctx);
    let raw = crate::cancel::interruptible(cancel, call)
        .map_err(|sig| {
            Fail::new(
                Exit::Cancelled,
                format!(
                    "error: cancelled ({}): discovery of `{}` with `{}` stopped before it finished; nothing was cached",
                    sig.label(),
                    r.reference,
                    r.component
                ),
            )
        })?
        .map_err(|e| {
            let (exit, what) = if e.kind == osiris_plugin_sdk::ErrorKind::Unsupported {
                (Exit::Validation, "does not support discovery")
            } else {
                (Exit::Run, "failed")
            };
            let mut m = format!(
                "error[{}]: discovery of `{}` with `{}` ({}) {what}: {}",
                e.code, r.reference, r.component, r.provider.label, e.message
            );
            if let Some(h) = &e.help {
                m.push_str(&format!("\n  = help: {h}"));
            }
            Fail::new(exit, r.redactor.text(&m))
        })?;
    // Mask through the text form so a secret anywhere in the result is caught, then keep it as JSON.
    let masked = r
        .redactor
        .text(&serde_json::to_string(&raw).unwrap_or_default());
    let result: Value = serde_json::from_str(&masked).map_err(|e| {
        Fail::new(
            Exit::Internal,
            format!("error: the masked discovery result is not JSON any more ({e}); this is a bug: please report it"),
        )
    })?;
    let now = chrono::Utc::now();
    let d = Discovered {
        connection: r.reference.to_string(),
        component: r.component.to_string(),
        cached: false,
        fetched_at: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        fingerprint: fp,
        result,
    };
    write_cache(r.project, &d, now.timestamp());
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(samples: u64, conn_hash: &str, spec: &str) -> String {
        fingerprint(&KeyMaterial {
            component: "mysql.extractor",
            component_version: "0.1.0",
            spec_fingerprint: spec,
            connection: "@mysql.t",
            options: &Options { samples },
            connection_hash: conn_hash,
            source_state: None,
        })
    }

    #[test]
    fn every_input_changes_the_fingerprint() {
        let base = key(3, "h1", "sha256:a");
        assert_eq!(base, key(3, "h1", "sha256:a"));
        assert_ne!(base, key(4, "h1", "sha256:a"));
        assert_ne!(base, key(3, "h2", "sha256:a"));
        assert_ne!(base, key(3, "h1", "sha256:b"));
    }

    #[test]
    fn connection_hash_ignores_secrets_but_not_targets() {
        let secrets = vec!["s3cr3t-pass".to_string()];
        let a = json!({"host": "db1", "database": "x", "password": "s3cr3t-pass"});
        let b = json!({"host": "db1", "database": "x", "password": "other-pass"});
        let c = json!({"host": "db2", "database": "x", "password": "s3cr3t-pass"});
        let d = json!({"host": "db1", "database": "y", "password": "s3cr3t-pass"});
        let h = |v: &Value| connection_hash(v, &secrets);
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert_ne!(h(&a), h(&d));
        let u1 = json!({"pg_dsn": "postgresql://u:pw1@h/db1"});
        let u2 = json!({"pg_dsn": "postgresql://u:pw2@h/db1"});
        let u3 = json!({"pg_dsn": "postgresql://u:pw1@h/db2"});
        assert_eq!(h(&u1), h(&u2));
        assert_ne!(h(&u1), h(&u3));
    }

    #[test]
    fn cache_entries_expire_and_must_match_their_fingerprint() {
        let dir = std::env::temp_dir().join(format!("osiris-disc-{}", std::process::id()));
        let fp = key(3, "h", "sha256:a");
        let d = Discovered {
            connection: "@mysql.t".into(),
            component: "mysql.extractor".into(),
            cached: false,
            fetched_at: "2026-01-01T00:00:00Z".into(),
            fingerprint: fp.clone(),
            result: json!({"tables": []}),
        };
        let now = chrono::Utc::now().timestamp();
        write_cache(&dir, &d, now - 100);
        let hit = read_cache(&dir, &fp, 3600).expect("a fresh entry");
        assert!(hit.cached);
        assert_eq!(hit.result, d.result);
        assert!(read_cache(&dir, &fp, 50).is_none(), "older than the TTL");
        assert!(
            read_cache(&dir, &fp, 0).is_none(),
            "TTL 0 disables the cache"
        );
        // A file under the wrong name (renamed by hand) never matches.
        let other = key(4, "h", "sha256:a");
        std::fs::copy(cache_file(&dir, &fp), cache_file(&dir, &other)).unwrap();
        assert!(read_cache(&dir, &other, 3600).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn url_password_is_stripped() {
        assert_eq!(
            strip_url_password("postgresql://u:p@h:5432/d?x=1"),
            "postgresql://u@h:5432/d?x=1"
        );
        assert_eq!(strip_url_password("mysql://h/d"), "mysql://h/d");
        assert_eq!(strip_url_password("plain"), "plain");
    }
}
