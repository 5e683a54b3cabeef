"""Device drafts, a server verifies (`edgellm run --verify`, issue 12) on SmolLM2.

- A real verifier: `edgellm serve` with float activations (EDGELLM_EXACT=1) and a random LoRA
  adapter is the "cloud" (another model of the same vocabulary, so some drafts are rejected). The
  answer must be the verifier's own greedy answer (`EDGELLM_EXACT=1 edgellm run --lora`), in fewer
  verifier passes than tokens.
- Bad verifiers (a fake in this process): malformed JSON, short logprobs, HTTP 500, a dropped
  connection. The answer completes on the device, so it equals the device's plain greedy answer,
  and the run says why.
"""
from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import threading

import pytest

from conftest import reference_model  # noqa: E402
from lora_adapters import write_adapter  # noqa: E402
from server_harness import ServerProcess, default_model, server_binary  # noqa: E402

PROMPT = "List three facts about the Moon."
N = 16


def run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([server_binary(), "run", "-m", default_model(), "-p", PROMPT, "-n", str(N), "--temp", "0",
                        "-t", "2"] + args, capture_output=True, text=True, timeout=600,
                       env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr
    return r


def test_answer_is_the_verifiers_greedy_answer(tmp_path):
    adapter = str(tmp_path / "cloud.gguf")
    write_adapter(adapter, reference_model(default_model()), rank=4, alpha=8, seed=3, strength=0.3)
    srv = ServerProcess(ctx=512, parallel=1, queue=2, env={"EDGELLM_EXACT": "1"}, extra_args=["--lora", adapter])
    try:
        got = run(["--verify", srv.url + "/v1", "--draft-max", "6"])
        cloud_alone = run(["--lora", adapter], env={"EDGELLM_EXACT": "1"})
        assert cloud_alone.stdout != run([]).stdout  # the verifier is another model than the device's
        assert got.stdout == cloud_alone.stdout
        m = re.search(r"verifier (\d+) rounds .*drafted (\d+), accepted (\d+)", got.stderr)
        assert m, got.stderr
        rounds, drafted, accepted = map(int, m.groups())
        assert "verifier failed" not in got.stderr
        assert 0 < rounds < N and 0 < accepted < drafted, got.stderr
    finally:
        assert srv.stop() == 0


class FakeVerifier(http.server.BaseHTTPRequestHandler):
    mode = "malformed"

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["echo"] is True and body["max_tokens"] == 1 and isinstance(body["prompt"], list)
        if self.mode == "disconnect":
            self.connection.close()
            return
        if self.mode == "http500":
            self.send_response(500)
            self.end_headers()
            return
        if self.mode == "malformed":
            out = b"{not json"
        else:  # short: logprobs for half the prompt
            ids = body["prompt"][: len(body["prompt"]) // 2]
            out = json.dumps({"choices": [{"text": "", "finish_reason": "length", "logprobs": {
                "tokens": [f"token_id:{i}" for i in ids],
                "top_logprobs": [None] + [{f"token_id:{i}": -0.1} for i in ids[1:]]}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture(scope="module")
def device_alone() -> str:
    return run([]).stdout


@pytest.mark.parametrize("mode", ["malformed", "short", "http500", "disconnect"])
def test_bad_verifier_completes_on_the_device(mode, device_alone):
    handler = type("H", (FakeVerifier,), {"mode": mode})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        got = run(["--verify", f"http://127.0.0.1:{httpd.server_address[1]}/v1"])
    finally:
        httpd.shutdown()
    assert got.stdout == device_alone
    assert re.search(r"verifier failed \(.+\), \d+ tokens completed on the device", got.stderr), got.stderr


def test_verify_refuses_sampling():
    r = subprocess.run([server_binary(), "run", "-m", default_model(), "-p", "x", "-n", "2", "--temp", "0.7",
                        "--verify", "http://127.0.0.1:9/v1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "temperature 0" in r.stderr


def test_text_the_policy_keeps_local_never_reaches_the_verifier(tmp_path):
    seen = []

    class Recorder(FakeVerifier):
        def do_POST(self):
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            super().do_POST()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    prompt = "Write one line to bob@example.com about the Moon."
    base = [server_binary(), "run", "-m", default_model(), "-p", prompt, "-n", "6", "--temp", "0", "-t", "2"]
    local_only = tmp_path / "local.json"
    local_only.write_text(json.dumps({"mode": "local-only"}))
    try:
        alone = subprocess.run(base, capture_output=True, text=True, timeout=300)
        pii = subprocess.run(base + ["--verify", url], capture_output=True, text=True, timeout=300)
        mode = subprocess.run(base[:5] + ["Hello there", *base[6:], "--verify", url, "--policy", str(local_only)],
                              capture_output=True, text=True, timeout=300)
    finally:
        httpd.shutdown()
    assert pii.returncode == 0 and mode.returncode == 0, pii.stderr + mode.stderr
    assert seen == []
    assert pii.stdout == alone.stdout
    assert "verifier not used: the prompt holds EMAIL" in pii.stderr
    assert "verifier not used: the policy is local-only" in mode.stderr
