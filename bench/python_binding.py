#!/usr/bin/python3
"""The Python binding's per-call overhead against the C++ API, as a ratio
taken in one run (docs/performance.md, "The Python binding").

Runs the workloads of bench/binding.cc twice in one invocation — through the
C++ API and the C API (shredkv_bench --benchmark_filter=^Binding/) and
through the Python package — on the same data, and prints items per second
and python / cpp for each:

  lookup          store.resolve(("email", e)) of a person of a 10,000-person store
  batched_append  a WriteBatch of 1,000 events (a 48-byte URL, an int, a
                  double; one analytics field) per commit, round-robin people

  python_binding.py [--bench build/bench/shredkv_bench]
                    [--library build/lib/libshredkv.so.0] [--rounds 3]
                    [--json out.json]

The package is imported from python/ of this tree unless it is installed;
SHREDKV_LIBRARY is set to --library. Stores are NoSync, under a temporary
directory. Use a Release build for figures worth writing down.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PEOPLE = 10000
BATCH = 1000
BASE_TS = 1700000000000


def email(i):
    return "binding%d@example.org" % i


def url(n):
    u = "https://example.org/p/%d" % n
    return (u + "x" * 48)[:48]


def run_cpp(bench, min_time):
    out = subprocess.run(
        [bench, "--benchmark_filter=^Binding/", "--benchmark_format=json",
         "--benchmark_min_time=%s" % min_time],
        check=True, capture_output=True, text=True).stdout
    figures = {}
    for b in json.loads(out)["benchmarks"]:
        _, workload, api = b["name"].split("/")[:3]
        figures[(workload, api)] = b["items_per_second"]
    return figures


def build_world(shredkv, directory):
    store = shredkv.Store.open(directory, key=shredkv.raw_key(b"\x42" * 32), create=True,
                               durability=shredkv.Durability.NO_SYNC)
    people = []
    for first in range(0, PEOPLE, 1000):
        with store.batch() as b:
            for i in range(first, min(first + 1000, PEOPLE)):
                people.append(b.create_person([("email", email(i))]))
    for p in people:  # every person's key cached, as binding.cc does
        store.get_profile(p)
    return store, people


def python_lookup(store, seconds):
    resolve = store.resolve
    i = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            resolve(("email", email((i * 7919) % PEOPLE)))
            i += 1
        now = time.perf_counter()
        if now >= deadline:
            return i / (now - start)


def python_append(store, people, seconds, n0):
    n = n0
    fields = ("duration_ms",)
    start = time.perf_counter()
    deadline = start + seconds
    done = 0
    while True:
        b = store.batch()
        append = b.append_event
        for _ in range(BATCH):
            append(people[n % PEOPLE], "page_view", BASE_TS + n,
                   {"url": url(n), "duration_ms": n % 5000, "score": (n % 100) / 7.0}, fields)
            n += 1
        b.commit()
        done += BATCH
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start), n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "shredkv_bench"))
    ap.add_argument("--library", default=os.path.join(ROOT, "build", "lib", "libshredkv.so.0"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="time per Python measurement")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()

    os.environ["SHREDKV_LIBRARY"] = os.path.abspath(args.library)
    try:
        import shredkv  # noqa: F401 (an installed package)
    except ImportError:
        sys.path.insert(0, os.path.join(ROOT, "python"))
        import shredkv  # noqa: F811

    rows = []
    with tempfile.TemporaryDirectory(prefix="shredkv-pybench-") as tmp:
        store, people = build_world(shredkv, os.path.join(tmp, "store"))
        n = 0
        try:
            for r in range(args.rounds):
                cpp = run_cpp(args.bench, args.seconds)
                py_lookup = python_lookup(store, args.seconds)
                py_append, n = python_append(store, people, args.seconds, n)
                for workload, py in (("lookup", py_lookup), ("batched_append", py_append)):
                    rows.append({"round": r + 1, "workload": workload,
                                 "cpp": cpp[(workload, "cpp")], "c_api": cpp[(workload, "c_api")],
                                 "python": py, "python_over_cpp": py / cpp[(workload, "cpp")]})
        finally:
            store.close()

    print("%-5s %-15s %14s %14s %14s %11s" % ("round", "workload", "cpp items/s", "c_api items/s",
                                              "python items/s", "python/cpp"))
    for row in rows:
        print("%-5d %-15s %14.0f %14.0f %14.0f %11.3f" % (row["round"], row["workload"], row["cpp"],
                                                           row["c_api"], row["python"],
                                                           row["python_over_cpp"]))
    for workload in ("lookup", "batched_append"):
        ratios = [r["python_over_cpp"] for r in rows if r["workload"] == workload]
        print("median python/cpp %-15s %.3f" % (workload, statistics.median(ratios)))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
