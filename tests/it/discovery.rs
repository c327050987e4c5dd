//! `osiris discovery run` through the real binary, against the local MariaDB and PostgreSQL servers and a
//! CSV directory: tables, columns, types, primary keys, samples; the cache (hit, and misses after the
//! options or the connection's database changed); no secret in the output or the cache.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, server};
use crate::support::{code, osiris, text};
use serde_json::Value;
use std::path::Path;

const PG_SECRET: &str = "pw-never-shown-7f3a9c";

/// `osiris.yaml` and a connections file with `@mysql.t`, `@postgres.t` (a password the trust-auth server
/// ignores, to check masking) and `@filesystem.t`.
fn write_project(dir: &Path, my_db: Option<&str>, pg_db: Option<&str>) {
    std::fs::write(
        dir.join("osiris.yaml"),
        "discovery:\n  cache_ttl_seconds: 600\n",
    )
    .unwrap();
    let mut c = String::from("version: \"1.0\"\nconnections:\n");
    if let Some(db) = my_db {
        c.push_str(&format!(
            "  mysql:\n    t:\n      host: 127.0.0.1\n      port: {MY_PORT}\n      user: root\n      database: {db}\n"
        ));
    }
    if let Some(db) = pg_db {
        c.push_str(&format!(
            "  postgres:\n    t:\n      host: 127.0.0.1\n      port: {PG_PORT}\n      user: postgres\n      password: ${{OSIRIS_IT_PG_PASSWORD}}\n      database: {db}\n      sslmode: disable\n"
        ));
    }
    c.push_str("  filesystem:\n    t:\n      base_dir: ./csvs\n");
    std::fs::write(dir.join("osiris_connections.yaml"), c).unwrap();
}

