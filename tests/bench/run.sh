#!/usr/bin/env bash
# osiris benchmark suite: builds release binaries, seeds the databases, measures every section, prints a table
# and writes $CARGO_TARGET_DIR/bench/report.{md,json} (target/bench/ when CARGO_TARGET_DIR is unset).
#
#   tests/bench/run.sh [--quick] [--sections LIST] [--runs N] [--heavy-runs N] [--rows N] [--big-rows N]
#                      [--skip-build]
#
#   --sections LIST  comma-separated sections to run (default 1,2,3,4,5,6,7,8):
#                    1 MySQL -> PostgreSQL vs the mariadb | psql limit   (needs MariaDB and PostgreSQL)
#                    2 the same at --big-rows: peak RSS stays flat       (needs MariaDB and PostgreSQL)
#                    3 CSV -> duckdb.processor -> CSV vs native DuckDB   (needs npm and python3 -m venv)
#                    4 start-up and compile
#                    5 plugin boundary: duckdb.processor linked in vs loaded as a cdylib
#                    6 `components list` with 50 signed plugins
#                    7 section 3 at --big-rows: peak RSS flat, against native DuckDB's
#                    8 incremental: 1,000 new rows in a --big-rows table vs its first full run (needs both)
#   --quick          fewer runs: 5 per start-up benchmark, 1 per data benchmark, section 2 at 2,000,000 rows
#   --runs N         measured runs per start-up benchmark (sections 4 and 6; default 20)
#   --heavy-runs N   measured runs per data benchmark (sections 1, 3, 5; default 3; section 2 runs once)
#   --rows N         rows for sections 1 and 3 (default 1000000)
#   --big-rows N     rows for sections 2 and 7 (default 10000000)
#   --skip-build     measure the binaries already in $CARGO_TARGET_DIR/bench/bin
#
# Environment: DUCKDB_LIB_DIR (a directory holding libduckdb.so 1.5.6; default: fetched once with npm),
# BENCH_MYSQL_ARGS / BENCH_PSQL_ARGS (client connection arguments; default 127.0.0.1, root / postgres),
# BENCH_KEEP=1 (keep the temporary projects, pipelines and plugin directories for a closer look).
# These are benchmarks, not tests: nothing in `cargo test` runs or depends on this script, and a missed target
# does not fail it. It fails when a build fails, a measured command exits non-zero, or a verification
# (row count, checksum) after a run does not match.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}
die() {
    echo "bench: error: $*" >&2
    exit 2
}

