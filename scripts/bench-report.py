#!/usr/bin/env python3
"""Formats the `edgellm bench --json` results of scripts/bench-all (and llama-bench's, when it ran
them too) as BENCHMARKS.md.

Files in the folder: MODEL.QUANT.base.json (ppN and tgN), MODEL.QUANT.depth.json (tgN at depth),
MODEL.parallel.json (tgN with -P), and optionally MODEL.QUANT.llama.json / .llama-depth.json."""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from pathlib import Path

MODELS = {"0.5b": "Qwen2.5-Coder-0.5B-Instruct", "1.5b": "Qwen2.5-Coder-1.5B-Instruct"}
QUANTS = ["Q4_K_M", "Q4_0", "Q8_0"]


def load(p: Path) -> list[dict]:
    return json.loads(p.read_text()) if p.exists() and p.stat().st_size else []


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def pct(x: float | None) -> str:
    return f"{100 * x:.0f}%" if x is not None else ""


def ts(r: dict | None) -> str:
    return f"{r['avg_ts']:.1f} ± {r['stddev_ts']:.1f}" if r else ""


def ratio(ours: dict | None, peer: dict | None) -> str:
    return f"{ours['avg_ts'] / peer['avg_ts']:.2f}x" if ours and peer and peer["avg_ts"] > 0 else ""


def pick(rows: list[dict], threads: int, prompt: bool, depth: int = 0, parallel: int = 1) -> dict | None:
    for r in rows:
        if (r["n_threads"] == threads and bool(r["n_prompt"]) == prompt and r.get("n_depth", 0) == depth
                and r.get("n_parallel", 1) == parallel):
            return r
    return None


def best_peaks(folder: Path, key: str = "int8_peak_gmacs") -> dict[int, float]:
    """The best int8 peak any invocation measured, per thread count: the peak is a property of the
    cores, and on a shared machine a pass disturbed by other tenants only measures less. `key`
    picks the maddubs loop or the VNNI one (absent on CPUs without VNNI: an empty result)."""
    best: dict[int, float] = {}
    for p in sorted(folder.glob("*.json")):
        if ".llama" not in p.name:
            for r in load(p):
                if r.get(key):
                    best[r["n_threads"]] = max(best.get(r["n_threads"], 0.0), r[key])
    return best


def peak_fraction(r: dict, peaks: dict[int, float]) -> float | None:
    return r["matmul_gmacs"] / peaks[r["n_threads"]] if peaks.get(r["n_threads"]) else None


def machine_table(folder: Path) -> list[str]:
    """Bandwidth and int8 peak as measured by each bench invocation, per thread count (ranges
    over the run: the machine's share changes while it runs)."""
    by: dict[int, dict[str, list[float]]] = {}
    loops = {}
    for p in sorted(folder.glob("*.json")):
        if ".llama" in p.name:
            continue
        for r in load(p):
            d = by.setdefault(r["n_threads"], {"bw": [], "peak": [], "vnni": []})
            d["bw"].append(r["mem_bandwidth_best_gbs"])
            d["peak"].append(r["int8_peak_gmacs"])
            loops["peak"] = r["int8_peak_loop"]
            if "int8_peak_vnni_gmacs" in r:
                d["vnni"].append(r["int8_peak_vnni_gmacs"])
                loops["vnni"] = r["int8_peak_vnni_loop"]

    def rng(v: list[float]) -> str:
        return f"{min(v):.1f}–{max(v):.1f}" if v else "—"
    out = [f"| threads | read GB/s | int8 peak GMAC/s ({loops.get('peak', '?')}) | "
           f"int8 peak GMAC/s ({loops.get('vnni', 'no VNNI')}) |", "|---:|---:|---:|---:|"]
    for t in sorted(by):
        d = by[t]
        out.append(f"| {t} | {rng(d['bw'])} | {rng(d['peak'])} | {rng(d['vnni'])} |")
    return out


