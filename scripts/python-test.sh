#!/usr/bin/env bash
# The Python package (python/) against a build tree's libshredkv.so.0:
#
#   scripts/python-test.sh [build-dir]      (default: build)
#
# 1. makes (once) a venv at <build>/python-venv with Debian's interpreter,
#    /usr/bin/python3 -m venv --system-site-packages (it sees the system's
#    cffi and pytest; nothing is downloaded);
# 2. reinstalls the package into it: pip install --no-build-isolation
#    --no-index of a fresh copy of python/ (<build>/python-src), so pip's
#    in-tree build leaves nothing in the source tree and no stale file from
#    an earlier build gets into the wheel;
# 3. runs its pytest suite from <build>/python-run, where the source tree's
#    python/ is not importable: the installed package is what is tested,
#    with SHREDKV_LIBRARY=<build>/lib/libshredkv.so.0;
# 4. runs examples/python/lifecycle.py once.
# Prints pytest's summary; exits nonzero if either fails. The library must
# be built first: cmake --build <build> --target shredkv_shared.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD=${1:-build}
if [[ ! -e "$BUILD/lib/libshredkv.so.0" ]]; then
  echo "python-test.sh: $BUILD/lib/libshredkv.so.0 is missing: build it with" >&2
  echo "  cmake --build $BUILD --target shredkv_shared" >&2
  exit 1
fi
BUILD=$(cd "$BUILD" && pwd)
LIBRARY="$BUILD/lib/libshredkv.so.0"
VENV="$BUILD/python-venv"
PY=/usr/bin/python3

if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import cffi, pytest' 2>/dev/null; then
  echo "python-test.sh: creating $VENV"
  rm -rf "$VENV"
  "$PY" -m venv --system-site-packages "$VENV"
fi

SRC="$BUILD/python-src"
rm -rf "$SRC"
mkdir -p "$SRC"
# Only what the package is built from (tests and tools are not installed).
cp -r python/pyproject.toml python/README.md python/shredkv "$SRC/"
find "$SRC" -name __pycache__ -prune -exec rm -rf {} +
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --no-build-isolation --no-index \
  --quiet --force-reinstall --no-deps "$SRC"

RUN="$BUILD/python-run"
mkdir -p "$RUN"
cd "$RUN"
export SHREDKV_LIBRARY="$LIBRARY"
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" -c 'import shredkv, sys; print("python-test.sh: testing", shredkv.__file__, "with", sys.argv[1], "(library " + shredkv.version() + ")")' "$LIBRARY"

status=0
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/python/tests" || status=$?

echo "python-test.sh: running examples/python/lifecycle.py"
"$VENV/bin/python" "$ROOT/examples/python/lifecycle.py" >"$RUN/lifecycle.out" 2>&1 || {
  status=$((status == 0 ? 1 : status))
  echo "python-test.sh: examples/python/lifecycle.py failed:" >&2
  cat "$RUN/lifecycle.out" >&2
}
if [[ $status -eq 0 ]]; then
  tail -n 1 "$RUN/lifecycle.out"
  echo "python-test.sh: passed"
else
  echo "python-test.sh: FAILED (status $status)" >&2
fi
exit "$status"
