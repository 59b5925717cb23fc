#!/usr/bin/env bash
# Installs a built shredkv into a temporary prefix and checks that another
# project can use it:
#   1. cmake --install <build> --prefix <tmp>/prefix
#   2. checks the installed CMake and pkg-config files name no source- or
#      build-tree path, then moves the prefix elsewhere (it must be relocatable)
#   3. builds and runs tests/consumer with find_package(shredkv 0.1 REQUIRED)
#   3b. the same against shredkv::shredkv_shared, and tests/consumer/c_consumer.c
#      (the C API) against it
#   4. compiles tests/consumer/main.cc and c_consumer.c with plain
#      `pkg-config --cflags --libs` and runs them
# Usage: scripts/check-install.sh [build-dir]   (default: build; env BUILD_DIR)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="${1:-${BUILD_DIR:-build}}"
BUILD="$(cd "$BUILD" 2>/dev/null && pwd)" || {
  echo "check-install: build directory '${1:-${BUILD_DIR:-build}}' does not exist; build first" >&2
  exit 1
}
[[ -f "$BUILD/CMakeCache.txt" ]] || { echo "check-install: $BUILD is not configured" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/shredkv-install.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

step() { printf '\n== check-install: %s\n' "$*"; }

step "building the library in $BUILD"
cmake --build "$BUILD" --target shredkv shredkv_shared

step "installing into a temporary prefix"
cmake --install "$BUILD" --prefix "$TMP/staging" >"$TMP/install.log"
sed 's/^/  /' "$TMP/install.log" | grep -v '^  -- Install configuration' || true

step "looking for source/build-tree paths in the installed text files"
leaks=0
while IFS= read -r -d '' f; do
  if grep -IlF -e "$ROOT" -e "$BUILD" -e "$TMP" "$f" >/dev/null; then
    echo "  LEAK: $f names a build-time path:" >&2
    grep -InF -e "$ROOT" -e "$BUILD" -e "$TMP" "$f" | sed 's/^/    /' >&2
    leaks=1
  fi
done < <(find "$TMP/staging" -type f \( -name '*.cmake' -o -name '*.pc' -o -name '*.h' \) -print0)
((leaks == 0)) || exit 1
echo "  none"

# Move the prefix: every installed file must find its neighbours relatively.
mv "$TMP/staging" "$TMP/prefix"
PREFIX="$TMP/prefix"

step "CMake consumer: find_package(shredkv 0.1 REQUIRED) + shredkv::shredkv"
cmake -S tests/consumer -B "$TMP/consumer-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_BUILD_TYPE=Release >"$TMP/consumer-configure.log" || {
  cat "$TMP/consumer-configure.log" >&2; exit 1; }
cmake --build "$TMP/consumer-build"
"$TMP/consumer-build/consumer"
step "CMake consumers of shredkv::shredkv_shared: the C++ program and a C11 program (c.h)"
"$TMP/consumer-build/consumer_shared"
"$TMP/consumer-build/c_consumer"
soname="$(readelf -d "$TMP/consumer-build/c_consumer" | sed -n 's/.*NEEDED.*\[\(libshredkv[^]]*\)\].*/\1/p')"
echo "  c_consumer needs: $soname"
[[ "$soname" == "libshredkv.so.0" ]] || { echo "check-install: c_consumer does not link libshredkv.so.0" >&2; exit 1; }

step "pkg-config consumer: pkg-config --cflags --libs shredkv (the plain form must link)"
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
# Installed libdir may be lib or lib/<multiarch>; search both.
for d in "$PREFIX"/lib/*/pkgconfig; do
  [[ -d "$d" ]] && PKG_CONFIG_PATH="$d:$PKG_CONFIG_PATH"
done
echo "  version: $(pkg-config --modversion shredkv)"
read -r -a PC_FLAGS <<<"$(pkg-config --cflags --libs shredkv)"
echo "  flags:   ${PC_FLAGS[*]}"
"${CXX:-c++}" -std=c++20 -O1 -o "$TMP/consumer-pc" tests/consumer/main.cc "${PC_FLAGS[@]}"
# (LD_LIBRARY_PATH only matters for a BUILD_SHARED_LIBS=ON build.)
LD_LIBRARY_PATH="$(pkg-config --variable=libdir shredkv)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$TMP/consumer-pc"
step "pkg-config C consumer: cc -std=c11 tests/consumer/c_consumer.c (the C API, shared library)"
"${CC:-cc}" -std=c11 -O1 -Wall -Wextra -Werror -o "$TMP/c-consumer-pc" tests/consumer/c_consumer.c "${PC_FLAGS[@]}"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir shredkv)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  "$TMP/c-consumer-pc"

step "passed"
