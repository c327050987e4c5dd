//! `discover` (tables, columns with source and Arrow types, primary keys, row estimates, sample rows) and
//! `doctor` (a connection check that tells refused / auth_failed / timeout / unknown_database apart).

use crate::conn::{self, Flavor, qualified};
use crate::decode::{Dec, decoder_for};
use crate::pool;
use osiris_plugin_dbcommon::on_thread;
use osiris_plugin_sdk::{Context, PluginError};
use serde_json::{Value, json};
use tokio_postgres::types::Type;

pub fn doctor(flavor: Flavor, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let m = conn::merged(config, ctx);
    let settings = conn::settings(flavor, &m)?;
    on_thread(move || {
        let rt = pool::POOLS.runtime()?;
        rt.block_on(async {
            let started = std::time::Instant::now();
            // A connection check really connects: a new session, which then joins the pool.
            let pooled = pool::POOLS.open(&settings, ctx).await?;
            let version: String = pooled
                .client()
                .query_one("SELECT current_setting('server_version')", &[])
                .await
                .map_err(|e| conn::db_error(flavor, &e, "asking the server version"))?
                .get(0);
            pooled.release().await;
            Ok(json!({
                "ok": true,
                "latency_ms": started.elapsed().as_millis() as u64,
                "server": settings.label,
                "server_version": version,
            }))
        })
    })
}

pub fn discover(flavor: Flavor, config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let m = conn::merged(config, ctx);
    let settings = conn::settings(flavor, &m)?;
    let samples = m
        .get("samples")
        .and_then(Value::as_u64)
        .unwrap_or(3)
        .min(100) as i64;
    on_thread(move || {
        let rt = pool::POOLS.runtime()?;
        rt.block_on(async {
            let pooled = pool::POOLS.checkout(&settings, ctx).await?;
            let client = pooled.client();
            let schema = settings.schema.clone();
            let err = |e: tokio_postgres::Error| conn::db_error(flavor, &e, "listing the tables");
            let tables = client
                .query(
                    "SELECT c.oid, c.relname::text, c.relkind::text, c.reltuples::float8 \
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r','v','m','p','f') ORDER BY c.relname",
                    &[&schema],
                )
                .await
                .map_err(err)?;
            let mut out = Vec::new();
            for t in &tables {
                let oid: u32 = t.get(0);
                let name: String = t.get(1);
                let kind: String = t.get(2);
                let estimate: f64 = t.get(3);
                let cols = client
                    .query(
                        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod, \
                         NOT a.attnotnull, \
                         COALESCE((SELECT bool_or(i.indisprimary) FROM pg_index i \
                                   WHERE i.indrelid = a.attrelid AND a.attnum = ANY(i.indkey) AND i.indisprimary), false) \
                         FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped \
                         ORDER BY a.attnum",
                        &[&oid],
                    )
                    .await
                    .map_err(err)?;
                let mut columns = Vec::new();
                let mut pk = Vec::new();
                for c in &cols {
                    let cname: String = c.get(0);
                    let source: String = c.get(1);
                    let typid: u32 = c.get(2);
                    let typmod: i32 = c.get(3);
                    let nullable: bool = c.get(4);
                    let is_pk: bool = c.get(5);
                    let arrow = arrow_type(client, typid, typmod).await;
                    if is_pk {
                        pk.push(cname.clone());
                    }
                    columns.push(json!({
                        "name": cname,
                        "source_type": source,
                        "arrow_type": arrow,
                        "nullable": nullable,
                    }));
                }
                let rows = if samples > 0 {
                    let sql = format!(
                        "SELECT row_to_json(t)::text FROM {} AS t LIMIT {samples}",
                        qualified(&schema, &name)
                    );
                    match client.query(sql.as_str(), &[]).await {
                        // `try_get`: a value that is not text must not panic. `bytea` columns appear as `\x` and
                        // hex digits (the server's default `bytea_output`); mysql.extractor's discovery matches it.
                        Ok(rows) => rows
                            .iter()
                            .filter_map(|r| r.try_get::<_, String>(0).ok())
                            .filter_map(|t| serde_json::from_str::<Value>(&t).ok())
                            .collect::<Vec<_>>(),
                        Err(_) => Vec::new(),
                    }
                } else {
                    Vec::new()
                };
                out.push(json!({
                    "name": name,
                    "schema": schema,
                    "kind": match kind.as_str() { "r" | "p" => "table", "v" => "view", "m" => "materialized_view", _ => "foreign_table" },
                    "row_count_estimate": if estimate < 0.0 { Value::Null } else { json!(estimate as u64) },
                    "primary_key": pk,
                    "columns": columns,
                    "samples": rows,
                }));
            }
            pooled.release().await;
            Ok(json!({ "schema": schema, "tables": out }))
        })
    })
}

async fn arrow_type(client: &tokio_postgres::Client, typid: u32, typmod: i32) -> String {
    let ty = match Type::from_oid(typid) {
        Some(t) => Some(t),
        None => {
            // Domains and enums: look at pg_type.
            match client
                .query_one(
                    "SELECT typtype::text, typbasetype, typtypmod FROM pg_type WHERE oid = $1",
                    &[&typid],
                )
                .await
            {
                Ok(r) => {
                    let kind: String = r.get(0);
                    let base: u32 = r.get(1);
                    let base_mod: i32 = r.get(2);
                    if kind == "e" {
                        return Dec::Text.data_type().to_string();
                    }
                    if kind == "d" {
                        return Box::pin(arrow_type(client, base, base_mod.max(typmod))).await;
                    }
                    None
                }
                Err(_) => None,
            }
        }
    };
    match ty.and_then(|t| decoder_for(&t, typmod)) {
        Some(dec) => dec.data_type().to_string(),
        None => Dec::Text.data_type().to_string(),
    }
}
