#!/usr/bin/env bash
# Installs the Debian 12 packages shredkv needs to build, test, fuzz and
# install-check, and nothing that is already there. Idempotent: when every
# package is installed it only runs dpkg-query and exits.
set -euo pipefail

PACKAGES=(
  build-essential    # g++, make, libc headers
  cmake
  ninja-build
  pkg-config
  liblmdb-dev
  libsodium-dev
  libxxhash-dev
  libgtest-dev       # GoogleTest + GoogleMock
  libbenchmark-dev   # Google Benchmark
  librocksdb-dev     # benchmark baseline (bench/; optional for the build)
  libsqlite3-dev     # benchmark baseline (bench/; optional for the build)
  gnuplot-nox        # bench/plot.py draws docs/performance.png
  nlohmann-json3-dev
  clang              # libFuzzer harnesses
  libclang-rt-14-dev # clang's sanitizer and fuzzer runtimes
  lmdb-utils         # mdb_stat, mdb_dump for inspecting stores
  python3-jsonschema # tests: export_schema_valid checks exports against docs/export-*schema.json
  libp11-kit-dev     # the PKCS#11 header (p11-kit/pkcs11.h) for epoch-key custody in a token
  softhsm2           # tests: a PKCS#11 token (SoftHSM2) the custody tests start themselves
  python3-cffi       # the Python package (python/): cffi over the C API
  python3-pytest     # its tests (scripts/python-test.sh)
  python3-venv       # the venv scripts/python-test.sh installs the package into
)

# --browser: also Debian's Chromium, with which the test script renders
# `shredkv report` headless (tests/cli/report_render.sh). The demo does not
# need it.
if [[ "${1:-}" == "--browser" ]]; then
  PACKAGES+=(chromium)
fi

is_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "setup-deps: missing packages (${missing[*]}) and not root, no sudo" >&2
    exit 1
  fi
fi

echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"

still_missing=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} != 0)); then
  echo "setup-deps: still missing after apt-get: ${still_missing[*]}" >&2
  exit 1
fi
echo "setup-deps: done"
