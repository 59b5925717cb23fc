#!/usr/bin/env bash
# Installs what is missing, builds the demo in build/ and runs it:
# a guided tour of a throwaway store (see examples/lifecycle_demo.cc).
# Extra CMake arguments may be given in SHREDKV_CMAKE_ARGS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-deps.sh
# shellcheck disable=SC2086  # SHREDKV_CMAKE_ARGS is a word list on purpose
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${SHREDKV_CMAKE_ARGS:-}
cmake --build build --target shredkv_demo
echo
exec build/bin/shredkv_demo
