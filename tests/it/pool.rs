//! Connection pooling of the database plugins (issue "First-party components": each family's connector with
//! pooled, TLS-capable connections), against the local PostgreSQL and MariaDB servers.
//!
//! Through the real `osiris` binary: the steps of one run that use the same connection share one session, seen
//! by the server (PostgreSQL backend pid, MySQL connection id, recorded by the queries and by a default/trigger
//! on the written table) and by the run's `connections_opened` / `connections_reused` metrics. Through the
//! linked-in plugins (one process, like a run): a failed write's session is not reused and leaves nothing
//! behind, a pooled session killed on the server is replaced, and session state does not leak between steps.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, server};
use crate::support::{jsonl, osiris, run_dir};
use osiris_plugin_sdk::Streams;
use osiris_plugin_sdk::arrow_array::cast::AsArray;
use osiris_plugin_sdk::arrow_array::types::{Int32Type, Int64Type, UInt32Type, UInt64Type};
use osiris_plugin_sdk::arrow_array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchIterator, RecordBatchReader, StringArray,
};
use osiris_plugin_sdk::arrow_schema::{ArrowError, DataType, Field, Schema};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::TestContext;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

fn step(id: &str, component: &str, mode: &str, needs: &[&str], config: &str) -> String {
    let config: String = config.lines().map(|l| format!("      {l}\n")).collect();
    format!(
        "  - id: {id}\n    component: {component}\n    mode: {mode}\n    needs: [{}]\n    config:\n{config}",
        needs.join(", ")
    )
}

/// Runs the pipeline with `--max-parallel 1`, asserts success and returns its metrics.jsonl lines.
fn run_serially(dir: &Path, name: &str, steps: &str) -> Vec<Value> {
    let file = format!("{name}.yaml");
    std::fs::write(
        dir.join(&file),
        format!("oml_version: \"0.1.0\"\nname: {name}\nsteps:\n{steps}"),
    )
    .unwrap();
    let o = osiris(dir)
        .args(["run", &file, "--max-parallel", "1"])
        .output();
    ok(&o);
    jsonl(&run_dir(dir, "default", name).join("metrics.jsonl"))
}

/// The sum of `metric` over the run, per step: `[(step, sum)]` in step order of first appearance.
fn per_step(metrics: &[Value], metric: &str) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for m in metrics.iter().filter(|m| m["metric"] == metric) {
        let step = m["step"].as_str().unwrap_or("").to_string();
        let v = m["value"].as_f64().unwrap();
        match out.iter_mut().find(|(s, _)| *s == step) {
            Some((_, sum)) => *sum += v,
            None => out.push((step, v)),
        }
    }
    out
}

/// Three steps on one connection that never hold a session at the same time: extractor `e1`; `c1`
/// (duckdb.processor, which reads its input to the end before it returns, so `e1` has finished); extractor
/// `e2` after `c1`; `c2` joining both results (so `e2` has finished); the writer `w` after `c2`.
fn chain(
    extract: impl Fn(&str, &[&str]) -> String,
    col: &str,
    write: impl Fn(&str) -> String,
) -> String {
    extract("e1", &[])
        + &step(
            "c1",
            "duckdb.processor",
            "transform",
            &["e1"],
            &format!("query: SELECT step, {col} FROM df"),
        )
        + &extract("e2", &["c1"])
        + &step(
            "c2",
            "duckdb.processor",
            "transform",
            &["c1", "e2"],
            &format!(
                "query: SELECT step, {col} FROM df_c1 UNION ALL SELECT step, {col} FROM df_e2"
            ),
        )
        + &write("c2")
}

fn total(metrics: &[Value], metric: &str) -> f64 {
    per_step(metrics, metric).iter().map(|(_, v)| v).sum()
}

