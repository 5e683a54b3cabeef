"""Bad input to the CLI: one clear error line, a non-zero exit, never a crash (signal)."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_MODEL, model_path_or_skip


def run_cli(engine, args, stdin=None):
    return subprocess.run([engine.path, *args], input=stdin, capture_output=True, text=True, timeout=300)


def assert_clean_error(proc, *needles):
    assert proc.returncode == 1, f"exit {proc.returncode} (negative = killed by a signal): {proc.stderr}"
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def model_bytes(smollm_path) -> bytes:
    return Path(smollm_path).read_bytes()


def test_missing_file(engine, tmp_path):
    proc = run_cli(engine, ["run", "-m", str(tmp_path / "nope.gguf"), "-p", "hi"])
    assert_clean_error(proc, "not found", "nope.gguf")


def test_not_gguf(engine, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("this is a text file, not a model\n" * 10)
    assert_clean_error(run_cli(engine, ["run", "-m", str(p), "-p", "hi"]), "not a GGUF file")


def test_empty_file(engine, tmp_path):
    p = tmp_path / "empty.gguf"
    p.write_bytes(b"")
    assert_clean_error(run_cli(engine, ["info", "-m", str(p)]), "empty.gguf")


@pytest.mark.parametrize("keep", [20, 1000, 3_000_000, -100])
def test_truncated_gguf(engine, tmp_path, model_bytes, keep):
    p = tmp_path / "truncated.gguf"
    p.write_bytes(model_bytes[:keep])
    assert_clean_error(run_cli(engine, ["run", "-m", str(p), "-p", "hi"]), "truncated.gguf")


def test_corrupted_tensor_type(engine, tmp_path, model_bytes):
    # Overwrite the type id of the first tensor info (right after its name and dims) with 999.
    data = bytearray(model_bytes)
    name = b"token_embd.weight"
    i = data.index(name) + len(name)
    n_dims = int.from_bytes(data[i:i + 4], "little")
    type_at = i + 4 + 8 * n_dims
    data[type_at:type_at + 4] = (999).to_bytes(4, "little")
    p = tmp_path / "badtype.gguf"
    p.write_bytes(bytes(data))
    assert_clean_error(run_cli(engine, ["run", "-m", str(p), "-p", "hi"]), "999")


def test_corrupted_metadata_count(engine, tmp_path, model_bytes):
    data = bytearray(model_bytes)
    data[16:24] = (2**62).to_bytes(8, "little")  # absurd metadata key count
    p = tmp_path / "badkv.gguf"
    p.write_bytes(bytes(data))
    assert_clean_error(run_cli(engine, ["info", "-m", str(p)]))


def test_empty_prompt(engine, smollm_path):
    assert_clean_error(run_cli(engine, ["run", "-m", smollm_path, "-p", ""]), "empty prompt")


def test_prompt_longer_than_context(engine, smollm_path):
    prompt = "word " * 400
    assert_clean_error(run_cli(engine, ["run", "-m", smollm_path, "-c", "128", "-p", prompt, "-n", "4"]),
                       "context")


def test_default_model_missing_names_fetch_command(engine, tmp_path):
    env = dict(os.environ, EDGELLM_MODEL_DIR=str(tmp_path))
    proc = subprocess.run([engine.path, "run", "-p", "hi"], capture_output=True, text=True, env=env, timeout=60)
    assert_clean_error(proc, "scripts/fetch-models")


def test_chat_survives_context_overflow(engine, smollm_path):
    """An interactive session reports the overflow and keeps going."""
    stdin = ("word " * 200) + "\nHi\n/exit\n"
    proc = subprocess.run([engine.path, "chat", "-m", smollm_path, "-c", "160", "-n", "8", "--temp", "0"],
                          input=stdin, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "context" in proc.stderr
    assert proc.stdout.strip(), "no answer after the overflow"
