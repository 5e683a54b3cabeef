#!/usr/bin/env python3
"""Load test for `edgellm serve` on loopback: N concurrent clients x M streamed chat requests.

Prints aggregate decode throughput next to a single stream's, and time-to-first-token
percentiles. Figures are printed, not asserted (the machine is shared); errors are counted
and make the exit code non-zero.

    edgellm serve --parallel 8 --queue 64 &
    python bench/serve_load.py --url http://127.0.0.1:8080 --clients 8 --requests 50

Only targets loopback addresses; every loop is bounded in count and time.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.parse
from http.client import HTTPConnection

PROMPTS = [
    "Name a fruit.", "What is 2 plus 2?", "Say hello in French.", "Name a color.", "What is the sun?",
    "Give me a word that rhymes with cat.", "Name an animal that swims.", "What day comes after Monday?",
]


def stream_chat(conn: HTTPConnection, model: str, prompt: str, max_tokens: int, api_key: str | None) -> dict:
    """One streamed request on a kept-alive connection; returns timings and token counts."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0.7, "stream": True, "stream_options": {"include_usage": True}})
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    t_first = None
    tokens = 0
    while True:
        line = resp.readline()
        if not line:
            raise RuntimeError("stream ended without [DONE]")
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        if "error" in ev:
            raise RuntimeError(ev["error"]["message"])
        for c in ev.get("choices", []):
            if c.get("delta", {}).get("content") and t_first is None:
                t_first = time.perf_counter()
        if ev.get("usage"):
            tokens = ev["usage"]["completion_tokens"]
    resp.read()
    t_end = time.perf_counter()
    return {"ttft": (t_first or t_end) - t0, "total": t_end - t0, "tokens": tokens,
            "decode_s": t_end - (t_first or t_end)}


def run_clients(host: str, port: int, model: str, n_clients: int, n_requests: int, max_tokens: int,
                api_key: str | None, deadline: float) -> tuple[list[dict], list[str], float]:
    results: list[dict] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(ci: int) -> None:
        conn = HTTPConnection(host, port, timeout=300)
        for i in range(n_requests):
            if time.monotonic() > deadline:
                with lock:
                    errors.append(f"client {ci}: time budget exhausted at request {i}")
                return
            try:
                r = stream_chat(conn, model, PROMPTS[(ci + i) % len(PROMPTS)], max_tokens, api_key)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"client {ci} request {i}: {e}")
                conn.close()
                conn = HTTPConnection(host, port, timeout=300)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors, time.perf_counter() - t0


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--single", type=int, default=20,
                    help="requests in the single-stream baseline, run once before and once after the load")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--time-budget", type=float, default=3600, help="seconds before clients stop early")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()

    u = urllib.parse.urlparse(a.url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        print("serve_load only targets loopback addresses", file=sys.stderr)
        return 2
    conn = HTTPConnection(host, port, timeout=30)
    headers = {"Authorization": "Bearer " + a.api_key} if a.api_key else {}
    conn.request("GET", "/v1/models", headers=headers)
    model = json.loads(conn.getresponse().read())["data"][0]["id"]
    conn.close()
    deadline = time.monotonic() + a.time_budget

    # The single-stream baseline runs before and after the load and the two are pooled, so a
    # change in what the shared machine gives us during the run moves both sides of the ratio.
    before, s_err, wall_before = run_clients(host, port, model, 1, a.single, a.max_tokens, a.api_key, deadline)
    res, errors, wall = run_clients(host, port, model, a.clients, a.requests, a.max_tokens, a.api_key, deadline)
    after, s_err2, wall_after = run_clients(host, port, model, 1, a.single, a.max_tokens, a.api_key, deadline)
    single, s_wall = before + after, wall_before + wall_after
    s_tok = sum(r["tokens"] for r in single)
    s_dec = sum(r["decode_s"] for r in single)
    single_tps = s_tok / s_dec if s_dec > 0 else float("nan")
    # Same definition as the aggregate (tokens / wall time, prefill and HTTP included): with
    # short answers the decode-only rate above is inflated by tokens that arrive together.
    single_e2e = s_tok / s_wall if s_wall > 0 else float("nan")
    e2e_before = sum(r["tokens"] for r in before) / wall_before if wall_before > 0 else float("nan")
    e2e_after = sum(r["tokens"] for r in after) / wall_after if wall_after > 0 else float("nan")
    errors += s_err + s_err2
    tokens = sum(r["tokens"] for r in res)
    ttft = [r["ttft"] for r in res]
    agg_tps = tokens / wall if wall > 0 else float("nan")
    figures = {
        "model": model, "clients": a.clients, "requests_per_client": a.requests, "max_tokens": a.max_tokens,
        "completed": len(res), "errors": len(errors), "wall_s": wall, "generated_tokens": tokens,
        "aggregate_tok_s": agg_tps, "single_stream_decode_tok_s": single_tps,
        "speedup_vs_single": agg_tps / single_tps if single_tps == single_tps and single_tps > 0 else None,
        "single_stream_end_to_end_tok_s": single_e2e,
        "single_stream_end_to_end_before_after_tok_s": [e2e_before, e2e_after],
        "speedup_vs_single_end_to_end": agg_tps / single_e2e if single_e2e == single_e2e and single_e2e > 0 else None,
        "ttft_p50_ms": pct(ttft, 50) * 1e3, "ttft_p99_ms": pct(ttft, 99) * 1e3,
        "latency_p50_ms": pct([r["total"] for r in res], 50) * 1e3,
        "latency_p99_ms": pct([r["total"] for r in res], 99) * 1e3,
        "mean_tokens_per_request": statistics.mean([r["tokens"] for r in res]) if res else 0,
    }
    print(f"model {model}: {a.clients} clients x {a.requests} requests, max_tokens {a.max_tokens}")
    print(f"  completed {len(res)}, errors {len(errors)}, wall {wall:.1f} s, {tokens} tokens generated")
    print(f"  aggregate decode    {agg_tps:8.1f} tok/s (all clients, generated tokens / wall time)")
    print(f"  single stream       {single_tps:8.1f} tok/s (decode rate of one request alone)")
    if figures["speedup_vs_single"]:
        print(f"  speedup             {figures['speedup_vs_single']:8.2f} x")
    print(f"  single end to end   {single_e2e:8.1f} tok/s (one client, tokens / wall time, as the aggregate;"
          f" {e2e_before:.1f} before the load, {e2e_after:.1f} after)")
    if figures["speedup_vs_single_end_to_end"]:
        print(f"  speedup end to end  {figures['speedup_vs_single_end_to_end']:8.2f} x")
    print(f"  time to first token p50 {figures['ttft_p50_ms']:.0f} ms, p99 {figures['ttft_p99_ms']:.0f} ms")
    print(f"  request latency     p50 {figures['latency_p50_ms']:.0f} ms, p99 {figures['latency_p99_ms']:.0f} ms")
    for e in errors[:10]:
        print("  error:", e)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