#[test]
fn postgres_steps_of_a_run_share_one_pooled_session() {
    let test = "postgres_steps_of_a_run_share_one_pooled_session";
    if !server("PostgreSQL", PG_PORT, test) {
        return;
    }
    let pg = PgDb::new();
    // `pid` records the backend of the writer that inserts the row; `src_pid` the backend of the extractor.
    pg.sql("CREATE TABLE seen (step text, src_pid int, pid int DEFAULT pg_backend_pid())");
    let p = project(Some(&pg), None);
    let extract = |id: &str, needs: &[&str]| {
        step(
            id,
            "postgres.extractor",
            "read",
            needs,
            &format!(
                "connection: \"@postgres.local\"\nquery: SELECT '{id}' AS step, pg_backend_pid() AS src_pid"
            ),
        )
    };
    let write = |up: &str| {
        step(
            "w",
            "postgres.writer",
            "write",
            &[up],
            "connection: \"@postgres.local\"\ntable: seen",
        )
    };
    let metrics = run_serially(p.path(), "shared", &chain(extract, "src_pid", write));

    let rows = pg.sql("SELECT step, src_pid, pid FROM seen ORDER BY step");
    let lines: Vec<Vec<&str>> = rows.lines().map(|l| l.split('|').collect()).collect();
    assert_eq!(lines.len(), 2, "{rows}");
    let pid = lines[0][1];
    assert!(pid.parse::<u32>().is_ok(), "{rows}");
    for l in &lines {
        assert_eq!(
            (l[1], l[2]),
            (pid, pid),
            "every step ran on the same backend: {rows}"
        );
    }
    assert_eq!(
        per_step(&metrics, "connections_opened"),
        vec![("e1".to_string(), 1.0)],
        "only the first step opens a connection"
    );
    assert_eq!(
        per_step(&metrics, "connections_reused"),
        vec![("e2".to_string(), 1.0), ("w".to_string(), 1.0)]
    );
}

#[test]
fn mysql_steps_of_a_run_share_one_pooled_session() {
    let test = "mysql_steps_of_a_run_share_one_pooled_session";
    if !server("MariaDB", MY_PORT, test) {
        return;
    }
    let my = MyDb::new();
    my.sql(
        "CREATE TABLE seen (step VARCHAR(8), src_cid BIGINT, cid BIGINT) ENGINE = InnoDB; \
         CREATE TRIGGER seen_cid BEFORE INSERT ON seen FOR EACH ROW SET NEW.cid = CONNECTION_ID()",
    );
    let p = project(None, Some(&my));
    let extract = |id: &str, needs: &[&str]| {
        step(
            id,
            "mysql.extractor",
            "read",
            needs,
            &format!(
                "connection: \"@mysql.local\"\nquery: SELECT '{id}' AS step, CONNECTION_ID() AS src_cid"
            ),
        )
    };
    let write = |up: &str| {
        step(
            "w",
            "mysql.writer",
            "write",
            &[up],
            "connection: \"@mysql.local\"\ntable: seen",
        )
    };
    let metrics = run_serially(p.path(), "shared", &chain(extract, "src_cid", write));

    let rows = my.sql("SELECT step, src_cid, cid FROM seen ORDER BY step");
    let lines: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{rows}");
    let cid = lines[0][1];
    assert!(cid.parse::<u64>().is_ok(), "{rows}");
    for l in &lines {
        assert_eq!(
            (l[1], l[2]),
            (cid, cid),
            "every step ran on the same connection: {rows}"
        );
    }
    assert_eq!(
        per_step(&metrics, "connections_opened"),
        vec![("e1".to_string(), 1.0)]
    );
    assert_eq!(
        per_step(&metrics, "connections_reused"),
        vec![("e2".to_string(), 1.0), ("w".to_string(), 1.0)]
    );
}

