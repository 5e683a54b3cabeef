"""examples/voice_command.py end to end (issue #13): espeak-ng speaks "Set the temperature to
twenty-one degrees.", edgellm serve transcribes it with the real Whisper tiny and the chat model
turns the transcript into a tool call; the call must be climate.set_temperature with
{"celsius": 21}. The chat model is SmolLM2-135M, the tests' model (CI); EDGELLM_FULL_TESTS=1 runs
Qwen2.5-Coder-0.5B-Instruct as well, the model the example is written for."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import model_path_or_skip
from server_harness import ServerProcess, server_binary
from whisper_ref import SOURCE_DIR, ct2_dir_or_skip

FULL = os.environ.get("EDGELLM_FULL_TESTS") == "1"
MODELS = ["SmolLM2-135M-Instruct.Q4_1.gguf"] + (["qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"] if FULL else [])


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    if not shutil.which("espeak-ng"):
        pytest.skip("needs espeak-ng (Debian)")
    src = ct2_dir_or_skip("tiny")
    gguf = tmp_path_factory.mktemp("asr") / "whisper-tiny.gguf"
    r = subprocess.run([server_binary(), "convert", str(src), str(gguf)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return gguf


@pytest.mark.parametrize("model", MODELS)
def test_spoken_command_becomes_the_tool_call(whisper, model):
    path = model_path_or_skip(model)
    srv = ServerProcess(["--asr-model", str(whisper)], model=path, ctx=1024, parallel=1, queue=1)
    try:
        r = subprocess.run([sys.executable, str(Path(SOURCE_DIR) / "examples" / "voice_command.py"),
                            "--server", srv.url + "/v1"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        print(json.dumps(out))
        assert "temperature" in out["transcript"].lower(), out
        assert out["tool"] == "climate.set_temperature", out
        assert out["arguments"] == {"celsius": 21}, out
        assert "[climate.set_temperature]" in r.stderr
    finally:
        assert srv.stop() == 0, srv.output()
