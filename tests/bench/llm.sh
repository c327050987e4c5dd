#!/usr/bin/env bash
# osiris LLM-authoring benchmark (issue 12): `osiris prompts build-context` cold and cached, tokens per
# component, and `osiris chat`'s own work per attempt (extract, validate, compile in memory), the model excluded.
#
#   tests/bench/llm.sh [--runs N] [--bin PATH] [--skip-build]
#
#   --runs N       measured runs per figure (default 20)
#   --bin PATH     measure this osiris binary instead of building one
#   --skip-build   measure $CARGO_TARGET_DIR/release/osiris as it is
#
# The binary is `cargo build --release -p osiris-host --no-default-features` (no DuckDB: nothing here runs a
# pipeline). Chat talks to tests/bench/fake_llm.py on 127.0.0.1, which answers at once with a scripted reply,
# so the time per attempt osiris reports (`check_ms` of `chat --format json`) is its own. These are benchmarks,
# not tests: nothing in `cargo test` runs this script.
set -euo pipefail

die() {
    echo "bench: error: $*" >&2
    exit 2
}

RUNS=20
BIN=""
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--runs needs a positive integer"; RUNS="$2"; shift 2 ;;
        --bin) [[ -x "${2:-}" ]] || die "--bin needs an executable"; BIN="$2"; BUILD=0; shift 2 ;;
        --skip-build) BUILD=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument \`$1\`" ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
command -v python3 >/dev/null || die "python3 is required"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ -z "$BIN" ]]; then
    if [[ $BUILD -eq 1 ]]; then
        echo "== cargo build --release -p osiris-host --no-default-features" >&2
        cargo build --release --quiet -p osiris-host --no-default-features
    fi
    BIN="$TARGET_DIR/release/osiris"
fi
[[ -x "$BIN" ]] || die "no binary at $BIN (run without --skip-build)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/osiris-llm-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/project" "$WORK/home"
: >"$WORK/project/osiris.yaml"
cat >"$WORK/project/osiris_connections.yaml" <<'EOF'
version: "1.0"
connections:
  supabase:
    main:
      default: true
      url: https://abcdefgh.supabase.co
      service_role_key: ${SUPABASE_KEY}
    backup:
      url: https://ijklmnop.supabase.co
      service_role_key: ${SUPABASE_BACKUP_KEY}
  mysql:
    default:
      host: 127.0.0.1
      password: ${MYSQL_PASSWORD}
EOF
# A valid reply (the MySQL -> Supabase merge of the guided prompts) and an invalid one (a misspelt component
# and an unknown field): the invalid attempt costs the validator its full error path.
cat >"$WORK/valid.txt" <<'EOF'
```yaml
oml_version: "0.1.0"
name: mysql-to-supabase
steps:
  - id: extract_orders
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      table: orders
  - id: load_orders
    component: supabase.writer
    mode: write
    needs: [extract_orders]
    config:
      connection: "@supabase.main"
      table: orders
      write_mode: merge
      primary_key: id
```
EOF
sed -e 's/supabase.writer/supabase.wrtier/' -e 's/      table: orders$/      table: orders\n      colour: blue/' "$WORK/valid.txt" >"$WORK/invalid.txt"

export HOME="$WORK/home" OSIRIS_PLUGIN_PATH="" NO_COLOR=1
for v in $(env | sed -n 's/^\(OSIRIS_LLM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

python3 - "$BIN" "$WORK" "$RUNS" "$ROOT/tests/bench/fake_llm.py" <<'PY'
import json, os, shutil, statistics, subprocess, sys, time

bin_, work, runs, fake_llm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
project = os.path.join(work, "project")
prompts = os.path.join(project, ".osiris_prompts")

def run(args, **kw):
    t = time.perf_counter()
    p = subprocess.run([bin_, *args], cwd=project, capture_output=True, text=True, **kw)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        sys.exit(f"bench: error: osiris {' '.join(args)} exited {p.returncode}:\n{p.stderr}")
    return dt, p

def stats(xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"p50 {statistics.median(xs):7.1f} ms   p95 {p95:7.1f} ms   min {xs[0]:7.1f} ms"

print(f"== {bin_} ({runs} runs per figure)")
print("-- prompts build-context (all 10 first-party components)")
cold = []
for _ in range(runs):
    shutil.rmtree(prompts, ignore_errors=True)
    dt, p = run(["prompts", "build-context"])
    assert json.loads(p.stdout)["cache"] == "rebuilt"
    cold.append(dt)
hit = []
for _ in range(runs):
    dt, p = run(["prompts", "build-context"])
    assert json.loads(p.stdout)["cache"] == "hit"
    hit.append(dt)
base = []
for _ in range(runs):
    dt, _ = run(["--version"])
    base.append(dt)
print(f"  cold (rebuilt)   {stats(cold)}")
print(f"  cached (hit)     {stats(hit)}")
print(f"  osiris --version {stats(base)}   (process start-up, for scale)")

_, p = run(["prompts", "build-context"])
full = json.loads(p.stdout)
names = full["components"]
def tokens(comps):
    _, p = run(["prompts", "build-context", "--components", ",".join(comps)])
    return json.loads(p.stdout)["tokens"]
one = {n: tokens([n]) for n in names}
# the rules and the legend: what one component's context holds beyond the component itself
header = one[names[0]] + one[names[1]] - tokens(names[:2])
print(f"-- tokens (cl100k_base): whole catalogue {full['tokens']} (budget 2000); rules and legend {header}")
for n in names:
    print(f"  {n:26} {one[n] - header:4}")
print(f"  {'mean per component':26} {statistics.mean(one[n] - header for n in names):6.1f}")

print("-- chat: osiris's work per attempt (extract + validate + compile in memory), the model excluded")
llm = subprocess.Popen([sys.executable, fake_llm, os.path.join(work, "invalid.txt"), os.path.join(work, "valid.txt")],
                       stdout=subprocess.PIPE, text=True)
port = llm.stdout.readline().strip()
env = dict(os.environ, OSIRIS_LLM_BASE_URL=f"http://127.0.0.1:{port}/v1", OSIRIS_LLM_MODEL="bench")
first, second, walls, models = [], [], [], []
try:
    for i in range(runs):
        dt, p = run(["chat", "--prompt", "MySQL table orders into Supabase, merge on id", "--out", "p.yaml",
                     "--force", "--format", "json"], env=env)
        v = json.loads(p.stdout)
        a = v["attempts"]
        assert len(a) == 2 and not a[0]["ok"] and a[1]["ok"], v
        first.append(a[0]["check_ms"])
        second.append(a[1]["check_ms"])
        models.append(sum(x["model_ms"] for x in a))
        walls.append(dt)
finally:
    llm.kill()
print(f"  invalid attempt  {stats(first)}   (2 errors; the first check of the process)")
print(f"  valid attempt    {stats(second)}")
print(f"  whole command    {stats(walls)}   (start-up, registry, cached context, 2 HTTP round trips to the fake model: {statistics.median(models):.0f} ms)")
_, p = run(["compile", "p.yaml"])
print("  the saved pipeline compiles: ok")
PY
