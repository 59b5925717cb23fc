#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang, ASan and UBSan in
# build-fuzz/ (or the tree named by SHREDKV_FUZZ_BUILD, below), then runs
# each for SECONDS seconds (default 60) on a copy of its checked-in corpus
# (fuzz/corpus/<harness>/). Fails if any harness crashes, leaks, trips a
# sanitizer or finds a model disagreement; the input that did is kept as
# <tree>/artifacts/<harness>/crash-* (reproduce with <tree>/bin/<harness>
# <file>).
#
#   bash scripts/fuzz.sh            # 60 s a harness
#   bash scripts/fuzz.sh 30         # CI (scripts/test.sh)
#   bash scripts/fuzz.sh 3600       # an hour a harness, under ASan
#   bash scripts/fuzz.sh --campaign 1800   # a campaign: see below
#
# --campaign SECONDS builds the harnesses without sanitizers (clang -O2 and
# libFuzzer's coverage only, in build-fuzz-campaign/: several times the
# executions a second), runs each for SECONDS with value profiling
# (-use_value_profile=1) and the dictionaries of fuzz/dict/, merges the
# inputs that found new coverage into fuzz/corpus/<harness>/ (so every later
# ASan run, CI's included, replays them) and prints one line a harness for
# docs/testing.md: "fuzz.sh: campaign | <harness> | <runs> | <exec/s> |
# <cov> | <ft> | <crashes> |". A crash keeps its input in
# build-fuzz-campaign/artifacts/<harness>/; replay it under ASan with
# build-fuzz/bin/<harness> <file>. Harnesses slow enough that replaying a
# campaign's corpus would take CI's whole fuzz stage (fuzz_store_model: a
# fresh store per input, ~10 inputs a second under ASan) keep their
# campaign inputs in fuzz/corpus-campaign/<harness>/ instead: campaigns
# start from both directories, the short runs from fuzz/corpus/ only.
#
# SHREDKV_FUZZ_MERGE=1 merges the inputs that found new coverage back into
# fuzz/corpus/<harness>/ (minimised with -merge=1) after the runs.
# SHREDKV_FUZZERS="fuzz_codec ..." runs only the named harnesses.
# SHREDKV_FUZZ_PARALLEL=1 runs the harnesses at the same time (CI does).
# SHREDKV_FUZZ_BUILD=<dir> builds and runs the harnesses of an already
# configured tree instead of configuring build-fuzz/: a clang ASan+UBSan tree
# with SHREDKV_BUILD_FUZZERS=ON (scripts/test.sh passes build-asan/, whose
# library objects its sanitizer tests use too).
# Prints one line a harness: "fuzz.sh: <harness> passed: <runs> runs in <s> s,
# <n> exec/s, cov: <c> ft: <f>".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CAMPAIGN=0
if [[ "${1:-}" == "--campaign" ]]; then
  CAMPAIGN=1
  shift
fi
SECONDS_PER_HARNESS="${1:-60}"
[[ "$SECONDS_PER_HARNESS" =~ ^[0-9]+$ ]] || {
  echo "usage: scripts/fuzz.sh [--campaign] [seconds-per-harness]" >&2; exit 2; }
HARNESSES=(${SHREDKV_FUZZERS:-fuzz_store_model fuzz_codec fuzz_ndjson fuzz_payloads fuzz_cli_args})
# Where a campaign merges a harness's new inputs (see above).
merge_dir() {
  if [[ "$1" == fuzz_store_model ]]; then echo "fuzz/corpus-campaign/$1"; else echo "fuzz/corpus/$1"; fi
}
if ((CAMPAIGN)); then
  BUILD="${SHREDKV_FUZZ_BUILD:-build-fuzz-campaign}"
else
  BUILD="${SHREDKV_FUZZ_BUILD:-build-fuzz}"
fi

if [[ -n "${SHREDKV_FUZZ_BUILD:-}" ]]; then
  # A tree someone else configured: it must build the harnesses.
  grep -qx 'SHREDKV_BUILD_FUZZERS:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null || {
    echo "fuzz.sh: $BUILD is not a tree configured with -DSHREDKV_BUILD_FUZZERS=ON" >&2; exit 1; }
elif ((CAMPAIGN)); then
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -gline-tables-only -DNDEBUG" \
    -DSHREDKV_SANITIZE= -DSHREDKV_BUILD_FUZZERS=ON -DSHREDKV_BUILD_TESTS=OFF \
    -DSHREDKV_BUILD_BENCHMARKS=OFF -DSHREDKV_BUILD_EXAMPLES=OFF -DSHREDKV_BUILD_TOOLS=OFF >/dev/null
else
  # -O1 with line tables only: symbolised stack traces at a fraction of the
  # compile time of -O2 -g.
  CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DSHREDKV_SANITIZE=address -DSHREDKV_BUILD_FUZZERS=ON -DSHREDKV_BUILD_TESTS=OFF \
    -DSHREDKV_BUILD_BENCHMARKS=OFF -DSHREDKV_BUILD_EXAMPLES=OFF -DSHREDKV_BUILD_TOOLS=OFF >/dev/null
