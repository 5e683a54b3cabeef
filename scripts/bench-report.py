#!/usr/bin/env python3
"""Formats `edgellm bench --json` results (one file per quant type) as BENCHMARKS.md, with
llama.cpp's figures from ../shared/peers.md (build 4748, measured on this machine kind)."""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

# llama-bench -p 512 -n 128 on the peer machine (2 cores AMD EPYC, AVX2): ../shared/peers.md
PEERS = {  # quant: {threads: (pp512 tok/s, tg128 tok/s)}
    "Q4_1": {1: (131, 86), 2: (226, 104)},
    "Q4_0": {2: (477, 193)},
    "Q8_0": {2: (348, 114)},
    "Q4_K_M": {2: (318, 132)},
}
ORDER = ["Q4_1", "Q4_0", "Q8_0", "Q4_K_M"]


def table(folder: str) -> str:
    """One markdown table (and its ISA) for the JSON files of one instruction set."""
    rows = []
    isa = "?"
    for q in ORDER:
        p = Path(folder) / f"{q}.json"
        if not p.exists():
            continue
        for r in json.loads(p.read_text()):
            isa = r["isa"]
            rows.append((q, r))
    out = [f"### Kernels: {isa}\n",
           "| format | size MiB | threads | pp512 t/s | llama.cpp pp512 | ratio | tg128 t/s | llama.cpp tg128 | ratio "
           "| mem GB/s (paired) | roofline t/s | edgellm % of roofline | best GB/s | % of best-bw roofline |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by = {}
    for q, r in rows:
        key = (q, r["n_threads"])
        by.setdefault(key, {})["pp" if r["n_prompt"] else "tg"] = r
    for (q, t), d in by.items():
        pp, tg = d.get("pp"), d.get("tg")
        peer = PEERS.get(q, {}).get(t)

        def cell(r):
            return f"{r['avg_ts']:.1f} ± {r['stddev_ts']:.1f}" if r else ""

        def ratio(r, i):
            return f"{r['avg_ts'] / peer[i]:.2f}x" if r and peer else ""
        size = (pp or tg)["model_size"] / 2**20
        out.append(f"| {q} | {size:.1f} | {t} | {cell(pp)} | {peer[0] if peer else ''} | {ratio(pp, 0)} | {cell(tg)} | "
                   f"{peer[1] if peer else ''} | {ratio(tg, 1)} | {tg['mem_bandwidth_gbs']:.1f} | "
                   f"{tg['roofline_ts']:.0f} | {100 * tg['roofline_fraction']:.0f}% | "
                   f"{tg['mem_bandwidth_best_gbs']:.1f} | {100 * tg['roofline_fraction_best_bw']:.0f}% |")
    return "\n".join(out) + "\n"


def main(folders: list[str]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Benchmarks\n")
    print("SmolLM2-135M-Instruct (the default model) in four weight formats, made from the shipped Q4_1 file "
          "with `edgellm quantize`. Regenerate with `scripts/bench-all` (one run measures everything, "
          "including the memory bandwidth, so ratios are comparable; absolute figures drift between "
          "machines and days). The first table uses the AVX2 kernels, the instruction set of the machine "
          "llama.cpp was measured on; a second one, when present, the best this CPU has.\n")
    print(f"Commit {commit}, {platform.machine()}, {os.cpu_count()} CPUs. "
          "llama.cpp figures: build 4748 on the same machine kind (`../shared/peers.md`).\n")
    for folder in folders:
        print(table(folder))
    print("Roofline = measured read bandwidth / weight bytes read per token. Each decode repetition is "
          "paired with read-bandwidth samples taken just before and after it (`mem GB/s (paired)` is their "
          "mean; `% of roofline` the mean of the per-repetition fractions), because on a shared VM the "
          "bandwidth other tenants leave changes within seconds. `% of best-bw roofline` divides by the best "
          "rate measured at the start of the run instead. llama.cpp's share of the roofline on the peer "
          "machine (36 GB/s, 2 threads): Q4_1 28%, Q4_0 48%, Q8_0 45%, Q4_K_M 38%.")


if __name__ == "__main__":
    main(sys.argv[1:])
