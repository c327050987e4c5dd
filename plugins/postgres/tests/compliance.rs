//! The SDK's driver compliance kit on `postgres.extractor` and `postgres.writer`, through the entry the cdylib
//! exports (`Module::from_static(&OCP_ENTRY)`), against the local PostgreSQL server (127.0.0.1:5432, user
//! `postgres`, trust auth). Each test works in a database of its own, dropped at the end. When the server is
//! unreachable the tests are skipped with a note, unless `OSIRIS_REQUIRE_DATABASES=1`.

use osiris_plugin_sdk::Streams;
use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::serde_json::{Value, json};
use osiris_plugin_sdk::testing::{self, Case, Compliance, Outcome, checks};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const PORT: u16 = 5432;

/// A password in the connection: trust auth ignores it, and it must never reach a log line or an error.
const SECRET: &str = "pg-compliance-password-3b9d";

fn module() -> Arc<Module> {
    Arc::new(
        Module::from_static(&osiris_plugin_postgres::OCP_ENTRY)
            .expect("the PostgreSQL plugin loads"),
    )
}

/// Whether the server can be used; fails the test when `OSIRIS_REQUIRE_DATABASES=1` and it cannot.
fn server(test: &str) -> bool {
    osiris_plugin_sdk::testing::local_service_available("PostgreSQL", PORT, test)
}

fn psql(db: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", &PORT.to_string(), "-U", "postgres"])
        .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        o.status.success(),
        "psql {sql:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// A database that exists for the life of the value.
struct Db {
    name: String,
}

impl Db {
    fn new() -> Db {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "osiris_compliance_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql("postgres", &format!("CREATE DATABASE {name}"));
        Db { name }
    }

    fn sql(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }

    fn connection(&self) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": PORT,
            "user": "postgres",
            "password": SECRET,
            "database": self.name,
            "sslmode": "disable",
        })
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &PORT.to_string(), "-U", "postgres"])
            .args(["-d", "postgres", "-qAtX", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// The connection of `db` on port 1, where nothing listens.
fn unreachable_connection(db: &Db) -> Value {
    let mut c = db.connection();
    c["port"] = json!(1);
    c
}

#[test]
fn postgres_extractor_is_compliant() {
    if !server("postgres_extractor_is_compliant") {
        return;
    }
    let db = Db::new();
    db.sql(
        "CREATE TABLE people (id bigint NOT NULL, name text);
         INSERT INTO people VALUES (1, 'ada'), (2, 'grace'), (3, NULL), (4, 'barbara'), (5, 'tony'),
           (6, 'edsger'), (7, 'alan'), (8, 'niklaus'), (9, 'john');",
    );
    let report = Compliance::new(
        module(),
        "postgres.extractor",
        // Two rows per batch, the last one partial: cancelling after the first batch must stop the stream,
        // the partial last batch included.
        json!({"table": "people", "batch_size": 2}),
    )
    .connection(db.connection())
    .bad_config(json!({"table": "people", "port": true}))
    .unreachable(Case::new(json!({"table": "people"})).connection(unreachable_connection(&db)))
    .secrets([SECRET])
    .run();
    report.assert_passes();
    for check in &report.checks {
        assert_eq!(check.outcome, Outcome::Passed, "`{}`\n{report}", check.name);
    }
}

fn people(ids: Vec<i64>, names: Vec<Option<&str>>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

fn inputs() -> Streams {
    let first = people(vec![1, 2, 3], vec![Some("ada"), None, Some("edsger")]);
    let second = people(vec![4, 5], vec![Some("barbara"), Some("tony")]);
    Streams::from([(
        "df".to_string(),
        testing::batch_stream(first.schema(), vec![first, second]),
    )])
}

#[test]
fn postgres_writer_is_compliant() {
    if !server("postgres_writer_is_compliant") {
        return;
    }
    let db = Db::new();
    db.sql("CREATE TABLE people (id bigint NOT NULL, name text)");
    let report = Compliance::new(
        module(),
        "postgres.writer",
        json!({"table": "people", "batch_size": 2}),
    )
    .connection(db.connection())
    .inputs(inputs)
    .bad_config(json!({"table": "people", "port": true}))
    .unreachable(Case::new(json!({"table": "people"})).connection(unreachable_connection(&db)))
    .secrets([SECRET])
    .run();
    report.assert_passes();
    for check in &report.checks {
        let streaming = check.name == checks::CANCEL_DURING;
        match &check.outcome {
            Outcome::Passed => {}
            // A writer returns no stream: there is no first batch to cancel after.
            Outcome::Skipped(_) if streaming => {}
            other => panic!("`{}`: {other:?}\n{report}", check.name),
        }
    }
    // The valid run wrote the five rows; the cancelled and failed runs left the table as it was.
    assert_eq!(
        db.sql("SELECT count(*), count(name), sum(id) FROM people"),
        "5|4|15"
    );
}
