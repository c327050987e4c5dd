//! The database plugins' test setup (feature `testing`): the local test servers (MariaDB on 127.0.0.1:3306 as
//! `root` without a password, PostgreSQL on 127.0.0.1:5432 as `postgres` with trust auth), throw-away
//! databases on them, the SDK's compliance runs as both plugins' extractors and writers take them, and
//! checkouts that say where their session came from.
//!
//! A test first asks [`TestServer::available`]: when the server is unreachable it is skipped with a note,
//! unless `OSIRIS_REQUIRE_DATABASES=1`, which fails it instead.

use crate::pool::{Database, Pooled};
use osiris_plugin_sdk::Context;
use osiris_plugin_sdk::Streams;
use osiris_plugin_sdk::arrow_array::{Int64Array, RecordBatch, StringArray};
use osiris_plugin_sdk::arrow_schema::{DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::{self, Case, Compliance, TestContext, checks};
use serde_json::{Value, json};
use std::marker::PhantomData;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A local database server the tests run against, through its command-line client.
pub trait TestServer {
    /// The server's name in messages (`MariaDB`, `PostgreSQL`).
    const NAME: &'static str;
    const PORT: u16;
    /// A value in every compliance connection that must never reach a log line or an error.
    const SECRET: &'static str;

    /// Runs SQL (several statements allowed) in database `db`, or in the server's own when `None`, and
    /// returns the rows, fields separated by tabs. Panics, with the client's message, when the SQL fails.
    fn sql(db: Option<&str>, sql: &str) -> String;
    /// Makes a new, empty database (dropping a leftover of the same name first).
    fn create_database(name: &str);
    /// The statement that drops a database, sessions still connected to it included.
    fn drop_database(name: &str) -> String;
    /// The connection fields of database `db` as a step resolves them, with [`TestServer::SECRET`] in them.
    fn connection(db: &str) -> Value;

    /// Whether the server can be used; fails the test when `OSIRIS_REQUIRE_DATABASES=1` and it cannot.
    fn available(test: &str) -> bool {
        testing::local_service_available(Self::NAME, Self::PORT, test)
    }
}

/// The local MariaDB (or MySQL) server.
pub struct MariaDb;

impl TestServer for MariaDb {
    const NAME: &'static str = "MariaDB";
    const PORT: u16 = 3306;
    /// Root has no password here, so the secret rides in a connection field the driver does not use for auth
    /// (and, in the unreachable case, as the password of a server that is not there).
    const SECRET: &'static str = "my-compliance-secret-8e1f";

    fn sql(db: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new("mariadb");
        cmd.args(["-h", "127.0.0.1", "-P", &Self::PORT.to_string()])
            .args(["-u", "root", "-N", "-B"]);
        if let Some(db) = db {
            cmd.arg(db);
        }
        run_client("mariadb", sql, cmd.arg("-e").arg(sql))
    }

    fn create_database(name: &str) {
        Self::sql(None, &Self::drop_database(name));
        Self::sql(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
        );
    }

    fn drop_database(name: &str) -> String {
        format!("DROP DATABASE IF EXISTS {name}")
    }

    fn connection(db: &str) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": Self::PORT,
            "user": "root",
            "database": db,
            "api_token": Self::SECRET,
        })
    }
}

/// The local PostgreSQL server.
pub struct Postgres;

impl TestServer for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const PORT: u16 = 5432;
    /// A password in the connection: trust auth ignores it.
    const SECRET: &'static str = "pg-compliance-password-3b9d";

    fn sql(db: Option<&str>, sql: &str) -> String {
        let mut cmd = Command::new("psql");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &Self::PORT.to_string(),
            "-U",
            "postgres",
        ])
        .args([
            "-d",
            db.unwrap_or("postgres"),
            "-v",
            "ON_ERROR_STOP=1",
            "-qAtX",
        ])
        .args(["-F", "\t", "-c", sql]);
        run_client("psql", sql, &mut cmd)
    }

    fn create_database(name: &str) {
        // One statement per call: psql runs a `-c` string of several as one transaction, which CREATE DATABASE
        // refuses.
        Self::sql(None, &Self::drop_database(name));
        Self::sql(None, &format!("CREATE DATABASE {name}"));
    }

    fn drop_database(name: &str) -> String {
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    }

    fn connection(db: &str) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": Self::PORT,
            "user": "postgres",
            "password": Self::SECRET,
            "database": db,
            "sslmode": "disable",
        })
    }
}

