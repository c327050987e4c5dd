//! The database components (postgres, supabase, mysql) against the local PostgreSQL and MariaDB servers,
//! through the real `osiris` binary. Each test makes its own databases and drops them at the end; a test whose
//! server is unreachable is skipped with a note, or fails when `OSIRIS_REQUIRE_DATABASES=1`.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, run_pipeline, server, step};
use crate::support::{code, text};
use osiris_plugin_sdk::host::Module;
use osiris_plugin_sdk::testing::TestContext;
use serde_json::{Value, json};
use std::sync::Arc;

fn both(test: &str) -> bool {
    server("PostgreSQL", PG_PORT, test) && server("MariaDB", MY_PORT, test)
}

/// Rows of `SELECT <key> FROM a JOIN b USING (key) WHERE <cond>` per column: every column must match.
fn pg_mismatches(pg: &PgDb, checks: &[(&str, &str)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (col, cond) in checks {
        let ids = pg.sql(&format!(
            "SELECT string_agg(s.id::text, ',') FROM src s JOIN back b USING (id) WHERE NOT ({cond})"
        ));
        if !ids.is_empty() {
            bad.push(format!("{col}: rows {ids}"));
        }
    }
    bad
}

#[test]
fn postgres_types_round_trip_through_mysql() {
    if !both("postgres_types_round_trip_through_mysql") {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    pg.sql(
        r#"CREATE TABLE src (
            id int PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
            n numeric(38,10), n2 numeric(12,2), t text, vc varchar(20), ch char(3), by bytea, d date,
            ts timestamp, tstz timestamptz, tm time, js json, jb jsonb, u uuid);
        INSERT INTO src VALUES
        (1, true, -32768, -2147483648, -9223372036854775808, 1.5, -2.25e300,
         1234567890123456789012345678.0123456789, -0.01, 'héllo wörld 日本 😀', 'abc', 'x', '\x00ff10',
         '1999-12-31', '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00+02', '23:59:59.999999',
         '{"a": [1, 2, {"b": null}]}', '{"k": "ü", "n": 1.5}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'),
        (2, false, 32767, 2147483647, 9223372036854775807, -3.4e38, 0,
         -9999999999999999999999999999.9999999999, 9999999999.99, '', 'it''s "q" \n', 'abc', '\x',
         '1000-01-01', '1900-01-01 00:00:00', '1970-01-01 00:00:00+00', '00:00:00', '[]', 'null',
         '00000000-0000-0000-0000-000000000000'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL);"#,
    );
    let p = project(Some(&pg), Some(&my));
    let o = run_pipeline(
        p.path(),
        "pg-to-mysql",
        &(step(
            "extract",
            "postgres.extractor",
            "read",
            &[],
            "connection: \"@postgres.local\"\ntable: src\nbatch_size: 2",
        ) + &step(
            "load",
            "mysql.writer",
            "write",
            &["extract"],
            "connection: \"@mysql.local\"\ntable: mid\ncreate_table: true",
        )),
    );
    ok(&o);
    // What MySQL holds.
    assert_eq!(
        my.sql("SELECT id, b, i8, HEX(`by`), n, n2, t, tstz, tm, u FROM mid ORDER BY id"),
        "1\t1\t-9223372036854775808\t00FF10\t1234567890123456789012345678.0123456789\t-0.01\t\
         héllo wörld 日本 😀\t2024-06-01 10:00:00.000000\t23:59:59.999999\ta0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\n\
         2\t0\t9223372036854775807\t\t-9999999999999999999999999999.9999999999\t9999999999.99\t\t\
         1970-01-01 00:00:00.000000\t00:00:00.000000\t00000000-0000-0000-0000-000000000000\n\
         3\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL"
    );
    let o = run_pipeline(
        p.path(),
        "mysql-to-pg",
        &(step(
            "extract",
            "mysql.extractor",
            "read",
            &[],
            "connection: \"@mysql.local\"\ntable: mid",
        ) + &step(
            "load",
            "postgres.writer",
            "write",
            &["extract"],
            "connection: \"@postgres.local\"\ntable: back\ncreate_if_missing: true",
        )),
    );
    ok(&o);
    assert_eq!(pg.sql("SELECT count(*) FROM back"), "3");
    let bad = pg_mismatches(
        &pg,
        &[
            ("b", "s.b IS NOT DISTINCT FROM b.b"),
            ("i2", "s.i2 IS NOT DISTINCT FROM b.i2"),
            ("i4", "s.i4 IS NOT DISTINCT FROM b.i4"),
            ("i8", "s.i8 IS NOT DISTINCT FROM b.i8"),
            ("f4", "s.f4 IS NOT DISTINCT FROM b.f4"),
            ("f8", "s.f8 IS NOT DISTINCT FROM b.f8"),
            ("n", "s.n IS NOT DISTINCT FROM b.n"),
            ("n2", "s.n2 IS NOT DISTINCT FROM b.n2"),
            ("t", "s.t IS NOT DISTINCT FROM b.t"),
            ("vc", "s.vc IS NOT DISTINCT FROM b.vc"),
            ("ch", "s.ch IS NOT DISTINCT FROM b.ch::char(3)"),
            ("by", "s.by IS NOT DISTINCT FROM b.by"),
            ("d", "s.d IS NOT DISTINCT FROM b.d"),
            ("ts", "s.ts IS NOT DISTINCT FROM b.ts"),
            (
                "tstz",
                "s.tstz IS NOT DISTINCT FROM (b.tstz AT TIME ZONE 'UTC')",
            ),
            ("tm", "s.tm IS NOT DISTINCT FROM b.tm"),
            ("js", "s.js::text IS NOT DISTINCT FROM b.js"),
            ("jb", "s.jb IS NOT DISTINCT FROM b.jb::jsonb"),
            ("u", "s.u::text IS NOT DISTINCT FROM b.u"),
        ],
    );
    assert!(
        bad.is_empty(),
        "values changed on the way: {bad:?}\n{}",
        pg.sql("SELECT * FROM back ORDER BY id")
    );
    assert_eq!(
        pg.sql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'back'::regclass AND attname IN ('n', 'n2', 'by', 'd', 'tm', 'i2', 'f4') ORDER BY attnum"),
        "smallint\nreal\nnumeric(38,10)\nnumeric(12,2)\nbytea\ndate\ntime without time zone"
    );
}

#[test]
fn mysql_types_round_trip_through_postgres() {
    if !both("mysql_types_round_trip_through_postgres") {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    my.sql(
        r#"CREATE TABLE src (id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
            mi MEDIUMINT, ii INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED, fl FLOAT, db DOUBLE,
            de DECIMAL(38,18), de2 DECIMAL(10,0), bo BOOLEAN, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL,
            tm TIME(6), yr YEAR, c CHAR(5), vc VARCHAR(100), tx TEXT, bl BLOB, vb VARBINARY(16), js JSON,
            en ENUM('small','large'), st SET('a','b','c'), bt BIT(8)) DEFAULT CHARSET = utf8mb4;
        INSERT INTO src VALUES
        (1, -128, 255, -32768, 65535, -8388608, -2147483648, 4294967295, -9223372036854775808,
         18446744073709551615, 1.5, -2.5e300, 12345678901234567890.123456789012345678, 42, TRUE,
         '2024-02-29', '2024-02-29 23:59:59.123456', '2024-06-01 10:00:00.5', '12:34:56.789', 2024, 'ab',
         'héllo 😀 日本', 'it''s a "long" text\twith tab', X'00FF', X'DEADBEEF', '{"a": 1, "b": [true, null]}',
         'large', 'a,c', b'10100101'),
        (2, 127, 0, 32767, 0, 8388607, 2147483647, 0, 9223372036854775807, 0, -0.25, 0, -0.000000000000000001,
         -9999999999, FALSE, '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '00:00:00', 1901, '',
         '', '', X'', X'', '[]', 'small', '', b'0'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"#,
    );
    let p = project(Some(&pg), Some(&my));
    let o = run_pipeline(
        p.path(),
        "mysql-to-pg",
        &(step(
            "extract",
            "mysql.extractor",
            "read",
            &[],
            "connection: \"@mysql.local\"\ntable: src",
        ) + &step(
            "load",
            "postgres.writer",
            "write",
            &["extract"],
            "connection: \"@postgres.local\"\ntable: mid\ncreate_if_missing: true",
        )),
    );
    ok(&o);
    assert_eq!(
        pg.sql("SELECT bu::text, de::text, ts::text, tm::text, js, en, st, bt, encode(bl, 'hex'), vc, bo FROM mid ORDER BY id"),
        "18446744073709551615|12345678901234567890.123456789012345678|2024-06-01 10:00:00.5+00|12:34:56.789|\
         {\"a\": 1, \"b\": [true, null]}|large|a,c|165|00ff|héllo 😀 日本|t\n\
         0|-0.000000000000000001|1970-01-01 00:00:01+00|00:00:00|[]|small||0|||f\n\
         ||||||||||"
    );
    assert_eq!(
        pg.sql("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'mid'::regclass AND attname IN ('tu', 'bu', 'de', 'bo', 'ts', 'dt', 'bl', 'fl')"),
        "tu smallint, bu numeric(20,0), fl real, de numeric(38,18), bo boolean, dt timestamp without time zone, ts timestamp with time zone, bl bytea"
    );
    let o = run_pipeline(
        p.path(),
        "pg-to-mysql",
        &(step(
            "extract",
            "postgres.extractor",
            "read",
            &[],
            "connection: \"@postgres.local\"\nquery: SELECT * FROM mid ORDER BY id",
        ) + &step(
            "load",
            "mysql.writer",
            "write",
            &["extract"],
            "connection: \"@mysql.local\"\ntable: back\ncreate_table: true\nbatch_size: 2",
        )),
    );
    ok(&o);
    assert_eq!(my.sql("SELECT COUNT(*) FROM back"), "3");
    let cols = [
        "ti", "tu", "si", "su", "mi", "ii", "iu", "bi", "bu", "fl", "db", "de", "de2", "bo", "d",
        "dt", "ts", "tm", "yr", "c", "vc", "tx", "bl", "vb", "en", "st",
    ];
    let mut bad = Vec::new();
    for c in cols {
        let ids = my.sql(&format!(
            "SELECT IFNULL(GROUP_CONCAT(s.id), '') FROM src s JOIN back b USING (id) WHERE NOT (s.{c} <=> b.{c})"
        ));
        if !ids.is_empty() {
            bad.push(format!("{c}: rows {ids}"));
        }
    }
    for (c, cond) in [
        ("js", "CAST(s.js AS CHAR) <=> b.js"),
        ("bt", "(s.bt + 0) <=> b.bt"),
    ] {
        let ids = my.sql(&format!(
            "SELECT IFNULL(GROUP_CONCAT(s.id), '') FROM src s JOIN back b USING (id) WHERE NOT ({cond})"
        ));
        if !ids.is_empty() {
            bad.push(format!("{c}: rows {ids}"));
        }
    }
    assert!(
        bad.is_empty(),
        "values changed on the way: {bad:?}\n{}",
        my.sql("SELECT * FROM back")
    );
}

#[test]
fn csv_loads_into_postgres_and_mysql() {
    if !both("csv_loads_into_postgres_and_mysql") {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    let p = project(Some(&pg), Some(&my));
    std::fs::write(
        p.path().join("people.csv"),
        "id,name,score,joined,active\n1,Zoë,3.5,2024-01-02,true\n2,\"O'Brien, Pat\",,2023-12-31,false\n3,日本 😀,10,,true\n",
    )
    .unwrap();
    let path = p.path().join("people.csv");
    let extract = format!("path: {}", path.display());
    let o = run_pipeline(
        p.path(),
        "csv-to-dbs",
        &(step("extract", "filesystem.csv_extractor", "read", &[], &extract)
            + &step(
                "to_pg",
                "postgres.writer",
                "write",
                &["extract"],
                "connection: \"@postgres.local\"\ntable: people\ncreate_if_missing: true",
            )
            + &step(
                "to_my",
                "mysql.writer",
                "write",
                &["extract"],
                "connection: \"@mysql.local\"\ntable: people\ncreate_table: true",
            )),
    );
    ok(&o);
    assert_eq!(
        pg.sql("SELECT id, name, score, joined, active FROM people ORDER BY id"),
        "1|Zoë|3.5|2024-01-02|t\n2|O'Brien, Pat||2023-12-31|f\n3|日本 😀|10||t"
    );
    assert_eq!(
        my.sql("SELECT id, name, score, joined, active FROM people ORDER BY id"),
        "1\tZoë\t3.5\t2024-01-02\t1\n2\tO'Brien, Pat\tNULL\t2023-12-31\t0\n3\t日本 😀\t10\tNULL\t1"
    );
}

#[test]
fn postgres_and_supabase_write_modes() {
    if !server("PostgreSQL", PG_PORT, "postgres_and_supabase_write_modes") {
        return;
    }
    let pg = PgDb::new();
    let p = project(Some(&pg), None);
    for (component, conn) in [
        ("postgres.writer", "@postgres.local"),
        ("supabase.writer", "@supabase.local"),
    ] {
        let table = component.replace('.', "_");
        pg.sql(&format!(
            "DROP TABLE IF EXISTS {table}, {table}_log; \
             CREATE TABLE {table} (id int PRIMARY KEY, name text, note text DEFAULT 'keep'); \
             CREATE TABLE {table}_log (id int, name text)"
        ));
        let run = |name: &str, rows: &str, target: &str, extra: &str| {
            let query = format!("query: \"SELECT * FROM (VALUES {rows}) AS v(id, name)\"");
            let o = run_pipeline(
                p.path(),
                name,
                &(step(
                    "src",
                    "postgres.extractor",
                    "read",
                    &[],
                    &format!("connection: \"@postgres.local\"\n{query}"),
                ) + &step(
                    "load",
                    component,
                    "write",
                    &["src"],
                    &format!("connection: \"{conn}\"\ntable: {target}\n{extra}"),
                )),
            );
            ok(&o);
        };
        run("append1", "(1, 'a'), (2, 'b')", &format!("{table}_log"), "");
        run(
            "append2",
            "(1, 'a'), (2, 'b')",
            &format!("{table}_log"),
            "write_mode: append",
        );
        assert_eq!(
            pg.sql(&format!(
                "SELECT count(*), count(DISTINCT id) FROM {table}_log"
            )),
            "4|2",
            "{component}: append twice"
        );
        run("fill", "(1, 'a'), (2, 'b'), (3, 'c')", &table, "");
        run(
            "replace",
            "(5, 'e'), (6, 'f')",
            &table,
            "write_mode: replace",
        );
        assert_eq!(
            pg.sql(&format!("SELECT id, name, note FROM {table} ORDER BY id")),
            "5|e|keep\n6|f|keep",
            "{component}: replace"
        );
        pg.sql(&format!("UPDATE {table} SET note = 'mine' WHERE id = 6"));
        run(
            "upsert",
            "(6, 'F'), (7, 'g')",
            &table,
            "write_mode: upsert\nprimary_key: id",
        );
        assert_eq!(
            pg.sql(&format!("SELECT id, name, note FROM {table} ORDER BY id")),
            "5|e|keep\n6|F|mine\n7|g|keep",
            "{component}: upsert updates changed rows, inserts new ones, leaves other columns"
        );
        run(
            "merge",
            "(7, 'G')",
            &table,
            "write_mode: merge\nprimary_key: [id]",
        );
        assert_eq!(
            pg.sql(&format!("SELECT name FROM {table} WHERE id = 7")),
            "G",
            "{component}: merge"
        );
    }
}

#[test]
fn mysql_write_modes() {
    if !server("MariaDB", MY_PORT, "mysql_write_modes") {
        return;
    }
    let my = MyDb::new();
    let p = project(None, Some(&my));
    my.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), note VARCHAR(20) DEFAULT 'keep'); \
         CREATE TABLE log (id INT, name VARCHAR(20)); CREATE TABLE nokey (id INT, name VARCHAR(20))",
    );
    let run =
        |name: &str, rows: &[(i32, &str)], target: &str, extra: &str| -> std::process::Output {
            let query = rows
                .iter()
                .map(|(i, n)| format!("SELECT {i} AS id, '{n}' AS name"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            run_pipeline(
                p.path(),
                name,
                &(step(
                    "src",
                    "mysql.extractor",
                    "read",
                    &[],
                    &format!("connection: \"@mysql.local\"\nquery: \"{query}\""),
                ) + &step(
                    "load",
                    "mysql.writer",
                    "write",
                    &["src"],
                    &format!("connection: \"@mysql.local\"\ntable: {target}\n{extra}"),
                )),
            )
        };
    ok(&run("append1", &[(1, "a"), (2, "b")], "log", ""));
    ok(&run(
        "append2",
        &[(1, "a"), (2, "b")],
        "log",
        "mode: append",
    ));
    assert_eq!(
        my.sql("SELECT COUNT(*), COUNT(DISTINCT id) FROM log"),
        "4\t2"
    );
    ok(&run("fill", &[(1, "a"), (2, "b"), (3, "c")], "t", ""));
    ok(&run("replace", &[(5, "e"), (6, "f")], "t", "mode: replace"));
    assert_eq!(
        my.sql("SELECT id, name, note FROM t ORDER BY id"),
        "5\te\tkeep\n6\tf\tkeep"
    );
    my.sql("UPDATE t SET note = 'mine' WHERE id = 6");
    ok(&run(
        "upsert",
        &[(6, "F"), (7, "g")],
        "t",
        "mode: upsert\nupsert_keys: [id]",
    ));
    assert_eq!(
        my.sql("SELECT id, name, note FROM t ORDER BY id"),
        "5\te\tkeep\n6\tF\tmine\n7\tg\tkeep"
    );
    // Upsert on columns without a unique key is refused before anything is written.
    let o = run(
        "badkey",
        &[(1, "x")],
        "nokey",
        "mode: upsert\nupsert_keys: [id]",
    );
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stderr}");
    assert!(stderr.contains("unique index on exactly (id)"), "{stderr}");
    assert_eq!(my.sql("SELECT COUNT(*) FROM nokey"), "0");
    // A missing table without create_table.
    let o = run("missing", &[(1, "x")], "nope", "");
    let (_, stderr) = text(&o);
    assert_eq!(code(&o), 4, "{stderr}");
    assert!(stderr.contains("create_table: true"), "{stderr}");
}

/// A NOT NULL violation on row 199,990 of a 200,000-row write: every writer leaves the target as it was.
#[test]
fn a_failed_large_write_leaves_every_target_unchanged() {
    if !both("a_failed_large_write_leaves_every_target_unchanged") {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    pg.sql(
        "CREATE TABLE big AS SELECT g AS id, CASE WHEN g = 199990 THEN NULL ELSE md5(g::text) END AS name \
         FROM generate_series(1, 200000) g; \
         CREATE TABLE tgt (id int PRIMARY KEY, name text NOT NULL); \
         INSERT INTO tgt VALUES (0, 'zero'), (-1, 'minus one')",
    );
    my.sql(
        "CREATE TABLE big (id INT PRIMARY KEY, name VARCHAR(40)); \
         INSERT INTO big SELECT seq, IF(seq = 199990, NULL, MD5(seq)) FROM seq_1_to_200000; \
         CREATE TABLE tgt (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL) ENGINE = InnoDB; \
         INSERT INTO tgt VALUES (0, 'zero'), (-1, 'minus one')",
    );
    let pg_snapshot =
        || pg.sql("SELECT count(*), md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM tgt");
    let my_snapshot =
        || my.sql("SELECT COUNT(*), MD5(GROUP_CONCAT(id, ':', name ORDER BY id)) FROM tgt");
    let pg_before = pg_snapshot();
    let my_before = my_snapshot();
    assert!(pg_before.starts_with("2|"), "{pg_before}");
    let p = project(Some(&pg), Some(&my));
    let cases = [
        (
            "pg-append",
            "postgres.extractor",
            "@postgres.local",
            "postgres.writer",
            "@postgres.local",
            "write_mode: append",
            "[POSTGRES-CONSTRAINT] finishing COPY: null value in column \"name\"",
        ),
        (
            "pg-replace",
            "postgres.extractor",
            "@postgres.local",
            "postgres.writer",
            "@postgres.local",
            "write_mode: replace",
            "[POSTGRES-CONSTRAINT] finishing COPY: null value in column \"name\"",
        ),
        (
            "sb-upsert",
            "postgres.extractor",
            "@postgres.local",
            "supabase.writer",
            "@supabase.local",
            "write_mode: upsert\nprimary_key: id",
            "[SUPABASE-CONSTRAINT] writing into \"public\".\"tgt\": null value in column \"name\"",
        ),
        (
            "my-append",
            "mysql.extractor",
            "@mysql.local",
            "mysql.writer",
            "@mysql.local",
            "mode: append\nbatch_size: 5000",
            "[MYSQL-CONSTRAINT] writing into `tgt`: Column 'name' cannot be null",
        ),
        (
            "my-replace",
            "mysql.extractor",
            "@mysql.local",
            "mysql.writer",
            "@mysql.local",
            "mode: replace\nbatch_size: 5000",
            "[MYSQL-CONSTRAINT] writing into `tgt`: Column 'name' cannot be null",
        ),
    ];
    for (name, extractor, src, writer, dst, extra, violation) in cases {
        let o = run_pipeline(
            p.path(),
            name,
            &(step(
                "src",
                extractor,
                "read",
                &[],
                &format!("connection: \"{src}\"\ntable: big"),
            ) + &step(
                "load",
                writer,
                "write",
                &["src"],
                &format!("connection: \"{dst}\"\ntable: tgt\n{extra}"),
            )),
        );
        let (_, stderr) = text(&o);
        assert_eq!(code(&o), 4, "{name}: {stderr}");
        assert!(
            stderr.contains(violation),
            "{name}: the error names the violation: {stderr}"
        );
        if writer == "mysql.writer" {
            assert_eq!(my_snapshot(), my_before, "{name}: the MySQL target changed");
        } else {
            assert_eq!(
                pg_snapshot(),
                pg_before,
                "{name}: the PostgreSQL target changed"
            );
        }
    }
    // And the same 200k rows without the bad one go through completely.
    pg.sql("UPDATE big SET name = 'fixed' WHERE id = 199990");
    let o = run_pipeline(
        p.path(),
        "pg-ok",
        &(step(
            "src",
            "postgres.extractor",
            "read",
            &[],
            "connection: \"@postgres.local\"\ntable: big",
        ) + &step(
            "load",
            "postgres.writer",
            "write",
            &["src"],
            "connection: \"@postgres.local\"\ntable: tgt",
        )),
    );
    ok(&o);
    assert_eq!(pg.sql("SELECT count(*) FROM tgt"), "200002");
    assert_eq!(
        pg.sql("SELECT count(*) FROM tgt t JOIN big b USING (id) WHERE t.name = b.name"),
        "200000"
    );
}

#[test]
fn predecessor_pipeline_mysql_duckdb_supabase() {
    if !both("predecessor_pipeline_mysql_duckdb_supabase") {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    my.sql(
        "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40), amount DECIMAL(10,2), created_at DATETIME); \
         INSERT INTO orders VALUES (1, 'acme', 10.50, '2024-01-01 10:00:00'), (2, 'acme', 4.25, '2024-01-02 11:00:00'), \
         (3, 'Zürich AG', 100.00, '2024-01-03 12:00:00'), (4, 'globex', NULL, '2024-01-04 13:00:00')",
    );
    let p = project(Some(&pg), Some(&my));
    let steps = step(
        "extract-orders",
        "mysql.extractor",
        "read",
        &[],
        "connection: \"@mysql\"\nquery: SELECT id, customer, amount, created_at FROM orders",
    ) + &step(
        "summarize",
        "duckdb.processor",
        "transform",
        &["extract-orders"],
        "query: |\n  SELECT customer, SUM(amount) AS total, COUNT(*) AS orders, MAX(created_at) AS last_order\n  FROM df_extract_orders GROUP BY customer ORDER BY customer",
    ) + &step(
        "write-summary",
        "supabase.writer",
        "write",
        &["summarize"],
        "connection: \"@supabase\"\ntable: customer_summary\nwrite_mode: upsert\nprimary_key: customer",
    );
    let o = run_pipeline(p.path(), "orders-to-supabase", &steps);
    ok(&o);
    assert_eq!(
        pg.sql(
            "SELECT customer, total, orders, last_order FROM customer_summary ORDER BY customer"
        ),
        "Zürich AG|100.00|1|2024-01-03 12:00:00\nacme|14.75|2|2024-01-02 11:00:00\nglobex||1|2024-01-04 13:00:00"
    );
    // The supabase key never reaches the run directory.
    let key = "service-role-key-for-tests-only";
    let mut stack = vec![p.path().join("run_logs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let t = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert!(!t.contains(key), "{} holds the key", path.display());
            }
        }
    }
    // A second run upserts instead of duplicating.
    my.sql("UPDATE orders SET amount = 20.00 WHERE id = 4");
    let o = run_pipeline(p.path(), "orders-to-supabase-again", &steps);
    ok(&o);
    assert_eq!(
        pg.sql("SELECT count(*), sum(total) FROM customer_summary"),
        "3|134.75"
    );
}

fn ctx(conn: Value) -> Arc<TestContext> {
    TestContext::with_connection(conn)
}

#[test]
fn doctor_tells_failures_apart_and_discover_lists_tables() {
    if !both("doctor_tells_failures_apart_and_discover_lists_tables") {
        return;
    }
    let pgm = Module::from_static(&osiris_plugin_postgres::OCP_ENTRY).unwrap();
    let mym = Module::from_static(&osiris_plugin_mysql::OCP_ENTRY).unwrap();
    let pg = PgDb::new();
    let my = MyDb::new();
    let pg_conn =
        json!({"host": "127.0.0.1", "port": PG_PORT, "user": "postgres", "database": pg.name});
    let my_conn =
        json!({"host": "127.0.0.1", "port": MY_PORT, "user": "root", "database": my.name});

    let r = pgm
        .doctor("postgres.extractor", &json!({}), ctx(pg_conn.clone()))
        .unwrap();
    assert_eq!(r["ok"], true, "{r}");
    let r = mym
        .doctor("mysql.writer", &json!({}), ctx(my_conn.clone()))
        .unwrap();
    assert_eq!(r["ok"], true, "{r}");

    // refused: nothing listens on port 1.
    let e = pgm
        .doctor(
            "postgres.extractor",
            &json!({"port": 1}),
            ctx(pg_conn.clone()),
        )
        .unwrap_err();
    assert_eq!(e.code, "refused", "{e:?}");
    let e = mym
        .doctor("mysql.extractor", &json!({"port": 1}), ctx(my_conn.clone()))
        .unwrap_err();
    assert_eq!(e.code, "refused", "{e:?}");
    // unknown_database
    let e = pgm
        .doctor(
            "postgres.extractor",
            &json!({"database": "osiris_it_no_such_db"}),
            ctx(pg_conn.clone()),
        )
        .unwrap_err();
    assert_eq!(e.code, "unknown_database", "{e:?}");
    let e = mym
        .doctor(
            "mysql.extractor",
            &json!({"database": "osiris_it_no_such_db"}),
            ctx(my_conn.clone()),
        )
        .unwrap_err();
    assert_eq!(e.code, "unknown_database", "{e:?}");
    // auth_failed, and the password never appears in the error.
    let planted = "pl4nted-db-password-7c1e";
    let e = mym
        .doctor(
            "mysql.extractor",
            &json!({}),
            ctx(json!({"host": "127.0.0.1", "port": MY_PORT, "user": "root", "password": planted})),
        )
        .unwrap_err();
    assert_eq!(e.code, "auth_failed", "{e:?}");
    assert!(!format!("{e:?}").contains(planted));
    let e = pgm
        .doctor("supabase.extractor", &json!({}), ctx(json!({"pg_dsn": format!("postgresql://osiris_it_no_such_role:{planted}@127.0.0.1:{PG_PORT}/postgres?sslmode=disable")})))
        .unwrap_err();
    assert_eq!(e.code, "auth_failed", "{e:?}");
    assert!(!format!("{e:?}").contains(planted));
    // A supabase connection without any database address is a config error naming the fields.
    let e = pgm
        .doctor(
            "supabase.writer",
            &json!({}),
            ctx(json!({"service_role_key": planted})),
        )
        .unwrap_err();
    assert!(e.message.contains("pg_dsn"), "{e:?}");
    assert!(!format!("{e:?}").contains(planted));

    pg.sql("CREATE TABLE items (id int PRIMARY KEY, price numeric(10,2), tags jsonb); INSERT INTO items VALUES (1, 9.99, '[\"x\"]'); ANALYZE items");
    let d = pgm
        .discover("postgres.extractor", &json!({"samples": 1}), ctx(pg_conn))
        .unwrap();
    let t = &d["tables"][0];
    assert_eq!(t["name"], "items", "{d}");
    assert_eq!(t["primary_key"], json!(["id"]), "{d}");
    assert_eq!(t["row_count_estimate"], 1, "{d}");
    assert_eq!(t["columns"][1]["source_type"], "numeric(10,2)", "{d}");
    assert_eq!(t["columns"][1]["arrow_type"], "Decimal128(10, 2)", "{d}");
    assert_eq!(t["columns"][2]["arrow_type"], "Utf8", "{d}");
    assert_eq!(t["samples"][0]["price"], 9.99, "{d}");

    my.sql("CREATE TABLE items (id INT PRIMARY KEY, price DECIMAL(10,2), kind ENUM('a','b')); INSERT INTO items VALUES (1, 9.99, 'b')");
    let d = mym
        .discover("mysql.extractor", &json!({"samples": 2}), ctx(my_conn))
        .unwrap();
    let t = &d["tables"][0];
    assert_eq!(t["name"], "items", "{d}");
    assert_eq!(t["primary_key"], json!(["id"]), "{d}");
    assert_eq!(t["columns"][1]["source_type"], "decimal(10,2)", "{d}");
    assert_eq!(t["columns"][1]["arrow_type"], "Decimal128(10, 2)", "{d}");
    assert_eq!(t["columns"][2]["arrow_type"], "Utf8", "{d}");
    assert_eq!(t["samples"][0]["kind"], "b", "{d}");
}

#[test]
fn extractor_streams_large_results_in_batches() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "extractor_streams_large_results_in_batches",
    ) {
        return;
    }
    let pg = PgDb::new();
    let p = project(Some(&pg), None);
    let o = run_pipeline(
        p.path(),
        "stream",
        &(step(
            "src",
            "postgres.extractor",
            "read",
            &[],
            "connection: \"@postgres.local\"\nquery: SELECT g AS id, g * 0.5 AS half, now() AS at, int4range(g, g + 1) AS r FROM generate_series(1, 50000) g\nbatch_size: 7000",
        ) + &step(
            "agg",
            "duckdb.processor",
            "transform",
            &["src"],
            "query: SELECT COUNT(*) AS n, SUM(id) AS s, MIN(r) AS r FROM df",
        ) + &step(
            "out",
            "filesystem.csv_writer",
            "write",
            &["agg"],
            "path: out.csv",
        )),
    );
    ok(&o);
    assert_eq!(
        std::fs::read_to_string(p.path().join("out.csv")).unwrap(),
        "n,s,r\n50000,1250025000,\"[1,2)\"\n"
    );
}

