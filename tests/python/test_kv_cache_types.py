"""KV cache storage types (-ctk / -ctv): f16 and q8_0 caches stay close to the f32 cache on a
real model (KL-divergence and same top-1 against a saved f32 base run, deterministic), each type
stores the bytes it should per token, bench reads that many bytes per step, and bad types are
one clear error line on every command that takes them."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

TEXT = "/usr/share/common-licenses/GPL-3"


def cli(engine, *args, timeout=600):
    return subprocess.run([engine.path, *args], capture_output=True, text=True, timeout=timeout)


def assert_clean_error(proc, *needles):
    assert proc.returncode == 1, f"exit {proc.returncode} (negative = killed by a signal): {proc.stderr}"
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got: {proc.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


@pytest.fixture(scope="module")
def text_file():
    if not os.path.isfile(TEXT):
        pytest.skip(f"{TEXT} is absent (Debian package base-files provides it)")
    return TEXT


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    from reference.tiny_models import write_tiny_qwen2
    return write_tiny_qwen2(str(tmp_path_factory.mktemp("kv") / "tiny-qwen2.gguf"))


@pytest.mark.parametrize("command", ["run", "chat", "perplexity", "bench", "serve"])
@pytest.mark.parametrize("flag,value", [("-ctk", "q9_0"), ("-ctv", "bf16"), ("--cache-type-k", "")])
def test_unknown_cache_type_is_one_clear_error(engine, smollm_path, command, flag, value):
    extra = {"run": ["-p", "hi"], "perplexity": ["-f", TEXT], "serve": ["--port", "0"]}.get(command, [])
    proc = cli(engine, command, "-m", smollm_path, *extra, flag, value, timeout=60)
    name = "-ctk" if flag != "-ctv" else "-ctv"
    assert_clean_error(proc, f"{name}: unknown KV cache type '{value}'", "valid: f32, f16, q8_0, q4_0")


@pytest.mark.parametrize("command", ["run", "serve"])
def test_block_type_needs_whole_blocks_per_head(engine, tiny_qwen2, command):
    # The tiny model's head_dim is 16: a 32-element q8_0 block would span two heads.
    extra = ["-p", "hi", "-n", "2"] if command == "run" else ["--port", "0"]
    proc = cli(engine, command, "-m", tiny_qwen2["path"], *extra, "-ctk", "f16", "-ctv", "q8_0", timeout=120)
    assert_clean_error(proc, "value type q8_0", "multiple of 32", "16")


def test_quantized_cache_stays_close_to_f32(engine, smollm_path, text_file, tmp_path):
    # --exact (fp32 activations) on both sides: with int8 activations any perturbation, however
    # small, changes which way activations round, a KL floor of ~3e-3 nats that would hide the
    # cache's own effect (tests/python/test_perplexity.py). Measured (SmolLM2-135M, 254
    # predictions): f16 KL 8e-7, same top-1 100%; q8_0 KL 1.1e-3, 96.9%, ppl -0.03%; q4_0 KL 0.23.
    base = str(tmp_path / "f32.base")
    common = ["-t", "2", "--exact", "--json"]
    r0 = json.loads(cli(engine, "perplexity", "-m", smollm_path, "-f", text_file, "-c", "256", "--chunks", "2",
                        "--kl-divergence-base", base, *common).stdout)
    # SmolLM2-135M: 30 layers, 3 KV heads of 64.
    assert (r0["cache_type_k"], r0["cache_type_v"], r0["kv_bytes_per_token"]) == ("f32", "f32", 30 * 2 * 192 * 4)
    # Generous bounds, yet far below what a wrong read gives (q8_0 rows read as another type, or
    # heads mixed up, put KL in the nats; q4_0 keys already reach 0.2).
    cases = {"f16": (2 * 192, 1e-4, 0.99, 0.002), "q8_0": (6 * 34, 1e-2, 0.93, 0.01)}
    for t, (row_bytes, max_kl, min_top1, max_ppl_rel) in cases.items():
        proc = cli(engine, "perplexity", "-m", smollm_path, "--kl-divergence-base", base, "--kl-divergence",
                   "-ctk", t, "-ctv", t, *common)
        assert proc.returncode == 0, proc.stderr
        r = json.loads(proc.stdout)
        assert (r["cache_type_k"], r["cache_type_v"]) == (t, t)
        assert r["kv_bytes_per_token"] == 30 * 2 * row_bytes
        assert 0 <= r["kl_divergence"] < max_kl, (t, r)
        assert r["top1_agreement"] >= min_top1, (t, r)
        assert abs(r["perplexity"] / r["perplexity_base"] - 1) < max_ppl_rel, (t, r)


def test_bench_reads_the_stored_bytes(engine, tiny_qwen2):
    from reference.tiny_models import HEAD_DIM, N_HEAD_KV, N_LAYER
    kv_dim = N_HEAD_KV * HEAD_DIM
    proc = cli(engine, "bench", "-m", tiny_qwen2["path"], "-p", "0", "-n", "4", "-d", "20", "-r", "1", "-t", "1",
               "-ctk", "f16", "-ctv", "f32", "--json")
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(proc.stdout)
    assert (r["type_k"], r["type_v"]) == ("f16", "f32")
    positions = N_LAYER * sum(20 + i + 1 for i in range(4))
    assert r["kv_bytes_per_token"] == round(positions * kv_dim * (2 + 4) / 4)
