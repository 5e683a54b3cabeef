"""Short model names (`-m smollm2-135m`), `edgellm models`, and the default model: one table in
src/cli/models.cpp, resolved against the model cache, that must agree with scripts/fetch-models."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import model_dir

SOURCE_DIR = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
SHORT_NAMES = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m"]


def cli(engine, args, cache: Path, timeout=120):
    env = dict(os.environ, EDGELLM_MODEL_DIR=str(cache))
    return subprocess.run([engine.path, *args], capture_output=True, text=True, env=env, timeout=timeout)


def listing(engine, cache: Path) -> list[dict]:
    proc = cli(engine, ["models", "--json"], cache)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fetch_script_table() -> dict[str, tuple[str, str]]:
    """name -> (file, sha256) from the MODELS block of scripts/fetch-models."""
    text = (SOURCE_DIR / "scripts" / "fetch-models").read_text()
    block = re.search(r'^MODELS="\n(.*?)^"', text, re.S | re.M).group(1)
    rows = [line.split() for line in block.splitlines() if line.strip()]
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def cache_with_smollm(tmp_path, smollm_path) -> Path:
    """A model cache holding SmolLM2 only (a symlink to the real file)."""
    (tmp_path / Path(smollm_path).name).symlink_to(smollm_path)
    return tmp_path


def test_listing_names_every_model_and_marks_the_cached_one(engine, cache_with_smollm):
    models = listing(engine, cache_with_smollm)
    assert [m["name"] for m in models] == SHORT_NAMES
    by = {m["name"]: m for m in models}
    assert by["smollm2-135m"]["cached"] is True
    assert by["smollm2-135m"]["bytes"] == os.path.getsize(cache_with_smollm / by["smollm2-135m"]["file"])
    for name in SHORT_NAMES:
        m = by[name]
        assert m["fetch"] == f"scripts/fetch-models {name}"
        assert m["path"] == str(cache_with_smollm / m["file"])
        assert m["family"] and m["quantization"] and m["bytes"] > 50_000_000
        if name != "smollm2-135m":
            assert m["cached"] is False
    assert [m["name"] for m in models if m["default"]] == ["qwen2.5-coder-0.5b"]
    assert by["qwen2.5-coder-0.5b"]["quantization"] == "Q4_K_M" and by["qwen2.5-coder-0.5b"]["family"] == "qwen2"

    table = cli(engine, ["models"], cache_with_smollm).stdout
    lines = {line.split()[0]: line for line in table.splitlines() if line.split() and line.split()[0] in SHORT_NAMES}
    assert lines["smollm2-135m"].rstrip().endswith("yes")
    assert "scripts/fetch-models gemma3-270m" in lines["gemma3-270m"]
    assert "94 MiB" in lines["smollm2-135m"] and "Q4_1" in lines["smollm2-135m"]


def test_a_file_of_the_wrong_size_is_not_cached(engine, tmp_path):
    (tmp_path / "gemma-3-270m-q4_k_m.gguf").write_bytes(b"GGUF" + bytes(100))
    assert {m["name"]: m["cached"] for m in listing(engine, tmp_path)}["gemma3-270m"] is False


def test_table_agrees_with_the_fetch_script(engine, tmp_path):
    script = fetch_script_table()
    models = listing(engine, tmp_path)
    assert {m["name"]: m["file"] for m in models} == {n: f for n, (f, _) in script.items()}
    assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for _, sha in script.values())


def test_short_name_resolves_against_the_cache(engine, cache_with_smollm):
    proc = cli(engine, ["info", "-m", "smollm2-135m", "--no-tensors"], cache_with_smollm)
    assert proc.returncode == 0, proc.stderr
    assert f"file: {cache_with_smollm / 'SmolLM2-135M-Instruct.Q4_1.gguf'}" in proc.stdout
    # A path still works.
    proc = cli(engine, ["info", "-m", str(cache_with_smollm / "SmolLM2-135M-Instruct.Q4_1.gguf"), "--no-tensors"],
               cache_with_smollm)
    assert proc.returncode == 0, proc.stderr


def one_error_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_uncached_short_name_names_the_fetch_command(engine, cache_with_smollm):
    err = one_error_line(cli(engine, ["run", "-m", "gemma3-270m", "-p", "hi"], cache_with_smollm))
    assert "scripts/fetch-models gemma3-270m" in err and str(cache_with_smollm) in err
    assert all(n in err for n in SHORT_NAMES)


def test_unknown_name_lists_the_short_names(engine, tmp_path):
    err = one_error_line(cli(engine, ["run", "-m", "qwen-9000", "-p", "hi"], tmp_path))
    assert "model file not found: qwen-9000" in err and all(n in err for n in SHORT_NAMES)


@pytest.mark.parametrize("cmd", [["run", "-p", "hi"], ["chat"], ["serve", "--port", "0"], ["perplexity", "-f", "x"]])
def test_default_model_is_qwen_0_5b(engine, cache_with_smollm, cmd):
    """Without -m, run/chat/serve (and the other model commands) take Qwen2.5-Coder-0.5B; here it
    is absent from the cache (SmolLM2 is there), so the error names it and its fetch command."""
    err = one_error_line(cli(engine, cmd, cache_with_smollm))
    assert "default model qwen2.5-coder-0.5b" in err and "scripts/fetch-models qwen2.5-coder-0.5b" in err


def test_default_model_answers_capital_of_france(engine):
    """The first run (scripts/run): the default model, greedy, default int8 kernels."""
    if not (model_dir() / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").is_file():
        pytest.skip("qwen2.5-coder-0.5b is not cached (scripts/fetch-models default)")
    proc = subprocess.run([engine.path, "run", "-p", "What is the capital of France?", "--temp", "0", "-n", "24",
                           "-t", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Paris" in proc.stdout, proc.stdout
