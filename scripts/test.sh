#!/usr/bin/env bash
# The full check, as CI runs it:
#   1. installs missing Debian packages (scripts/setup-deps.sh)
#   2. builds everything in build/ (RelWithDebInfo) and runs ctest there
#      (the C API's C11 suite and export check among it), then installs the
#      Python package into a venv and runs its pytest suite against build/'s
#      libshredkv.so (scripts/python-test.sh);
#      builds both libraries, the CLI and the demo in build-release/ (Release;
#      everything with SHREDKV_RELEASE_FULL=1)
#   3. builds build-asan/ with clang and ASan+UBSan: the library (-O1, also
#      with libFuzzer's coverage instrumentation, -fsanitize=fuzzer-no-link),
#      the tests, tools and examples (-O0) and the libFuzzer harnesses (-O1)
#      in one tree; runs ctest there (skipped when SHREDKV_SKIP_ASAN=1)
#   3b. builds build-tsan/ with clang and ThreadSanitizer (the library and
#      the test binaries with concurrency tests) and runs every concurrency
#      test there (skipped when SHREDKV_SKIP_TSAN=1)
#   4. installs build/ into a temporary prefix and builds a consumer project
#      against it with CMake and with pkg-config (scripts/check-install.sh)
#   5. runs the libFuzzer harnesses built in build-asan/ side by side for 30 s
#      each on their seed corpora (SHREDKV_FUZZ_BUILD=build-asan
#      SHREDKV_FUZZ_PARALLEL=1 scripts/fuzz.sh 30; with SHREDKV_SKIP_ASAN=1
#      fuzz.sh builds its own build-fuzz/; skipped when SHREDKV_SKIP_FUZZ=1)
# Exits nonzero on the first failure. Extra CMake arguments for both build
# trees may be given in SHREDKV_CMAKE_ARGS. Prints the seconds each stage
# took ("test.sh: stage '<name>' took <n>s", and all of them at the end).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