COMMAND_LINE="tests/bench/run.sh${*:+ }$*"
RUNS=20
HEAVY_RUNS=3
BIG_RUNS=1
ROWS=1000000
BIG_ROWS=10000000
SECTIONS="1,2,3,4,5,6,7,8"
BUILD=1
QUICK=0
posint() { [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) QUICK=1; shift ;;
        --sections) [[ $# -ge 2 && "$2" =~ ^[1-8](,[1-8])*$ ]] || die "--sections needs a list like 1,3,4 (sections 1-8)"
            SECTIONS="$2"; shift 2 ;;
        --runs) posint "$1" "${2:-}"; RUNS="$2"; shift 2 ;;
        --heavy-runs) posint "$1" "${2:-}"; HEAVY_RUNS="$2"; shift 2 ;;
        --rows) posint "$1" "${2:-}"; ROWS="$2"; shift 2 ;;
        --big-rows) posint "$1" "${2:-}"; BIG_ROWS="$2"; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench: error: unknown argument \`$1\`" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ $QUICK -eq 1 ]]; then
    [[ "$COMMAND_LINE" == *--runs* ]] || RUNS=5
    [[ "$COMMAND_LINE" == *--heavy-runs* ]] || HEAVY_RUNS=1
    [[ "$COMMAND_LINE" == *--big-rows* ]] || BIG_ROWS=2000000
fi
want() { [[ ",$SECTIONS," == *",$1,"* ]]; }

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
command -v python3 >/dev/null || die "python3 is required (tests/bench/measure.py)"
MEASURE=(python3 "$ROOT/tests/bench/measure.py")
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DIR="$TARGET_DIR/bench"
BIN_DIR="$OUT_DIR/bin"
CACHE="$OUT_DIR/cache"
mkdir -p "$BIN_DIR" "$CACHE"
# The release binary without DuckDB (sections 1, 2, 4, 6 and the cdylib side of 5) and the one with
# duckdb.processor linked in against the prebuilt libduckdb (sections 3 and the linked side of 5).
CORE="$BIN_DIR/osiris-core"
DUCK="$BIN_DIR/osiris"
# DuckDB's own release build of the version the duckdb crate (=1.10506.1) binds: the same engine on both sides
# of section 3 (`duckdb` on PyPI) and no 26-minute DuckDB compile in release mode.
DUCKDB_VERSION=1.5.6
DUCKDB_NPM_VERSION=1.5.6-r.1
HOST_VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/osiris-bench.XXXXXX")"
if [[ -n "${BENCH_KEEP:-}" ]]; then
    echo "== keeping the work directory $WORK (BENCH_KEEP)" >&2
else
    trap 'rm -rf "$WORK"' EXIT
fi
RESULTS="$WORK/rows.jsonl"
: >"$RESULTS"
SECTION=""

# The measured commands see a home of their own and no plugin path: plugins installed for the user running the
# benchmarks must not change the figures.
mkdir -p "$WORK/home"
ISOLATE=(--env "HOME=$WORK/home" --env "XDG_DATA_HOME=$WORK/home/.local/share" --env "OSIRIS_PLUGIN_PATH=")

# measure NAME [measure.py run options...] -- COMMAND...
measure() {
    local name="$1"
    shift
    "${MEASURE[@]}" run --rows "$RESULTS" --name "$name" --section "$SECTION" "${ISOLATE[@]}" \
        --abbrev "$DUCK=osiris" --abbrev "$CORE=osiris" --abbrev "$WORK=\$TMP" --abbrev "$CACHE=\$CACHE" "$@"
}

# ---------------------------------------------------------------------------------------------------- setup

ensure_libduckdb() {
    if [[ -n "${DUCKDB_LIB_DIR:-}" ]]; then
        [[ -f "$DUCKDB_LIB_DIR/libduckdb.so" ]] || die "DUCKDB_LIB_DIR=$DUCKDB_LIB_DIR holds no libduckdb.so"
    else
        local dir="$CACHE/libduckdb-$DUCKDB_VERSION" arch
        if [[ ! -f "$dir/libduckdb.so" ]]; then
            command -v npm >/dev/null || die "npm is needed to fetch the prebuilt libduckdb $DUCKDB_VERSION (or set DUCKDB_LIB_DIR to a directory holding libduckdb.so $DUCKDB_VERSION)"
            case "$(uname -m)" in
                x86_64) arch=x64 ;;
                aarch64) arch=arm64 ;;
                *) die "no prebuilt libduckdb for $(uname -m): set DUCKDB_LIB_DIR" ;;
            esac
            echo "== fetching libduckdb $DUCKDB_VERSION (npm @duckdb/node-bindings-linux-$arch@$DUCKDB_NPM_VERSION)" >&2
            rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
            (cd "$dir.tmp" && npm pack --silent "@duckdb/node-bindings-linux-$arch@$DUCKDB_NPM_VERSION" >/dev/null)
            tar -xzf "$dir.tmp"/*.tgz -C "$dir.tmp" package/libduckdb.so
            mkdir -p "$dir" && mv "$dir.tmp/package/libduckdb.so" "$dir/" && rm -rf "$dir.tmp"
        fi
        DUCKDB_LIB_DIR="$dir"
    fi
    export DUCKDB_LIB_DIR
    export LD_LIBRARY_PATH="$DUCKDB_LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}

ensure_venv() {
    VENV="$CACHE/venv-duckdb-$DUCKDB_VERSION"
    if ! "$VENV/bin/python" -c 'import duckdb' >/dev/null 2>&1; then
        echo "== installing duckdb==$DUCKDB_VERSION (PyPI) into $VENV" >&2
        python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt install python3-venv)"
        "$VENV/bin/pip" install --quiet "duckdb==$DUCKDB_VERSION"
    fi
}

cargo_release() {
    echo "== building: cargo build --release $*" >&2
    cargo build --release "$@"
}

build() {
    if want 3 || want 5 || want 7; then ensure_libduckdb; fi
    [[ $BUILD -eq 1 ]] || return 0
    if want 1 || want 2 || want 4 || want 5 || want 6 || want 8; then
        cargo_release -p osiris-host --no-default-features
        install -m 0755 "$TARGET_DIR/release/osiris" "$CORE"
    fi
    if want 3 || want 5 || want 7; then
        cargo_release -p osiris-host --no-default-features --features duckdb
        install -m 0755 "$TARGET_DIR/release/osiris" "$DUCK"
    fi
    if want 5; then
        cargo_release -p osiris-plugin-duckdb --no-default-features --lib
        install -m 0755 "$TARGET_DIR/release/libosiris_plugin_duckdb.so" "$BIN_DIR/"
    fi
    if want 6; then
        cargo_release --manifest-path tests/plugins/echo/Cargo.toml --target-dir "$TARGET_DIR/bench-plugins"
        install -m 0755 "$TARGET_DIR/bench-plugins/release/libosiris_test_echo.so" "$BIN_DIR/"
    fi
}

need_bin() { [[ -x "$1" ]] || die "no binary at $1 (run without --skip-build)"; }

print_machine() {
    "${MEASURE[@]}" machine >"$WORK/machine.json"
    echo "== machine" >&2
    python3 - "$WORK/machine.json" <<'EOF' >&2
import json, sys
m = json.load(open(sys.argv[1]))
print(f"  cpu:    {m['cpu_model']} ({m['cores']} cores)")
print(f"  memory: {m['memory_mb']} MB")
print(f"  os:     {m['os']}")
print(f"  rustc:  {m['rustc']}")
print("  load:   " + ", ".join(str(x) for x in m['load_average_before']) + " (1/5/15 min, before measuring)")
EOF
}

# ------------------------------------------------------------------------------------------------ databases

read -r -a MYSQL_ARGS <<<"${BENCH_MYSQL_ARGS:--h 127.0.0.1 -P 3306 -uroot}"
read -r -a PSQL_ARGS <<<"${BENCH_PSQL_ARGS:--h 127.0.0.1 -p 5432 -U postgres}"
DB=osiris_bench
export PGOPTIONS="${PGOPTIONS:--c client_min_messages=warning}"
my() { mariadb "${MYSQL_ARGS[@]}" --batch -N "$@"; }
pg() { psql "${PSQL_ARGS[@]}" -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }

ensure_databases() {
    command -v mariadb >/dev/null || die "the mariadb client is needed for sections 1 and 2"
    command -v psql >/dev/null || die "the psql client is needed for sections 1 and 2"
    my -e 'SELECT 1' >/dev/null 2>&1 || die "cannot reach MariaDB/MySQL with \`mariadb ${MYSQL_ARGS[*]}\` (start it, or set BENCH_MYSQL_ARGS)"
    pg -d postgres -c 'SELECT 1' >/dev/null 2>&1 || die "cannot reach PostgreSQL with \`psql ${PSQL_ARGS[*]}\` (start it, or set BENCH_PSQL_ARGS)"
    my -e "CREATE DATABASE IF NOT EXISTS $DB"
    [[ "$(pg -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" == 1 ]] || pg -d postgres -c "CREATE DATABASE $DB"
    pg -d "$DB" <<'EOF'
CREATE TABLE IF NOT EXISTS orders_osiris (id BIGINT PRIMARY KEY, customer_id BIGINT, amount NUMERIC(12,2),
    status VARCHAR(16), note VARCHAR(64), created_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS orders_limit (LIKE orders_osiris INCLUDING ALL);
EOF
}

# The same row text on both sides: md5 of id|customer_id|amount|status|note|created_at, first 32 bits, summed.
MY_CHECKSUM="SELECT COUNT(*), SUM(CAST(CONV(SUBSTR(MD5(CONCAT_WS('|', id, customer_id, amount, status, IFNULL(note, '\\\\N'), DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s'))), 1, 8), 16, 10) AS UNSIGNED))"
PG_CHECKSUM="SELECT count(*) || ' ' || sum(('x' || substr(md5(concat_ws('|', id, customer_id, amount, status, coalesce(note, '\\N'), to_char(created_at, 'YYYY-MM-DD HH24:MI:SS'))), 1, 8))::bit(32)::bigint)"
DATA_VERSION=1 # bump when the generated rows change: the seeded tables are rebuilt

# seed_orders N: the deterministic `orders_N` table in MariaDB (kept between runs); sets CHECKSUM to
# "count sum" of its rows.
seed_orders() {
    local n="$1" t="orders_$1" have=""
    my "$DB" -e "CREATE TABLE IF NOT EXISTS bench_meta (tbl VARCHAR(64) PRIMARY KEY, data_version INT, checksum VARCHAR(64))"
    have="$(my "$DB" -e "SELECT checksum FROM bench_meta WHERE tbl = '$t' AND data_version = $DATA_VERSION")"
    if [[ -n "$have" ]]; then
        CHECKSUM="$have"
        return
    fi
    echo "== seeding MariaDB $DB.$t ($n rows)" >&2
    my "$DB" -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id BIGINT PRIMARY KEY, customer_id BIGINT,
        amount DECIMAL(12,2), status VARCHAR(16), note VARCHAR(64), created_at DATETIME)"
    local lo=1 hi
    while [[ $lo -le $n ]]; do
        hi=$((lo + 999999 > n ? n : lo + 999999))
        my "$DB" -e "INSERT INTO $t SELECT seq, (seq * 7919) % 100003, ((seq * 104729) % 10000000) / 100,
            ELT(1 + seq % 5, 'new', 'paid', 'shipped', 'delivered', 'cancelled'),
            IF(seq % 10 = 0, NULL, CONCAT('order ', seq, ' ', SUBSTR(MD5(seq), 1, 24))),
            TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_${lo}_to_${hi}"
        lo=$((hi + 1))
    done
    CHECKSUM="$(my "$DB" -e "$MY_CHECKSUM FROM $t" | tr '\t' ' ')"
    [[ "${CHECKSUM%% *}" == "$n" ]] || die "seeding $t produced ${CHECKSUM%% *} rows, not $n"
    my "$DB" -e "REPLACE INTO bench_meta VALUES ('$t', $DATA_VERSION, '$CHECKSUM')"
}

# A project for sections 1 and 2: connections to both databases, one pipeline per table size.
setup_db_project() {
    DBP="$WORK/db"
    mkdir -p "$DBP/pipelines"
    cat >"$DBP/osiris_connections.yaml" <<EOF
version: "1.0"
connections:
  mysql:
    bench: { host: 127.0.0.1, port: 3306, database: $DB, user: root, password: "" }
  postgres:
    bench: { host: 127.0.0.1, port: 5432, database: $DB, user: postgres, password: "" }
EOF
    cat >"$WORK/verify_pg.sh" <<EOF
#!/usr/bin/env bash
# verify_pg.sh TABLE "COUNT SUM": the PostgreSQL table holds exactly the rows of the source.
got="\$(psql ${PSQL_ARGS[*]} -X -q -t -A -d $DB -c "$PG_CHECKSUM FROM \$1")"
[[ "\$got" == "\$2" ]] || { echo "\$1: count and checksum \$got, expected \$2"; exit 1; }
EOF
    chmod +x "$WORK/verify_pg.sh"
}

db_pipeline() { # N
    cat >"$DBP/pipelines/orders_$1.yaml" <<EOF
oml_version: "0.1.0"
name: bench-mysql-to-postgres-$1
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.bench"
      table: orders_$1
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.bench"
      table: orders_osiris
      write_mode: append
EOF
}

# mysql_to_postgres N RUNS WARMUP: the limit, the load-only limit, then osiris, each verified after every run.
mysql_to_postgres() {
    local n="$1" runs="$2" warm="$3"
    seed_orders "$n"
    db_pipeline "$n"
    local truncate="psql ${PSQL_ARGS[*]} -X -q -d $DB -c 'TRUNCATE orders_osiris, orders_limit'"
    local limit_name="limit: mariadb | psql \\copy ($n rows)"
    measure "$limit_name" --runs "$runs" --warmup "$warm" --rows-per-run "$n" \
        --setup "$truncate" --verify "$WORK/verify_pg.sh orders_limit '$CHECKSUM'" -- \
        bash -c "mariadb ${MYSQL_ARGS[*]} --batch --quick -N $DB -e 'SELECT id, customer_id, amount, status, note, created_at FROM orders_$n' | psql ${PSQL_ARGS[*]} -X -q -v ON_ERROR_STOP=1 -d $DB -c \"\\\\copy orders_limit FROM STDIN WITH (FORMAT text, NULL 'NULL')\""
    # The server's own ingest speed: binary COPY FROM a file PostgreSQL reads itself, made (outside the timing)
    # from the rows the limit run just loaded and verified, into the same table. No client, no network, nothing
    # to parse as text: no loader can fill the table faster.
    local premade="/tmp/osiris-bench-orders_$n.v$DATA_VERSION.pgcopy"
    pg -d "$DB" -c "COPY orders_limit TO '$premade' WITH (FORMAT binary)"
    local load_name="load-only: PostgreSQL COPY FROM a binary file ($n rows)"
    measure "$load_name" --runs "$runs" --warmup "$warm" --rows-per-run "$n" \
        --setup "$truncate" --verify "$WORK/verify_pg.sh orders_limit '$CHECKSUM'" -- \
        psql "${PSQL_ARGS[@]}" -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "COPY orders_limit FROM '$premade' WITH (FORMAT binary)"
    local rss=()
    [[ "$n" -le 1000000 ]] && rss=(--target-rss-mb 100)
    measure "osiris run: mysql -> postgres ($n rows)" --runs "$runs" --warmup "$warm" --rows-per-run "$n" \
        --cwd "$DBP" --setup "$truncate" --verify "$WORK/verify_pg.sh orders_osiris '$CHECKSUM'" \
        --baseline "$limit_name" --baseline-label limit --target-ratio 1.25 "${rss[@]}" \
        --also-against "$load_name=load-only" -- \
        "$CORE" run "pipelines/orders_$n.yaml"
    # The file is the server's (a local server's /tmp: removed here; a remote one keeps it until overwritten).
    [[ -n "${BENCH_KEEP:-}" ]] || rm -f "$premade"
}

section_1() {
    need_bin "$CORE"
    ensure_databases
    setup_db_project
    mysql_to_postgres "$ROWS" "$HEAVY_RUNS" 1
}

section_2() {
    need_bin "$CORE"
    ensure_databases
    [[ -n "${DBP:-}" ]] || setup_db_project
    mysql_to_postgres "$BIG_ROWS" "$BIG_RUNS" 0
}

# --------------------------------------------------------------------------------------------------- duckdb

AGG_SQL="SELECT name, count(*) AS orders, sum(amount) AS total, min(created_at) AS first_at, max(created_at) AS last_at FROM {src} GROUP BY name ORDER BY name"
FILTER_SQL="SELECT * FROM {src} WHERE amount >= 500"

# gen_csv N: orders_N.csv (id,name,amount,created_at), generated once; FILTER_ROWS = rows with amount >= 500.
gen_csv() { # N
    CSV="$CACHE/orders_$1.v$DATA_VERSION.csv"
    if [[ ! -f "$CSV" || ! -f "$CSV.filter_rows" ]]; then
        echo "== generating $CSV" >&2
        python3 - "$1" "$CSV" <<'EOF'
import datetime, sys
n, path = int(sys.argv[1]), sys.argv[2]
t0 = datetime.datetime(2024, 1, 1)
kept = 0
with open(path + ".tmp", "w") as f:
    f.write("id,name,amount,created_at\n")
    for i in range(1, n + 1):
        cents = (i * 104729) % 100000
        kept += cents >= 50000
        ts = (t0 + datetime.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        f.write(f"{i},customer_{(i * 7919) % 5000:04d},{cents // 100}.{cents % 100:02d},{ts}\n")
with open(path + ".filter_rows", "w") as f:
    f.write(f"{kept}\n")
import os
os.replace(path + ".tmp", path)
EOF
    fi
    FILTER_ROWS="$(cat "$CSV.filter_rows")"
}

setup_duck_project() { # [DIR]: a project reading $CSV (default $WORK/duck)
    DKP="${1:-$WORK/duck}"
    mkdir -p "$DKP/pipelines" "$DKP/data" "$DKP/output"
    ln -sf "$CSV" "$DKP/data/orders.csv"
    # Ten rows: the same pipeline with almost no data shows the fixed cost of a run (section 5).
    head -n 11 "$CSV" >"$DKP/data/small.csv"
    SMALL_FILTER_ROWS="$(awk -F, 'NR > 1 && $3 >= 500' "$DKP/data/small.csv" | wc -l)"
    printf 'version: "1.0"\nconnections:\n  filesystem:\n    local: { default: true, base_dir: . }\n' \
        >"$DKP/osiris_connections.yaml"
    local q
    for q in agg filter; do
        local sql="$AGG_SQL"
        [[ $q == filter ]] && sql="$FILTER_SQL"
        cat >"$DKP/pipelines/$q.yaml" <<EOF
oml_version: "0.1.0"
name: bench-duckdb-$q
steps:
  - id: extract
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: query
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config:
      query: "${sql//\{src\}/df}"
  - id: write
    component: filesystem.csv_writer
    mode: write
    needs: [query]
    config:
      path: output/$q.csv
EOF
    done
    sed -e 's|data/orders.csv|data/small.csv|' -e 's|output/filter.csv|output/small.csv|' \
        -e 's|name: bench-duckdb-filter|name: bench-duckdb-small|' \
        "$DKP/pipelines/filter.yaml" >"$DKP/pipelines/small.yaml"
    cat >"$WORK/native.py" <<EOF
# Native DuckDB: the same SQL, from the CSV file to a CSV file, in one process.
import sys
import duckdb
q, src, out = sys.argv[1], sys.argv[2], sys.argv[3]
sql = {"agg": """$AGG_SQL""", "filter": """$FILTER_SQL"""}[q].replace("{src}", f"read_csv('{src}')")
duckdb.sql(f"COPY ({sql}) TO '{out}' (HEADER)")
EOF
    cat >"$WORK/verify_lines.sh" <<'EOF'
#!/usr/bin/env bash
# verify_lines.sh FILE DATA_ROWS: FILE holds a header and DATA_ROWS rows; the file is removed afterwards.
got=$(($(wc -l <"$1") - 1))
rm -f "$1"
[[ "$got" == "$2" ]] || { echo "$1: $got rows, expected $2"; exit 1; }
EOF
    chmod +x "$WORK/verify_lines.sh"
}

section_3() {
    need_bin "$DUCK"
    ensure_venv
    gen_csv "$ROWS"
    setup_duck_project
    local q rows native
    # What the native side pays before DuckDB runs any SQL: the interpreter and `import duckdb`. Native DuckDB's
    # engine time is its process time less this.
    local startup="python3 -c 'import duckdb' (native start-up)"
    measure "$startup" --runs "$HEAVY_RUNS" --warmup 1 -- "$VENV/bin/python" -c 'import duckdb'
    for q in agg filter; do
        rows=5000
        [[ $q == filter ]] && rows="$FILTER_ROWS"
        native="native DuckDB $DUCKDB_VERSION ($q, $ROWS rows)"
        measure "$native" --runs "$HEAVY_RUNS" --warmup 1 --rows-per-run "$ROWS" \
            --verify "$WORK/verify_lines.sh $WORK/native_$q.csv $rows" -- \
            "$VENV/bin/python" "$WORK/native.py" "$q" "$CSV" "$WORK/native_$q.csv"
        measure "osiris run: csv -> duckdb -> csv ($q, $ROWS rows)" --runs "$HEAVY_RUNS" --warmup 1 \
            --rows-per-run "$ROWS" --cwd "$DKP" --verify "$WORK/verify_lines.sh $DKP/output/$q.csv $rows" \
            --baseline "$native" --baseline-minus "$startup" --baseline-label "native DuckDB engine time" \
            --target-ratio 1.0 --target-rss-baseline --also-against "$native=native process" -- \
            "$DUCK" run "pipelines/$q.yaml"
    done
}

# Section 3 at --big-rows, one run each: osiris's peak RSS stays flat (its DuckDB step streams its input) and no
# higher than native DuckDB's.
section_7() {
    need_bin "$DUCK"
    ensure_venv
    local keep_csv="${CSV:-}" keep_filter="${FILTER_ROWS:-}" keep_dkp="${DKP:-}"
    gen_csv "$BIG_ROWS"
    setup_duck_project "$WORK/duck-big"
    local q rows native
    for q in agg filter; do
        rows=5000
        [[ $q == filter ]] && rows="$FILTER_ROWS"
        native="native DuckDB $DUCKDB_VERSION ($q, $BIG_ROWS rows)"
        measure "$native" --runs "$BIG_RUNS" --warmup 0 --rows-per-run "$BIG_ROWS" \
            --verify "$WORK/verify_lines.sh $WORK/native_$q.csv $rows" -- \
            "$VENV/bin/python" "$WORK/native.py" "$q" "$CSV" "$WORK/native_$q.csv"
        measure "osiris run: csv -> duckdb -> csv ($q, $BIG_ROWS rows)" --runs "$BIG_RUNS" --warmup 0 \
            --rows-per-run "$BIG_ROWS" --cwd "$DKP" --verify "$WORK/verify_lines.sh $DKP/output/$q.csv $rows" \
            --baseline "$native" --baseline-label "native DuckDB" --target-rss-baseline -- \
            "$DUCK" run "pipelines/$q.yaml"
    done
    CSV="$keep_csv" FILTER_ROWS="$keep_filter" DKP="$keep_dkp"
}

# -------------------------------------------------------------------------------------- start-up & compile

setup_init_project() {
    PROJECT="$WORK/project"
    "$CORE" init "$PROJECT" >/dev/null 2>&1
    PIPE3="pipelines/quickstart.yaml"
    PIPE200="pipelines/chain200.yaml"
    gen_chain200 >"$PROJECT/$PIPE200"
    # A generated pipeline that does not validate would make the timing meaningless: fail loudly.
    if ! (cd "$PROJECT" && "$CORE" oml validate "$PIPE200" >/dev/null); then
        die "the generated 200-step pipeline ($PROJECT/$PIPE200) does not validate"
    fi
    local out
    out="$(cd "$PROJECT" && "$CORE" compile "$PIPE200" --out "$WORK/out200" 2>&1)"
    [[ "$out" == *"(200 steps"* ]] || die "compiling the generated 200-step pipeline did not report 200 steps: $out"
}

# 1 CSV extractor, 198 DuckDB processors each reading the previous step, 1 CSV writer: a 200-step chain.
gen_chain200() {
    printf 'oml_version: "0.1.0"\nname: chain-200\n\nsteps:\n'
    printf '  - id: s000\n    component: filesystem.csv_extractor\n    mode: read\n    config:\n      path: data/orders.csv\n'
    local i prev
    for ((i = 1; i < 199; i++)); do
        prev=$(printf 's%03d' $((i - 1)))
        printf '  - id: s%03d\n    component: duckdb.processor\n    mode: transform\n    needs: [%s]\n    config:\n      query: SELECT * FROM df_%s\n' "$i" "$prev" "$prev"
    done
    printf '  - id: s199\n    component: filesystem.csv_writer\n    mode: write\n    needs: [s198]\n    config:\n      path: output/chain200.csv\n'
}

section_4() {
    need_bin "$CORE"
    setup_init_project
    # The harness's own cost of starting and reaping a process: read it next to the osiris start-up rows.
    measure "baseline: /bin/true" --runs "$RUNS" -- /bin/true
    measure "osiris --version" --runs "$RUNS" --target-ms 10 -- "$CORE" --version
    measure "components list" --runs "$RUNS" -- "$CORE" components list
    measure "components list --format json" --runs "$RUNS" -- "$CORE" components list --format json
    measure "compile (3 steps)" --runs "$RUNS" --target-ms 20 --cwd "$PROJECT" -- \
        "$CORE" compile "$PIPE3" --out "$WORK/out3"
    measure "compile (200 steps)" --runs "$RUNS" --cwd "$PROJECT" -- \
        "$CORE" compile "$PIPE200" --out "$WORK/out200"
    measure "oml validate (3 steps)" --runs "$RUNS" --cwd "$PROJECT" -- "$CORE" oml validate "$PIPE3"
}

# ------------------------------------------------------------------------------------------------- plugins

# pack_plugin LIB PKG_NAME LIB_NAME ENTRY SPEC OUT: a package directory made by `osiris plugins pack --library`.
pack_plugin() {
    local lib="$1" name="$2" lib_name="$3" entry="$4" spec="$5" out="$6" src
    src="$(mktemp -d "$WORK/crate.XXXXXX")"
    cat >"$src/Cargo.toml" <<EOF
[package]
name = "$name"
version = "$HOST_VERSION"
edition = "2024"

[lib]
name = "$lib_name"
crate-type = ["cdylib"]

[package.metadata.osiris]
entry = "$entry"
EOF
    cp "$spec" "$src/spec.yaml"
    "$CORE" plugins pack --manifest-path "$src" --library "$lib" --out "$out" >/dev/null
}

section_5() {
    need_bin "$CORE"
    need_bin "$DUCK"
    [[ -f "$BIN_DIR/libosiris_plugin_duckdb.so" ]] || die "no duckdb plugin library in $BIN_DIR (run without --skip-build)"
    if [[ -z "${DKP:-}" ]]; then gen_csv "$ROWS"; setup_duck_project; fi
    ensure_system_libduckdb
    local plugdir="$WORK/plugins-duckdb" runs=$((HEAVY_RUNS + 2))
    # The cdylib side runs without DUCKDB_LIB_DIR on LD_LIBRARY_PATH: the plugin's libduckdb.so comes from the
    # system directories. (An empty LD_LIBRARY_PATH would name the working directory, which the dependency check
    # then searches too; /usr/lib is a system directory and skipped.)
    local nolib=(--env LD_LIBRARY_PATH=/usr/lib)
    pack_plugin "$BIN_DIR/libosiris_plugin_duckdb.so" osiris-duckdb osiris_plugin_duckdb osiris_ocp_duckdb \
        components/duckdb.processor/spec.yaml "$plugdir/osiris-duckdb"
    # Unsigned plugins are refused (ADR 0011): sign it with a key the project trusts.
    "$CORE" plugins keygen --out "$WORK/duck.key" >/dev/null
    "$CORE" plugins sign "$plugdir/osiris-duckdb" --key "$WORK/duck.key" --key-id bench >/dev/null
    cat >"$DKP/osiris.yaml" <<EOF
plugins:
  trusted_keys:
    - { id: bench, public_key: "$(cat "$WORK/duck.key.pub")" }
EOF
    # The cdylib side must really load the plugin: the core binary has no DuckDB of its own.
    (cd "$DKP" && env -u LD_LIBRARY_PATH "$CORE" --plugin-dir "$plugdir" plugins list --load --format json) \
        | python3 -c 'import json, sys; sys.exit(0 if any(p.get("name") == "osiris-duckdb" and p.get("status") == "loaded" for p in json.load(sys.stdin)) else 1)' \
        || die "the packed duckdb plugin does not load into $CORE (see \`osiris --plugin-dir $plugdir plugins doctor\`)"
    # Where the load's time goes: `plugins list` reads the library, hashes it and checks its dependencies
    # without loading it; `--load` also stages and `dlopen`s it and cross-checks the module.
    local checked="duckdb plugin: plugins list (library read, hashed, checked)"
    measure "$checked" --runs "$RUNS" --warmup 1 --cwd "$DKP" "${nolib[@]}" -- \
        "$CORE" --plugin-dir "$plugdir" plugins list
    measure "duckdb plugin: plugins list --load (and loaded)" --runs "$RUNS" --warmup 1 --cwd "$DKP" "${nolib[@]}" \
        --baseline "$checked" --baseline-label "no load" --show-delta -- \
        "$CORE" --plugin-dir "$plugdir" plugins list --load
    # The fixed cost: the same pipeline on ten rows (start-up, plugin checks and load, one batch).
    local small="duckdb.processor linked in (filter, 10 rows)"
    measure "$small" --runs "$RUNS" --warmup 1 --cwd "$DKP" \
        --verify "$WORK/verify_lines.sh $DKP/output/small.csv $SMALL_FILTER_ROWS" -- \
        "$DUCK" run pipelines/small.yaml
    measure "duckdb.processor as a cdylib (filter, 10 rows)" --runs "$RUNS" --warmup 1 --cwd "$DKP" \
        --verify "$WORK/verify_lines.sh $DKP/output/small.csv $SMALL_FILTER_ROWS" \
        --baseline "$small" --baseline-label linked --target-delta-ms 5 "${nolib[@]}" -- \
        "$CORE" --plugin-dir "$plugdir" run pipelines/small.yaml
    local linked="duckdb.processor linked in (filter, $ROWS rows)"
    measure "$linked" --runs "$runs" --warmup 1 --rows-per-run "$ROWS" --cwd "$DKP" \
        --verify "$WORK/verify_lines.sh $DKP/output/filter.csv $FILTER_ROWS" -- \
        "$DUCK" run pipelines/filter.yaml
    measure "duckdb.processor as a cdylib (filter, $ROWS rows)" --runs "$runs" --warmup 1 --rows-per-run "$ROWS" \
        --cwd "$DKP" --verify "$WORK/verify_lines.sh $DKP/output/filter.csv $FILTER_ROWS" \
        --baseline "$linked" --baseline-label linked --target-ratio 1.02 "${nolib[@]}" -- \
        "$CORE" --plugin-dir "$plugdir" run pipelines/filter.yaml
}

# A plugin may depend only on system libraries (PLUGIN-E022): the packed duckdb plugin needs DuckDB's
# libduckdb.so in a system library directory, not on LD_LIBRARY_PATH. Installed into /usr/local/lib when missing
# (as root), so that both sides of section 5 run the same engine.
ensure_system_libduckdb() {
    local have
    have="$(ldconfig -p | sed -n 's/.*libduckdb\.so (.*) => //p' | head -n1)"
    if [[ -n "$have" ]] && cmp -s "$have" "$DUCKDB_LIB_DIR/libduckdb.so"; then
        return
    fi
    [[ "$(id -u)" -eq 0 ]] || die "section 5 loads the duckdb plugin, whose libduckdb.so must come from a system library directory (PLUGIN-E022): run \`sudo install -m 0644 $DUCKDB_LIB_DIR/libduckdb.so /usr/local/lib/ && sudo ldconfig\`, then rerun"
    echo "== installing libduckdb $DUCKDB_VERSION into /usr/local/lib (a plugin may depend only on system libraries)" >&2
    install -m 0644 "$DUCKDB_LIB_DIR/libduckdb.so" /usr/local/lib/libduckdb.so
    ldconfig
}

# 50 copies of the echo test plugin, each with its own component (test.e001 ... test.e050) and plugin name
# written into the library's embedded spec (same length, so the library stays valid), packed and signed.
section_6() {
    need_bin "$CORE"
    local lib="$BIN_DIR/libosiris_test_echo.so"
    [[ -f "$lib" ]] || die "no echo plugin library in $BIN_DIR (run without --skip-build)"
    local proj="$WORK/plugins50" dir="$WORK/plugins50/.osiris/plugins" i id
    mkdir -p "$dir"
    "$CORE" plugins keygen --out "$WORK/bench.key" >/dev/null
    for i in $(seq 1 50); do
        id="$(printf 'e%03d' "$i")"
        python3 - "$lib" "$WORK/lib_$id.so" tests/plugins/echo/spec.yaml "$WORK/spec_$id.yaml" "$id" <<'EOF'
import sys
lib, out_lib, spec, out_spec, ident = sys.argv[1:]
def patch(data, old, new):
    assert len(old) == len(new) and old in data, (old, new)
    return data.replace(old, new)
data = open(lib, "rb").read()
data = patch(data, b"test.echo", f"test.{ident}".encode())
data = patch(data, b"osiris-test-echo", f"osiris-test-{ident}".encode())
open(out_lib, "wb").write(data)
text = open(spec, "rb").read()
open(out_spec, "wb").write(patch(text, b"test.echo", f"test.{ident}".encode()))
EOF
        pack_plugin "$WORK/lib_$id.so" "osiris-test-$id" osiris_test_echo osiris_ocp_test_echo \
            "$WORK/spec_$id.yaml" "$dir/osiris-test-$id"
        "$CORE" plugins sign "$dir/osiris-test-$id" --key "$WORK/bench.key" --key-id bench >/dev/null
    done
    cat >"$proj/osiris.yaml" <<EOF
plugins:
  require_signatures: true
  trusted_keys:
    - { id: bench, public_key: "$(cat "$WORK/bench.key.pub")" }
EOF
    cat >"$WORK/verify_list.sh" <<EOF
#!/usr/bin/env bash
# verify_list.sh: \`components list\` in the project shows all 50 plugin components (none refused).
n="\$(cd "$proj" && "$CORE" components list | grep -c '^test\.e0')"
[[ "\$n" == 50 ]] || { echo "components list shows \$n of the 50 signed plugins' components"; exit 1; }
EOF
    chmod +x "$WORK/verify_list.sh"
    "$WORK/verify_list.sh" >&2 || die "the 50 signed plugins' components are not all listed"
    measure "components list (no plugins)" --runs "$RUNS" -- "$CORE" components list
    measure "components list (50 signed plugins)" --runs "$RUNS" --cwd "$proj" --target-ms 100 \
        --verify "$WORK/verify_list.sh" -- "$CORE" components list
}

# Section 8: an incremental run that finds 1,000 new rows in a --big-rows table, against the first (full) run
# of the same pipeline. The source is a copy of orders_N (`incr_N`, kept) whose cursor is its primary key, so
# the incremental read is an index range scan. Before each incremental run the target loses the new rows again
# and the state file is put back to the mark the full run left (the documented format, ADR 0018).
section_8() {
    need_bin "$CORE"
    ensure_databases
    [[ -n "${DBP:-}" ]] || setup_db_project
    local n="$BIG_ROWS" src="incr_$BIG_ROWS"
    seed_orders "$n"
    if [[ -z "$(my "$DB" -e "SELECT 1 FROM bench_meta WHERE tbl = '$src' AND data_version = $DATA_VERSION")" ]]; then
        echo "== copying orders_$n to $src" >&2
        my "$DB" -e "DROP TABLE IF EXISTS $src; CREATE TABLE $src LIKE orders_$n; INSERT INTO $src SELECT * FROM orders_$n;
            REPLACE INTO bench_meta VALUES ('$src', $DATA_VERSION, '')"
    fi
    my "$DB" -e "DELETE FROM $src WHERE id > $n"
    pg -d "$DB" -c "CREATE TABLE IF NOT EXISTS incr_osiris (LIKE orders_osiris INCLUDING ALL)"
    local name="bench-incremental-$n"
    cat >"$DBP/pipelines/incr_$n.yaml" <<YAML
oml_version: "0.1.0"
name: $name
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.bench"
      table: $src
      incremental:
        cursor: id
  - id: load
    component: postgres.writer
    mode: write
    needs: [extract]
    config:
      connection: "@postgres.bench"
      table: incr_osiris
      write_mode: append
YAML
    local state="$DBP/.osiris/state/default/$name/extract.json"
    cat >"$WORK/verify_count.sh" <<SH
#!/usr/bin/env bash
# verify_count.sh TABLE N: the PostgreSQL table holds N rows with N distinct ids.
got="\$(psql ${PSQL_ARGS[*]} -X -q -t -A -d $DB -c "SELECT count(*) || ' ' || count(DISTINCT id) FROM \$1")"
[[ "\$got" == "\$2 \$2" ]] || { echo "\$1: \$got rows/ids, expected \$2"; exit 1; }
SH
    chmod +x "$WORK/verify_count.sh"
    local full="osiris run: incremental, first run ($n rows)"
    measure "$full" --runs 1 --warmup 0 --rows-per-run "$n" --cwd "$DBP" \
        --setup "rm -f '$state' && psql ${PSQL_ARGS[*]} -X -q -d $DB -c 'TRUNCATE incr_osiris'" \
        --verify "$WORK/verify_count.sh incr_osiris $n" -- \
        "$CORE" run "pipelines/incr_$n.yaml"
    python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['value']; sys.exit(v != [int(sys.argv[2])])" \
        "$state" "$n" || die "the full run did not leave the mark $n in $state"
    cp "$state" "$WORK/mark.json"
    my "$DB" -e "INSERT INTO $src SELECT id + $n, customer_id, amount, status, note, created_at FROM orders_$n WHERE id <= 1000"
    measure "osiris run: incremental, 1,000 new of $n rows" --runs "$HEAVY_RUNS" --warmup 1 --rows-per-run 1000 \
        --cwd "$DBP" --baseline "$full" --baseline-label "full run" \
        --setup "cp '$WORK/mark.json' '$state' && psql ${PSQL_ARGS[*]} -X -q -d $DB -c 'DELETE FROM incr_osiris WHERE id > $n'" \
        --verify "$WORK/verify_count.sh incr_osiris $((n + 1000))" -- \
        "$CORE" run "pipelines/incr_$n.yaml"
    my "$DB" -e "DELETE FROM $src WHERE id > $n"
}

# ------------------------------------------------------------------------------------------------------ main

build
print_machine
echo "== measuring sections $SECTIONS (start-up: $RUNS runs; data: $HEAVY_RUNS runs; each after a warm-up)" >&2
for s in 4 6 3 5 7 1 2 8; do
    if want "$s"; then
        SECTION="$s"
        echo "== section $s" >&2
        "section_$s"
    fi
done
echo "== results" >&2
"${MEASURE[@]}" report --rows "$RESULTS" --machine "$WORK/machine.json" --out-dir "$OUT_DIR" --command "$COMMAND_LINE"
echo "== wrote $OUT_DIR/report.md and $OUT_DIR/report.json" >&2