fn discover(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["discovery", "run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let o = osiris(dir)
        .args(&all)
        .env("OSIRIS_IT_PG_PASSWORD", PG_SECRET)
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{all:?}\nstdout:\n{out}\nstderr:\n{err}");
    assert!(
        !out.contains(PG_SECRET) && !err.contains(PG_SECRET),
        "secret leaked:\n{out}\n{err}"
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn table<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["result"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("no tables in {v:#}"))
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table `{name}` in {v:#}"))
}

fn column<'a>(t: &'a Value, name: &str) -> &'a Value {
    t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no column `{name}` in {t:#}"))
}

/// The cache directory holds no secret.
fn assert_cache_clean(dir: &Path) {
    let cache = dir.join(".osiris/cache/discovery");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap_or_else(|e| panic!("{}: {e}", cache.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!entries.is_empty(), "no cache file in {}", cache.display());
    for p in entries {
        let t = std::fs::read_to_string(&p).unwrap();
        assert!(!t.contains(PG_SECRET), "secret in {}", p.display());
    }
}

#[test]
fn discovery_mysql_tables_types_samples_and_cache() {
    if !server(
        "MariaDB",
        MY_PORT,
        "discovery_mysql_tables_types_samples_and_cache",
    ) {
        return;
    }
    let my = MyDb::new();
    my.sql(
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, score DECIMAL(6,2));
         INSERT INTO customers VALUES (1, 'Ada', 9.50), (2, 'Grace', 7.25), (3, 'Linus', NULL);
         CREATE TABLE events (ts DATETIME, what TEXT);
         INSERT INTO events VALUES ('2024-01-02 03:04:05', 'login');
         ANALYZE TABLE customers, events;",
    );
    let other = MyDb::new();
    other.sql("CREATE TABLE only_here (x INT)");
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), Some(&my.name), None);

    let v = discover(tmp.path(), &["@mysql.t", "--samples", "2"]);
    assert_eq!(v["connection"], "@mysql.t");
    assert_eq!(v["component"], "mysql.extractor");
    assert_eq!(v["cached"], false);
    assert!(v["fetched_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    let names: Vec<&str> = v["result"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names, ["customers", "events"]);
    let c = table(&v, "customers");
    assert_eq!(c["primary_key"], serde_json::json!(["id"]));
    assert_eq!(column(c, "id")["arrow_type"], "Int64");
    assert!(
        column(c, "name")["source_type"]
            .as_str()
            .unwrap()
            .starts_with("varchar(40)")
    );
    assert_eq!(column(c, "name")["arrow_type"], "Utf8");
    assert_eq!(column(c, "name")["nullable"], false);
    assert!(
        column(c, "score")["arrow_type"]
            .as_str()
            .unwrap()
            .starts_with("Decimal128(6, 2)"),
        "{c:#}"
    );
    assert_eq!(c["samples"].as_array().unwrap().len(), 2, "{c:#}");
    assert_eq!(c["samples"][0]["name"], "Ada");
    assert!(c["row_count_estimate"].as_u64().is_some(), "{c:#}");
    let e = table(&v, "events");
    assert_eq!(e["primary_key"], serde_json::json!([]));
    assert_eq!(e["samples"][0]["what"], "login");

    // Same request: from the cache, same result.
    let again = discover(tmp.path(), &["@mysql.t", "--samples", "2"]);
    assert_eq!(again["cached"], true);
    assert_eq!(again["result"], v["result"]);
    assert_eq!(again["fingerprint"], v["fingerprint"]);
    // Other options: a miss (one sample now).
    let one = discover(tmp.path(), &["@mysql.t", "--samples", "1"]);
    assert_eq!(one["cached"], false);
    assert_eq!(
        table(&one, "customers")["samples"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // --refresh bypasses a fresh entry.
    let refreshed = discover(tmp.path(), &["@mysql.t", "--samples", "2", "--refresh"]);
    assert_eq!(refreshed["cached"], false);
    // The alias now points at another database: a miss, and the other database's tables.
    write_project(tmp.path(), Some(&other.name), None);
    let moved = discover(tmp.path(), &["@mysql.t", "--samples", "2"]);
    assert_eq!(moved["cached"], false);
    assert_eq!(moved["result"]["database"], other.name.as_str());
    assert_eq!(table(&moved, "only_here")["columns"][0]["name"], "x");
    assert_ne!(moved["fingerprint"], v["fingerprint"]);

    // Text output: the compact listing.
    let o = osiris(tmp.path())
        .args(["discovery", "run", "@mysql.t"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(out.contains("table only_here"), "{out}");
    assert!(out.contains("primary key: none"), "{out}");
}

#[test]
fn discovery_postgres_masks_secrets_and_misses_after_database_change() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "discovery_postgres_masks_secrets_and_misses_after_database_change",
    ) {
        return;
    }
    let pg = PgDb::new();
    pg.sql(
        "CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT NOT NULL, joined DATE);
         INSERT INTO customers VALUES (1, 'Ada', '2024-01-01'), (2, 'Grace', NULL);
         CREATE TABLE notes (body VARCHAR(20), weight DOUBLE PRECISION);
         INSERT INTO notes VALUES ('hello', 1.5);
         ANALYZE;",
    );
    let other = PgDb::new();
    other.sql("CREATE TABLE elsewhere (y INT PRIMARY KEY)");
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), None, Some(&pg.name));

    let v = discover(tmp.path(), &["@postgres.t"]);
    assert_eq!(v["component"], "postgres.extractor");
    assert_eq!(v["cached"], false);
    let c = table(&v, "customers");
    assert_eq!(c["primary_key"], serde_json::json!(["id"]));
    assert_eq!(column(c, "id")["source_type"], "bigint");
    assert_eq!(column(c, "id")["arrow_type"], "Int64");
    assert_eq!(column(c, "name")["arrow_type"], "Utf8");
    assert_eq!(column(c, "joined")["arrow_type"], "Date32");
    assert_eq!(c["row_count_estimate"], 2);
    assert_eq!(c["samples"].as_array().unwrap().len(), 2);
    let n = table(&v, "notes");
    assert_eq!(n["primary_key"], serde_json::json!([]));
    assert_eq!(column(n, "weight")["arrow_type"], "Float64");
    assert_eq!(n["samples"][0]["body"], "hello");

    let again = discover(tmp.path(), &["@postgres.t"]);
    assert_eq!(again["cached"], true);
    assert_eq!(again["result"], v["result"]);
    let fewer = discover(tmp.path(), &["@postgres.t", "--samples", "0"]);
    assert_eq!(fewer["cached"], false);
    assert_eq!(table(&fewer, "customers")["samples"], serde_json::json!([]));
    write_project(tmp.path(), None, Some(&other.name));
    let moved = discover(tmp.path(), &["@postgres.t"]);
    assert_eq!(moved["cached"], false);
    assert_eq!(
        table(&moved, "elsewhere")["primary_key"],
        serde_json::json!(["y"])
    );
    assert_cache_clean(tmp.path());
}

#[test]
fn discovery_csv_directory() {
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), None, None);
    let csvs = tmp.path().join("csvs");
    std::fs::create_dir(&csvs).unwrap();
    std::fs::write(csvs.join("b.csv"), "id,name\n1,x\n").unwrap();
    std::fs::write(csvs.join("a.csv"), "k\n1\n2\n").unwrap();
    std::fs::write(csvs.join("notes.txt"), "not a csv").unwrap();
    let v = discover(tmp.path(), &["@filesystem.t"]);
    assert_eq!(v["component"], "filesystem.csv_extractor");
    assert_eq!(v["cached"], false);
    let files: Vec<&str> = v["result"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(files, ["a.csv", "b.csv"]);
    assert_eq!(v["result"]["tables"][0]["size_bytes"], 6);
    assert_eq!(discover(tmp.path(), &["@filesystem.t"])["cached"], true);

    // A cached description never outlives its files: a rewritten file, a new file and a removed file each
    // miss the cache; a file discovery does not describe (notes.txt) does not.
    std::fs::write(csvs.join("notes.txt"), "still not a csv").unwrap();
    assert_eq!(discover(tmp.path(), &["@filesystem.t"])["cached"], true);
    std::fs::write(csvs.join("b.csv"), "id,name,score\n1,x,2.5\n").unwrap();
    let v = discover(tmp.path(), &["@filesystem.t"]);
    assert_eq!(v["cached"], false, "b.csv was rewritten");
    let b = &v["result"]["tables"][1];
    assert_eq!(b["name"], "b.csv");
    assert_eq!(b["columns"][2]["name"], "score", "{b:#}");
    std::fs::write(csvs.join("c.csv"), "z\n1\n").unwrap();
    assert_eq!(
        discover(tmp.path(), &["@filesystem.t"])["cached"],
        false,
        "c.csv was added"
    );
    std::fs::remove_file(csvs.join("a.csv")).unwrap();
    let v = discover(tmp.path(), &["@filesystem.t"]);
    assert_eq!(v["cached"], false, "a.csv was removed");
    assert_eq!(v["result"]["tables"].as_array().unwrap().len(), 2);
    assert_eq!(discover(tmp.path(), &["@filesystem.t"])["cached"], true);
}

#[test]
fn discovery_unresolvable_connections_exit_5() {
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), Some("nowhere"), Some("nowhere"));
    // An alias that is not defined: names family and alias.
    let o = osiris(tmp.path())
        .args(["discovery", "run", "@mysql.nope"])
        .output();
    let (_, err) = text(&o);
    assert_eq!(code(&o), 5, "{err}");
    assert!(err.contains("@mysql.nope"), "{err}");
    // A field whose variable is not set: names the variable, and no cache file is written.
    let o = osiris(tmp.path())
        .args(["discovery", "run", "@postgres.t"])
        .output();
    let (_, err) = text(&o);
    assert_eq!(code(&o), 5, "{err}");
    assert!(err.contains("OSIRIS_IT_PG_PASSWORD"), "{err}");
    assert!(!tmp.path().join(".osiris/cache/discovery").exists());
    // Not a reference at all.
    let o = osiris(tmp.path())
        .args(["discovery", "run", "mysql"])
        .output();
    assert_eq!(code(&o), 5, "{}", text(&o).1);
}