def labels(folder: Path) -> tuple[str, str, str]:
    """Test names from the results (pp512, tg128, tg128 @ d2048 unless a trial run changed them)."""
    rows = [r for p in sorted(folder.glob("*.json")) if ".llama" not in p.name for r in load(p)]
    np_ = max((r["n_prompt"] for r in rows), default=512)
    ng = max((r["n_gen"] for r in rows), default=128)
    depth = max((r.get("n_depth", 0) for r in rows), default=2048)
    return f"pp{np_}", f"tg{ng}", f"tg{ng} @ d{depth}"


def main_table(folder: Path, have_peer: bool) -> list[str]:
    pp, tg, dtg = labels(folder)
    peaks = best_peaks(folder)
    vnni = best_peaks(folder, "int8_peak_vnni_gmacs")
    head = (f"| model | format | size MiB | threads | {pp} t/s | GMAC/s | of int8 peak | of VNNI peak | {tg} t/s "
            f"| of roofline | {dtg} t/s | KV MiB read/token | of roofline (weights + KV) |")
    sep = "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if have_peer:
        head += f" llama.cpp {pp} | ratio | llama.cpp {tg} | ratio | llama.cpp {dtg} | ratio |"
        sep += "---:|---:|---:|---:|---:|---:|"
    out = [head, sep]
    for m, name in MODELS.items():
        for q in QUANTS:
            base = load(folder / f"{m}.{q}.base.json")
            deep = load(folder / f"{m}.{q}.depth.json")
            peer = load(folder / f"{m}.{q}.llama.json")
            peer_deep = load(folder / f"{m}.{q}.llama-depth.json")
            if not base and not deep:
                continue
            threads = sorted({r["n_threads"] for r in base + deep})
            for t in threads:
                pp, tg = pick(base, t, True), pick(base, t, False)
                dtg = next((r for r in deep if r["n_threads"] == t and not r["n_prompt"]), None)
                any_r = pp or tg or dtg
                row = (f"| {name} | {q} | {any_r['model_size'] / 2**20:.0f} | {t} | {ts(pp)} | "
                       f"{pp['matmul_gmacs']:.1f} | {pct(peak_fraction(pp, peaks))} | "
                       f"{pct(peak_fraction(pp, vnni))} | " if pp else
                       f"| {name} | {q} | {any_r['model_size'] / 2**20:.0f} | {t} |  |  |  |  | ")
                row += f"{ts(tg)} | {pct(tg.get('roofline_fraction')) if tg else ''} | "
                row += (f"{ts(dtg)} | {dtg['kv_bytes_per_token'] / 2**20:.1f} | {pct(dtg.get('roofline_fraction'))} |"
                        if dtg else " |  |  |")
                if have_peer:
                    ppp = next((r for r in peer if r["n_threads"] == t and r["n_prompt"] and not r["n_gen"]), None)
                    ptg = next((r for r in peer if r["n_threads"] == t and r["n_gen"] and not r["n_prompt"]), None)
                    pdt = next((r for r in peer_deep if r["n_threads"] == t and r["n_gen"]), None)
                    row += (f" {ts(ppp)} | {ratio(pp, ppp)} | {ts(ptg)} | {ratio(tg, ptg)} | {ts(pdt)} | "
                            f"{ratio(dtg, pdt)} |")
                out.append(row)
    return out