fi
cmake --build "$BUILD" --target fuzz

export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/shredkv-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# Runs harness $1 on a copy of its corpus; its exit code is in $WORK/$1.rc.
run_harness() {
  local h=$1 seeds="fuzz/corpus/$1" corpus="$WORK/$1" artifacts="$BUILD/artifacts/$1" rc=0
  local extra=()
  # An operation sequence needs its whole length from the start (about 10
  # bytes a step, 40 steps an input), not libFuzzer's slowly growing limit.
  [[ "$h" == fuzz_store_model ]] && extra=(-max_len=512 -len_control=0)
  [[ "$h" == fuzz_ndjson ]] && extra+=(-dict=fuzz/dict/json.dict)
  [[ "$h" == fuzz_cli_args ]] && extra+=(-dict=fuzz/dict/cli.dict)
  ((CAMPAIGN)) && extra+=(-use_value_profile=1)
  # The store model's runs each reach tens of thousands of features (value
  # profile over a whole engine); libFuzzer's entropic schedule updated their
  # frequencies in 44 % of a campaign's samples (perf, 2026-12-05) and
  # halved exec/s (47 against 97 on the same seeds). Its campaigns trade the
  # schedule for twice the executions.
  ((CAMPAIGN)) && [[ "$h" == fuzz_store_model ]] && extra+=(-entropic=0)
  mkdir -p "$corpus" "$artifacts"
  cp "$seeds"/* "$corpus"/
  if ((CAMPAIGN)) && [[ -d "fuzz/corpus-campaign/$h" ]]; then cp "fuzz/corpus-campaign/$h"/* "$corpus"/; fi
  "$BUILD/bin/$h" -max_total_time="$SECONDS_PER_HARNESS" -print_final_stats=1 -timeout=60 \
    -rss_limit_mb=4096 -artifact_prefix="$artifacts/" "${extra[@]}" "$corpus" >"$WORK/$h.log" 2>&1 || rc=$?
  cp "$WORK/$h.log" "$BUILD/artifacts/$h.log"
  echo "$rc" >"$WORK/$h.rc"
}

for h in "${HARNESSES[@]}"; do
  [[ -d "fuzz/corpus/$h" ]] || { echo "fuzz.sh: no seed corpus fuzz/corpus/$h" >&2; exit 1; }
done
if [[ "${SHREDKV_FUZZ_PARALLEL:-0}" == "1" ]]; then
  # All harnesses at once (CI: bounds the stage's wall time; exec/s then
  # reflect the shared cores).
  echo "fuzz.sh: running ${HARNESSES[*]} in parallel for ${SECONDS_PER_HARNESS}s each (logs: $BUILD/artifacts/)"
  pids=()
  for h in "${HARNESSES[@]}"; do
    run_harness "$h" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
else
  for h in "${HARNESSES[@]}"; do
    echo "fuzz.sh: running $h for ${SECONDS_PER_HARNESS}s (log: $BUILD/artifacts/$h.log)"
    run_harness "$h"
  done
fi

failed=0
for h in "${HARNESSES[@]}"; do
  log="$WORK/$h.log"
  rc="$(cat "$WORK/$h.rc" 2>/dev/null || echo missing)"
  if [[ "$rc" != 0 ]]; then
    echo "fuzz.sh: $h FAILED (exit $rc); last lines of its log ($BUILD/artifacts/$h.log):" >&2
    tail -n 40 "$log" >&2 || true
    if ((CAMPAIGN)); then
      echo "fuzz.sh: campaign | $h | ? | ? | ? | ? | $(find "$BUILD/artifacts/$h" -name 'crash-*' | wc -l) |"
    fi
    failed=1
    continue
  fi
  runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)"
  eps="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n1)"
  cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n1)"
  echo "fuzz.sh: $h passed: ${runs:-?} runs in ${SECONDS_PER_HARNESS} s, ${eps:-?} exec/s, ${cov:-cov: ? ft: ?}"
  if ((CAMPAIGN)); then
    read -r _ c _ f <<<"${cov:-cov: ? ft: ?}"
    echo "fuzz.sh: campaign | $h | ${runs:-?} | ${eps:-?} | $c | $f | 0 |"
  fi
  if ((CAMPAIGN)); then
    mkdir -p "$(merge_dir "$h")"
    # Merged against both directories, written to the harness's merge dir.
    "$BUILD/bin/$h" -merge=1 "$(merge_dir "$h")" "fuzz/corpus/$h" "$WORK/$h" >>"$BUILD/artifacts/$h.log" 2>&1
  elif [[ "${SHREDKV_FUZZ_MERGE:-0}" == "1" ]]; then
    "$BUILD/bin/$h" -merge=1 "fuzz/corpus/$h" "$WORK/$h" >>"$BUILD/artifacts/$h.log" 2>&1
  fi
done
exit "$failed"
