//! One million rows MySQL -> PostgreSQL through `osiris run` (mysql.extractor -> postgres.writer), checked
//! by row count and checksums both servers compute identically: sums of ids, customer ids, cents, text
//! lengths, epoch seconds, NULL counts and of an md5-derived 32-bit number per note.

use crate::dbutil::{MY_PORT, MyDb, PG_PORT, PgDb, ok, project, run_pipeline, server};
use std::time::Instant;

const ROWS: u64 = 1_000_000;

const MY_CHECKS: &str = "SELECT COUNT(*), SUM(id), SUM(customer_id), SUM(amount * 100), SUM(CHAR_LENGTH(status)), \
     SUM(CHAR_LENGTH(note)), SUM(note IS NULL), SUM(UNIX_TIMESTAMP(created_at)), \
     SUM(CAST(CONV(SUBSTRING(MD5(note), 1, 8), 16, 10) AS UNSIGNED)) FROM orders";

const PG_CHECKS: &str = "SELECT COUNT(*), SUM(id), SUM(customer_id), SUM(amount * 100), SUM(length(status)), \
     SUM(length(note)), SUM(CASE WHEN note IS NULL THEN 1 ELSE 0 END), SUM(EXTRACT(EPOCH FROM created_at)::bigint), \
     SUM(('x' || substr(md5(note), 1, 8))::bit(32)::bigint) FROM orders";

/// `a|b|c` or tab-separated -> numbers as canonical strings (`12.00` -> `12`).
fn numbers(line: &str) -> Vec<String> {
    line.split(['|', '\t'])
        .map(|s| {
            let s = s.trim();
            match s.split_once('.') {
                Some((i, f)) if f.chars().all(|c| c == '0') => i.to_string(),
                _ => s.to_string(),
            }
        })
        .collect()
}

#[test]
#[allow(clippy::disallowed_macros)] // eprintln!: the test reports its timing (not osiris output)
fn bulk_one_million_rows_mysql_to_postgres() {
    let test = "bulk_one_million_rows_mysql_to_postgres";
    if !(server("PostgreSQL", PG_PORT, test) && server("MariaDB", MY_PORT, test)) {
        return;
    }
    let pg = PgDb::new();
    let my = MyDb::new();
    let started = Instant::now();
    my.sql(&format!(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT, amount DECIMAL(12,2), \
           status VARCHAR(16), note VARCHAR(64), created_at DATETIME);
         INSERT INTO orders SELECT seq, seq % 5003, (seq % 1000003) / 100, \
           ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'), \
           IF(seq % 1000 = 0, NULL, CONCAT('note ', seq, IF(seq % 7 = 0, ' é✓', ''))), \
           TIMESTAMP('2024-01-01 00:00:00') + INTERVAL (seq * 37) SECOND \
         FROM seq_1_to_{ROWS};"
    ));
    let generated = started.elapsed();
    let p = project(Some(&pg), Some(&my));
    let steps = "  - id: extract\n    component: mysql.extractor\n    mode: read\n    config:\n      connection: \"@mysql.local\"\n      table: orders\n\
                 \x20 - id: load\n    component: postgres.writer\n    mode: write\n    needs: [extract]\n    config:\n      connection: \"@postgres.local\"\n      table: orders\n      create_if_missing: true\n";
    let run_started = Instant::now();
    let o = run_pipeline(p.path(), "bulk-orders", steps);
    let ran = run_started.elapsed();
    ok(&o);
    eprintln!(
        "{test}: generated {ROWS} rows in {:.1}s, osiris run took {:.1}s ({:.0} rows/s)",
        generated.as_secs_f64(),
        ran.as_secs_f64(),
        ROWS as f64 / ran.as_secs_f64()
    );
    let mine = numbers(&my.sql(MY_CHECKS));
    let theirs = numbers(&pg.sql(PG_CHECKS));
    assert_eq!(mine[0], ROWS.to_string());
    assert_eq!(mine[6], "1000", "NULL notes at the source");
    assert_eq!(
        theirs, mine,
        "checksums differ (count, ids, customers, cents, status len, note len, nulls, epoch, md5)"
    );
}
