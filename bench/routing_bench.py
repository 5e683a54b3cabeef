#!/usr/bin/env python3
"""Hybrid routing benchmark: what routing buys over device-only and cloud-only.

Runs a labelled prompt set (default tests/data/hybrid/calibration_prompts.jsonl) through an edge
server started with `edgellm serve --policy FILE` three times, selecting the tier per request
with the `route` override: local-only, cloud-only, and the policy's own mode (normally
prefer-local with confidence escalation). Prints, per run: accuracy (an expected substring in
the answer), share answered by the cloud, escalations, fallbacks, and latency p50/p95 overall
and per tier (device_ms / cloud_ms from the route record).

  bench/routing_bench.py --server http://127.0.0.1:8080 [--prompts FILE] [--max-tokens 48] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def post(url, body, timeout):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
                                 method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def pct(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def run(server, items, route, max_tokens, timeout):
    rows = []
    for item in items:
        body = {"messages": [{"role": "user", "content": item["prompt"]}], "max_tokens": max_tokens, "temperature": 0}
        if route:
            body["route"] = route
        t0 = time.perf_counter()
        j = post(server.rstrip("/") + "/v1/chat/completions", body, timeout)
        wall = (time.perf_counter() - t0) * 1e3
        text = j["choices"][0]["message"].get("content") or ""
        rec = j.get("route") or {}
        rows.append({"correct": any(e.lower() in text.lower() for e in item.get("expect", [])),
                     "tier": rec.get("tier", "device"), "escalated": bool(rec.get("escalated")),
                     "fallback": bool(rec.get("fallback")), "reason": rec.get("reason", ""), "wall_ms": wall,
                     "device_ms": (rec.get("latency") or {}).get("device_ms"),
                     "cloud_ms": (rec.get("latency") or {}).get("cloud_ms")})
    return rows


def summarize(name, rows):
    n = len(rows)
    walls = [r["wall_ms"] for r in rows]
    dev = [r["device_ms"] for r in rows if r["device_ms"] is not None]
    cld = [r["cloud_ms"] for r in rows if r["cloud_ms"] is not None]
    reasons = {}
    for r in rows:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"run": name, "n": n, "accuracy": sum(r["correct"] for r in rows) / n,
            "cloud_share": sum(r["tier"] == "cloud" for r in rows) / n,
            "escalated": sum(r["escalated"] for r in rows), "fallbacks": sum(r["fallback"] for r in rows),
            "p50_ms": pct(walls, 0.5), "p95_ms": pct(walls, 0.95),
            "device_ms_mean": statistics.fmean(dev) if dev else None,
            "cloud_ms_mean": statistics.fmean(cld) if cld else None, "reasons": reasons}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="edge server URL (edgellm serve --policy ...)")
    ap.add_argument("--prompts", default=str(ROOT / "tests/data/hybrid/calibration_prompts.jsonl"))
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", help="also write the summaries here")
    args = ap.parse_args(argv)
    items = [json.loads(l) for l in Path(args.prompts).read_text(encoding="utf-8").splitlines() if l.strip()]
    runs = [("device-only", {"local_only": True}), ("cloud-only", {"mode": "cloud-only"}), ("policy", None)]
    out = []
    for name, route in runs:
        out.append(summarize(name, run(args.server, items, route, args.max_tokens, args.timeout)))
    print(f"{len(items)} prompts, max_tokens {args.max_tokens}")
    print(f"{'run':<12} {'accuracy':>8} {'cloud':>6} {'escal':>5} {'fallbk':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'device ms':>9} {'cloud ms':>9}")
    fmt = lambda x: f"{x:9.0f}" if isinstance(x, (int, float)) else f"{'-':>9}"
    for s in out:
        print(f"{s['run']:<12} {s['accuracy']:8.1%} {s['cloud_share']:6.1%} {s['escalated']:5d} {s['fallbacks']:6d} "
              f"{s['p50_ms']:8.0f} {s['p95_ms']:8.0f} {fmt(s['device_ms_mean'])} {fmt(s['cloud_ms_mean'])}")
    print("reasons (policy run):", json.dumps(out[-1]["reasons"]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
