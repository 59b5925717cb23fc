#!/usr/bin/env bash
# The full check, as CI runs it:
#   1. installs missing Debian packages (scripts/setup-deps.sh)
#   2. builds everything in build/ (RelWithDebInfo) and runs ctest there
#   3. builds build-asan/ with ASan+UBSan and runs ctest there (skipped when
#      SHREDKV_SKIP_ASAN=1)
#   4. installs build/ into a temporary prefix and builds a consumer project
#      against it with CMake and with pkg-config (scripts/check-install.sh)
#   5. builds the libFuzzer harnesses in build-fuzz/ (clang, ASan+UBSan) and
#      runs the harnesses side by side for 30 s each on their seed corpora
#      (SHREDKV_FUZZ_PARALLEL=1 scripts/fuzz.sh 30; skipped
#      when SHREDKV_SKIP_FUZZ=1)
# Exits nonzero on the first failure. Extra CMake arguments for both build
# trees may be given in SHREDKV_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

START=$SECONDS
STAGE="setup"
RESULTS=()
PASSED=0
finish() {
  local rc=$?
  local summary="" r
  for r in "${RESULTS[@]}"; do summary+="${summary:+; }$r"; done
  if ((rc == 0)); then
    echo "test.sh: PASSED in $((SECONDS - START))s: ${summary}"
    # Plain closing line: ctest cases of every tree plus the install check.
    echo "summary: ${PASSED} passed, 0 failed"
  else
    echo "test.sh: FAILED in stage '${STAGE}' after $((SECONDS - START))s${summary:+ (passed before: ${summary})}" >&2
  fi
}
trap finish EXIT

banner() { printf '\n======== test.sh: %s\n' "$*"; }

# Runs ctest in $1 and records "<name>: N/N tests" in RESULTS.
run_ctest() {
  local dir=$1 name=$2 log
  log="$(mktemp)"
  # --no-tests=error: a tree that registered no tests is a failure, not a pass.
  if ! ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 2>&1 | tee "$log"; then
    rm -f "$log"
    return 1
  fi
  local line
  line="$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n1 || true)"
  rm -f "$log"
  local n
  n="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")"
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "test.sh: cannot read ctest's summary in $dir" >&2; return 1; }
  PASSED=$((PASSED + n))
  RESULTS+=("${name}: ${n} tests passed")
}

banner "dependencies"
bash scripts/setup-deps.sh

# shellcheck disable=SC2206  # SHREDKV_CMAKE_ARGS is a word list on purpose
EXTRA=(${SHREDKV_CMAKE_ARGS:-})

STAGE="build"
banner "build/ (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHREDKV_BUILD_TESTS=ON "${EXTRA[@]}"
cmake --build build

STAGE="ctest build/"
banner "ctest in build/"
run_ctest build build

if [[ "${SHREDKV_SKIP_ASAN:-0}" == "1" ]]; then
  banner "build-asan/ skipped (SHREDKV_SKIP_ASAN=1)"
  RESULTS+=("asan: skipped")
else
  STAGE="build-asan"
  banner "build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSHREDKV_SANITIZE=address -DSHREDKV_BUILD_TESTS=ON -DSHREDKV_BUILD_BENCHMARKS=OFF "${EXTRA[@]}"
  cmake --build build-asan

  STAGE="ctest build-asan/"
  banner "ctest in build-asan/"
  export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  run_ctest build-asan asan
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

STAGE="install check"
banner "install + consumer check"
bash scripts/check-install.sh build
PASSED=$((PASSED + 1))
RESULTS+=("install check: passed")

if [[ "${SHREDKV_SKIP_FUZZ:-0}" == "1" ]]; then
  banner "fuzz skipped (SHREDKV_SKIP_FUZZ=1)"
  RESULTS+=("fuzz: skipped")
else
  STAGE="fuzz"
  banner "fuzz: each harness 30 s, side by side (scripts/fuzz.sh 30)"
  FUZZ_LOG="$(mktemp)"
  SHREDKV_FUZZ_PARALLEL=1 bash scripts/fuzz.sh 30 | tee "$FUZZ_LOG"
  FUZZ_PASSED="$(grep -cE '^fuzz\.sh: [a-z_]+ passed:' "$FUZZ_LOG" || true)"
  rm -f "$FUZZ_LOG"
  PASSED=$((PASSED + FUZZ_PASSED))
  RESULTS+=("fuzz: ${FUZZ_PASSED} harnesses passed")
fi
