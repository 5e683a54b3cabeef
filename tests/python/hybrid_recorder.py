"""A recording pass-through in front of the "cloud" edgellm server for the hybrid tests.

Every POST body the edge server sends is kept in `bodies`, so tests can assert what left the
device. `mode` switches the behaviour: "forward" (default), "fail" (HTTP 500) or "slow"
(sleeps `slow_s` before forwarding, to trip the edge server's cloud timeout).
Stdlib only.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.bodies: list[dict] = []
        self.mode = "forward"
        self.slow_s = 5.0
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                with recorder._lock:
                    recorder.bodies.append(body)
                if recorder.mode == "fail":
                    self._send(500, b'{"error": {"message": "recorder told to fail"}}', "application/json")
                    return
                if recorder.mode == "slow":
                    time.sleep(recorder.slow_s)
                req = urllib.request.Request(recorder.upstream + self.path, data=raw, method="POST",
                                             headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=300) as r:
                        self._send(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
                except urllib.error.HTTPError as e:
                    self._send(e.code, e.read(), e.headers.get("Content-Type", "application/json"))
                except OSError:
                    pass  # the client gave up (timeout test)

            def _send(self, status: int, data: bytes, ctype: str):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def sent_text(self) -> str:
        with self._lock:
            return "\n".join(json.dumps(b, ensure_ascii=False) for b in self.bodies)

    def count(self) -> int:
        with self._lock:
            return len(self.bodies)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
