"""The C API against the CLI: examples/chat.c (built on libedgellm.so) must give the same greedy
answer, token for token, as `edgellm run` on the same prompt, since both go through the same
chat template and generation loop. The example is found beside the CLI
(build/examples/edgellm-chat)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import jsonschema
import pytest

from conftest import model_path_or_skip

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about trains.",
    "List three prime numbers.",
]


def example(name: str = "edgellm-chat") -> Path:
    cli = os.environ.get("EDGELLM_BIN")
    if not cli:
        pytest.skip("EDGELLM_BIN is not set to the built edgellm CLI")
    exe = Path(cli).parent / "examples" / name
    if not exe.is_file():
        pytest.skip(f"{exe} is not built (ninja edgellm_chat_example edgellm_cockpit_example)")
    return exe


@pytest.mark.parametrize("prompt", PROMPTS)
def test_chat_example_matches_cli_greedy(prompt):
    model = model_path_or_skip("SmolLM2-135M-Instruct.Q4_1.gguf")
    exe = example()
    n = "48"
    cli = subprocess.run([os.environ["EDGELLM_BIN"], "run", "-m", model, "-p", prompt, "--temp", "0", "-n", n,
                          "-t", "2"], capture_output=True, text=True, timeout=300, check=True)
    api = subprocess.run([str(exe), model, "--temp", "0", "-n", n, "-t", "2"], input=prompt + "\n",
                         capture_output=True, text=True, timeout=300, check=True)
    assert api.stdout.strip(), api.stderr
    # Both print the answer then one newline.
    assert api.stdout == cli.stdout


COCKPIT_REQUESTS = [
    "Set the temperature to 22 degrees for everyone.",
    "Play some jazz on the radio.",
    "Take me to the airport and avoid toll roads.",
    "It's freezing on the passenger side!",
]


def cockpit_schema() -> dict:
    src = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    text = (src / "examples" / "cockpit.c").read_text()
    # The schema is the C string k_schema: its pieces, unescaped.
    body = text.split("k_schema =", 1)[1].split(";", 1)[0]
    import re
    return json.loads("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', body)).replace('\\"', '"'))


def test_cockpit_example_makes_valid_tool_calls():
    """Every answer is one tool call matching the example's schema (the constraint's promise),
    whatever the small model chooses."""
    model = model_path_or_skip("SmolLM2-135M-Instruct.Q4_1.gguf")
    exe = example("edgellm-cockpit")
    schema = cockpit_schema()
    out = subprocess.run([str(exe), model, "-t", "2"], input="\n".join(COCKPIT_REQUESTS) + "\n",
                         capture_output=True, text=True, timeout=300, check=True)
    calls = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(calls) == len(COCKPIT_REQUESTS), out.stderr
    for call in calls:
        jsonschema.validate(call, schema)
        assert call["tool"] in ("set_climate", "play_media", "navigate")
    # The dispatcher saw each call.
    tags = ("[climate]", "[media]", "[navigation]")
    assert sum(line.startswith(tags) for line in out.stderr.splitlines()) == len(calls)


def capi_test() -> Path:
    cli = os.environ.get("EDGELLM_BIN")
    if not cli:
        pytest.skip("EDGELLM_BIN is not set to the built edgellm CLI")
    exe = Path(cli).parent / "tests" / "capi_test"
    if not exe.is_file():
        pytest.skip(f"{exe} is not built (ninja capi_test)")
    return exe


def test_c_lora_adapters(tmp_path, smollm_path):
    """tests/c_api/capi_test.c `lora` (C) on a random adapter: it changes the greedy answer, scale 0
    is the base token for token, other handles' adapters are refused."""
    from conftest import reference_model
    from lora_adapters import write_adapter
    exe = capi_test()
    adapter = tmp_path / "adapter.gguf"
    write_adapter(str(adapter), reference_model(smollm_path), rank=8, alpha=16.0, seed=1)
    r = subprocess.run([str(exe), "lora", smollm_path, str(adapter)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "0 failed" in r.stderr


def test_c_embedding_model_equals_cli_embed(engine, tmp_path):
    """capi_test.c `embedder` (C) on a tiny BERT made by `edgellm convert`: the C API's vector is
    `edgellm embed`'s (runtime::Embedder both)."""
    from reference.bert import write_tiny_bert
    exe = capi_test()
    folder = write_tiny_bert(tmp_path / "tiny-hf")
    gguf = tmp_path / "tiny.gguf"
    subprocess.run([engine.path, "convert", str(folder), str(gguf), "-q", "--type", "f32"], check=True,
                   capture_output=True, timeout=300)
    text = "the cat sat on the mat"
    r = subprocess.run([str(exe), "embedder", str(gguf), text], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    cli = subprocess.run([engine.path, "embed", "-m", str(gguf), "--jsonl", "-t", "2"], input=json.dumps(text) + "\n",
                         capture_output=True, text=True, timeout=300, check=True)
    want = json.loads(cli.stdout.splitlines()[0])
    assert len(got) == len(want)
    assert max(abs(a - b) for a, b in zip(got, want)) < 1e-6
