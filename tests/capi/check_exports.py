#!/usr/bin/env python3
"""Checks the export table of libshredkv.so against the public headers.

  check_exports.py <libshredkv.so> <include/shredkv/c.h>

Fails (exit 1) if
  - a function c.h declares is not exported (nm -D, defined, type T);
  - the library exports a C symbol that c.h does not declare;
  - it exports a symbol of shredkv's internal layers (shredkv::engine,
    ::crypto, ::keys, ::storage, ::codec, ::util, ::portability), of LMDB,
    libsodium, xxHash or nlohmann-json: only SHREDKV_EXPORT declarations
    (and the vague-linkage instantiations of standard templates that any
    C++ shared library exports) may be visible.
"""
import re
import subprocess
import sys

lib, header = sys.argv[1], sys.argv[2]
text = open(header, encoding="utf-8").read()
text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
declared = set(re.findall(r"SHREDKV_EXPORT[^;(]*?\b(shredkv_[a-z0-9_]+)\s*\(", text))
if len(declared) < 200:
    sys.exit(f"check_exports: found only {len(declared)} declarations in {header}; the parser is wrong")

raw = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True, text=True).stdout
demangled = subprocess.run(["nm", "-DC", "--defined-only", lib], check=True, capture_output=True,
                           text=True).stdout
exported_c = set()
for line in raw.splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[2].startswith("shredkv_"):
        exported_c.add(parts[2])

problems = []
for name in sorted(declared - exported_c):
    problems.append(f"declared in c.h but not exported: {name}")
for name in sorted(exported_c - declared):
    problems.append(f"exported but not declared in c.h: {name}")
# A symbol is internal if it itself belongs to an internal namespace or to
# a dependency; an instantiation of a standard template over internal types
# (std::operator-(std::_Deque_iterator<shredkv::engine::...>), which clang
# exports with default visibility as libstdc++ declares std) is the vague
# linkage every C++ shared library has, and does not count.
internal = re.compile(r"^(?:(?:vtable|typeinfo|typeinfo name|VTT|guard variable|construction vtable) for )?"
                      r"(?:shredkv::(?:engine|crypto|keys|storage|codec|util|portability)::|nlohmann::|"
                      r"mdb_|sodium_|crypto_|XXH|randombytes)")
for line in demangled.splitlines():
    parts = line.split(None, 2)
    if len(parts) == 3 and internal.search(parts[2]):
        problems.append(f"internal symbol exported: {line.strip()}")

for p in problems[:50]:
    print(p)
if problems:
    print(f"check_exports: {len(problems)} problem(s)")
    sys.exit(1)
print(f"check_exports: {len(declared)} C functions exported, nothing internal visible")
