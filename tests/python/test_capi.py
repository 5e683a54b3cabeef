"""The C API against the CLI: examples/chat.c (built on libedgellm.so) must give the same greedy
answer, token for token, as `edgellm run` on the same prompt, since both go through the same
chat template and generation loop. The example is found beside the CLI
(build/examples/edgellm-chat)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import model_path_or_skip

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about trains.",
    "List three prime numbers.",
]


def chat_example() -> Path:
    cli = os.environ.get("EDGELLM_BIN")
    if not cli:
        pytest.skip("EDGELLM_BIN is not set to the built edgellm CLI")
    exe = Path(cli).parent / "examples" / "edgellm-chat"
    if not exe.is_file():
        pytest.skip(f"{exe} is not built (ninja edgellm_chat_example)")
    return exe


@pytest.mark.parametrize("prompt", PROMPTS)
def test_chat_example_matches_cli_greedy(prompt):
    model = model_path_or_skip("SmolLM2-135M-Instruct.Q4_1.gguf")
    exe = chat_example()
    n = "48"
    cli = subprocess.run([os.environ["EDGELLM_BIN"], "run", "-m", model, "-p", prompt, "--temp", "0", "-n", n,
                          "-t", "2"], capture_output=True, text=True, timeout=300, check=True)
    api = subprocess.run([str(exe), model, "--temp", "0", "-n", n, "-t", "2"], input=prompt + "\n",
                         capture_output=True, text=True, timeout=300, check=True)
    assert api.stdout.strip(), api.stderr
    # Both print the answer then one newline.
    assert api.stdout == cli.stdout
