#!/usr/bin/env bash
# Soak: 1,000 small pipelines (MariaDB -> PostgreSQL, 100 rows, replace) run back to back in one process
# (host/crates/cli/examples/soak.rs), printing RSS, peak RSS, open descriptors, threads and the database
# sessions held every 100 runs: each must stay flat. Needs MariaDB and PostgreSQL on their default ports.
#
#   tests/bench/soak.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-1000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/osiris/target}"
db="osiris_soak_$$"
work="$(mktemp -d)"
cleanup() {
    psql -h 127.0.0.1 -U postgres -d postgres -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    mariadb -h 127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql -h 127.0.0.1 -U postgres -d postgres -qAtX -c "CREATE DATABASE $db" >/dev/null
mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE $db; CREATE TABLE $db.src (id INT PRIMARY KEY, note VARCHAR(40)); INSERT INTO $db.src SELECT seq, CONCAT('note ', seq) FROM seq_1_to_100"
cat > "$work/osiris.yaml" <<YAML
run:
  logs_dir: run_logs
YAML
cat > "$work/osiris_connections.yaml" <<YAML
version: "1.0"
connections:
  mysql:
    local: { default: true, host: 127.0.0.1, port: 3306, user: root, database: $db }
  postgres:
    local: { default: true, host: 127.0.0.1, port: 5432, user: postgres, database: $db, sslmode: disable }
YAML
cat > "$work/soak.yaml" <<YAML
oml_version: "0.1.0"
name: soak
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config: { connection: "@mysql.local", table: src }
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config: { connection: "@postgres.local", table: dst, write_mode: replace, create_if_missing: true }
YAML
cargo build -q -p osiris-cli --example soak
"$CARGO_TARGET_DIR/debug/examples/soak" "$work" soak.yaml "$runs" "$db" "$db" >/dev/null
psql -h 127.0.0.1 -U postgres -d "$db" -qAtX -c "SELECT 'rows in dst: ' || count(*) FROM dst"