/// `append`/`replace` COPY straight into the target when the formats match, and stage otherwise; either way a
/// value that does not fit its column (a string longer than `varchar(n)`) fails the write, is never cut, and
/// leaves the table as it was; a conversion the target needs (text into `jsonb`) goes through staging.
#[test]
fn postgres_writer_never_cuts_values_and_casts_through_staging() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "postgres_writer_never_cuts_values_and_casts_through_staging",
    ) {
        return;
    }
    let pg = PgDb::new();
    let p = project(Some(&pg), None);
    pg.sql(
        "CREATE TABLE short (id int PRIMARY KEY, code varchar(3)); INSERT INTO short VALUES (1, 'old'); \
         CREATE TABLE docs (id bigint, body jsonb)",
    );
    let write = |name: &str, rows: &str, table: &str, extra: &str| {
        run_pipeline(
            p.path(),
            name,
            &(step(
                "src",
                "postgres.extractor",
                "read",
                &[],
                &format!(
                    "connection: \"@postgres.local\"\nquery: \"SELECT * FROM (VALUES {rows}) AS v(id, x)\""
                ),
            ) + &step(
                "load",
                "postgres.writer",
                "write",
                &["src"],
                &format!("connection: \"@postgres.local\"\ntable: {table}\n{extra}"),
            )),
        )
    };
    let fit = |mode: &str| {
        let o = write(
            &format!("toolong_{}", mode.replace(['\n', ':', ' '], "_")),
            "(2, 'abcd')",
            "short",
            mode,
        );
        let (_, err) = text(&o);
        assert_eq!(code(&o), 4, "{mode}: {err}");
        err
    };
    pg.sql("ALTER TABLE short RENAME COLUMN code TO x");
    for mode in [
        "write_mode: append",
        "write_mode: replace",
        "write_mode: upsert\nprimary_key: id",
    ] {
        let err = fit(mode);
        assert!(
            err.contains("value too long for type character varying(3)"),
            "{mode}: {err}"
        );
        assert_eq!(
            pg.sql("SELECT id, x FROM short"),
            "1|old",
            "{mode}: unchanged"
        );
    }
    pg.sql("ALTER TABLE docs RENAME COLUMN body TO x");
    ok(&write(
        "jsonb",
        "(1::bigint, '[1, 2]')",
        "docs",
        "write_mode: append",
    ));
    assert_eq!(pg.sql("SELECT x->>1 FROM docs"), "2");

    // char(n) through staging (upsert) keeps the whole value (a bare `::character` would be char(1)).
    pg.sql("CREATE TABLE cur (id int PRIMARY KEY, x char(3))");
    ok(&write(
        "bpchar",
        "(1, 'USD'), (2, 'EU')",
        "cur",
        "write_mode: upsert\nprimary_key: id",
    ));
    assert_eq!(
        pg.sql("SELECT id, rtrim(x) FROM cur ORDER BY id"),
        "1|USD\n2|EU"
    );

    // Where COPY would not do what an INSERT does, append goes through staging and an INSERT:
    // a view (COPY refuses views) ...
    pg.sql("CREATE TABLE base (id int, x text); CREATE VIEW v_base AS SELECT id, x FROM base");
    ok(&write("view", "(1, 'a')", "v_base", "write_mode: append"));
    assert_eq!(pg.sql("SELECT id, x FROM base"), "1|a");
    // ... a GENERATED ALWAYS identity (an INSERT refuses a value for it, COPY would store it) ...
    pg.sql("CREATE TABLE ident (id int GENERATED ALWAYS AS IDENTITY, x text)");
    let o = write("identity", "(42, 'a')", "ident", "write_mode: append");
    assert_eq!(code(&o), 4, "{:?}", text(&o));
    assert!(text(&o).1.contains("GENERATED ALWAYS"), "{:?}", text(&o));
    assert_eq!(pg.sql("SELECT count(*) FROM ident"), "0");
    // ... and row-level security for a role that does not own the table (COPY refuses it).
    let role = crate::dbutil::unique("osiris_rls");
    pg.sql(&format!(
        "CREATE ROLE {role} LOGIN; CREATE TABLE secured (id int, x text); \
         ALTER TABLE secured ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY own ON secured TO {role} USING (true) WITH CHECK (x <> 'forbidden'); \
         GRANT SELECT, INSERT ON secured TO {role}"
    ));
    let conns = std::fs::read_to_string(p.path().join("osiris_connections.yaml")).unwrap();
    let rls = conns.replacen(
        "      user: postgres\n",
        &format!("      user: {role}\n"),
        1,
    );
    std::fs::write(p.path().join("osiris_connections.yaml"), &rls).unwrap();
    let ok_rls = write("rls", "(1, 'a')", "secured", "write_mode: append");
    let denied = write(
        "rls_denied",
        "(2, 'forbidden')",
        "secured",
        "write_mode: append",
    );
    std::fs::write(p.path().join("osiris_connections.yaml"), &conns).unwrap();
    pg.sql(&format!("DROP TABLE secured; DROP ROLE {role}"));
    ok(&ok_rls);
    assert_eq!(
        code(&denied),
        4,
        "the policy's check applies: {:?}",
        text(&denied)
    );
}