/// More steps holding a session at once than the pool keeps idle: nobody waits for a session (a wait could
/// stall a pipeline whose steps stream into each other), the extra sessions are opened, and later steps reuse.
#[test]
fn more_concurrent_steps_than_the_pool_keeps_still_run() {
    let test = "more_concurrent_steps_than_the_pool_keeps_still_run";
    if !server("PostgreSQL", PG_PORT, test) {
        return;
    }
    let pg = PgDb::new();
    pg.sql("CREATE TABLE sums (total bigint)");
    let p = project(Some(&pg), None);
    let mut steps = String::new();
    let ids: Vec<String> = (1..=6).map(|i| format!("e{i}")).collect();
    for id in &ids {
        // One row per batch and three rows: each extractor is still inside its COPY (so still holds its
        // session) when the next step starts reading.
        steps.push_str(&step(
            id,
            "postgres.extractor",
            "read",
            &[],
            "connection: \"@postgres.local\"\nquery: SELECT g AS n FROM generate_series(1, 3) g\nbatch_size: 1",
        ));
    }
    let union = ids
        .iter()
        .map(|id| format!("SELECT n FROM df_{id}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let needs: Vec<&str> = ids.iter().map(String::as_str).collect();
    steps.push_str(&step(
        "sum",
        "duckdb.processor",
        "transform",
        &needs,
        &format!("query: SELECT SUM(n) AS total FROM ({union})"),
    ));
    steps.push_str(&step(
        "load",
        "postgres.writer",
        "write",
        &["sum"],
        "connection: \"@postgres.local\"\ntable: sums",
    ));
    let file = "wide.yaml";
    std::fs::write(
        p.path().join(file),
        format!("oml_version: \"0.1.0\"\nname: wide\nsteps:\n{steps}"),
    )
    .unwrap();
    let o = osiris(p.path()).args(["run", file]).output();
    ok(&o);
    assert_eq!(pg.sql("SELECT total FROM sums"), "36");
    let metrics = jsonl(&run_dir(p.path(), "default", "wide").join("metrics.jsonl"));
    assert_eq!(total(&metrics, "connections_opened"), 6.0, "{metrics:?}");
    assert_eq!(
        per_step(&metrics, "connections_reused"),
        vec![("load".to_string(), 1.0)]
    );
}

/// `opened` or `reused`: where the session of the step that ran with `ctx` came from, by its connection metric.
fn source(ctx: &TestContext) -> &'static str {
    let metrics = ctx.metrics();
    let has = |name: &str| metrics.iter().any(|(n, _, _)| n == name);
    match (has("connections_opened"), has("connections_reused")) {
        (true, false) => "opened",
        (false, true) => "reused",
        other => panic!("one connection metric per step, got {other:?}: {metrics:?}"),
    }
}

fn input(batches: Vec<Result<RecordBatch, ArrowError>>) -> Streams {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let reader: Box<dyn RecordBatchReader + Send> =
        Box::new(RecordBatchIterator::new(batches, schema));
    let mut s = Streams::new();
    s.insert("df".to_string(), reader);
    s
}

fn rows(ids: &[i64], names: &[Option<&str>]) -> Result<RecordBatch, ArrowError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names.to_vec())),
    ];
    RecordBatch::try_new(schema, cols)
}

