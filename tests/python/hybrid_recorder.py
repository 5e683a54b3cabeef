"""A recording pass-through in front of the "cloud" edgellm server for the hybrid tests.

Every POST body the edge server sends is kept in `bodies` (parsed) and `raw` (bytes as received),
and appended to `log_path` (JSONL) when given, so tests can assert what left the device.
`mode` chooses the behaviour of the next requests:

  forward    pass the request to the upstream server, answer with its reply (default)
  fail       HTTP 500 without asking upstream
  slow       sleep `slow_s`, then forward (trips the edge server's cloud timeout)
  malformed  HTTP 200 whose body (or SSE event) is not JSON
  drop       forward, but cut the connection mid-answer: a streamed answer after `drop_after`
             content events (0: before any text), a plain answer halfway through its body
  close      accept the connection and close it without any answer

`fail_next(n, mode)` applies a mode to the next n requests only, then returns to the current
one. `go_down()` / `come_up()` close and reopen the listening socket on the same port (a cloud
that refuses connections). Stdlib only.

Timing: a fault must not depend on how fast the upstream generates (a loaded machine can take
longer than the edge's cloud timeout). With `replay = True` the modes that need an upstream
answer (forward, slow, drop) reuse the last 200 answer forwarded for the same `stream` flag, so
they answer at once; tests prime it with one forwarded request of each kind. `max_tokens_cap`
caps what the upstream is asked to generate (the recorded body is left as received) for tests
that only look at the route, not at the length of the answer.
"""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = ("forward", "fail", "slow", "malformed", "drop", "close")