def parallel_table(folder: Path) -> list[str]:
    peaks = best_peaks(folder)
    out = ["| model | threads | sequences | t/s (all sequences) | x one sequence | GMAC/s | of int8 peak |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for m, name in MODELS.items():
        rows = load(folder / f"{m}.parallel.json")
        one = {r["n_threads"]: r["avg_ts"] for r in rows if r["n_parallel"] == 1}
        for r in rows:
            x = r["avg_ts"] / one[r["n_threads"]] if one.get(r["n_threads"]) else None
            out.append(f"| {name} Q4_K_M | {r['n_threads']} | {r['n_parallel']} | {ts(r)} | "
                       f"{f'{x:.2f}x' if x else ''} | {r['matmul_gmacs']:.1f} | {pct(peak_fraction(r, peaks))} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=0)
    a = ap.parse_args()
    folder = Path(a.folder)
    have_peer = any(folder.glob("*.llama.json"))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    isa = next((r["isa"] for p in sorted(folder.glob("*.base.json")) for r in load(p)), "?")
    print("# Benchmarks\n")
    pp, tg, dtg = labels(folder)
    depth = dtg.split(" @ d")[-1]
    print("Qwen2.5-Coder-0.5B and -1.5B-Instruct as shipped (Q4_K_M) and requantized to Q4_0 and Q8_0 with "
          f"`edgellm quantize`: prefill ({pp}), decode ({tg}) and decode after {depth} tokens already in the cache "
          f"({dtg}), with 1 and 2 threads, then several sequences decoded together. Regenerate with "
          "`scripts/bench-all [REPS]`; it measures the machine's read bandwidth and int8 multiply-add peak in the "
          "same run, so the fractions and ratios are comparable across machines while absolute figures are not."
          + (" llama.cpp ran the same tests back to back (`LLAMA_BENCH`, built outside the repository as "
             "`../shared/peers.md` describes)." if have_peer else
             " Set `LLAMA_BENCH` to a llama-bench built as `../shared/peers.md` describes to add llama.cpp's "
             "figures from the same run.") + "\n")
    minutes = f"{a.seconds / 60:.0f} min" if a.seconds else "?"
    print(f"Commit {commit}, {cpu_name()}, {os.cpu_count()} CPUs, kernels `{isa}`, {a.reps} repetitions per test. "
          f"Run time: {minutes}.\n")
    if (pp, tg, dtg) != ("pp512", "tg128", "tg128 @ d2048"):
        print("**Trial run with reduced settings** (shorter tests than the full table): it shows the script "
              "works; its figures are not the benchmark. Run `scripts/bench-all` on a quiet machine for those.\n")
    print("## The machine, measured in the same run\n")
    print("\n".join(machine_table(folder)) + "\n")
    print("## Prefill and decode\n")
    print("\n".join(main_table(folder, have_peer)) + "\n")
    print("## Batched decode (`bench -P`)\n")
    print("\n".join(parallel_table(folder)) + "\n")
    print("- **of int8 peak**: multiply-adds per second of the model's weight matmuls (every layer's projections "
          "per token, the output head per token whose logits are computed; attention not counted) over the "
          "int8 peak: a loop of nothing but `vpmaddubsw`/`vpmaddwd`/`vpaddd` on all threads (the instructions "
          "the Q4_0/Q8_0 kernels use), the best any invocation of the run measured with that many threads. "
          "**of VNNI peak**: the same over a loop of `vpdpbusd`, when the CPU has VNNI. The Q4_K and Q6_K "
          "prefill tiles use `vpdpbusd` on such CPUs, so for the K-quant rows this is the fair fraction; "
          "the maddubs one is what the same kernels reach on a CPU without VNNI.\n"
          "- **of roofline**: decode t/s over read bandwidth / bytes read per token, paired with bandwidth "
          "samples taken just before and after each repetition (on a shared machine the bandwidth left by "
          "others changes within seconds). Bytes per token are the weight matrices plus, at depth, the keys "
          "and values each step attends (layers x KV heads x head dim x positions x 2 x the cache's element "
          "size; `KV MiB read/token`).\n"
          f"- Depth: the cache is filled with {depth} random tokens once, untimed, and rewound to that depth "
          "before every repetition (as llama-bench's `-d`).\n"
          "- Goals (issue 11) on the 1.5B Q4_K_M with 2 threads: decode ≥ 90% of the roofline, prefill ≥ 40% "
          "of the int8 peak and ≥ 2x llama.cpp in the same run, 8 sequences ≥ 4x one.")


if __name__ == "__main__":
    main()
