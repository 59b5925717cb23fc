#!/usr/bin/env python3
"""Ratio chart and table from shredkv_bench's JSON output.

    bench/plot.py RESULTS.json [-o docs/performance.png] [--markdown]

Reads the Google Benchmark JSON (--benchmark_out=RESULTS.json
--benchmark_out_format=json, or --benchmark_format=json on stdout), computes
for every workload the ratio of shredkv's items_per_second to its baseline
(docs/performance.md), prints the table (Markdown with --markdown) and draws
the chart as a PNG with gnuplot (Debian: gnuplot-nox). Only the Python
standard library is used.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

# workload -> (unit, [(label, baseline system or None for an absolute goal, goal)])
GOALS = [
    ("IngestEvents", "events", [("raw_lmdb", "raw_lmdb", 0.8)]),
    ("BulkLoad", "events", [("raw_lmdb", "raw_lmdb", 0.5)]),
    ("Lookup", "lookups", [("raw_lmdb", "raw_lmdb", 0.6)]),
    ("EraseBatch", "people", [("raw_lmdb", "raw_lmdb", 100.0), ("rocksdb", "rocksdb", 1.0)]),
    ("EraseLimit", "people", [("raw_lmdb", "raw_lmdb", 0.25)]),
    ("EraseDurable", "people", [("raw_lmdb", "raw_lmdb", 5.0)]),
    ("Export", "events", [("raw_lmdb", "raw_lmdb", 0.6)]),
    ("RotateEpoch", "DEKs", [("200k DEKs/s", None, 1.0)]),
    ("Purge", "rows", [("raw_lmdb", "raw_lmdb", 0.8)]),
]
ROTATE_GOAL = 200000.0


def load(path):
    with open(path) as f:
        data = json.load(f)
    rates = {}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred") or b.get("run_type", "iteration") != "iteration":
            continue
        parts = b["name"].split("/")
        if len(parts) < 2 or "items_per_second" not in b:
            continue
        rate = float(b["items_per_second"])
        # The same rate over the calling thread's CPU time: a diagnostic that
        # leaves out fsync and other waits (not meaningful where work runs on
        # other threads: EraseDurable, RocksDB's background jobs).
        cpu_rate = rate * float(b["real_time"]) / float(b["cpu_time"]) if float(b.get("cpu_time", 0)) > 0 else 0.0
        rates[(parts[0], parts[1])] = (rate, cpu_rate)
    return data.get("context", {}), rates


def rows(rates):
    out = []
    for workload, unit, goals in GOALS:
        for label, baseline, goal in goals:
            for system in ("shredkv", "shredkv_xchacha"):
                if (workload, system) not in rates:
                    continue
                mine, mine_cpu = rates[(workload, system)]
                if baseline is None:
                    base, ratio, cpu_ratio = ROTATE_GOAL, mine / ROTATE_GOAL, mine_cpu / ROTATE_GOAL
                else:
                    if (workload, baseline) not in rates or rates[(workload, baseline)][0] == 0:
                        continue
                    base, base_cpu = rates[(workload, baseline)]
                    ratio = mine / base
                    cpu_ratio = mine_cpu / base_cpu if base_cpu > 0 else 0.0
                if workload == "EraseDurable" or baseline == "rocksdb":
                    cpu_ratio = None
                out.append({
                    "workload": workload, "unit": unit, "system": system, "vs": label,
                    "mine": mine, "base": base, "ratio": ratio, "goal": goal, "met": ratio >= goal,
                    "cpu_ratio": cpu_ratio,
                })
    return out


def fmt_rate(v):
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.1f" % v


def print_table(table, markdown):
    if markdown:
        print("| workload | unit | system | baseline | shredkv /s | baseline /s | ratio | goal | met | CPU-time ratio |")
        print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |")
        for r in table:
            print("| %s | %s | %s | %s | %s | %s | %.3g | %g | %s | %s |" % (
                r["workload"], r["unit"], r["system"], r["vs"], fmt_rate(r["mine"]), fmt_rate(r["base"]),
                r["ratio"], r["goal"], "yes" if r["met"] else "**no**",
                "—" if r["cpu_ratio"] is None else "%.3g" % r["cpu_ratio"]))
    else:
        for r in table:
            print("%-13s %-16s vs %-12s %10s/s %10s/s  ratio %8.3g  goal %6g  %-6s  cpu-time ratio %s" % (
                r["workload"], r["system"], r["vs"], fmt_rate(r["mine"]), fmt_rate(r["base"]), r["ratio"],
                r["goal"], "met" if r["met"] else "MISSED",
                "-" if r["cpu_ratio"] is None else "%.3g" % r["cpu_ratio"]))


def plot(table, context, out_png):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        sys.exit("plot.py: gnuplot not found (Debian: apt-get install gnuplot-nox)")
    # Only the default-cipher rows on the chart; shredkv_xchacha is in the table.
    chart = [r for r in table if r["system"] == "shredkv"]
    if not chart:
        sys.exit("plot.py: no shredkv results with a baseline in the JSON")
    n = len(chart)
    lo = min(0.05, min(min(r["ratio"], r["goal"]) for r in chart) / 2)
    hi = max(1000.0, max(max(r["ratio"], r["goal"]) for r in chart) * 3)
    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "ratios.dat")
        with open(dat, "w") as f:
            # y (top row first), ratio, goal, met, label, value text, x of the text
            for i, r in enumerate(chart):
                y = n - i
                label = "%s (vs %s)" % (r["workload"], r["vs"])
                f.write('%d %g %g %d "%s" "%.2fx (goal %gx)" %g\n' % (
                    y, r["ratio"], r["goal"], 1 if r["met"] else 0, label, r["ratio"], r["goal"],
                    max(r["ratio"], r["goal"])))
        machine = "%s CPUs at %s MHz, cipher %s (AES-NI %s), scale %s, revision %s, %s" % (
            context.get("num_cpus", "?"), int(context.get("mhz_per_cpu", 0)), context.get("shredkv_cipher", "?"),
            context.get("aes_ni", "?"), context.get("shredkv_scale", "?"), context.get("shredkv_revision", "?"),
            context.get("date", "?")[:10])
        script = f"""
set terminal pngcairo size 1100,{140 + 46 * n} font "DejaVu Sans,11" noenhanced
set output "{out_png}"
set title "shredkv throughput / baseline throughput (items per second, higher is better)\\n{machine}"
set logscale x
set xrange [{lo}:{hi}]
set yrange [0.3:{n + 0.7}]
set format x "%gx"
set xlabel "ratio (log scale); bar = measured, black mark = goal"
set grid xtics
unset ytics
set key off
set lmargin 30
set rmargin 4
set style fill solid 0.8 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead dt 2 lc rgb "#666666"
plot "{dat}" using (sqrt({lo}*$2)):1:({lo}):2:($1-0.32):($1+0.32):($4 > 0 ? 0x2e9e44 : 0xd04030) \\
       with boxxyerror lc rgb variable, \\
     "" using 3:($1-0.42):(0):(0.84) with vectors nohead lw 4 lc rgb "black", \\
     "" using ({lo}):1:5 with labels right offset -1,0, \\
     "" using 7:1:6 with labels left offset 1,0
"""
        subprocess.run([gnuplot], input=script, text=True, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("-o", "--output", default="docs/performance.png")
    ap.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args()
    context, rates = load(args.json)
    table = rows(rates)
    print_table(table, args.markdown)
    if not args.no_plot:
        plot(table, context, os.path.abspath(args.output))
        print("plot.py: wrote %s" % args.output, file=sys.stderr)


if __name__ == "__main__":
    main()
