#!/usr/bin/env bash
# osiris benchmark suite: builds the release binary, measures start-up and compile times, prints a table
# and writes $CARGO_TARGET_DIR/bench/report.{md,json} (target/bench/ when CARGO_TARGET_DIR is unset).
#
#   tests/bench/run.sh [--quick] [--runs N] [--skip-build] [--bin PATH]
#
#   --quick       5 measured runs per benchmark instead of 20
#   --runs N      N measured runs per benchmark
#   --skip-build  measure the existing release binary (fails when there is none)
#   --bin PATH    measure this osiris binary instead (implies --skip-build)
#
# These are benchmarks, not tests: nothing in `cargo test` runs or depends on this script.
# Each benchmark is one `bench_*` function registered in BENCHMARKS below; add a section by writing a
# function that calls `measure NAME TARGET_MS_OR_- -- COMMAND...` and listing it in BENCHMARKS.
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

COMMAND_LINE="tests/bench/run.sh${*:+ }$*"
RUNS=20
WARMUP=1
BUILD=1
BIN=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) RUNS=5; shift ;;
        --runs)
            [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "bench: error: --runs needs a positive integer" >&2; exit 2; }
            RUNS="$2"; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        --bin)
            [[ $# -ge 2 ]] || { echo "bench: error: --bin needs a path" >&2; exit 2; }
            BIN="$2"; BUILD=0; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench: error: unknown argument \`$1\`" >&2; usage >&2; exit 2 ;;
    esac
done

if [[ -n "$BIN" ]]; then
    # Resolved against the caller's directory, before moving to the repository root.
    [[ -x "$BIN" && -f "$BIN" ]] || { echo "bench: error: --bin \`$BIN\` is not an executable file" >&2; exit 2; }
    BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
fi
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
MEASURE=(python3 "$ROOT/tests/bench/measure.py")
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DIR="$TARGET_DIR/bench"
OSIRIS="${BIN:-$TARGET_DIR/release/osiris}"

command -v python3 >/dev/null || { echo "bench: error: python3 is required (tests/bench/measure.py)" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/osiris-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROWS="$WORK/rows.jsonl"
: >"$ROWS"

# measure NAME TARGET_MS|- [--cwd DIR] -- COMMAND...
measure() {
    local name="$1" target="$2"
    shift 2
    local extra=()
    if [[ "$target" != "-" ]]; then extra+=(--target-ms "$target"); fi
    if [[ "${1:-}" == "--cwd" ]]; then extra+=(--cwd "$2"); shift 2; fi
    [[ "${1:-}" == "--" ]] && shift
    "${MEASURE[@]}" run --rows "$ROWS" --name "$name" --runs "$RUNS" --warmup "$WARMUP" \
        --abbrev "$OSIRIS=osiris" --abbrev "$WORK=\$TMP" "${extra[@]}" -- "$@"
}

build() {
    if [[ $BUILD -eq 1 ]]; then
        echo "== building: cargo build --release -p osiris-host --no-default-features" >&2
        cargo build --release -p osiris-host --no-default-features
    fi
    [[ -x "$OSIRIS" ]] || { echo "bench: error: no release binary at $OSIRIS (run without --skip-build)" >&2; exit 2; }
}

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

# A project with the quickstart pipeline (CSV -> DuckDB -> CSV), and a generated 200-step pipeline.
setup_project() {
    PROJECT="$WORK/project"
    "$OSIRIS" init "$PROJECT" >/dev/null 2>&1
    PIPE3="pipelines/quickstart.yaml"
    PIPE200="pipelines/chain200.yaml"
    gen_chain200 >"$PROJECT/$PIPE200"
    # A generated pipeline that does not validate would make the timing meaningless: fail loudly.
    if ! (cd "$PROJECT" && "$OSIRIS" oml validate "$PIPE200" >/dev/null); then
        echo "bench: error: the generated 200-step pipeline ($PROJECT/$PIPE200) does not validate" >&2
        exit 1
    fi
    local out
    out="$(cd "$PROJECT" && "$OSIRIS" compile "$PIPE200" --out "$WORK/out200" 2>&1)"
    if [[ "$out" != *"(200 steps"* ]]; then
        echo "bench: error: compiling the generated 200-step pipeline did not report 200 steps:" >&2
        echo "$out" >&2
        exit 1
    fi
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

# The harness's own cost of starting and reaping a process: read it next to the osiris start-up rows.
bench_baseline() {
    measure "baseline: /bin/true" - -- /bin/true
}

bench_version() {
    measure "osiris --version" 10 -- "$OSIRIS" --version
}

bench_components_list() {
    measure "components list" - -- "$OSIRIS" components list
    measure "components list --format json" - -- "$OSIRIS" components list --format json
}

bench_compile_3() {
    measure "compile (3 steps)" 20 --cwd "$PROJECT" -- "$OSIRIS" compile "$PIPE3" --out "$WORK/out3"
}

bench_compile_200() {
    measure "compile (200 steps)" - --cwd "$PROJECT" -- "$OSIRIS" compile "$PIPE200" --out "$WORK/out200"
}

bench_validate_3() {
    measure "oml validate (3 steps)" - --cwd "$PROJECT" -- "$OSIRIS" oml validate "$PIPE3"
}

BENCHMARKS=(bench_baseline bench_version bench_components_list bench_compile_3 bench_compile_200 bench_validate_3)

build
print_machine
setup_project
echo "== measuring: median of $RUNS runs after $WARMUP warm-up run(s) each" >&2
for b in "${BENCHMARKS[@]}"; do
    "$b"
done
echo "== results" >&2
"${MEASURE[@]}" report --rows "$ROWS" --machine "$WORK/machine.json" --out-dir "$OUT_DIR" --command "$COMMAND_LINE"
echo "== wrote $OUT_DIR/report.md and $OUT_DIR/report.json" >&2
