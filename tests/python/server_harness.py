"""Starts a real `edgellm serve` subprocess on a free loopback port for the server tests.

The binary is EDGELLM_SERVER_BIN if set (e.g. an ASan build, see scripts/test-asan-server),
else EDGELLM_BIN. The model is the default SmolLM2 from EDGELLM_MODEL_DIR; tests skip when
either is missing.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
START_TIMEOUT_S = float(os.environ.get("EDGELLM_SERVER_START_TIMEOUT", "180"))


def server_binary() -> str:
    path = os.environ.get("EDGELLM_SERVER_BIN") or os.environ.get("EDGELLM_BIN") or shutil.which("edgellm")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("set EDGELLM_BIN (or EDGELLM_SERVER_BIN) to the built edgellm CLI")
    return path


def default_model() -> str:
    d = Path(os.environ.get("EDGELLM_MODEL_DIR", Path.home() / ".cache" / "edgellm" / "models"))
    p = d / DEFAULT_MODEL
    if not p.is_file():
        pytest.skip(f"model file {p} is absent (set EDGELLM_MODEL_DIR or run the fetch script)")
    return str(p)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One `edgellm serve` child; `url` is http://127.0.0.1:PORT."""

    def __init__(self, extra_args: list[str] | None = None, ctx: int = 1024, parallel: int = 2,
                 queue: int = 4, threads: int = 2, env: dict | None = None, model: str | None = None):
        self.bin = server_binary()
        self.model = model or default_model()
        # --port 0: the server binds a free port itself and prints it. A port picked here and
        # bound later could be taken in between by another test's server (ctest -j), whose
        # /health would then answer for this one.
        self.port = 0
        self.url = ""
        self.log = tempfile.NamedTemporaryFile(prefix="edgellm-serve-", suffix=".log", delete=False)
        args = [self.bin, "serve", "-m", self.model, "--host", "127.0.0.1", "--port", "0",
                "-c", str(ctx), "--parallel", str(parallel), "--queue", str(queue), "-t", str(threads)]
        self.proc = subprocess.Popen(args + (extra_args or []), stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgellm serve exited {self.proc.returncode}:\n{self.output()}")
            if not self.port:
                self.log.flush()
                m = re.search(r"listening on http://[^\s:]+:(\d+)", Path(self.log.name).read_text(errors="replace"))
                if m:
                    self.port = int(m.group(1))
                    self.url = f"http://127.0.0.1:{self.port}"
            if self.port:
                try:
                    if get(self.url + "/health", timeout=30).status_code == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"edgellm serve did not answer /health in {START_TIMEOUT_S} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def stop(self) -> int:
        """SIGTERM, then waits; returns the exit code (a crash or sanitizer report fails)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Resp:
    """A finished HTTP exchange (stdlib only, so the tests need no extra HTTP client)."""

    def __init__(self, status: int, body: bytes, headers: dict):
        self.status_code = status
        self.content = body
        self.headers = headers

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        import json
        return json.loads(self.content)


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 120) -> Resp:
    import json
    import urllib.error
    import urllib.request
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Resp(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Resp(e.code, e.read(), dict(e.headers))


def get(url: str, headers: dict | None = None, timeout: float = 30) -> Resp:
    return http("GET", url, headers=headers, timeout=timeout)
