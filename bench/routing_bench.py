#!/usr/bin/env python3
"""Hybrid routing benchmark: quality, cloud share and latency of prefer-local routing at several
confidence thresholds, against device-only and cloud-only, on short-answer questions with
reference answers (default tests/data/hybrid/calibration_prompts.jsonl; an answer is correct when
it contains one of the "expect" strings, case-insensitive).

Spawn mode (two real servers on loopback; the usual way):
  bench/routing_bench.py --bin build/edgellm \\
      --local-model ~/.cache/edgellm/models/SmolLM2-135M-Instruct.Q4_1.gguf \\
      --cloud-model ~/.cache/edgellm/models/gemma-3-270m-q4_k_m.gguf --out bench/results/routing
starts the cloud server, an edge server for the device-only and cloud-only passes (route
overrides), picks thresholds from the device pass (quantiles of the chosen signal, so the
cloud share spreads from 0 to ~all), then restarts the edge with each threshold in its
policy and runs the set through real routing. Writes OUT.md (table), OUT.json and OUT.png.

Server mode: --server URL of an edge already started with --policy; runs device-only,
cloud-only and the policy as configured (no sweep, no plot).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIGNALS = {"entropy": ("mean_entropy", "max_mean_entropy"), "logprob": ("quantile_logprob", "min_quantile_logprob")}


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


def correct(text, item):
    return any(e.lower() in text.lower() for e in item.get("expect", []))


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
        lat = rec.get("latency") or {}
        rows.append({"correct": correct(text, item), "tier": rec.get("tier", "device"),
                     "escalated": bool(rec.get("escalated")), "fallback": bool(rec.get("fallback")),
                     "reason": rec.get("reason", ""), "wall_ms": wall, "device_ms": lat.get("device_ms"),
                     "cloud_ms": lat.get("cloud_ms"), "scores": rec.get("scores") or {}, "answer": text})
    return rows


def summarize(name, rows, threshold=None, predicted=None):
    n = len(rows)
    walls = [r["wall_ms"] for r in rows]
    dev = [r["device_ms"] for r in rows if r["device_ms"] is not None]
    cld = [r["cloud_ms"] for r in rows if r["cloud_ms"] is not None]
    reasons = {}
    for r in rows:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"run": name, "threshold": threshold, "n": n, "accuracy": sum(r["correct"] for r in rows) / n,
            "cloud_share": sum(r["tier"] == "cloud" for r in rows) / n, "predicted_share": predicted,
            "escalated": sum(r["escalated"] for r in rows), "fallbacks": sum(r["fallback"] for r in rows),
            "mean_ms": statistics.fmean(walls), "p50_ms": pct(walls, 0.5), "p95_ms": pct(walls, 0.95),
            "device_ms_mean": statistics.fmean(dev) if dev else None,
            "cloud_ms_mean": statistics.fmean(cld) if cld else None, "reasons": reasons}


# --- spawn mode ----------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, binary, model, extra, log_dir, name):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(log_dir) / f"{name}.log", "w")
        cmd = [binary, "serve", "-m", model, "--port", str(self.port), "-c", "2048", "--parallel", "1", "-t", "2"]
        self.proc = subprocess.Popen(cmd + extra, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"routing_bench: {name} server exited; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url + "/health", timeout=2).read()
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        sys.exit(f"routing_bench: {name} server did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


def escalates(value, t, signal):
    """The router's test (router.cpp): entropy above, or log-prob quantile below, the threshold;
    no score (empty answer) always escalates."""
    if value is None:
        return True
    return value > t if signal == "entropy" else value < t


def predicted_share(values, t, signal):
    return sum(escalates(v, t, signal) for v in values) / len(values)


def pick_thresholds(values, shares, signal):
    """Thresholds between observed scores so that each escalates about `share` of this set."""
    v = sorted(x for x in values if x is not None)
    out = set()
    for s in shares:
        # entropy: escalate above t; logprob: below t. Either way values[k] and those beyond it
        # on the device side stay local with t = values[k] - epsilon.
        k = round((1 - s if signal == "entropy" else s) * len(v))
        out.add(round(v[-1] + 1e-3 if k >= len(v) else v[max(k, 0)] - 1e-4, 4))
    return sorted(out)


def edge(args, tmp, cloud_url, name, confidence):
    policy = {"name": name, "mode": "prefer-local", "confidence": confidence,
              "cloud": {"base_url": cloud_url + "/v1", "model": "cloud-model", "timeout_ms": 600000,
                        "max_retries": 0, "failure_threshold": 1000}}
    path = Path(tmp) / f"{name}.json"
    path.write_text(json.dumps(policy))
    return Serve(args.bin, args.local_model, ["--policy", str(path)], tmp, name)


def sweep(args, items):
    key, conf_key = SIGNALS[args.signal]
    tmp = tempfile.mkdtemp(prefix="edgellm-routing-bench-")
    cloud = Serve(args.bin, args.cloud_model, ["--alias", "cloud-model"], tmp, "cloud")
    out = []
    try:
        never = {"min_quantile_logprob": -1e9, "max_mean_entropy": 1e9}
        base = edge(args, tmp, cloud.url, "base", never)
        try:
            dev_rows = run(base.url, items, {"local_only": True}, args.max_tokens, args.timeout)
            out.append(summarize("device-only", dev_rows))
            out.append(summarize("cloud-only", run(base.url, items, {"mode": "cloud-only"}, args.max_tokens,
                                                   args.timeout)))
        finally:
            base.stop()
        values = [r["scores"].get(key) for r in dev_rows]
        for t in pick_thresholds(values, [float(s) for s in args.shares.split(",")], args.signal):
            conf = dict(never)
            conf[conf_key] = t
            pred = predicted_share(values, t, args.signal)
            srv = edge(args, tmp, cloud.url, f"t{len(out)}", conf)
            try:
                rows = run(srv.url, items, None, args.max_tokens, args.timeout)
            finally:
                srv.stop()
            s = summarize(f"{conf_key} {t:g}", rows, t, pred)
            out.append(s)
            print(f"  {s['run']}: cloud {s['cloud_share']:.0%} (predicted {pred:.0%}), accuracy {s['accuracy']:.0%}",
                  file=sys.stderr)
    finally:
        cloud.stop()
    return out


# --- output --------------------------------------------------------------------------------------

def table(out, n, args):
    head = (f"{n} prompts ({Path(args.prompts).name}), max_tokens {args.max_tokens}, greedy; device "
            f"{Path(args.local_model).name if args.local_model else '?'}, cloud "
            f"{Path(args.cloud_model).name if args.cloud_model else '?'}\n\n")
    lines = ["| run | cloud share | predicted | accuracy | escalated | mean ms | p50 ms | p95 ms | device ms | cloud ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    f = lambda x: f"{x:.0f}" if isinstance(x, (int, float)) else "-"
    for s in out:
        p = f"{s['predicted_share']:.0%}" if s.get("predicted_share") is not None else "-"
        lines.append(f"| {s['run']} | {s['cloud_share']:.0%} | {p} | {s['accuracy']:.1%} | {s['escalated']} | "
                     f"{f(s['mean_ms'])} | {f(s['p50_ms'])} | {f(s['p95_ms'])} | {f(s['device_ms_mean'])} | "
                     f"{f(s['cloud_ms_mean'])} |")
    return head + "\n".join(lines) + "\n"


def plot(out, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sweep_pts = sorted([s for s in out if s["threshold"] is not None], key=lambda s: s["cloud_share"])
    fixed = {s["run"]: s for s in out if s["threshold"] is None}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [100 * s["cloud_share"] for s in sweep_pts]
    a1.plot(xs, [100 * s["accuracy"] for s in sweep_pts], "o-", label="prefer-local at threshold")
    for s in sweep_pts:
        a1.annotate(f"{s['threshold']:g}", (100 * s["cloud_share"], 100 * s["accuracy"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 4))
    a2.plot(xs, [s["mean_ms"] for s in sweep_pts], "o-", label="mean (routed)")
    a2.plot(xs, [s["p95_ms"] for s in sweep_pts], "s--", label="p95 (routed)")
    for name, marker in (("device-only", "v"), ("cloud-only", "^")):
        if name in fixed:
            s = fixed[name]
            a1.plot([100 * s["cloud_share"]], [100 * s["accuracy"]], marker, markersize=9, label=name)
            a2.plot([100 * s["cloud_share"]], [s["mean_ms"]], marker, markersize=9, label=name + " mean")
    a1.set(xlabel="answered by the cloud (%)", ylabel="correct (%)", title="quality vs cloud share")
    a2.set(xlabel="answered by the cloud (%)", ylabel="latency per request (ms)", title="latency vs cloud share")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", help="edge server URL (server mode)")
    ap.add_argument("--bin", help="edgellm binary (spawn mode)")
    ap.add_argument("--local-model")
    ap.add_argument("--cloud-model")
    ap.add_argument("--signal", choices=sorted(SIGNALS), default="entropy", help="confidence signal to sweep")
    ap.add_argument("--shares", default="0,0.1,0.2,0.35,0.5,0.75",
                    help="target cloud shares the thresholds are chosen for (from the device pass)")
    ap.add_argument("--prompts", default=str(ROOT / "tests/data/hybrid/calibration_prompts.jsonl"))
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--out", help="write OUT.md, OUT.json (and OUT.png in spawn mode)")
    args = ap.parse_args(argv)
    items = [json.loads(l) for l in Path(args.prompts).read_text(encoding="utf-8").splitlines() if l.strip()]
    if args.bin:
        if not (args.local_model and args.cloud_model):
            ap.error("spawn mode needs --local-model and --cloud-model")
        out = sweep(args, items)
    elif args.server:
        out = [summarize(name, run(args.server, items, route, args.max_tokens, args.timeout))
               for name, route in (("device-only", {"local_only": True}), ("cloud-only", {"mode": "cloud-only"}),
                                   ("policy", None))]
    else:
        ap.error("give --server URL or --bin with --local-model and --cloud-model")
    md = table(out, len(items), args)
    print(md)
    for s in out:
        print(f"reasons {s['run']}: {json.dumps(s['reasons'])}")
    if args.out:
        base = Path(args.out)
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".md").write_text(md)
        base.with_suffix(".json").write_text(json.dumps(out, indent=2))
        if args.bin:
            plot(out, base.with_suffix(".png"), md.splitlines()[0])
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
