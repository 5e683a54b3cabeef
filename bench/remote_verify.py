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

--in-serve measures the same inside `edgellm serve`'s routing instead of the CLI: a device server
(`serve -m DEVICE --policy`, the cloud behind a pass-through on loopback that adds --rtt-ms to every
request when asked) answers chat requests with "speculative": {"mode": "cloud"}; cloud-only is the
same chat request sent to the cloud server through the same pass-through. Rounds, drafted and
accepted tokens come from the answer's route record.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

# Chat requests for --in-serve (the cloud verifies chat answers, rendered with the chat template).
CHAT_PROMPTS = [
    "Write a Python function quicksort(arr) that sorts a list of integers in ascending order.",
    "In Python, read a CSV file and print the sum of its second column.",
    "What are the three laws of thermodynamics?",
]

PROMPTS = [
    "def quicksort(arr):\n    \"\"\"Sort a list of integers in ascending order.\"\"\"\n",
    "# Python: read a CSV file and print the sum of its second column\nimport csv\n\n",
    "The three laws of thermodynamics are:\n1.",
]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=3600) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}") from None


def start_server(args: list[str], log_path: str) -> tuple[subprocess.Popen, str]:
    log = open(log_path, "w")
    srv = subprocess.Popen(args + ["--host", "127.0.0.1", "--port", "0"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(1200):
        m = re.search(r"listening on http://[^\s:]+:(\d+)", open(log_path).read())
        if m:
            return srv, f"http://127.0.0.1:{m.group(1)}"
        if srv.poll() is not None:
            break
        time.sleep(0.5)
    srv.kill()
    raise RuntimeError(open(log_path).read())


class DelayProxy:
    """Forwards POSTs to `target`, sleeping `delay_ms` first: a longer round trip on loopback."""

    def __init__(self, target: str):
        self.delay_ms = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(owner.delay_ms / 1000)
                req = urllib.request.Request(target + self.path, body, {"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=3600) as r:
                        status, out = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, out = e.code, e.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def in_serve(a, cloud_url: str) -> int:
    """The device/cloud pair inside serve's routing (see the module's doc)."""
    proxy = DelayProxy(cloud_url)
    tmp = tempfile.mkdtemp(prefix="edgellm-remote-verify-")
    policy = os.path.join(tmp, "policy.json")
    with urllib.request.urlopen(cloud_url + "/v1/models", timeout=60) as r:
        cloud_model = json.loads(r.read())["data"][0]["id"]  # a server answers only for its own models
    with open(policy, "w") as f:
        json.dump({"mode": "prefer-local", "cloud": {"base_url": proxy.url + "/v1", "model": cloud_model, "max_retries": 0,
                                                    "timeout_ms": 600000, "failure_threshold": 1000}}, f)
    dev, dev_url = start_server([a.bin, "serve", "-m", a.device, "-c", "2048", "--parallel", "1", "-t", str(a.threads),
                                 "--policy", policy], os.path.join(tmp, "device.log"))
    try:
        print(f"inside serve: device {a.device} drafts up to {a.draft_max} (chat requests, \"speculative\": "
              f"{{\"mode\": \"cloud\"}}), cloud {a.cloud} verifies; {a.n} tokens, {a.threads} threads each")
        print("| prompt | same text | tokens | cloud passes/token | rounds/token | accepted | cloud-only s | "
              f"spec s | cloud-only +{a.rtt_ms}ms s | spec +{a.rtt_ms}ms s |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, p in enumerate(CHAT_PROMPTS[: a.prompts]):
            body = {"messages": [{"role": "user", "content": p}], "max_tokens": a.n, "temperature": 0}
            row = {}
            for rtt in (0, a.rtt_ms):
                proxy.delay_ms = rtt
                t0 = time.monotonic()
                cloud = post(proxy.url + "/v1/chat/completions", body)
                t_cloud = time.monotonic() - t0
                s0 = steps(cloud_url)
                t0 = time.monotonic()
                j = post(dev_url + "/v1/chat/completions", {**body, "speculative": {"mode": "cloud", "max": a.draft_max}})
                t_spec = time.monotonic() - t0
                passes = steps(cloud_url) - s0
                route = j["route"]
                sc = route.get("scores", {})
                row[rtt] = (cloud["choices"][0]["message"]["content"], j["choices"][0]["message"]["content"],
                            t_cloud, t_spec, passes, j["usage"]["completion_tokens"], sc.get("verify_rounds", 0),
                            sc.get("verify_drafted", 0), sc.get("verify_accepted", 0), route["reason"])
            c0, s0_, tc0, ts0, passes, n_gen, rounds, drafted, accepted, reason = row[0]
            c1, s1, tc1, ts1 = row[a.rtt_ms][:4]
            same = c0 == s0_ and c1 == s1 and c0 == c1
            if reason != "verified":
                print(f"route of prompt {i}: {json.dumps(route)}", file=sys.stderr)
            print(f"| {i} | {'yes' if same else 'NO'}{'' if reason == 'verified' else f' ({reason})'} | {n_gen} | "
                  f"{passes / max(n_gen, 1):.2f} | {rounds / max(n_gen, 1):.2f} | "
                  f"{100 * accepted / max(drafted, 1):.0f}% | {tc0:.1f} | {ts0:.1f} | {tc1:.1f} | {ts1:.1f} |", flush=True)
    finally:
        dev.terminate()
        dev.wait()
        proxy.close()
    return 0


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
    ap.add_argument("--in-serve", action="store_true", help="inside serve's routing (chat requests)")
    a = ap.parse_args()
    if a.in_serve:
        srv, url = start_server([a.bin, "serve", "-m", a.cloud, "-c", "2048", "--parallel", "1", "-t", str(a.threads)],
                                "/tmp/remote_verify_cloud.log")
        try:
            return in_serve(a, url)
        finally:
            srv.terminate()
            srv.wait()

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
