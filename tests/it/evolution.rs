//! The database writers' `schema_evolution` (fail, add_columns, ignore_extra) and the column types
//! `create_if_missing` / `create_table` give a table, against the local PostgreSQL and MariaDB servers through
//! the real `osiris` binary. Each test makes its own databases.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, run_pipeline, server, step};
use crate::support::{code, text};
use std::path::Path;

/// Runs `SELECT <select>` on PostgreSQL through postgres.extractor into `writer` (with `conn` and `config`).
fn pg_into(
    dir: &Path,
    name: &str,
    select: &str,
    writer: &str,
    conn: &str,
    config: &str,
) -> std::process::Output {
    run_pipeline(
        dir,
        name,
        &(step(
            "src",
            "postgres.extractor",
            "read",
            &[],
            &format!("connection: \"@postgres.local\"\nquery: \"{select}\""),
        ) + &step(
            "load",
            writer,
            "write",
            &["src"],
            &format!("connection: \"{conn}\"\n{config}"),
        )),
    )
}

/// The same from MariaDB through mysql.extractor.
fn my_into(
    dir: &Path,
    name: &str,
    select: &str,
    writer: &str,
    conn: &str,
    config: &str,
) -> std::process::Output {
    run_pipeline(
        dir,
        name,
        &(step(
            "src",
            "mysql.extractor",
            "read",
            &[],
            &format!("connection: \"@mysql.local\"\nquery: \"{select}\""),
        ) + &step(
            "load",
            writer,
            "write",
            &["src"],
            &format!("connection: \"{conn}\"\n{config}"),
        )),
    )
}

/// Exit 4 (a run error); returns stderr.
fn failed(o: &std::process::Output) -> String {
    let (out, err) = text(o);
    assert_eq!(code(o), 4, "stdout:\n{out}\nstderr:\n{err}");
    err
}

fn pg_columns(pg: &PgDb, table: &str) -> String {
    pg.sql(&format!(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
         FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"
    ))
}

fn my_columns(my: &MyDb, table: &str) -> String {
    my.sql(&format!(
        "SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE) ORDER BY ORDINAL_POSITION SEPARATOR ', ') \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
    ))
}