/// Writes `text` gzip-compressed to `path` (with the system's `gzip`, as a user would make one).
fn write_gz(path: &Path, text: &str) {
    let plain = path.with_extension("");
    std::fs::write(&plain, text).unwrap();
    let st = std::process::Command::new("gzip")
        .arg("-n")
        .arg(&plain)
        .status()
        .expect("gzip runs");
    assert!(
        st.success() && path.exists(),
        "gzip made {}",
        path.display()
    );
}

#[test]
fn discovery_csv_files_report_columns_types_estimates_samples_and_errors() {
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), None, None);
    let csvs = tmp.path().join("csvs");
    std::fs::create_dir_all(csvs.join("archive")).unwrap();
    std::fs::write(
        csvs.join("orders.csv"),
        "id,customer,amount,ordered_on,paid\n1,Ada,19.5,2024-01-02,true\n2,\"Hopper, G\",,2024-01-03,false\n3,Linus,7,2024-01-04,true\n",
    )
    .unwrap();
    write_gz(
        &csvs.join("archive/events.csv.gz"),
        "ts,what\n2024-01-02T03:04:05,login\n2024-01-02T03:09:00,logout\n",
    );
    // Too many fields on line 3: an error entry, not a failed discovery.
    std::fs::write(csvs.join("broken.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    // More rows than inference reads: the count is an estimate.
    let mut big = String::from("n,label\n");
    for i in 0..30_000 {
        big.push_str(&format!("{},row-{:06}\n", 100_000 + i, i));
    }
    std::fs::write(csvs.join("big.csv"), &big).unwrap();

    let v = discover(tmp.path(), &["@filesystem.t", "--samples", "2"]);
    assert_eq!(v["component"], "filesystem.csv_extractor");
    let names: Vec<&str> = v["result"]["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("{v:#}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "archive/events.csv.gz",
            "big.csv",
            "broken.csv",
            "orders.csv"
        ]
    );

    let o = table(&v, "orders.csv");
    assert_eq!(o["kind"], "file");
    assert_eq!(o["primary_key"], serde_json::json!([]));
    assert_eq!(o["row_count_estimate"], 3);
    assert_eq!(o["row_count_exact"], true);
    let types: Vec<(&str, &str, &str)> = o["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["nullable"], true, "{c}");
            (
                c["name"].as_str().unwrap(),
                c["source_type"].as_str().unwrap(),
                c["arrow_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("id", "int64", "Int64"),
            ("customer", "utf8", "Utf8"),
            ("amount", "float64", "Float64"),
            ("ordered_on", "date32", "Date32"),
            ("paid", "bool", "Boolean"),
        ]
    );
    assert_eq!(
        o["samples"],
        serde_json::json!([
            {"id": 1, "customer": "Ada", "amount": 19.5, "ordered_on": "2024-01-02", "paid": true},
            {"id": 2, "customer": "Hopper, G", "amount": null, "ordered_on": "2024-01-03", "paid": false}
        ])
    );

    let e = table(&v, "archive/events.csv.gz");
    assert_eq!(e["compression"], "gzip");
    assert_eq!(e["row_count_estimate"], 2);
    assert_eq!(column(e, "what")["arrow_type"], "Utf8");
    assert!(
        column(e, "ts")["arrow_type"]
            .as_str()
            .unwrap()
            .starts_with("Timestamp"),
        "{e:#}"
    );
    assert_eq!(e["samples"][1]["what"], "logout");

    let b = table(&v, "big.csv");
    assert_eq!(b["row_count_exact"], false, "{b:#}");
    let estimate = b["row_count_estimate"].as_f64().unwrap();
    assert!(
        (estimate - 30_000.0).abs() < 1_500.0,
        "estimate {estimate} for 30000 rows"
    );
    assert_eq!(column(b, "n")["arrow_type"], "Int64");

    let broken = table(&v, "broken.csv");
    assert_eq!(broken["error"]["code"], "CSV-PARSE", "{broken:#}");
    assert!(
        broken["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{broken:#}"
    );
    assert_eq!(broken["columns"], serde_json::json!([]));

    // --samples 0: no rows; another cache entry.
    let none = discover(tmp.path(), &["@filesystem.t", "--samples", "0"]);
    assert_eq!(none["cached"], false);
    assert_eq!(table(&none, "orders.csv")["samples"], serde_json::json!([]));
    assert_eq!(
        table(&none, "orders.csv")["columns"],
        table(&v, "orders.csv")["columns"]
    );

    // The types discovery reports are the types a run reads: orders.csv through a pipeline into a CSV
    // writer keeps `amount` a float (19.5, and 7 written as 7.0) and `paid` a boolean.
    std::fs::write(
        tmp.path().join("p.yaml"),
        "oml_version: \"0.1.0\"\nname: disc\nsteps:\n  - id: read\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      connection: \"@filesystem.t\"\n      path: orders.csv\n  - id: write\n    component: filesystem.csv_writer\n    mode: write\n    needs: [read]\n    config:\n      connection: \"@filesystem.t\"\n      path: out/orders.csv\n",
    )
    .unwrap();
    let run = osiris(tmp.path()).args(["run", "p.yaml"]).output();
    let (out, err) = text(&run);
    assert_eq!(code(&run), 0, "{out}\n{err}");
    let written = std::fs::read_to_string(csvs.join("out/orders.csv")).unwrap();
    assert!(written.contains(",7.0,"), "{written}");

    // Text output: the error shows with its code, the exact count without `~`.
    let o = osiris(tmp.path())
        .args(["discovery", "run", "@filesystem.t", "--refresh"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(out.contains("file orders.csv  3 rows"), "{out}");
    assert!(out.contains("file big.csv  ~"), "{out}");
    assert!(out.contains("error[CSV-PARSE]"), "{out}");
}

/// Issue 21 (6): binary columns holding bytes that are not UTF-8 do not break discovery: their samples are
/// `\x` and hex digits, on MariaDB (BLOB, VARBINARY) and PostgreSQL (bytea) alike.
#[test]
fn discovery_binary_samples_are_hex_on_mysql_and_postgres() {
    let name = "discovery_binary_samples_are_hex_on_mysql_and_postgres";
    if !server("MariaDB", MY_PORT, name) || !server("PostgreSQL", PG_PORT, name) {
        return;
    }
    let my = MyDb::new();
    my.sql(
        "CREATE TABLE files (id INT PRIMARY KEY, body BLOB, tag VARBINARY(8), flags BIT(8), note TEXT);
         INSERT INTO files VALUES (1, x'FF00FE80', x'C328', b'10000001', 'ok'), (2, NULL, NULL, NULL, NULL);",
    );
    let pg = PgDb::new();
    pg.sql(
        "CREATE TABLE files (id int PRIMARY KEY, body bytea, note text);
         INSERT INTO files VALUES (1, '\\xff00fe80', 'ok');",
    );
    let tmp = tempfile::tempdir().unwrap();
    write_project(tmp.path(), Some(&my.name), Some(&pg.name));

    let v = discover(tmp.path(), &["@mysql.t", "--samples", "2"]);
    let t = table(&v, "files");
    assert_eq!(
        t["samples"],
        serde_json::json!([
            {"id": 1, "body": "\\xff00fe80", "tag": "\\xc328", "flags": 129, "note": "ok"},
            {"id": 2, "body": null, "tag": null, "flags": null, "note": null},
        ]),
        "{t:#}"
    );
    // The text listing works too (it panicked before).
    let o = osiris(tmp.path())
        .args(["discovery", "run", "@mysql.t", "--refresh"])
        .output();
    let (out, err) = text(&o);
    assert_eq!(code(&o), 0, "{out}\n{err}");
    assert!(!err.contains("PANIC"), "{err}");

    let v = discover(tmp.path(), &["@postgres.t", "--samples", "2"]);
    let t = table(&v, "files");
    assert_eq!(
        t["samples"],
        serde_json::json!([{"id": 1, "body": "\\xff00fe80", "note": "ok"}]),
        "{t:#}"
    );
}
