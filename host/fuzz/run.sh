#!/usr/bin/env bash
# Runs the fuzz targets of osiris's untrusted-input parsers, each for a given time, and says per target how long
# it ran and whether it found a crash. See README.md.
#
#   host/fuzz/run.sh [--time SECONDS] [--sanitizer address|none] [TARGET...]
#
# Defaults: 60 seconds per target, every target, AddressSanitizer when a nightly toolchain is installed (else
# `--sanitizer none`, which works on stable). New corpus entries go to a scratch directory, not into the repo;
# crashes go to `$WORK/artifacts/<target>/`, where WORK is $FUZZ_WORK or `$CARGO_TARGET_DIR/fuzz-work`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
seconds=60
sanitizer=""
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) seconds="$2"; shift 2 ;;
    --sanitizer) sanitizer="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "error: unknown option \`$1\` (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
all=(plugin_manifest plugin_signature signed_statement component_spec)
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is not installed: run \`cargo install cargo-fuzz\`" >&2
  exit 2
fi
toolchain=()
if [ -z "$sanitizer" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then sanitizer=address; else sanitizer=none; fi
fi
if [ "$sanitizer" != none ]; then
  # Sanitizers need `-Z` flags: nightly only.
  toolchain=(+nightly)
fi

work="${FUZZ_WORK:-${CARGO_TARGET_DIR:-$here/target}/fuzz-work}"
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t" "$work/logs"
  log="$work/logs/$t.log"
  echo "== $t: ${seconds}s, sanitizer $sanitizer" >&2
  start=$(date +%s)
  set +e
  timer=()
  [ -x /usr/bin/time ] && timer=(/usr/bin/time -f '%U %S' -o "$work/logs/$t.cpu")
  "${timer[@]}" cargo "${toolchain[@]}" fuzz run --fuzz-dir "$here" --sanitizer "$sanitizer" --debug-assertions "$t" \
    "$work/corpus/$t" "$here/corpus/$t" -- \
    -max_total_time="$seconds" -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 2>&1 | tee "$log" >&2
  rc=${PIPESTATUS[0]}
  set -e
  ran=$(( $(date +%s) - start ))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  cpu="?"
  if [ -f "$work/logs/$t.cpu" ]; then
    cpu=$(awk 'END { printf "%.1f", ($1 + $2) / 60 }' "$work/logs/$t.cpu")
  fi
  if [ "$rc" -eq 0 ]; then
    summary+=("$t: ${cpu} CPU-minutes (${ran}s wall), ${runs:-?} inputs, no crash")
  else
    summary+=("$t: CRASH or failure after ${ran}s (exit $rc); see $log and $work/artifacts/$t/")
    status=1
  fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
