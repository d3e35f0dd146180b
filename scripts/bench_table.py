#!/usr/bin/env python3
"""Prints a Markdown table from criterion's results of the last bench run.

For every benchmark group under target/criterion it lists the median time and
throughput, and each nninit row's ratio against the same-run baselines named
in the group (rows whose id starts with "baseline_"): a ratio of
throughputs, or of times (baseline / row) in groups without a throughput.

Usage: python3 scripts/bench_table.py [group-prefix ...]
   e.g. cargo bench --bench fill && python3 scripts/bench_table.py fill
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "target" / "criterion"


def load():
    rows = []
    for bench in sorted(ROOT.glob("*/*/new/benchmark.json")):
        meta = json.loads(bench.read_text())
        est = json.loads((bench.parent / "estimates.json").read_text())
        median_ns = est["median"]["point_estimate"]
        throughput = meta.get("throughput") or {}
        rows.append(
            {
                "group": meta["group_id"],
                "id": meta["function_id"] or meta.get("value_str") or "",
                "median_ns": median_ns,
                "elements": throughput.get("Elements"),
                "bytes": throughput.get("Bytes"),
            }
        )
    return rows


def rate(row):
    if row["elements"]:
        per_s = row["elements"] / (row["median_ns"] * 1e-9)
        return per_s, f"{per_s / 1e9:.3f} G elem/s"
    return None, ""


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def main(prefixes):
    rows = load()
    if prefixes:
        rows = [r for r in rows if any(r["group"].startswith(p) for p in prefixes)]
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    for group, members in groups.items():
        baselines = [r for r in members if r["id"].startswith("baseline_")]
        print(f"\n**{group}** (criterion medians)\n")
        head = "| benchmark | median | throughput |" + "".join(
            f" vs {b['id'].removeprefix('baseline_')} |" for b in baselines
        )
        print(head)
        print("|" + "---|" * (3 + len(baselines)))
        for r in members:
            per_s, shown = rate(r)
            ratios = ""
            for b in baselines:
                b_rate, _ = rate(b)
                if r["id"].startswith("baseline_"):
                    ratios += " |"
                elif per_s and b_rate:
                    ratios += f" {per_s / b_rate:.2f}× |"
                else:
                    ratios += f" {b['median_ns'] / r['median_ns']:.2f}× |"
            print(f"| {r['id']} | {fmt_time(r['median_ns'])} | {shown} |{ratios}")


if __name__ == "__main__":
    main(sys.argv[1:])
