#!/usr/bin/env python3
"""Fails unless the C API suite calls every function c.h declares.

  check_coverage.py <c.h> <test.c>...

A function counts as exercised when a test file calls it (`name(`) outside
comments.
"""
import re
import sys

header, tests = sys.argv[1], sys.argv[2:]


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


declared = set(re.findall(r"SHREDKV_EXPORT[^;(]*?\b(shredkv_[a-z0-9_]+)\s*\(",
                          strip_comments(open(header, encoding="utf-8").read())))
called = set()
for t in tests:
    called |= set(re.findall(r"\b(shredkv_[a-z0-9_]+)\s*\(", strip_comments(open(t, encoding="utf-8").read())))
missing = sorted(declared - called)
for name in missing:
    print("not called by the C suite:", name)
if missing:
    print(f"check_coverage: {len(missing)} of {len(declared)} c.h functions not exercised")
    sys.exit(1)
print(f"check_coverage: all {len(declared)} c.h functions exercised")
