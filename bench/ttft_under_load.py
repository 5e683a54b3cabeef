#!/usr/bin/env python3
"""Time to first token of short requests while a long prompt is being prefilled (issue 17).

Each round sends one long prompt (about --long-tokens tokens, max_tokens 1) and, while it is
being read, --short-clients clients send short streamed chat requests (max_tokens 4) one after
another. Only short requests sent before the long one finished count. Prints TTFT p50/p99 of
those short requests, the same on the idle server for reference, and how long the long prefill
took. Figures are printed, never asserted (the machine may be shared).

Starts its own server from --bin (so two builds can be compared on the same model):

    python bench/ttft_under_load.py --bin build/edgellm -m ~/.cache/edgellm/models/SmolLM2-135M-Instruct.Q4_1.gguf

or measures a running one with --url http://127.0.0.1:PORT (loopback only). Every loop is
bounded in count and time.
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
import threading
import time
import urllib.parse
from http.client import HTTPConnection

SHORT_PROMPTS = ["Name a fruit.", "Say hi.", "Name a color.", "What is 2 plus 2?", "Name an animal."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(host: str, port: int, path: str, body: dict | None, timeout: float) -> tuple[int, bytes]:
    conn = HTTPConnection(host, port, timeout=timeout)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def short_ttft(host: str, port: int, prompt: str, timeout: float) -> float:
    """One streamed chat request with a few tokens; seconds until the first content arrives."""
    conn = HTTPConnection(host, port, timeout=timeout)
    try:
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": 4, "temperature": 0,
                "stream": True}
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
        t_first = None
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                if line == b"data: [DONE]":
                    break
                continue
            ev = json.loads(line[6:])
            if "error" in ev:
                raise RuntimeError(ev["error"].get("message", "error event"))
            if t_first is None and any(c.get("delta", {}).get("content") for c in ev.get("choices", [])):
                t_first = time.perf_counter()
        end = time.perf_counter()
        return (t_first or end) - t0
    finally:
        conn.close()


def long_prompt(n_lines: int, round_no: int) -> str:
    # Distinct per round (and per run) so no slot can reuse a cached prefix of it.
    tag = f"{os.getpid()}-{round_no}-{time.time_ns()}"
    words = [f"Record {tag}."]
    for i in range(max(1, n_lines)):
        words.append(f"Line {i}: the river runs past mill number {i * 7 % 101} at dawn.")
    return " ".join(words) + "\nSummarise the records above in one word."


def lines_for(host: str, port: int, n_tokens: int, timeout: float) -> int:
    """Lines of long_prompt() that make about n_tokens tokens in this model's vocabulary."""
    counts = []
    for n in (10, 30):
        st, body = request(host, port, "/v1/completions", {"prompt": long_prompt(n, -1), "max_tokens": 1}, timeout)
        if st != 200:
            raise RuntimeError(f"calibration request: HTTP {st}: {body[:200]!r}")
        counts.append(json.loads(body)["usage"]["prompt_tokens"])
    per_line = (counts[1] - counts[0]) / 20
    return max(1, round(10 + (n_tokens - counts[0]) / per_line))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))]