class _Listener(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a burst of edge requests would see SYNs dropped
    # and retried after 1 s, longer than a short connect timeout.
    request_queue_size = 128


class Recorder:
    def __init__(self, upstream: str, log_path: str | None = None):
        self.upstream = upstream.rstrip("/")
        self.bodies: list[dict] = []
        self.raw: list[bytes] = []
        self.mode = "forward"
        self.slow_s = 5.0
        self.drop_after = 2
        self.log_path = log_path
        self.replay = False
        self.max_tokens_cap: int | None = None
        self._answers: dict[bool, tuple] = {}  # stream flag -> last (status, data, ctype) with 200
        self._once: list[str] = []
        self._lock = threading.Lock()
        self._handler = self._make_handler()
        self.httpd = self._serve(0)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    # --- control -------------------------------------------------------------------------
    def fail_next(self, n: int, mode: str = "fail") -> None:
        assert mode in MODES, mode
        with self._lock:
            self._once = [mode] * n

    def queue_modes(self, modes: list[str]) -> None:
        """The next len(modes) requests get these modes, in arrival order."""
        assert all(m in MODES for m in modes), modes
        with self._lock:
            self._once = list(modes)

    def go_down(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def come_up(self) -> None:
        self.httpd = self._serve(self.port)

    def sent_text(self) -> str:
        """Everything the cloud received: the raw bytes and the parsed bodies re-serialized
        (so \\u escapes cannot hide a value from a substring search)."""
        with self._lock:
            parts = [r.decode("utf-8", "replace") for r in self.raw]
            parts += [json.dumps(b, ensure_ascii=False) for b in self.bodies]
        return "\n".join(parts)

    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def close(self):
        self.go_down()

    # --- internals -----------------------------------------------------------------------
    def _serve(self, port: int) -> ThreadingHTTPServer:
        httpd = _Listener(("127.0.0.1", port), self._handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return httpd

    def _next_mode(self) -> str:
        with self._lock:
            return self._once.pop(0) if self._once else self.mode

    def _record(self, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"_unparsed": raw.decode("utf-8", "replace")}
        with self._lock:
            self.bodies.append(body)
            self.raw.append(raw)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(body, ensure_ascii=False) + "\n")

    def _make_handler(self):
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                rec._record(raw)
                mode = rec._next_mode()
                try:
                    stream = bool(json.loads(raw).get("stream"))
                except (ValueError, AttributeError):
                    stream = False
                if mode == "close":
                    self._cut()
                elif mode == "fail":
                    self._send(500, b'{"error": {"message": "recorder told to fail"}}', "application/json")
                elif mode == "malformed":
                    body = b"data: {this is not json\n\n" if stream else b'{"choices": [ {"message": '
                    self._send(200, body, "text/event-stream" if stream else "application/json")
                else:
                    if mode == "slow":
                        time.sleep(rec.slow_s)
                    status, data, ctype = self._answer(raw, stream)
                    if mode == "drop" and status == 200:
                        self._send_cut(data, stream, ctype)
                    elif status:
                        self._send(status, data, ctype)

            def _answer(self, raw: bytes, stream: bool):
                with rec._lock:
                    kept = rec._answers.get(stream) if rec.replay else None
                if kept:
                    return kept
                got = self._forward(raw)
                if got[0] == 200:
                    with rec._lock:
                        rec._answers[stream] = got
                return got

            def _forward(self, raw: bytes):
                if rec.max_tokens_cap is not None:
                    try:
                        body = json.loads(raw)
                        body["max_tokens"] = min(int(body.get("max_tokens") or rec.max_tokens_cap),
                                                 rec.max_tokens_cap)
                        raw = json.dumps(body).encode()
                    except (ValueError, TypeError, AttributeError):
                        pass
                req = urllib.request.Request(rec.upstream + self.path, data=raw, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=300) as r:
                        return r.status, r.read(), r.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as e:
                    return e.code, e.read(), e.headers.get("Content-Type", "application/json")
                except OSError:
                    return 0, b"", ""  # upstream gone or the client gave up (timeout test)

            def _send_cut(self, data: bytes, stream: bool, ctype: str):
                """Announces the whole body but sends only part of it, then closes."""
                if stream:
                    events = data.split(b"\n\n")
                    keep, n_text = [], 0
                    for ev in events:
                        if b'"content"' in ev and b'"content":""' not in ev.replace(b" ", b""):
                            if n_text >= rec.drop_after:
                                break
                            n_text += 1
                        if b"[DONE]" in ev or b'"finish_reason":"' in ev.replace(b" ", b""):
                            break
                        keep.append(ev)
                    part = b"\n\n".join(keep) + b"\n\n"
                else:
                    part = data[: len(data) // 2]
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(part)
                    self.wfile.flush()
                except OSError:
                    pass
                self._cut()

            def _cut(self):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _send(self, status: int, data: bytes, ctype: str):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        return Handler


# --- helpers shared by the test_hybrid_*.py files ---------------------------------------------

REASONS = {"privacy_block", "low_confidence", "explicit", "budget_exhausted", "cloud_down", "timeout",
           "cloud_error", "local_only", "cloud_only", "prefer_local", "prefer_cloud", "context_overflow",
           "capability"}


def write_policy(dirpath, name: str, cloud_url: str | None, **sections) -> str:
    """Writes a policy JSON (docs/hybrid.md) with an audit log next to it; returns its path."""
    import pathlib
    d = pathlib.Path(dirpath)
    policy = {"name": name, "audit": {"path": str(d / f"{name}.audit.jsonl"), "fsync": "always"}}
    if cloud_url:
        policy["cloud"] = {"base_url": cloud_url + "/v1", "model": "cloud-model", "max_retries": 0,
                           "timeout_ms": 120000, "failure_threshold": 1000}
    for k, v in sections.items():
        if isinstance(v, dict) and isinstance(policy.get(k), dict):
            policy[k].update(v)
        else:
            policy[k] = v
    path = d / f"{name}.policy.json"
    path.write_text(json.dumps(policy, ensure_ascii=False))
    return str(path)


def chat_body(content, route=None, stream=False, max_tokens=12, **extra) -> dict:
    messages = content if isinstance(content, list) else [{"role": "user", "content": content}]
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra}
    if route is not None:
        body["route"] = route
    if stream:
        body["stream"] = True
    return body


def sse_events(text: str) -> list:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


class Streamed:
    """A streamed answer read like a client that honours `restart` error events: the text is
    what followed the last restart; `final` is the chunk with finish_reason."""

    def __init__(self, raw: str):
        self.raw = raw
        self.events = sse_events(raw)
        self.restarts = [e for e in self.events if e.get("error") and e.get("restart")]
        self.errors = [e for e in self.events if e.get("error") and not e.get("restart")]
        self.text = ""
        self.final = None
        for e in self.events:
            if e.get("error") and e.get("restart"):
                self.text = ""
            for c in e.get("choices") or []:
                self.text += (c.get("delta") or {}).get("content") or ""
                if c.get("finish_reason"):
                    self.final = e
        self.done = raw.rstrip().endswith("data: [DONE]")


def check_route(route: dict, tier: str, reason: str) -> None:
    """The route record is complete and consistent, and says `tier` for `reason`."""
    assert route["tier"] == tier, route
    assert route["reason"] == reason, route
    assert route["reason"] in REASONS
    assert route["mode"] in ("local-only", "cloud-only", "prefer-local", "prefer-cloud"), route
    for k in ("redacted", "escalated", "fallback"):
        assert isinstance(route[k], bool), route
    lat = route["latency"]
    if tier == "device":
        assert lat.get("device_ms", -1) >= 0, route
    else:
        assert lat.get("cloud_ms", -1) >= 0, route
    if route["fallback"]:
        assert tier == "device", route
    if route["escalated"]:
        assert tier == "cloud" and "device_ms" in lat, route


@contextmanager
def recorded_cloud(env: dict | None = None):
    """The tests' "cloud": an `edgellm serve` (alias cloud-model) behind a Recorder. On exit the
    server must stop cleanly (exit 0, so a sanitizer build's reports fail the test)."""
    from server_harness import ServerProcess  # the harness imports nothing from here

    srv = ServerProcess(["--alias", "cloud-model"], ctx=1024, parallel=2, env=env)
    rec = Recorder(srv.url)
    try:
        yield rec
    finally:
        rec.close()
        code = srv.stop()
    assert code == 0, srv.output()
