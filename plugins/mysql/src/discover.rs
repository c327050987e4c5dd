//! `discover` (tables, columns with source and Arrow types, primary keys, row estimates, sample rows) and
//! `doctor` (a connection check that tells refused / auth_failed / timeout / unknown_database apart).

use crate::conn::{self, ident};
use crate::pool;
use crate::read::decoder_for;
use mysql_async::prelude::Queryable;
use osiris_plugin_sdk::{Context, PluginError};
use serde_json::{Value, json};

pub fn doctor(config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let m = conn::merged(config, ctx);
    let settings = conn::settings(&m)?;
    conn::on_thread(move || {
        let rt = pool::POOLS.runtime()?;
        rt.block_on(async {
            let started = std::time::Instant::now();
            // A connection check really connects: a new session, which then joins the pool.
            let mut c = pool::POOLS.open(&settings, ctx).await?;
            let version: Option<String> = c
                .query_first("SELECT VERSION()")
                .await
                .map_err(|e| conn::db_error(&e, "asking the server version"))?;
            c.release().await;
            Ok(json!({
                "ok": true,
                "latency_ms": started.elapsed().as_millis() as u64,
                "server": settings.label,
                "server_version": version,
            }))
        })
    })
}

pub fn discover(config: &Value, ctx: &Context) -> Result<Value, PluginError> {
    let m = conn::merged(config, ctx);
    let settings = conn::settings(&m)?;
    let samples = m
        .get("samples")
        .and_then(Value::as_u64)
        .unwrap_or(3)
        .min(100);
    conn::on_thread(move || {
        let rt = pool::POOLS.runtime()?;
        rt.block_on(async {
            let mut c = pool::POOLS.checkout(&settings, ctx).await?;
            let err = |e: mysql_async::Error| conn::db_error(&e, "listing the tables");
            let db: Option<String> = c.query_first("SELECT DATABASE()").await.map_err(err)?.flatten();
            let Some(db) = db else {
                return Err(PluginError::config("no database selected")
                    .with_help("set `database` in the mysql connection"));
            };
            let tables: Vec<(String, String, Option<u64>)> = c
                .exec(
                    "SELECT TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
                     WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
                    (&db,),
                )
                .await
                .map_err(err)?;
            let mut out = Vec::new();
            for (name, kind, estimate) in tables {
                let cols: Vec<(String, String, String, String, String)> = c
                    .exec(
                        "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, DATA_TYPE FROM information_schema.COLUMNS \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                        (&db, &name),
                    )
                    .await
                    .map_err(err)?;
                // Arrow types as the extractor would produce them: from the metadata of an empty result.
                let stmt = c
                    .prep(format!("SELECT * FROM {} LIMIT 0", ident(&name)))
                    .await
                    .ok();
                let arrow: Vec<String> = match &stmt {
                    Some(s) => s
                        .columns()
                        .iter()
                        .map(|col| {
                            decoder_for(col.column_type(), col.flags(), col.column_length(), col.decimals(), col.character_set())
                                .data_type()
                                .to_string()
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let mut columns = Vec::new();
                let mut pk = Vec::new();
                let mut sample_exprs = Vec::new();
                for (i, (cname, ctype, nullable, key, data_type)) in cols.into_iter().enumerate() {
                    sample_exprs.push(format!(
                        "'{}', {}",
                        cname.replace('\'', "''"),
                        sample_expr(&cname, &data_type)
                    ));
                    if key == "PRI" {
                        pk.push(cname.clone());
                    }
                    columns.push(json!({
                        "name": cname,
                        "source_type": ctype,
                        "arrow_type": arrow.get(i),
                        "nullable": nullable == "YES",
                    }));
                }
                let mut rows = Vec::new();
                if samples > 0 && !sample_exprs.is_empty() {
                    let obj = sample_exprs.join(", ");
                    let sql = format!("SELECT JSON_OBJECT({obj}) FROM {} LIMIT {samples}", ident(&name));
                    // Bytes, not `String`: a conversion failure would panic inside the driver.
                    if let Ok(texts) = c.query::<Option<Vec<u8>>, _>(sql).await {
                        rows = texts
                            .iter()
                            .flatten()
                            .filter_map(|t| serde_json::from_slice::<Value>(t).ok())
                            .collect();
                    }
                }
                out.push(json!({
                    "name": name,
                    "schema": db,
                    "kind": if kind == "VIEW" { "view" } else { "table" },
                    "row_count_estimate": estimate,
                    "primary_key": pk,
                    "columns": columns,
                    "samples": rows,
                }));
            }
            c.release().await;
            Ok(json!({ "database": db, "tables": out }))
        })
    })
}

/// How a column appears in the sample rows. Binary columns (`BINARY`, `VARBINARY`, the `BLOB`s, spatial types)
/// are shown as `\x` and lower-case hex digits, PostgreSQL's `bytea` format (MariaDB would put the raw bytes,
/// often not UTF-8, into the JSON text); `BIT` as its number. `CHAR(92 USING ascii)` is the backslash in any
/// `sql_mode`.
fn sample_expr(column: &str, data_type: &str) -> String {
    let col = ident(column);
    match data_type.to_ascii_lowercase().as_str() {
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "geometry"
        | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => {
            format!("CONCAT(CHAR(92 USING ascii), 'x', LOWER(HEX({col})))")
        }
        "bit" => format!("CAST({col} AS UNSIGNED)"),
        _ => col,
    }
}