def run_round(host: str, port: int, n_lines: int, round_no: int, n_short_clients: int, timeout: float) -> dict:
    long_done = threading.Event()
    long_info: dict = {}

    def long_client() -> None:
        t0 = time.perf_counter()
        try:
            st, body = request(host, port, "/v1/completions",
                               {"prompt": long_prompt(n_lines, round_no), "max_tokens": 1, "temperature": 0}, timeout)
            long_info["status"] = st
            if st == 200:
                long_info["prompt_tokens"] = json.loads(body)["usage"]["prompt_tokens"]
            else:
                long_info["error"] = body[:200]
        except Exception as e:  # noqa: BLE001 - reported
            long_info["error"] = str(e)
        long_info["seconds"] = time.perf_counter() - t0
        long_done.set()

    lt = threading.Thread(target=long_client)
    lt.start()
    # Let the long prompt reach a slot and start its prefill before the short ones arrive.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not long_done.is_set():
        st, body = request(host, port, "/health", None, 10)
        if st == 200 and json.loads(body).get("slots_processing", 0) >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    samples: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def short_client(ci: int) -> None:
        i = 0
        while not long_done.is_set() and i < 200:
            try:
                t = short_ttft(host, port, SHORT_PROMPTS[(ci + i) % len(SHORT_PROMPTS)], timeout)
                with lock:
                    samples.append(t)
            except Exception as e:  # noqa: BLE001 - counted
                with lock:
                    errors.append(str(e))
            i += 1

    threads = [threading.Thread(target=short_client, args=(c,)) for c in range(n_short_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lt.join()
    return {"samples": samples, "errors": errors, "long": long_info}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None, help="a running server (loopback); else one is started from --bin")
    ap.add_argument("--bin", default=os.environ.get("EDGELLM_BIN", "build/edgellm"))
    ap.add_argument("-m", "--model", default=None)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=4, help="slots of the started server")
    ap.add_argument("--long-tokens", type=int, default=3100)
    ap.add_argument("--short-clients", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idle", type=int, default=5, help="short requests on the idle server (reference)")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()

    proc = None
    log = None
    if a.url:
        u = urllib.parse.urlparse(a.url)
        host, port = u.hostname or "127.0.0.1", u.port or 80
        if not (host == "localhost" or host.startswith("127.") or host == "::1"):
            print("ttft_under_load only targets loopback addresses", file=sys.stderr)
            return 2
    else:
        host, port = "127.0.0.1", free_port()
        args = [a.bin, "serve", "--host", host, "--port", str(port), "-t", str(a.threads), "--parallel",
                str(a.parallel), "-c", str(max(4096, a.long_tokens + 512))]
        if a.model:
            args += ["-m", a.model]
        log = tempfile.NamedTemporaryFile(prefix="ttft-serve-", suffix=".log", delete=False)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"server did not start; log: {log.name}", file=sys.stderr)
                return 1
            try:
                if request(host, port, "/health", None, 2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
    try:
        st, body = request(host, port, "/v1/models", None, 30)
        model = json.loads(body)["data"][0]["id"]
        idle = [short_ttft(host, port, SHORT_PROMPTS[i % len(SHORT_PROMPTS)], a.timeout) for i in range(a.idle)]
        n_lines = lines_for(host, port, a.long_tokens, a.timeout)
        rounds = [run_round(host, port, n_lines, r, a.short_clients, a.timeout) for r in range(a.rounds)]
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    loaded = [s for r in rounds for s in r["samples"]]
    errors = [e for r in rounds for e in r["errors"]] + [str(r["long"]["error"]) for r in rounds if "error" in r["long"]]
    long_s = [r["long"].get("seconds", float("nan")) for r in rounds]
    long_tok = [r["long"].get("prompt_tokens", 0) for r in rounds]
    fig = {
        "label": a.label, "model": model, "long_prompt_tokens": long_tok, "long_request_s": long_s,
        "short_clients": a.short_clients, "short_requests_under_load": len(loaded),
        "ttft_under_load_p50_s": pct(loaded, 50), "ttft_under_load_p99_s": pct(loaded, 99),
        "ttft_under_load_max_s": max(loaded) if loaded else float("nan"),
        "ttft_idle_p50_s": pct(idle, 50), "ttft_idle_p99_s": pct(idle, 99), "errors": len(errors),
    }
    print(f"{a.label + ': ' if a.label else ''}model {model}, long prompt {long_tok} tokens, "
          f"its request took {', '.join(f'{s:.1f}' for s in long_s)} s")
    print(f"  short requests while it prefilled: {len(loaded)} (from {a.short_clients} clients)")
    print(f"  TTFT under load  p50 {fig['ttft_under_load_p50_s']:.2f} s, p99 {fig['ttft_under_load_p99_s']:.2f} s,"
          f" max {fig['ttft_under_load_max_s']:.2f} s")
    print(f"  TTFT idle        p50 {fig['ttft_idle_p50_s']:.2f} s, p99 {fig['ttft_idle_p99_s']:.2f} s"
          f" (mean {statistics.mean(idle):.2f} s)")
    for e in errors[:5]:
        print("  error:", e)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(fig, f, indent=2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
