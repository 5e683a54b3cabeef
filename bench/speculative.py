#!/usr/bin/env python3
"""Speculative decoding (issue 12): plain vs speculative decode speed and acceptance.

Runs greedy decoding on a fixed prompt set in the issue's three groups (input-grounded:
summarise, extract fields, edit a given piece of code; open code generation; open chat), plainly
and with each proposer (`--lookup`, and `--draft MODEL` when --draft is given) back to back in one
`edgellm bench --lookup|--draft --spec-prompt` process per prompt (A/B: both see the same machine
load), and prints per prompt and per group the decode t/s of both, the speed-up, the share of drafted
tokens accepted, tokens per verifying pass and whether the texts are identical (they must be).
Figures are printed, never asserted (the machine may be shared).

The machine's memory bandwidth can swing 2x from one minute to the next, so a speed-up is never
taken from one plain run against one speculative run far apart: each prompt runs -r pairs (plain
and speculative back to back, the order alternating), each pair gives a ratio, and a prompt's and a
group's speed-up are the median of their pairs' ratios ("median") and the ratio of the summed
decode times over the same pairs ("sum"; equal token counts, so this is the t/s ratio). One slow
plain run moves the sum a little and the median not at all.
With --temp > 0 the runs sample with --seed: lookup's text must still be plain sampling's, a draft
model's only has plain sampling's distribution (the rejection rule), so its texts are not compared.

    python bench/speculative.py --bin build/edgellm -m qwen2.5-coder-1.5b -t 2 -n 128 --draft qwen2.5-coder-0.5b
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys

CODE = '''def parse_config(path):
    config = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, value = line.split("=", 1)
            config[key.strip()] = value.strip()
    return config


def get_int(config, key, default=0):
    value = config.get(key)
    if value is None:
        return default
    return int(value)
'''

ARTICLE = ("The city council met on Tuesday to discuss the new bicycle lanes on Main Street. After two hours of "
           "debate, the council voted five to two to extend the lanes to the harbour by next spring. The project "
           "will cost 1.2 million euros, paid mostly by a regional transport grant. Shop owners on Main Street "
           "worried about losing parking spaces, so the council promised forty new spaces in the car park behind "
           "the library. Cycling groups welcomed the decision and said the number of cyclists had doubled since "
           "the first lanes opened in 2021.")

INVOICE = ("Invoice number: INV-2024-0917\nDate: 17 September 2024\nBill to: Northwind Traders, 12 Harbour Road, "
           "Bristol\nItems: 3 x USB-C dock at 89.00 EUR, 2 x 27-inch monitor at 219.00 EUR\nTotal due: 705.00 EUR\n"
           "Payment terms: 30 days\n")

PROMPTS = {
    "input-grounded": [
        "Rename the function parse_config to load_settings and the variable config to settings everywhere in "
        "this code. Reply with the whole code only.\n\n" + CODE,
        "Add type hints to every function in this code. Reply with the whole code only.\n\n" + CODE,
        "Extract the invoice number, date, customer name, customer address and total as JSON with those "
        "field names, copying the values exactly.\n\n" + INVOICE,
        "Summarise this article in three sentences, reusing its wording.\n\n" + ARTICLE,
    ],
    "open code": [
        "Write a Python function that returns the n-th Fibonacci number iteratively, with a docstring.",
        "Write a C function that reverses a singly linked list in place.",
    ],
    "open chat": [
        "What are three tips for sleeping better?",
        "Explain in a short paragraph why the sky is blue.",
    ],
}

TIMING = re.compile(r"generated (\d+) tokens in ([\d.]+) s")
SPEC = re.compile(r"(\d+) passes, drafted (\d+), accepted (\d+)")


def run(args, extra):
    cmd = [args.bin, "run", "-m", args.model, "-t", str(args.threads), "--temp", str(args.temp), "--seed",
           str(args.seed), "-n", str(args.n_predict), "-c", "2048", *extra]
    proc = subprocess.run((["flock", args.lock] if args.lock else []) + cmd, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:8])}... failed: {proc.stderr.strip()}")
    m = TIMING.search(proc.stderr)
    n, secs = int(m.group(1)), float(m.group(2))
    s = SPEC.search(proc.stderr)
    drafted, accepted, passes = (int(s.group(2)), int(s.group(3)), int(s.group(1))) if s else (0, 0, n)
    return {"text": proc.stdout, "n": n, "secs": secs, "drafted": drafted, "accepted": accepted, "passes": passes}


def run_pair(args, prompt, extra):
    """Greedy: `edgellm bench --lookup|--draft`, plain and speculative back to back in one process (A/B,
    the order alternating per repetition), so both see the same machine load."""
    cmd = [args.bin, "bench", "-m", args.model, "-t", str(args.threads), "-n", str(args.n_predict),
           "-r", str(args.reps), "--spec-prompt", prompt, "--json", *extra, *shlex.split(args.bench_args)]
    proc = subprocess.run((["flock", args.lock] if args.lock else []) + cmd, capture_output=True, text=True,
                          timeout=7200)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:8])}... failed: {proc.stderr.strip()}")
    j = json.loads(proc.stdout)
    n = args.n_predict * args.reps
    # A binary from before per-pair figures: its totals as one pair.
    pairs = j.get("pairs") or [{"plain_ts": j["plain_ts"], "speculative_ts": j["speculative_ts"],
                                "passes": round((n - args.reps) / j["tokens_per_pass"]) if j["tokens_per_pass"] else n}]
    # Generated tokens per run (an answer may end before -n; plain and speculative give the same).
    tokens = [q.get("tokens", n / len(pairs)) for q in pairs]
    n = sum(tokens)
    plain = {"n": n, "secs": sum(t / q["plain_ts"] for t, q in zip(tokens, pairs)), "text": None,
             "drafted": 0, "accepted": 0, "passes": n}
    spec = {"n": n, "secs": sum(t / q["speculative_ts"] for t, q in zip(tokens, pairs)), "drafted": j["drafted"],
            "accepted": j["accepted"], "passes": sum(q["passes"] for q in pairs), "same": j["same_tokens"],
            "ratios": [q["speculative_ts"] / q["plain_ts"] for q in pairs],
            "plain_ts": [q["plain_ts"] for q in pairs], "costs": j.get("pass_costs")}
    return plain, spec


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/edgellm")
    ap.add_argument("-m", "--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-n", "--n-predict", type=int, default=128)
    ap.add_argument("-r", "--reps", type=int, default=3, help="greedy: A/B pairs per prompt")
    ap.add_argument("--bench-args", default="",
                    help="more flags for every `edgellm bench` run, e.g. '--spec-learn-cost' (the older policy)")
    ap.add_argument("--json-out", help="write every row and group figure to this JSON file")
    ap.add_argument("--lock", help="hold this file's flock(1) lock around each timed process (a shared machine's "
                                   "measuring lock), so others can measure between prompts")
    ap.add_argument("--draft-max", type=int, default=8)
    ap.add_argument("--draft", help="also a draft model (name or GGUF) of the same vocabulary")
    ap.add_argument("--draft-args", default="",
                    help="more flags for the draft model's runs, e.g. '--draft-vocab 0 --draft-p-min 0' (A/B of "
                         "the drafter's settings in one binary)")
    ap.add_argument("--prompts", help="comma-separated prompt indices within each group (default: all)")
    ap.add_argument("--proposers", default="lookup,draft", help="comma-separated subset of lookup,draft")
    ap.add_argument("--groups", default=",".join(PROMPTS), help="comma-separated subset of the groups")
    ap.add_argument("--temp", type=float, default=0.0, help="sampling temperature (0: greedy)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    proposers = {"lookup": ["--lookup", "--draft-max", str(args.draft_max)]}
    if args.draft:
        proposers["draft"] = ["--draft", args.draft, "--draft-max", str(args.draft_max), *shlex.split(args.draft_args)]
    proposers = {k: v for k, v in proposers.items() if k in args.proposers.split(",")}
    mode = "greedy" if args.temp <= 0 else f"temperature {args.temp}, seed {args.seed}"
    print(f"model {args.model}, {args.threads} threads, {mode}, up to {args.n_predict} tokens, "
          f"draft max {args.draft_max}, load average {os.getloadavg()[0]:.2f}")
    print(f"{'group':<15} {'prompt':>6} {'proposer':<8} {'tokens':>6} {'plain t/s':>9} {'spec t/s':>9} "
          f"{'median':>7} {'sum':>6} {'pairs':<22} {'accepted':>8} {'tok/pass':>8} {'load':>5} same")
    summary, rows = [], []
    for group in args.groups.split(","):
        plain = {}  # sampling: the plain run of each prompt, shared by the proposers
        for name, extra in proposers.items():
            tot = {"n": 0, "n_spec": 0, "plain": 0.0, "spec": 0.0, "drafted": 0, "accepted": 0, "passes": 0,
                   "same": True, "ratios": [], "verified": 0}
            for i, prompt in enumerate(PROMPTS[group]):
                if args.prompts and str(i) not in args.prompts.split(","):
                    continue
                if args.temp <= 0:
                    p, s = run_pair(args, prompt, extra)
                    same = s["same"]
                else:
                    p = plain[i] if i in plain else plain.setdefault(i, run(args, ["-p", prompt]))
                    s = run(args, ["-p", prompt, *extra])
                    s["ratios"] = [(s["n"] / s["secs"]) / (p["n"] / p["secs"])]
                    # A sampling draft model keeps the distribution, not the draws: nothing to compare.
                    same = p["text"] == s["text"] if name == "lookup" else None
                acc = s["accepted"] / s["drafted"] if s["drafted"] else 0.0
                load = os.getloadavg()[0]
                # Tokens per verifying pass: the first token comes from the prompt's pass.
                runs = args.reps if args.temp <= 0 else 1
                per_pass = (s["n"] - runs) / max(s["passes"], 1)
                med, total = statistics.median(s["ratios"]), p["secs"] / s["secs"]
                pairs = ",".join(f"{r:.2f}" for r in s["ratios"])
                print(f"{group:<15} {i:>6} {name:<8} {p['n']:>6} {p['n'] / p['secs']:>9.2f} "
                      f"{s['n'] / s['secs']:>9.2f} {med:>6.2f}x {total:>5.2f}x {pairs:<22} {acc:>8.0%} "
                      f"{per_pass:>8.2f} {load:>5.1f} {'n/a' if same is None else 'yes' if same else 'NO'}",
                      flush=True)
                rows.append({"group": group, "prompt": i, "proposer": name, "tokens": p["n"],
                             "plain_ts": p["n"] / p["secs"], "spec_ts": s["n"] / s["secs"], "median": med,
                             "sum": total, "pairs": s["ratios"], "acceptance": acc, "tokens_per_pass": per_pass,
                             "load": load, "same": same, "pass_costs": s.get("costs")})
                tot["n"] += p["n"]
                tot["n_spec"] += s["n"]
                tot["plain"] += p["secs"]
                tot["spec"] += s["secs"]
                tot["drafted"] += s["drafted"]
                tot["accepted"] += s["accepted"]
                tot["passes"] += s["passes"]
                tot["verified"] += s["n"] - runs
                tot["ratios"] += s["ratios"]
                tot["same"] = None if same is None else tot["same"] and same
            summary.append((group, name, tot))
    print(f"\nper group (median of the pairs' ratios; sum: total plain decode time over total speculative; "
          f"load average now {os.getloadavg()[0]:.2f}):")
    groups = []
    for group, name, t in summary:
        if not t["ratios"]:
            continue
        acc = t["accepted"] / t["drafted"] if t["drafted"] else 0.0
        plain_rate, spec_rate = t["n"] / t["plain"], t["n_spec"] / t["spec"]
        same = "n/a" if t["same"] is None else "yes" if t["same"] else "NO"
        med = statistics.median(t["ratios"])
        per_pass = t["verified"] / max(t["passes"], 1)
        print(f"{group:<15} {name:<8} plain {plain_rate:6.2f} t/s, speculative {spec_rate:6.2f} t/s, "
              f"median {med:.2f}x (pairs {min(t['ratios']):.2f}-{max(t['ratios']):.2f}), sum {spec_rate / plain_rate:.2f}x, "
              f"accepted {acc:.0%}, {per_pass:.2f} tokens/pass, identical text: {same}")
        groups.append({"group": group, "proposer": name, "plain_ts": plain_rate, "spec_ts": spec_rate, "median": med,
                       "sum": spec_rate / plain_rate, "pairs": t["ratios"], "acceptance": acc,
                       "tokens_per_pass": per_pass, "same": t["same"]})
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "groups": groups}, f, indent=1)

if __name__ == "__main__":
    main()
