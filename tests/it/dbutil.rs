//! Helpers of the database tests: reachability (skip or fail), throw-away databases on the local PostgreSQL
//! and MariaDB servers, SQL through the `psql` and `mariadb` clients, and pipeline projects run through the
//! real `osiris` binary.

#![allow(dead_code)]

use crate::support::{code, osiris, text};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub const PG_PORT: u16 = 5432;
pub const MY_PORT: u16 = 3306;

/// Whether the server on `port` can be used; fails the test when `OSIRIS_REQUIRE_DATABASES=1` and it cannot.
pub use osiris_plugin_sdk::testing::local_service_available as server;

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

fn checked(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

/// A PostgreSQL database that exists for the life of the value.
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub fn new() -> PgDb {
        let name = unique("osiris_it");
        psql_in("postgres", &format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    /// Runs SQL (several statements allowed) and returns the unaligned, tuples-only output.
    pub fn sql(&self, sql: &str) -> String {
        psql_in(&self.name, sql)
    }

    pub fn dsn(&self) -> String {
        format!(
            "postgresql://postgres@127.0.0.1:{PG_PORT}/{}?sslmode=disable",
            self.name
        )
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtX",
                "-c",
            ])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

pub fn psql_in(db: &str, sql: &str) -> String {
    let o = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &PG_PORT.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-qAtX", "-F", "|"])
        .env("PGTZ", "UTC")
        .arg("-c")
        .arg(sql)
        .output()
        .expect("psql runs");
    checked(&format!("psql {sql:?}"), o)
}

/// A MariaDB/MySQL database that exists for the life of the value.
pub struct MyDb {
    pub name: String,
}

impl MyDb {
    pub fn new() -> MyDb {
        let name = unique("osiris_it");
        mysql_in(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
        );
        MyDb { name }
    }

    /// Runs SQL in a UTC session and returns the tab-separated output without column names.
    pub fn sql(&self, sql: &str) -> String {
        mysql_in(Some(&self.name), sql)
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP DATABASE IF EXISTS {}", self.name))
            .output();
    }
}

pub fn mysql_in(db: Option<&str>, sql: &str) -> String {
    let mut cmd = Command::new("mariadb");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-P",
        &MY_PORT.to_string(),
        "-u",
        "root",
        "-N",
        "-B",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let o = cmd
        .arg("-e")
        .arg(format!("SET time_zone = '+00:00'; {sql}"))
        .output()
        .expect("the mariadb client runs");
    checked(&format!("mariadb {sql:?}"), o)
}

/// A project directory with `osiris.yaml` and a connections file naming the given databases as
/// `@postgres.local`, `@mysql.local` and `@supabase.local`.
pub fn project(pg: Option<&PgDb>, my: Option<&MyDb>) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("osiris.yaml"),
        "run:\n  logs_dir: run_logs\n",
    )
    .unwrap();
    let mut conns = String::from("version: \"1.0\"\nconnections:\n");
    if let Some(pg) = pg {
        conns.push_str(&format!(
            "  postgres:\n    local:\n      default: true\n      host: 127.0.0.1\n      port: {PG_PORT}\n      user: postgres\n      database: {}\n      sslmode: prefer\n",
            pg.name
        ));
        conns.push_str(&format!(
            "  supabase:\n    local:\n      default: true\n      url: https://abcdefghijklmnop.supabase.co\n      service_role_key: ${{OSIRIS_IT_SUPABASE_KEY:-service-role-key-for-tests-only}}\n      pg_dsn: \"{}\"\n",
            pg.dsn()
        ));
    }
    if let Some(my) = my {
        conns.push_str(&format!(
            "  mysql:\n    local:\n      default: true\n      host: 127.0.0.1\n      port: {MY_PORT}\n      user: root\n      database: {}\n",
            my.name
        ));
    }
    std::fs::write(tmp.path().join("osiris_connections.yaml"), conns).unwrap();
    tmp
}

/// Writes `name.yaml` with the given steps (YAML list items, already indented by two spaces) and runs it.
pub fn run_pipeline(dir: &Path, name: &str, steps: &str) -> Output {
    let file = format!("{name}.yaml");
    std::fs::write(
        dir.join(&file),
        format!("oml_version: \"0.1.0\"\nname: {name}\nsteps:\n{steps}"),
    )
    .unwrap();
    osiris(dir).args(["run", &file]).output()
}

/// Asserts exit code 0, printing both streams otherwise.
pub fn ok(o: &Output) {
    let (out, err) = text(o);
    assert_eq!(code(o), 0, "stdout:\n{out}\nstderr:\n{err}");
}

/// One pipeline step as YAML list item (indented for `run_pipeline`), with `config` lines indented under it.
pub fn step(id: &str, component: &str, mode: &str, needs: &[&str], config: &str) -> String {
    let needs = if needs.is_empty() {
        String::new()
    } else {
        format!("    needs: [{}]\n", needs.join(", "))
    };
    let config: String = config.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "  - id: {id}\n    component: {component}\n    mode: {mode}\n{needs}    config:\n{config}"
    )
}
