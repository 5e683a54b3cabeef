#!/usr/bin/env python3
"""Peak RSS of one `edgellm serve` holding several models under a memory budget (issue 18).

Starts the server with `-m NAME=PATH` per model and `--mem-budget`, sends chat requests that
alternate between the models (optionally several clients at once), samples the process's RSS
every few milliseconds, and prints per request the model, its latency and the RSS, then the
peak (VmHWM and the sampled maximum) against the budget. Figures are printed, not asserted;
a failed request makes the exit code non-zero.

    python bench/serve_models_rss.py --bin build/edgellm --budget 1.3G \\
        --model q05=qwen2.5-coder-0.5b --model q15=qwen2.5-coder-1.5b --requests 8
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def chat(port: int, model: str, max_tokens: int) -> tuple[int, str]:
    conn = HTTPConnection("127.0.0.1", port, timeout=900)
    body = json.dumps({"model": model, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": "Write one sentence about the sea."}]})
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, data


def models_state(port: int) -> dict:
    conn = HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", "/v1/models")
    j = json.loads(conn.getresponse().read())
    conn.close()
    return {m["id"]: m["status"]["value"] for m in j["data"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/edgellm")
    ap.add_argument("--model", action="append", required=True, help="NAME=PATH (or short name); repeat")
    ap.add_argument("--budget", required=True, help="--mem-budget, e.g. 1.3G")
    ap.add_argument("--requests", type=int, default=8, help="requests, alternating between the models")
    ap.add_argument("--clients", type=int, default=1, help="requests sent at once (each alternates too)")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("-c", "--ctx", type=int, default=1024)
    ap.add_argument("-P", "--parallel", type=int, default=1)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()

    names = [m.split("=", 1)[0] for m in a.model]
    cmd = [a.bin, "serve", "--port", "0", "--mem-budget", a.budget, "-c", str(a.ctx), "-P", str(a.parallel),
           "-t", str(a.threads)]
    for m in a.model:
        cmd += ["-m", m]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    log, port = "", 0
    for line in proc.stderr:
        log += line
        m = re.search(r"listening on http://[^\s:]+:(\d+)", line)
        if m:
            port = int(m.group(1))
            break
    if not port:
        print(log, file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep the pipe drained
    budget_mib = None
    m = re.search(r"within ([\d.]+) (MiB|GiB)", log)
    if m:
        budget_mib = float(m.group(1)) * (1024 if m.group(2) == "GiB" else 1)
    print(log.strip())

    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kib(proc.pid))
            except OSError:
                return
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows, failures = [], 0
    lock = threading.Lock()

    def client(k: int):
        nonlocal failures
        for i in range(k, a.requests, a.clients):
            name = names[i % len(names)]
            t0 = time.perf_counter()
            status, data = chat(port, name, a.max_tokens)
            dt = time.perf_counter() - t0
            with lock:
                if status != 200:
                    failures += 1
                rows.append((i, name, status, dt, rss_kib(proc.pid) / 1024, data[:120] if status != 200 else ""))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(a.clients)]
    t_all = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_all
    stop.set()
    sampler.join()
    hwm = rss_kib(proc.pid, "VmHWM") / 1024
    state = models_state(port)
    proc.terminate()
    proc.wait(timeout=120)

    print(f"\n{'#':>3} {'model':<10} {'status':>6} {'seconds':>8} {'RSS MiB':>8}")
    for i, name, status, dt, rss, err in sorted(rows):
        print(f"{i:>3} {name:<10} {status:>6} {dt:>8.2f} {rss:>8.1f} {err}")
    print(f"\n{len(rows)} requests in {wall:.1f} s, {failures} failed; models at the end: {state}")
    print(f"peak RSS: VmHWM {hwm:.1f} MiB, sampled max {peak[0] / 1024:.1f} MiB; budget "
          f"{budget_mib if budget_mib is not None else '?'} MiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"models": a.model, "budget_mib": budget_mib, "vmhwm_mib": hwm, "sampled_peak_mib": peak[0] / 1024,
                       "requests": len(rows), "failed": failures, "wall_s": wall,
                       "rows": [{"i": r[0], "model": r[1], "status": r[2], "s": r[3], "rss_mib": r[4]} for r in rows]},
                      f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