/// Reads every batch of the extractor's output and returns the first column of the first row as text.
fn first_value(mut out: Streams) -> String {
    let reader = out.remove("df").expect("an extractor returns `df`");
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let col = batches[0].column(0);
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(0).to_string(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(0).to_string(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(0).to_string(),
        DataType::UInt32 => col.as_primitive::<UInt32Type>().value(0).to_string(),
        DataType::UInt64 => col.as_primitive::<UInt64Type>().value(0).to_string(),
        // MySQL types an expression over user variables as binary.
        DataType::Binary => String::from_utf8_lossy(col.as_binary::<i32>().value(0)).to_string(),
        other => panic!("no text form for {other} here"),
    }
}

/// PostgreSQL: a write that fails half-way is rolled back and its session closed; the next step on the same
/// pool works, and the server holds no session in a transaction and no staging table afterwards.
#[test]
fn postgres_failed_write_leaves_no_trace_in_the_pool() {
    let test = "postgres_failed_write_leaves_no_trace_in_the_pool";
    if !server("PostgreSQL", PG_PORT, test) {
        return;
    }
    let m = Module::from_static(&osiris_plugin_postgres::OCP_ENTRY).unwrap();
    let pg = PgDb::new();
    pg.sql("CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL)");
    let conn = json!({"host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "database": pg.name, "sslmode": "disable"});
    let cfg = json!({"table": "t"});

    let c1 = TestContext::with_connection(conn.clone());
    m.run(
        "postgres.writer",
        "w1",
        &cfg,
        c1.clone(),
        input(vec![rows(&[1, 2], &[Some("a"), Some("b")])]),
    )
    .unwrap();
    assert_eq!(source(&c1), "opened");

    // A NOT NULL violation in the second batch, then an upstream failure: both roll back.
    for (what, batches) in [
        (
            "constraint",
            vec![rows(&[3], &[Some("c")]), rows(&[4, 5], &[Some("d"), None])],
        ),
        (
            "upstream",
            vec![
                rows(&[3], &[Some("c")]),
                Err(ArrowError::ComputeError("upstream step failed".into())),
            ],
        ),
    ] {
        let c = TestContext::with_connection(conn.clone());
        let e = m
            .run("postgres.writer", "w2", &cfg, c.clone(), input(batches))
            .err()
            .expect("the write fails");
        assert_eq!(source(&c), "reused", "{what}");
        assert_eq!(pg.sql("SELECT count(*) FROM t"), "2", "{what}: {e:?}");
        // The failed session was closed: no backend of this database is left in a transaction or holds a
        // temporary staging table.
        assert_eq!(
            pg.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'"),
            "0",
            "{what}"
        );
        assert_eq!(
            pg.sql("SELECT count(*) FROM pg_class WHERE relname LIKE 'osiris_stage%'"),
            "0",
            "{what}"
        );
        // The next step on the same pool works, on a new session.
        let c = TestContext::with_connection(conn.clone());
        m.run(
            "postgres.writer",
            "w3",
            &cfg,
            c.clone(),
            input(vec![rows(&[10], &[Some(what)])]),
        )
        .unwrap();
        assert_eq!(
            source(&c),
            "opened",
            "{what}: the failed session is not reused"
        );
        pg.sql("DELETE FROM t WHERE id = 10");
    }
    let c = TestContext::with_connection(conn.clone());
    let out = m
        .run(
            "postgres.extractor",
            "e",
            &json!({"query": "SELECT string_agg(name, ',' ORDER BY id) FROM t"}),
            c.clone(),
            Streams::new(),
        )
        .unwrap();
    assert_eq!(first_value(out), "a,b");
    assert_eq!(source(&c), "reused");
}

/// MySQL: the same, including the table a failed `create_table` write created and dropped again.
#[test]
fn mysql_failed_write_leaves_no_trace_in_the_pool() {
    let test = "mysql_failed_write_leaves_no_trace_in_the_pool";
    if !server("MariaDB", MY_PORT, test) {
        return;
    }
    let m = Module::from_static(&osiris_plugin_mysql::OCP_ENTRY).unwrap();
    let my = MyDb::new();
    my.sql("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(20) NOT NULL) ENGINE = InnoDB");
    let conn = json!({"host": "127.0.0.1", "port": MY_PORT, "user": "root", "database": my.name, "ssl_mode": "disabled"});
    let in_db = |sql: &str| my.sql(sql);

    let c1 = TestContext::with_connection(conn.clone());
    m.run(
        "mysql.writer",
        "w1",
        &json!({"table": "t"}),
        c1.clone(),
        input(vec![rows(&[1, 2], &[Some("a"), Some("b")])]),
    )
    .unwrap();
    assert_eq!(source(&c1), "opened");
    // Sessions on this database other than the client asking; the server ends a closed one asynchronously.
    let sessions_settle_at = |want: &str| {
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{}' AND ID <> CONNECTION_ID()",
            my.name
        );
        let mut got = in_db(&sql);
        for _ in 0..50 {
            if got == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            got = in_db(&sql);
        }
        got
    };

    for (what, cfg, batches) in [
        (
            "constraint",
            json!({"table": "t", "batch_size": 1}),
            vec![rows(&[3], &[Some("c")]), rows(&[4, 5], &[Some("d"), None])],
        ),
        (
            "upstream",
            json!({"table": "fresh", "create_table": true}),
            vec![
                rows(&[3], &[Some("c")]),
                Err(ArrowError::ComputeError("upstream step failed".into())),
            ],
        ),
    ] {
        let c = TestContext::with_connection(conn.clone());
        let e = m
            .run("mysql.writer", "w2", &cfg, c.clone(), input(batches))
            .err()
            .expect("the write fails");
        assert_eq!(source(&c), "reused", "{what}");
        assert_eq!(in_db("SELECT COUNT(*) FROM t"), "2", "{what}: {e:?}");
        assert_eq!(
            in_db("SHOW TABLES LIKE 'fresh'"),
            "",
            "{what}: the created table is gone"
        );
        // The failed session was closed, not kept: no session of the plugin is left on the server.
        assert_eq!(sessions_settle_at("0"), "0", "{what}");
        let c = TestContext::with_connection(conn.clone());
        m.run(
            "mysql.writer",
            "w3",
            &json!({"table": "t"}),
            c.clone(),
            input(vec![rows(&[10], &[Some(what)])]),
        )
        .unwrap();
        assert_eq!(
            source(&c),
            "opened",
            "{what}: the failed session is not reused"
        );
        in_db("DELETE FROM t WHERE id = 10");
    }
    let c = TestContext::with_connection(conn.clone());
    let out = m
        .run(
            "mysql.extractor",
            "e",
            &json!({"query": "SELECT GROUP_CONCAT(name ORDER BY id) FROM t"}),
            c.clone(),
            Streams::new(),
        )
        .unwrap();
    assert_eq!(first_value(out), "a,b");
    assert_eq!(source(&c), "reused");
}

/// A pooled session that the server ended (here: terminated/killed by an administrator, as on a restart or
/// an idle timeout) is noticed before reuse and replaced by a new one: the step does not fail.
#[test]
fn a_pooled_session_the_server_ended_is_replaced() {
    let test = "a_pooled_session_the_server_ended_is_replaced";
    if !(server("PostgreSQL", PG_PORT, test) && server("MariaDB", MY_PORT, test)) {
        return;
    }
    let pgm = Module::from_static(&osiris_plugin_postgres::OCP_ENTRY).unwrap();
    let mym = Module::from_static(&osiris_plugin_mysql::OCP_ENTRY).unwrap();
    let pg = PgDb::new();
    let my = MyDb::new();
    let pg_conn = json!({"host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "database": pg.name, "sslmode": "disable"});
    let my_conn = json!({"host": "127.0.0.1", "port": MY_PORT, "user": "root", "database": my.name, "ssl_mode": "disabled"});
    let pid_query = json!({"query": "SELECT pg_backend_pid()"});
    let cid_query = json!({"query": "SELECT CONNECTION_ID()"});

    let c = TestContext::with_connection(pg_conn.clone());
    let first = first_value(
        pgm.run(
            "postgres.extractor",
            "a",
            &pid_query,
            c.clone(),
            Streams::new(),
        )
        .unwrap(),
    );
    assert_eq!(source(&c), "opened");
    let c = TestContext::with_connection(pg_conn.clone());
    let again = first_value(
        pgm.run(
            "postgres.extractor",
            "b",
            &pid_query,
            c.clone(),
            Streams::new(),
        )
        .unwrap(),
    );
    assert_eq!((source(&c), again.as_str()), ("reused", first.as_str()));
    assert_eq!(
        // Waits (up to 5 s) until the backend is gone.
        pg.sql(&format!("SELECT pg_terminate_backend({first}, 5000)")),
        "t"
    );
    let c = TestContext::with_connection(pg_conn.clone());
    let replaced = first_value(
        pgm.run(
            "postgres.extractor",
            "c",
            &pid_query,
            c.clone(),
            Streams::new(),
        )
        .unwrap(),
    );
    assert_eq!(source(&c), "opened");
    assert_ne!(replaced, first);
    // discover takes its session from the same pool.
    let c = TestContext::with_connection(pg_conn.clone());
    pgm.discover("postgres.extractor", &json!({}), c.clone())
        .unwrap();
    assert_eq!(source(&c), "reused");

    let c = TestContext::with_connection(my_conn.clone());
    let first = first_value(
        mym.run(
            "mysql.extractor",
            "a",
            &cid_query,
            c.clone(),
            Streams::new(),
        )
        .unwrap(),
    );
    assert_eq!(source(&c), "opened");
    my.sql(&format!("KILL {first}"));
    let c = TestContext::with_connection(my_conn.clone());
    let replaced = first_value(
        mym.run(
            "mysql.extractor",
            "b",
            &cid_query,
            c.clone(),
            Streams::new(),
        )
        .unwrap(),
    );
    assert_eq!(source(&c), "opened");
    assert_ne!(replaced, first);
    let c = TestContext::with_connection(my_conn.clone());
    mym.discover("mysql.extractor", &json!({}), c.clone())
        .unwrap();
    assert_eq!(source(&c), "reused");
}

/// What one step changes in its session (settings, user variables, temporary tables) is gone when the next
/// step gets the same session; the plugin's own session setup (UTC) is back in place.
#[test]
fn session_state_does_not_leak_between_steps() {
    let test = "session_state_does_not_leak_between_steps";
    if !(server("PostgreSQL", PG_PORT, test) && server("MariaDB", MY_PORT, test)) {
        return;
    }
    let pgm = Module::from_static(&osiris_plugin_postgres::OCP_ENTRY).unwrap();
    let mym = Module::from_static(&osiris_plugin_mysql::OCP_ENTRY).unwrap();
    let pg = PgDb::new();
    let my = MyDb::new();
    let pg_conn = json!({"host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "database": pg.name, "sslmode": "disable"});
    let my_conn = json!({"host": "127.0.0.1", "port": MY_PORT, "user": "root", "database": my.name, "ssl_mode": "disabled"});
    let pg_run = |query: &str| {
        let c = TestContext::with_connection(pg_conn.clone());
        let v = first_value(
            pgm.run(
                "postgres.extractor",
                "s",
                &json!({ "query": query }),
                c.clone(),
                Streams::new(),
            )
            .unwrap(),
        );
        (v, source(&c))
    };
    let my_run = |query: &str| {
        let c = TestContext::with_connection(my_conn.clone());
        let v = first_value(
            mym.run(
                "mysql.extractor",
                "s",
                &json!({ "query": query }),
                c.clone(),
                Streams::new(),
            )
            .unwrap(),
        );
        (v, source(&c))
    };

    assert_eq!(
        pg_run(
            "SELECT set_config('search_path', 'nowhere', false) || set_config('TimeZone', 'Asia/Tokyo', false) || set_config('osiris.mark', 'left', false)"
        ),
        ("nowhereAsia/Tokyoleft".to_string(), "opened")
    );
    assert_eq!(
        pg_run(
            "SELECT current_setting('search_path') || ' ' || current_setting('TimeZone') || ' ' || coalesce(current_setting('osiris.mark', true), '')"
        ),
        ("\"$user\", public UTC ".to_string(), "reused")
    );

    assert_eq!(
        my_run("SELECT CONCAT(@mark := 'left', (SELECT @@session.time_zone))"),
        ("left+00:00".to_string(), "opened")
    );
    my.sql("SELECT 1"); // another client, unrelated
    assert_eq!(
        my_run(
            "SELECT CONCAT(COALESCE(@mark, 'none'), ' ', @@session.time_zone, ' ', @@session.sql_mode LIKE '%STRICT_ALL_TABLES%')"
        ),
        ("none +00:00 1".to_string(), "reused")
    );
}

/// Polls `probe` (up to 10 s) until it returns `Some`: server statistics are written when a session ends.
fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(v) = probe() {
            return Some(v);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

/// Pooled sessions outlive their steps; when `osiris` exits they are ended politely (PostgreSQL's Terminate
/// message, MySQL's COM_QUIT), so neither server counts or logs a lost client for a successful run.
/// PostgreSQL counts lost clients per database (`sessions_abandoned`), which this test asserts; MariaDB only
/// globally (`Aborted_clients`, which other tests running in parallel also move): measured by hand, a run of
/// this pipeline leaves it unchanged, and adds one without the exit hook.
#[test]
fn pooled_sessions_say_goodbye_when_the_process_exits() {
    let test = "pooled_sessions_say_goodbye_when_the_process_exits";
    if !(server("PostgreSQL", PG_PORT, test) && server("MariaDB", MY_PORT, test)) {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    my.sql("CREATE TABLE src (id INT PRIMARY KEY, name VARCHAR(10)); INSERT INTO src VALUES (1, 'a'), (2, 'b')");
    pg.sql("CREATE TABLE dst (id int PRIMARY KEY, name text)");
    let p = project(Some(&pg), Some(&my));
    run_serially(
        p.path(),
        "goodbye",
        &(step(
            "e",
            "mysql.extractor",
            "read",
            &[],
            "connection: \"@mysql.local\"\ntable: src",
        ) + &step(
            "w",
            "postgres.writer",
            "write",
            &["e"],
            "connection: \"@postgres.local\"\ntable: dst",
        )),
    );
    assert_eq!(pg.sql("SELECT count(*) FROM dst"), "2");

    // Every session of this database has ended (psql's own aside), none abandoned.
    let (sessions, abandoned) = eventually(|| {
        let active = pg.sql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            pg.name
        ));
        if active != "0" {
            return None;
        }
        let row = pg.sql(&format!(
            "SELECT sessions, sessions_abandoned FROM pg_stat_database WHERE datname = '{}'",
            pg.name
        ));
        let (s, a) = row.split_once('|')?;
        Some((s.parse::<i64>().ok()?, a.parse::<i64>().ok()?))
    })
    .expect("the run's PostgreSQL sessions end when osiris exits");
    assert!(sessions >= 2, "sessions counted: {sessions}");
    assert_eq!(abandoned, 0, "PostgreSQL sessions that lost their client");
}