START=$SECONDS
STAGE="setup"
RESULTS=()
PASSED=0
TIMES=()
STAGE_START=$SECONDS
# Starts stage $1, closing the one before (its time goes into TIMES).
stage() {
  end_stage
  STAGE=$1
  STAGE_START=$SECONDS
}
end_stage() {
  [[ "$STAGE" == setup ]] && return 0
  local took=$((SECONDS - STAGE_START))
  TIMES+=("${STAGE} ${took}s")
  echo "test.sh: stage '${STAGE}' took ${took}s"
}
finish() {
  local rc=$?
  local summary="" r times=""
  end_stage
  for r in "${TIMES[@]}"; do times+="${times:+, }$r"; done
  echo "test.sh: stage times: ${times}"
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
# A run stopped by a signal fails (stop 41: killed with SIGTERM mid-way, the
# EXIT trap saw status 0 and printed "PASSED" with the stages not yet run).
trap 'exit 130' INT
trap 'exit 143' TERM

banner() { printf '\n======== test.sh: %s\n' "$*"; }

# Runs ctest in $1 (further arguments go to ctest) and records
# "<name>: N/N tests" in RESULTS.
run_ctest() {
  local dir=$1 name=$2 log
  shift 2
  log="$(mktemp)"
  # --no-tests=error: a tree that registered no tests is a failure, not a pass.
  if ! ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 "$@" 2>&1 | tee "$log"; then
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

# A tree configured earlier with another compiler is reconfigured from
# scratch (CMake cannot switch compilers in place): $1 is about to be
# configured with clang.
ensure_clang_tree() {
  local dir=$1
  if [[ -f "$dir/CMakeCache.txt" ]] &&
     ! grep -qs 'set(CMAKE_CXX_COMPILER_ID "Clang")' "$dir"/CMakeFiles/*/CMakeCXXCompiler.cmake; then
    echo "test.sh: $dir/ was configured with another compiler; reconfiguring it with clang"
    rm -rf "$dir/CMakeCache.txt" "$dir/CMakeFiles"
  fi
}

stage "dependencies"
banner "dependencies"
bash scripts/setup-deps.sh --browser  # Chromium too: cli_report_render renders `shredkv report`

# shellcheck disable=SC2206  # SHREDKV_CMAKE_ARGS is a word list on purpose
EXTRA=(${SHREDKV_CMAKE_ARGS:-})

stage "build"
banner "build/ (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHREDKV_BUILD_TESTS=ON "${EXTRA[@]}"
cmake --build build

stage "ctest build/"
banner "ctest in build/"
run_ctest build build

stage "python"
banner "the Python package (python/) over build/'s libshredkv.so: pytest and the example"
bash scripts/python-test.sh build
RESULTS+=("python: pytest passed")

stage "build-release"
banner "build-release/ (Release, -O3: both libraries, the CLI and the demo)"
# -O3 warns where -O2 does not (GCC 12 reported false positives inside
# libstdc++ that failed -Werror, issue 16); the tests run in build/.
# SHREDKV_RELEASE_FULL=1 builds everything there (tests, examples and the
# benchmark too: about three times as long, so not by default).
if [[ "${SHREDKV_RELEASE_FULL:-0}" == "1" ]]; then
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHREDKV_BUILD_TESTS=ON \
    -DSHREDKV_BUILD_BENCHMARKS=ON "${EXTRA[@]}"
  cmake --build build-release
else
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHREDKV_BUILD_TESTS=OFF \
    -DSHREDKV_BUILD_BENCHMARKS=OFF "${EXTRA[@]}"
  cmake --build build-release --target shredkv shredkv_shared shredkv_cli shredkv_demo
fi

FUZZ_TREE=""  # build-asan once it is built; fuzz.sh's own build-fuzz/ otherwise
if [[ "${SHREDKV_SKIP_ASAN:-0}" == "1" ]]; then
  banner "build-asan/ skipped (SHREDKV_SKIP_ASAN=1)"
  RESULTS+=("asan: skipped")
else
  stage "build-asan"
  banner "build-asan/ (clang; AddressSanitizer + UndefinedBehaviorSanitizer; tests and fuzz harnesses)"
  # One clang tree for the sanitizer tests and the libFuzzer harnesses: the
  # library is compiled once, with ASan+UBSan and fuzzer-no-link coverage
  # instrumentation, and both link it. Line tables only (symbolised stack
  # traces at a fraction of -g's compile time). The library, the CLI's
  # ingest parser and the harnesses at -O1, like fuzz.sh's own tree; the
  # tests, the rest of the CLI and the examples at -O0, which halves their
  # compile time and leaves the sanitizer ctest's time as it was (the
  # tests spend it in the library).
  ensure_clang_tree build-asan
  CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only -DNDEBUG" \
    -DSHREDKV_LIB_COMPILE_OPTIONS=-O1 -DSHREDKV_SANITIZE=address -DSHREDKV_BUILD_TESTS=ON -DSHREDKV_BUILD_BENCHMARKS=OFF \
    -DSHREDKV_BUILD_FUZZERS=ON "${EXTRA[@]}"
  cmake --build build-asan
  FUZZ_TREE=build-asan

  stage "ctest build-asan/"
  banner "ctest in build-asan/"
  export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  run_ctest build-asan asan
  unset ASAN_OPTIONS UBSAN_OPTIONS
fi

if [[ "${SHREDKV_SKIP_TSAN:-0}" == "1" ]]; then
  banner "build-tsan/ skipped (SHREDKV_SKIP_TSAN=1)"
  RESULTS+=("tsan: skipped")
else
  stage "build-tsan"
  banner "build-tsan/ (clang; ThreadSanitizer: the concurrency tests)"
  # The library and the test binaries that hold concurrency tests, at -O1
  # with line tables (TSan's reports need symbols, not -g). No suppressions:
  # LMDB and libsodium are not instrumented, so TSan sees only shredkv's own
  # accesses and its locks (pthread calls are intercepted everywhere).
  ensure_clang_tree build-tsan
  CC=clang CXX=clang++ cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
    -DSHREDKV_SANITIZE=thread -DSHREDKV_BUILD_TESTS=ON -DSHREDKV_BUILD_BENCHMARKS=OFF \
    -DSHREDKV_BUILD_TOOLS=OFF -DSHREDKV_BUILD_EXAMPLES=OFF "${EXTRA[@]}"
  cmake --build build-tsan --target util_test engine_test erasure_test restriction_test export_test backup_test \
    sharded_store_test

  stage "ctest build-tsan/"
  banner "ctest in build-tsan/: every test that runs threads (SHREDKV_STRESS=1 for the heavy variants)"
  # Every test that starts threads against one store or lock: erase vs
  # readers and ingest, group-committed erasures, leases vs erase and
  # restrict, the maintenance thread vs user calls, export during erase and
  # during appends, the writer-first gate, listeners told from the background
  # thread. A new one belongs in this list.
  TSAN_TESTS='^(ConcurrencyTest|ErasureRaceTest|MaintenanceRaceTest|GatedSharedMutexTest|GroupCommitTest)\.'
  TSAN_TESTS+='|^RestrictionTest\.(EraseWaits|EraseReturnsBusy|NoWorkerReads|RestrictOrEraseUnderOwnLease|RestrictingManyWaits)'
  TSAN_TESTS+='|^CategoryErasureTest\.(WaitsForLeases|NoReadSees)|^ExportTest\.EventsAppendedDuring'
  # Iterators holding a batch across an erasure (the erasure epoch).
  TSAN_TESTS+='|^ErasedMidScanTest\.NoEntryOfAScan'
  # The notifier (listeners called from callers and the maintenance thread).
  TSAN_TESTS+='|^ObservabilityTest\.|^TamperTest\.ABackgroundMaintenanceError'
  # Backups taken while writers run (issue 18).
  TSAN_TESTS+='|^BackupTest\.ABackupTakenDuringWritesIsConsistent'
  # Writers of several shards at once, and creators racing for identifiers (issue 21).
  TSAN_TESTS+='|^ShardedStoreTest\.(ParallelWriters|ConcurrentCreators|ARequestIdIsTaken)'
  # Calls on many people of several shards against leases and each other's erasures (stop 28).
  TSAN_TESTS+='|^ShardedLeaseTest\.|^ShardedListenerTest\.'
  # A backup of every shard at one point while writers run in each (stop 38).
  TSAN_TESTS+='|^ShardedBackupTest\.BackupsTakenDuringWrites'
  TSAN_TESTS+='|^KeyPool(Concurrency|Race)Test\.'
  # A lookup that meets an erasure holding the person's stripe (LookupProfile's fallback).
  TSAN_TESTS+='|^ProfileTest\.LookupProfileDuringAnErasure'
  # Progress positions of batches that share group commits (stop 36).
  TSAN_TESTS+='|^WriteBatchTest\.ConcurrentBatchesCommitTheirOwnProgress'
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  run_ctest build-tsan tsan -R "$TSAN_TESTS"
  unset TSAN_OPTIONS
fi

stage "install check"
banner "install + consumer check"
bash scripts/check-install.sh build
PASSED=$((PASSED + 1))
RESULTS+=("install check: passed")

if [[ "${SHREDKV_SKIP_FUZZ:-0}" == "1" ]]; then
  banner "fuzz skipped (SHREDKV_SKIP_FUZZ=1)"
  RESULTS+=("fuzz: skipped")
else
  stage "fuzz"
  banner "fuzz: each harness 30 s, side by side (scripts/fuzz.sh 30, harnesses of ${FUZZ_TREE:-build-fuzz}/)"
  FUZZ_LOG="$(mktemp)"
  SHREDKV_FUZZ_BUILD="$FUZZ_TREE" SHREDKV_FUZZ_PARALLEL=1 bash scripts/fuzz.sh 30 | tee "$FUZZ_LOG"
  FUZZ_PASSED="$(grep -cE '^fuzz\.sh: [a-z_]+ passed:' "$FUZZ_LOG" || true)"
  rm -f "$FUZZ_LOG"
  PASSED=$((PASSED + FUZZ_PASSED))
  RESULTS+=("fuzz: ${FUZZ_PASSED} harnesses passed")
fi
