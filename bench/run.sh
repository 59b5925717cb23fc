#!/usr/bin/env bash
# Reproduces docs/performance.md: a Release build of shredkv_bench, one run
# at the default scale (or the scale given in SHREDKV_BENCH_SCALE), its JSON
# kept, then the ratio table (Markdown) and docs/performance.png.
#   bash bench/run.sh [extra shredkv_bench flags, e.g. --scale=full]
# Environment: BUILD (build directory, default build-bench), OUT (JSON path,
# default bench/results/latest.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build-bench}
OUT=${OUT:-bench/results/latest.json}
mkdir -p "$(dirname "$OUT")"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHREDKV_BUILD_TESTS=ON >/dev/null
cmake --build "$BUILD" --target shredkv_bench
echo "== machine"
nproc
lscpu | head -15
grep -qw aes /proc/cpuinfo && echo "AES-NI: yes" || echo "AES-NI: no"
SHREDKV_BENCH_REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- lib include 2>/dev/null)" ]]; then SHREDKV_BENCH_REVISION+="+dirty"; fi
export SHREDKV_BENCH_REVISION
echo "== shredkv_bench (revision $SHREDKV_BENCH_REVISION)"
"$BUILD/bench/shredkv_bench" --benchmark_out="$OUT" --benchmark_out_format=json "$@"
echo "== ratios"
python3 bench/plot.py "$OUT" -o docs/performance.png --markdown