/// postgres.writer and supabase.writer: `fail` names every difference with both types and changes nothing;
/// `add_columns` adds new columns inside the load's transaction (a failed load leaves none); `ignore_extra`
/// leaves new columns out; a type change is refused in every mode; compatible types still load.
#[test]
fn postgres_writers_evolve_the_schema_as_configured() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "postgres_writers_evolve_the_schema_as_configured",
    ) {
        return;
    }
    let pg = PgDb::new();
    let p = project(Some(&pg), None);
    pg.sql(
        "CREATE TABLE t (id bigint PRIMARY KEY, amount integer, price numeric(12,2), ratio double precision, \
         code varchar(8), at timestamp, note text NOT NULL DEFAULT 'none'); \
         INSERT INTO t (id, amount) VALUES (1, 10)",
    );
    let before = pg_columns(&pg, "t");

    // fail (the default): every differing column, both types; nothing changes.
    for (writer, conn, prefix) in [
        ("postgres.writer", "@postgres.local", "POSTGRES"),
        ("supabase.writer", "@supabase.local", "SUPABASE"),
    ] {
        let err = failed(&pg_into(
            p.path(),
            &format!("fail_{prefix}"),
            "SELECT 2::int AS id, 'x'::text AS amount, 'a@b'::text AS email, '2024-01-01 00:00:00'::timestamp AS code2, \
             now()::timestamptz AS at2, 5::bigint AS \\\"Note\\\", 12345678901.5::numeric(14,1) AS price",
            writer,
            conn,
            "table: t",
        ));
        assert!(err.contains(&format!("[{prefix}-SCHEMA]")), "{err}");
        assert!(
            err.contains("table \"public\".\"t\" differs from the input: `amount` is integer"),
            "{err}"
        );
        for part in [
            "`amount` is integer in the table but the input is Utf8",
            "`email` is not in the table (input Utf8)",
            "it has `note`",
            "`price` is numeric(12,2) in the table but the input is Decimal128(14, 1)",
            "add_columns",
            "migration",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        assert_eq!(pg_columns(&pg, "t"), before, "{writer}: table unchanged");
        assert_eq!(pg.sql("SELECT count(*) FROM t"), "1");
    }
    // A timestamp into an integer column is a type change too.
    let err = failed(&pg_into(
        p.path(),
        "ts_into_int",
        "SELECT 2::int AS id, now()::timestamp AS amount",
        "postgres.writer",
        "@postgres.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert!(
        err.contains("`amount` is integer in the table but the input is Timestamp(µs)"),
        "{err}"
    );

    // Compatible types (integer widths, int -> numeric/float, float4 -> float8, text -> varchar, timestamptz
    // -> timestamp) load in fail mode; table columns the input lacks get their default.
    ok(&pg_into(
        p.path(),
        "compatible",
        "SELECT 2::int AS id, 7::smallint AS amount, 3::int AS price, 1.5::real AS ratio, 'abc'::text AS code, \
         '2024-05-06 07:08:09'::timestamp AS at",
        "postgres.writer",
        "@postgres.local",
        "table: t",
    ));
    assert_eq!(
        pg.sql("SELECT id, amount, price, ratio, code, at, note FROM t WHERE id = 2"),
        "2|7|3.00|1.5|abc|2024-05-06 07:08:09|none"
    );

    // add_columns with a type change: refused, naming the column; the new column is not added.
    let err = failed(&pg_into(
        p.path(),
        "add_and_change",
        "SELECT 3::int AS id, 'x'::text AS amount, 'a@b'::text AS email",
        "postgres.writer",
        "@postgres.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert!(
        err.contains("`amount` is integer in the table but the input is Utf8")
            && !err.contains("email"),
        "{err}"
    );
    assert_eq!(pg_columns(&pg, "t"), before);

    // add_columns whose load fails (a NULL into the NOT NULL column): rolled back with the added column.
    let err = failed(&pg_into(
        p.path(),
        "add_then_fail",
        "SELECT 3::int AS id, 'a@b'::text AS email, NULL::text AS note",
        "postgres.writer",
        "@postgres.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert!(err.contains("null value in column \"note\""), "{err}");
    assert_eq!(pg_columns(&pg, "t"), before, "no column left behind");
    assert_eq!(pg.sql("SELECT count(*) FROM t"), "2");

    // add_columns: new nullable columns with the types create_if_missing gives, filled by the load.
    ok(&pg_into(
        p.path(),
        "add",
        "SELECT 3::int AS id, 'a@b'::text AS email, '{\\\"k\\\": [1]}'::jsonb AS meta, \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS ref, 12.3456::numeric(20,4) AS fee, \
         '2024-01-02 03:04:05.5+00'::timestamptz AS seen",
        "supabase.writer",
        "@supabase.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert_eq!(
        pg_columns(&pg, "t"),
        format!(
            "{before}, email text, meta jsonb, ref uuid, fee numeric(20,4), seen timestamp with time zone"
        )
    );
    assert_eq!(
        pg.sql("SELECT email, meta->'k'->>0, ref, fee, seen FROM t WHERE id = 3"),
        "a@b|1|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|12.3456|2024-01-02 03:04:05.5+00"
    );
    assert_eq!(
        pg.sql("SELECT count(*) FROM t WHERE email IS NULL AND id < 3"),
        "2"
    );
    assert_eq!(
        pg.sql(
            "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't'::regclass \
             AND attnum > 0 AND attnotnull"
        ),
        "id,note",
        "the added columns are nullable"
    );

    // ignore_extra: the new column is not written and not added.
    let with_added = pg_columns(&pg, "t");
    ok(&pg_into(
        p.path(),
        "ignore",
        "SELECT 4::int AS id, 40::int AS amount, 'dropped'::text AS extra",
        "postgres.writer",
        "@postgres.local",
        "table: t\nschema_evolution: ignore_extra",
    ));
    assert_eq!(pg_columns(&pg, "t"), with_added);
    assert_eq!(pg.sql("SELECT id, amount FROM t WHERE id = 4"), "4|40");
    // ... and a type change is still refused.
    let err = failed(&pg_into(
        p.path(),
        "ignore_change",
        "SELECT 5::int AS id, 'x'::text AS amount, 'dropped'::text AS extra",
        "postgres.writer",
        "@postgres.local",
        "table: t\nschema_evolution: ignore_extra",
    ));
    assert!(
        err.contains("[POSTGRES-SCHEMA]")
            && err.contains("`amount` is integer in the table but the input is Utf8")
            && !err.contains("extra"),
        "{err}"
    );
    assert_eq!(pg.sql("SELECT count(*) FROM t"), "4");
}

/// mysql.writer: the same modes; `add_columns` runs its ALTER TABLE before the load's transaction, so a failed
/// load leaves the new (empty, nullable) column behind but no rows.
#[test]
fn mysql_writer_evolves_the_schema_as_configured() {
    if !server(
        "MariaDB",
        MY_PORT,
        "mysql_writer_evolves_the_schema_as_configured",
    ) {
        return;
    }
    let my = MyDb::new();
    let p = project(None, Some(&my));
    my.sql(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, amount INT, price DECIMAL(12,2), code VARCHAR(8), at DATETIME(6), \
         note VARCHAR(20) NOT NULL DEFAULT 'none'); INSERT INTO t (id, amount) VALUES (1, 10)",
    );
    let before = my_columns(&my, "t");
    let err = failed(&my_into(
        p.path(),
        "fail",
        "SELECT 2 AS id, 'x' AS amount, 'a@b' AS email, CAST(12345678901.5 AS DECIMAL(14,1)) AS price, \
         CAST('2024-01-01' AS DATE) AS at, TIMESTAMP'2024-01-01 00:00:00' AS code",
        "mysql.writer",
        "@mysql.local",
        "table: t",
    ));
    for part in [
        "[MYSQL-SCHEMA]",
        "table `t` differs from the input: `amount` is int(11) in the table but the input is Utf8",
        "`email` is not in the table (input Utf8)",
        "`price` is decimal(12,2) in the table but the input is Decimal128(14, 1)",
        "add_columns",
        "migration",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    // A date into a DATETIME and a timestamp into a VARCHAR are fine: only the three above are listed.
    assert!(!err.contains("`at`") && !err.contains("`code`"), "{err}");
    assert_eq!(my_columns(&my, "t"), before);
    assert_eq!(my.sql("SELECT COUNT(*) FROM t"), "1");

    // add_columns whose load fails: the column stays (MySQL commits DDL), the rows do not.
    let err = failed(&my_into(
        p.path(),
        "add_then_fail",
        "SELECT 3 AS id, 'a@b' AS email, NULL AS note",
        "mysql.writer",
        "@mysql.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert!(err.contains("[MYSQL-CONSTRAINT]"), "{err}");
    assert_eq!(my_columns(&my, "t"), format!("{before}, email longtext"));
    assert_eq!(my.sql("SELECT COUNT(*) FROM t"), "1");
    assert_eq!(
        my.sql("SELECT IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'email'"),
        "YES"
    );

    // add_columns: added and filled.
    ok(&my_into(
        p.path(),
        "add",
        "SELECT 3 AS id, 'a@b' AS email, CAST(12.3456 AS DECIMAL(20,4)) AS fee, TIMESTAMP'2024-01-02 03:04:05.5' AS seen",
        "mysql.writer",
        "@mysql.local",
        "table: t\nschema_evolution: add_columns",
    ));
    assert_eq!(
        my_columns(&my, "t"),
        format!("{before}, email longtext, fee decimal(20,4), seen datetime(6)")
    );
    assert_eq!(
        my.sql("SELECT email, fee, seen, note FROM t WHERE id = 3"),
        "a@b\t12.3456\t2024-01-02 03:04:05.500000\tnone"
    );

    // ignore_extra: left out; a type change still refused.
    let with_added = my_columns(&my, "t");
    ok(&my_into(
        p.path(),
        "ignore",
        "SELECT 4 AS id, 40 AS amount, 'dropped' AS extra",
        "mysql.writer",
        "@mysql.local",
        "table: t\nschema_evolution: ignore_extra",
    ));
    assert_eq!(my_columns(&my, "t"), with_added);
    assert_eq!(my.sql("SELECT id, amount FROM t WHERE id = 4"), "4\t40");
    let err = failed(&my_into(
        p.path(),
        "ignore_change",
        "SELECT 5 AS id, TIMESTAMP'2024-01-01 00:00:00' AS amount, 'dropped' AS extra",
        "mysql.writer",
        "@mysql.local",
        "table: t\nschema_evolution: ignore_extra",
    ));
    assert!(
        err.contains("`amount` is int(11) in the table but the input is Timestamp(µs)")
            && !err.contains("extra"),
        "{err}"
    );
    assert_eq!(my.sql("SELECT COUNT(*) FROM t"), "3");
}

/// A PostgreSQL table with numeric(20,4), timestamp, timestamptz, jsonb, uuid, bytea, date, time and boolean,
/// extracted and written with create_if_missing / create_table: the created columns have the faithful types
/// and hold the same values.
#[test]
fn postgres_types_create_faithful_tables() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "postgres_types_create_faithful_tables",
    ) || !server("MariaDB", MY_PORT, "postgres_types_create_faithful_tables")
    {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    let p = project(Some(&pg), Some(&my));
    pg.sql(
        r#"CREATE TABLE src (id int PRIMARY KEY, n numeric(20,4), ts timestamp, tz timestamptz, js jsonb,
            u uuid, b bytea, d date, tm time, ok boolean);
        INSERT INTO src VALUES
        (1, 1234567890123456.7891, '2024-02-29 23:59:59.123456', '2024-06-01 12:00:00.5+02',
         '{"a": [1, 2, {"b": null}], "k": "ü"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff10',
         '1999-12-31', '23:59:59.999999', true),
        (2, -0.0001, '1900-01-01 00:00:00', '1970-01-01 00:00:00+00', '[]', '00000000-0000-0000-0000-000000000000',
         '\x', '1000-01-01', '00:00:00', false),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"#,
    );
    let extract = step(
        "src",
        "postgres.extractor",
        "read",
        &[],
        "connection: \"@postgres.local\"\ntable: src",
    );
    ok(&run_pipeline(
        p.path(),
        "to_pg",
        &(extract.clone()
            + &step(
                "load",
                "postgres.writer",
                "write",
                &["src"],
                "connection: \"@postgres.local\"\ntable: copy\ncreate_if_missing: true",
            )),
    ));
    assert_eq!(
        pg_columns(&pg, "copy"),
        "id integer, n numeric(20,4), ts timestamp without time zone, tz timestamp with time zone, js jsonb, \
         u uuid, b bytea, d date, tm time without time zone, ok boolean"
    );
    assert_eq!(
        pg.sql(
            "SELECT count(*) FROM src s JOIN copy c USING (id) WHERE s.n IS NOT DISTINCT FROM c.n \
             AND s.ts IS NOT DISTINCT FROM c.ts AND s.tz IS NOT DISTINCT FROM c.tz AND s.js IS NOT DISTINCT FROM c.js \
             AND s.u IS NOT DISTINCT FROM c.u AND s.b IS NOT DISTINCT FROM c.b AND s.d IS NOT DISTINCT FROM c.d \
             AND s.tm IS NOT DISTINCT FROM c.tm AND s.ok IS NOT DISTINCT FROM c.ok"
        ),
        "3"
    );

    ok(&run_pipeline(
        p.path(),
        "to_my",
        &(extract
            + &step(
                "load",
                "mysql.writer",
                "write",
                &["src"],
                "connection: \"@mysql.local\"\ntable: copy\ncreate_table: true",
            )),
    ));
    // MariaDB spells JSON as longtext (with a json_valid check).
    assert_eq!(
        my_columns(&my, "copy"),
        "id int(11), n decimal(20,4), ts datetime(6), tz datetime(6), js longtext, u char(36), b longblob, \
         d date, tm time(6), ok tinyint(1)"
    );
    assert_eq!(
        my.sql(
            "SELECT COUNT(*) FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'copy' AND CHECK_CLAUSE LIKE 'json_valid(%js%)'"
        ),
        "1",
        "js is a JSON column"
    );
    assert_eq!(
        my.sql("SELECT id, n, ts, tz, js, u, HEX(b), d, tm, ok FROM copy ORDER BY id"),
        "1\t1234567890123456.7891\t2024-02-29 23:59:59.123456\t2024-06-01 10:00:00.500000\t\
         {\"a\": [1, 2, {\"b\": null}], \"k\": \"ü\"}\ta0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\t00FF10\t1999-12-31\t\
         23:59:59.999999\t1\n\
         2\t-0.0001\t1900-01-01 00:00:00.000000\t1970-01-01 00:00:00.000000\t[]\t\
         00000000-0000-0000-0000-000000000000\t\t1000-01-01\t00:00:00.000000\t0\n\
         3\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL\tNULL"
    );
}

/// A MariaDB table with DECIMAL(20,4), DATETIME(6), JSON, BINARY(16), VARBINARY, DATE and TIME, extracted and
/// written with create_if_missing / create_table. MariaDB's JSON is a LONGTEXT and reaches the writers as text.
#[test]
fn mariadb_types_create_faithful_tables() {
    if !server(
        "PostgreSQL",
        PG_PORT,
        "mariadb_types_create_faithful_tables",
    ) || !server("MariaDB", MY_PORT, "mariadb_types_create_faithful_tables")
    {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    let p = project(Some(&pg), Some(&my));
    my.sql(
        r#"CREATE TABLE src (id INT PRIMARY KEY, n DECIMAL(20,4), dt DATETIME(6), js JSON, bin BINARY(16),
            vb VARBINARY(32), d DATE, tm TIME(6)) DEFAULT CHARSET = utf8mb4;
        INSERT INTO src VALUES
        (1, 1234567890123456.7891, '2024-02-29 23:59:59.123456', '{"a": [1, null], "k": "ü"}',
         X'A0EEBC999C0B4EF8BB6D6BB9BD380A11', X'DEADBEEF', '2024-02-29', '12:34:56.789'),
        (2, -0.0001, '1000-01-01 00:00:00', '[]', X'00000000000000000000000000000000', X'', '1000-01-01', '00:00:00'),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"#,
    );
    let extract = step(
        "src",
        "mysql.extractor",
        "read",
        &[],
        "connection: \"@mysql.local\"\ntable: src",
    );
    ok(&run_pipeline(
        p.path(),
        "to_pg",
        &(extract.clone()
            + &step(
                "load",
                "postgres.writer",
                "write",
                &["src"],
                "connection: \"@postgres.local\"\ntable: copy\ncreate_if_missing: true",
            )),
    ));
    assert_eq!(
        pg_columns(&pg, "copy"),
        "id integer, n numeric(20,4), dt timestamp without time zone, js text, bin bytea, vb bytea, d date, \
         tm time without time zone"
    );
    assert_eq!(
        pg.sql("SELECT id, n, dt, js, encode(bin, 'hex'), encode(vb, 'hex'), d, tm FROM copy ORDER BY id"),
        "1|1234567890123456.7891|2024-02-29 23:59:59.123456|{\"a\": [1, null], \"k\": \"ü\"}|\
         a0eebc999c0b4ef8bb6d6bb9bd380a11|deadbeef|2024-02-29|12:34:56.789\n\
         2|-0.0001|1000-01-01 00:00:00|[]|00000000000000000000000000000000||1000-01-01|00:00:00\n\
         3|||||||"
    );

    ok(&run_pipeline(
        p.path(),
        "to_my",
        &(extract
            + &step(
                "load",
                "mysql.writer",
                "write",
                &["src"],
                "connection: \"@mysql.local\"\ntable: copy\ncreate_table: true",
            )),
    ));
    assert_eq!(
        my_columns(&my, "copy"),
        "id int(11), n decimal(20,4), dt datetime(6), js longtext, bin longblob, vb longblob, d date, tm time(6)"
    );
    assert_eq!(
        my.sql(
            "SELECT COUNT(*) FROM src s JOIN copy c USING (id) WHERE s.n <=> c.n AND s.dt <=> c.dt \
             AND s.js <=> c.js AND s.bin <=> c.bin AND s.vb <=> c.vb AND s.d <=> c.d AND s.tm <=> c.tm"
        ),
        "3"
    );
}