fn run_client(client: &str, sql: &str, cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run `{client}` (is the {client} client installed?): {e}")
    });
    assert!(
        o.status.success(),
        "{client} {sql:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// A database of its own on server `S` that exists for the life of the value (dropped at the end, sessions
/// still on it included).
pub struct Db<S: TestServer> {
    pub name: String,
    server: PhantomData<S>,
}

impl<S: TestServer> Db<S> {
    /// A new database named `<prefix>_<process id>_<counter>`.
    pub fn new(prefix: &str) -> Db<S> {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        S::create_database(&name);
        Db {
            name,
            server: PhantomData,
        }
    }

    /// Runs SQL in this database; the rows come back with tab-separated fields.
    pub fn sql(&self, sql: &str) -> String {
        S::sql(Some(&self.name), sql)
    }

    /// This database's connection fields (with the server's secret in them).
    pub fn connection(&self) -> Value {
        S::connection(&self.name)
    }

    /// The same connection on port 1, where nothing listens, with the secret as its password.
    pub fn unreachable_connection(&self) -> Value {
        let mut c = self.connection();
        c["port"] = json!(1);
        c["password"] = json!(S::SECRET);
        c
    }
}

impl<S: TestServer> Drop for Db<S> {
    fn drop(&mut self) {
        // Not `S::sql`: a failed drop must not turn into a panic while a failed test unwinds.
        let drop = S::drop_database(&self.name);
        let _ = std::panic::catch_unwind(|| S::sql(None, &drop));
    }
}

/// The SDK's compliance kit on extractor `component` of `module`, against a table `people` of nine rows in a
/// database of its own on `S`, read two rows per batch (the last batch partial: cancelling after the first
/// batch must stop the stream, the partial last batch included). Every check must pass; none may be skipped.
pub fn extractor_is_compliant<S: TestServer>(module: Arc<Module>, component: &str) {
    let db = Db::<S>::new("osiris_compliance");
    db.sql(
        "CREATE TABLE people (id BIGINT NOT NULL, name TEXT);
         INSERT INTO people VALUES (1, 'ada'), (2, 'grace'), (3, NULL), (4, 'barbara'), (5, 'tony'),
           (6, 'edsger'), (7, 'alan'), (8, 'niklaus'), (9, 'john');",
    );
    let report = Compliance::new(
        module,
        component,
        json!({"table": "people", "batch_size": 2}),
    )
    .connection(db.connection())
    .bad_config(json!({"table": "people", "port": true}))
    .unreachable(Case::new(json!({"table": "people"})).connection(db.unreachable_connection()))
    .secrets([S::SECRET])
    .run();
    report.assert_all_passed(&[]);
}

/// The SDK's compliance kit on writer `component` of `module`, writing five rows (one name null) in batches
/// of two into a table `people` in a database of its own on `S`. Every check must pass except the one about
/// cancelling after the first batch (a writer returns no stream). Afterwards the table holds exactly the valid
/// run's five rows: the cancelled and failed runs left it as it was.
pub fn writer_is_compliant<S: TestServer>(module: Arc<Module>, component: &str) {
    let db = Db::<S>::new("osiris_compliance");
    db.sql("CREATE TABLE people (id BIGINT NOT NULL, name TEXT)");
    let report = Compliance::new(
        module,
        component,
        json!({"table": "people", "batch_size": 2}),
    )
    .connection(db.connection())
    .inputs(people_input)
    .bad_config(json!({"table": "people", "port": true}))
    .unreachable(Case::new(json!({"table": "people"})).connection(db.unreachable_connection()))
    .secrets([S::SECRET])
    .run();
    report.assert_all_passed(&[checks::CANCEL_DURING]);
    assert_eq!(
        db.sql("SELECT count(*), count(name), sum(id) FROM people"),
        "5\t4\t15"
    );
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
    .expect("a valid batch")
}

fn people_input() -> Streams {
    let first = people(vec![1, 2, 3], vec![Some("ada"), None, Some("edsger")]);
    let second = people(vec![4, 5], vec![Some("barbara"), Some("tony")]);
    testing::single_input(vec![first, second])
}

/// Where a checkout's session came from, by the one connection metric it reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Opened,
    Reused,
}

/// Checks out a session of `D` for `s` (on its plugin's runtime) and says where it came from. Panics when the
/// checkout fails or reports anything but exactly one of `connections_opened` and `connections_reused`.
pub async fn checkout<D: Database>(s: &D::Settings) -> (Pooled<D>, Origin) {
    let m = TestContext::new();
    let p = match D::pools().checkout(s, &Context::new(m.clone())).await {
        Ok(p) => p,
        Err(e) => panic!("the checkout failed: {e}"),
    };
    let names: Vec<String> = m.metrics().into_iter().map(|(n, _, _)| n).collect();
    let origin = match names.as_slice() {
        [one] if one == "connections_opened" => Origin::Opened,
        [one] if one == "connections_reused" => Origin::Reused,
        other => panic!("one connection metric per checkout, got {other:?}"),
    };
    (p, origin)
}
