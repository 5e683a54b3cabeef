#!/usr/bin/env python3
"""Device drafts, cloud verifies (issue 12): `edgellm run -m DEVICE --verify URL` against a second
`edgellm serve -m CLOUD` on loopback, compared with cloud-only decoding (one /v1/completions
request: the cloud decodes every token itself).

For each prompt it prints: whether the text equals the cloud's own greedy answer, the cloud's
forward passes per generated token (scheduler steps from /metrics, prefill of the first round
included, and verifier rounds per token), and the end-to-end time of both, with the round trip as
it is on loopback and with --rtt-ms added per request (cloud-only pays it once, speculation once
per round).

    bench/remote_verify.py --bin build/edgellm --device qwen2.5-coder-0.5b --cloud qwen2.5-coder-1.5b
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import urllib.request

PROMPTS = [
    "def quicksort(arr):\n    \"\"\"Sort a list of integers in ascending order.\"\"\"\n",
    "# Python: read a CSV file and print the sum of its second column\nimport csv\n\n",
    "The three laws of thermodynamics are:\n1.",
]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.loads(r.read())


def steps(url: str) -> int:
    with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
        m = re.search(r"^edgellm_batch_steps_total (\d+)", r.read().decode(), re.M)
    return int(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/edgellm")
    ap.add_argument("--device", default="qwen2.5-coder-0.5b")
    ap.add_argument("--cloud", default="qwen2.5-coder-1.5b")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--draft-max", type=int, default=8)
    ap.add_argument("--rtt-ms", type=int, default=50)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=len(PROMPTS))
    a = ap.parse_args()

    log = open("/tmp/remote_verify_serve.log", "w")
    srv = subprocess.Popen([a.bin, "serve", "-m", a.cloud, "--host", "127.0.0.1", "--port", "0", "-c", "2048",
                            "--parallel", "1", "-t", str(a.threads)], stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(600):
            m = re.search(r"listening on http://[^\s:]+:(\d+)", open(log.name).read())
            if m:
                url = f"http://127.0.0.1:{m.group(1)}"
                break
            time.sleep(0.5)
        assert url, open(log.name).read()
        print(f"device {a.device} drafts up to {a.draft_max}, cloud {a.cloud} verifies; {a.n} tokens, "
              f"{a.threads} threads each, added RTT {a.rtt_ms} ms")
        print("| prompt | same text | tokens | cloud passes/token | rounds/token | accepted | cloud-only s | "
              f"spec s | cloud-only +{a.rtt_ms}ms s | spec +{a.rtt_ms}ms s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, p in enumerate(PROMPTS[: a.prompts]):
            t0 = time.monotonic()
            cloud = post(url + "/v1/completions", {"prompt": p, "max_tokens": a.n, "temperature": 0})
            t_cloud = time.monotonic() - t0
            cloud_text = cloud["choices"][0]["text"]
            row = {}
            for rtt in (0, a.rtt_ms):
                s0 = steps(url)
                r = subprocess.run([a.bin, "run", "-m", a.device, "--raw", "-p", p, "-n", str(a.n), "--temp", "0",
                                    "-t", str(a.threads), "--verify", url + "/v1", "--draft-max", str(a.draft_max),
                                    "--verify-rtt-ms", str(rtt)], capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stderr, file=sys.stderr)
                    return 1
                passes = steps(url) - s0
                # Prompt + answer as the run measures them (the device model's load is left out).
                t = re.search(r"prompt \d+ tokens in ([\d.]+) s .*generated \d+ tokens in ([\d.]+) s", r.stderr)
                dt = float(t.group(1)) + float(t.group(2))
                m = re.search(r"generated (\d+) tokens.*verifier (\d+) rounds .*drafted (\d+), accepted (\d+)", r.stderr)
                row[rtt] = (r.stdout[:-1], dt, passes, *map(int, m.groups()), "verifier failed" in r.stderr)
            text, dt0, passes, n_gen, rounds, drafted, accepted, failed = row[0]
            print(f"| {i} | {'yes' if text == cloud_text and row[a.rtt_ms][0] == cloud_text else 'NO'}"
                  f"{' (verifier failed)' if failed else ''} | {n_gen} | {passes / max(n_gen, 1):.2f} | "
                  f"{rounds / max(n_gen, 1):.2f} | {100 * accepted / max(drafted, 1):.0f}% | {t_cloud:.1f} | {dt0:.1f} | "
                  f"{t_cloud + a.rtt_ms / 1000:.1f} | {row[a.rtt_ms][1]:.1f} |", flush=True)
    finally:
        srv.terminate()
        srv.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
