"""`edgellm bench`: llama-bench's flags and table, the --json fields the issue names, the
parallel-sequence decode test, depth (-d), the KV-cache bytes in the decode roofline, the
matmul multiply-adds set against the int8 peak, and clean errors for bad flags. Figures are not
asserted (speed is shown by benchmarks, not timed tests); only that they exist and are
consistent. The tiny random-weight models (tests/python/reference/tiny_models.py) make every
field computable here from the model's shape."""
from __future__ import annotations

import json
import os
import subprocess

import pytest



def bench(engine, *args, timeout=600):
    return subprocess.run([engine.path, "bench", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    from reference.tiny_models import write_tiny_qwen2
    return write_tiny_qwen2(str(tmp_path_factory.mktemp("bench") / "tiny-qwen2.gguf"))


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory):
    from reference.tiny_models import write_tiny_gemma3
    return write_tiny_gemma3(str(tmp_path_factory.mktemp("bench") / "tiny-gemma3.gguf"))


def kv_bytes(n_layer, kv_dim, depth, n_gen, window=None, swa_layers=()):
    """Keys and values read per decode step (fp32 cache): step i attends depth + i + 1 positions,
    at most `window` in sliding-window layers; averaged over the steps."""
    total = 0
    for il in range(n_layer):
        for i in range(n_gen):
            visible = depth + i + 1
            total += min(visible, window) if il in swa_layers else visible
    return round(total * 2 * kv_dim * 4 / n_gen)


def test_depth_kv_roofline_and_compute_peak_fields(engine, tiny_qwen2):
    from reference.tiny_models import D_MODEL, HEAD_DIM, N_FF, N_HEAD, N_HEAD_KV, N_LAYER
    proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "16", "-n", "6", "-d", "0,100", "-r", "2", "-t", "1",
                 "--json")
    assert proc.returncode == 0, proc.stderr
    assert "int8 peak" in proc.stderr and "GMAC/s" in proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["n_depth"], r["n_prompt"], r["n_gen"]) for r in rows] == [(0, 16, 0), (0, 0, 6), (100, 16, 0),
                                                                         (100, 0, 6)]
    kv_dim = N_HEAD_KV * HEAD_DIM
    layer_macs = N_LAYER * (D_MODEL * N_HEAD * HEAD_DIM * 2 + 2 * D_MODEL * kv_dim + 3 * D_MODEL * N_FF)
    out_macs = D_MODEL * tiny_qwen2["n_vocab"]
    for r in rows:
        decode = r["n_gen"] > 0
        # KV bytes only for decode, from the model's layers, KV heads and head dim (fp32 cache).
        want_kv = kv_bytes(N_LAYER, kv_dim, r["n_depth"], r["n_gen"]) if decode else 0
        assert r["kv_bytes_per_token"] == want_kv, r
        assert r["bytes_per_token"] == r["weight_bytes_per_token"] + r["kv_bytes_per_token"]
        # Prefill computes the output head for its last token only; decode for each token.
        want_macs = layer_macs + (out_macs if decode else out_macs / r["n_prompt"])
        assert abs(r["matmul_macs_per_token"] - want_macs) <= 1e-9 * want_macs
        assert abs(r["matmul_gmacs"] - r["avg_ts"] * want_macs / 1e9) <= 1e-9 * r["matmul_gmacs"]
        assert r["int8_peak_gmacs"] > 0 and r["int8_peak_loop"]
        assert abs(r["compute_peak_fraction"] - r["matmul_gmacs"] / r["int8_peak_gmacs"]) <= 1e-9
        if "int8_peak_vnni_gmacs" in r:
            assert "dpbusd" in r["int8_peak_vnni_loop"]
            assert abs(r["compute_peak_fraction_vnni"] - r["matmul_gmacs"] / r["int8_peak_vnni_gmacs"]) <= 1e-9
        if decode:
            # The roofline counts weights and the KV cache read at this depth.
            assert abs(r["roofline_ts"] - r["mem_bandwidth_gbs"] * 1e9 / r["bytes_per_token"]) <= 1e-6 * r["roofline_ts"]
    # Deeper caches cost more bytes per decoded token.
    assert rows[3]["kv_bytes_per_token"] > rows[1]["kv_bytes_per_token"] > 0


def test_depth_counts_the_sliding_window(engine, tiny_gemma3):
    """Gemma 3's local layers (5 of 6 here, window 8) read at most 8 positions at any depth."""
    from reference.tiny_models import G_HEAD_DIM, G_HEAD_KV, G_LAYER, G_WINDOW
    proc = bench(engine, "-m", tiny_gemma3["path"], "-p", "0", "-n", "4", "-d", "50", "-r", "1", "-t", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    [r] = json.loads(proc.stdout)
    assert r["kv_bytes_per_token"] == kv_bytes(G_LAYER, G_HEAD_KV * G_HEAD_DIM, 50, 4, G_WINDOW, range(5))


def test_depth_in_the_table_like_llama_bench(engine, tiny_qwen2):
    proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "8", "-n", "2", "-d", "32", "-r", "1", "-t", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("|")]
    assert "| GMAC/s | of int8 peak |" in lines[0]
    assert "| pp8 @ d32 |" in lines[2] and "| tg2 @ d32 |" in lines[3], proc.stdout
    assert all(l.rstrip().endswith("% |") for l in lines[2:]), proc.stdout


def test_depth_errors_are_clean(engine, tiny_qwen2):
    # The tiny model's context is 256 tokens.
    for args, needle in [(["-d", "x"], "-d"), (["-d", "250"], "-d 250")]:
        proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "8", "-n", "8", *args)
        assert proc.returncode == 1, (args, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("error: ") and needle in proc.stderr, (args, proc.stderr)


def test_json_fields_and_parallel_decode(engine, tiny_qwen2):
    path = tiny_qwen2["path"]
    proc = bench(engine, "-m", path, "-p", "16", "-n", "4", "-P", "1,3", "-r", "2", "-t", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["n_prompt"], r["n_gen"], r["n_parallel"]) for r in rows] == [(16, 0, 1), (0, 4, 1), (0, 4, 3)]
    size = os.path.getsize(path)
    for r in rows:
        assert r["n_threads"] == 1
        assert r["avg_ts"] > 0 and r["stddev_ts"] >= 0 and len(r["samples_ts"]) == 2
        assert r["mem_bandwidth_gbs"] > 0
        # Weight bytes read per token: the weight matrices, i.e. most of the file but not more.
        assert 0.5 * size < r["weight_bytes_per_token"] <= size
        assert r["bytes_per_token"] == r["weight_bytes_per_token"] + r["kv_bytes_per_token"]
    single, multi = rows[1], rows[2]
    # The roofline is a single-sequence figure: bandwidth / bytes per token. Each decode
    # repetition is paired with the bandwidth sampled around it; the fraction is their mean.
    bpt = single["bytes_per_token"]
    bw = single["mem_bandwidth_samples_gbs"]
    assert len(bw) == 2 and all(b > 0 for b in bw)
    assert abs(single["mem_bandwidth_gbs"] - sum(bw) / 2) <= 1e-9 * single["mem_bandwidth_gbs"]
    expected = single["mem_bandwidth_gbs"] * 1e9 / bpt
    assert abs(single["roofline_ts"] - expected) <= 1e-6 * expected
    paired = sum(t / (b * 1e9 / bpt) for t, b in zip(single["samples_ts"], bw)) / 2
    assert abs(single["roofline_fraction"] - paired) <= 1e-9 + 1e-6 * paired
    # And against the best bandwidth of the run, measured before the tests.
    best = single["mem_bandwidth_best_gbs"] * 1e9 / bpt
    assert abs(single["roofline_best_ts"] - best) <= 1e-6 * best
    assert abs(single["roofline_fraction_best_bw"] - single["avg_ts"] / best) <= 1e-9 + 1e-6 * single["avg_ts"] / best
    assert "roofline_ts" not in multi and "roofline_fraction" not in multi


def test_markdown_table_like_llama_bench(engine, tiny_qwen2):
    proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "8", "-n", "2", "-P", "2", "-r", "1", "-t", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| model | size | params |") and "| t/s |" in lines[0]
    assert "of roofline" in lines[0] and "of best-bw roofline" in lines[0]
    body = lines[2:]
    assert len(body) == 2, proc.stdout
    assert "| pp8 |" in body[0] and "| tg2 x2 |" in body[1]
    assert "±" in body[0]


def test_verification_passes(engine, tiny_qwen2):
    """-V: speculative verification passes of N tokens with every row's logits (the output head
    runs for each token, unlike prefill), named vN; each length's cost in one-token passes is
    set against v1 at the same depth."""
    from reference.tiny_models import D_MODEL, HEAD_DIM, N_FF, N_HEAD, N_HEAD_KV, N_LAYER
    proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "0", "-n", "0", "-V", "1,3", "-d", "0,20", "-r", "2", "-t",
                 "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["n_depth"], r["n_verify"], r["n_prompt"], r["n_gen"]) for r in rows] == [
        (0, 1, 0, 0), (0, 3, 0, 0), (20, 1, 0, 0), (20, 3, 0, 0)]
    kv_dim = N_HEAD_KV * HEAD_DIM
    layer_macs = N_LAYER * (D_MODEL * N_HEAD * HEAD_DIM * 2 + 2 * D_MODEL * kv_dim + 3 * D_MODEL * N_FF)
    want_macs = layer_macs + D_MODEL * tiny_qwen2["n_vocab"]
    for r in rows:
        assert r["avg_ts"] > 0 and len(r["samples_ts"]) == 2
        assert abs(r["matmul_macs_per_token"] - want_macs) <= 1e-9 * want_macs
        assert "roofline_ts" not in r
    for one, three in [(rows[0], rows[1]), (rows[2], rows[3])]:
        assert "pass_cost_vs_v1" not in one
        rel = 3 * one["avg_ts"] / three["avg_ts"]
        assert abs(three["pass_cost_vs_v1"] - rel) <= 1e-9 * rel
        assert abs(three["cost_per_extra_token"] - (rel - 1) / 2) <= 1e-9 * max(1.0, abs(rel))
    assert "v3 @ d20: a pass costs" in proc.stderr
    table = bench(engine, "-m", tiny_qwen2["path"], "-p", "0", "-n", "0", "-V", "2", "-d", "20", "-r", "1", "-t", "1")
    assert table.returncode == 0, table.stderr
    assert "| v2 @ d20 |" in table.stdout, table.stdout
    for bad in ["0", "65", "2,x"]:
        proc = bench(engine, "-m", tiny_qwen2["path"], "-p", "0", "-n", "0", "-V", bad)
        assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "-V" in proc.stderr, (bad, proc.stderr)


def test_bad_flags_are_clean_errors(engine, tiny_qwen2):
    for args, needle in [(["-p", "12,x"], "-p"), (["-P", "0"], "-P"), (["-r", "0"], "-r"), (["-t", "0"], "-t")]:
        proc = bench(engine, "-m", tiny_qwen2["path"], "-n", "1", *args)
        assert proc.returncode == 1, (args, proc.returncode, proc.stderr)
        assert proc.stderr.startswith("error: ") and needle in proc.stderr, (args, proc.stderr)


def test_info_isa_names_the_kernels_in_use(engine):
    """`info --isa`: the instruction set in use, then every one this CPU can use (bench-all
    reads it to add a native-ISA table when that is not AVX2)."""
    env = dict(os.environ)
    env.pop("EDGELLM_ISA", None)
    proc = subprocess.run([engine.path, "info", "--isa"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    active, available = proc.stdout.splitlines()[:2]
    assert active in available.split() and "scalar" in available.split()
    env["EDGELLM_ISA"] = "scalar"
    forced = subprocess.run([engine.path, "info", "--isa"], capture_output=True, text=True, timeout=60, env=env)
    assert forced.stdout.splitlines()[0] == "scalar"


def test_model_type_is_the_files_recipe(engine, tiny_qwen2, tmp_path):
    """A Q4_K_M file mixes Q4_K, Q6_K and fallback types (the tiny model's rows are too short for
    K-quant blocks, so most of its matrices fall back to Q5_0): bench names it by
    general.file_type, as llama-bench does, not by its most common matrix type."""
    out = str(tmp_path / "tiny-q4_k_m.gguf")
    q = subprocess.run([engine.path, "quantize", "-q", tiny_qwen2["path"], out, "Q4_K_M"],
                       capture_output=True, text=True, timeout=120)
    assert q.returncode == 0, q.stderr
    proc = bench(engine, "-m", out, "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["model_type"].endswith(" Q4_K_M")



def test_fill_random_reads_the_same_kv_bytes(engine, tiny_qwen2):
    """--fill-random writes the depth's rows directly (no prefill): the same cache types and
    positions are read, so the roofline's bytes match a prefilled run's. (The tiny model's head
    size, 16, cannot hold 32-element q8_0 blocks: f32 and f16.)"""
    args = ["-m", tiny_qwen2["path"], "-p", "0", "-n", "3", "-d", "100", "-r", "1", "-t", "1", "--json"]
    kv = {}
    for fill in ([], ["--fill-random"]):
        for ct in ("f32", "f16"):
            proc = bench(engine, *args, *fill, "-ctk", ct, "-ctv", ct)
            assert proc.returncode == 0, proc.stderr
            [r] = json.loads(proc.stdout)
            assert r["avg_ts"] > 0 and r["roofline_fraction"] > 0
            kv[(bool(fill), ct)] = r["kv_bytes_per_token"]
    assert kv[(True, "f32")] == kv[(False, "f32")] > 0
    assert kv[(True, "f16")] == kv[(False, "f16")] and abs(2 * kv[(False, "f16")] - kv[(False, "f32")]) <= 2


def test_speculative_side_by_side(engine, tiny_qwen2):
    """bench --lookup / --draft: plain and speculative decode of one prompt in one run, the
    acceptance and tokens per pass, and the same tokens from both (greedy)."""
    for extra in (["--lookup"], ["--draft", tiny_qwen2["path"], "--draft-max", "4"]):
        proc = bench(engine, "-m", tiny_qwen2["path"], "-n", "24", "-t", "1", "-r", "2", "--json",
                     "--spec-prompt", "the theory of the theory of the", *extra)
        assert proc.returncode == 0, proc.stderr
        j = json.loads(proc.stdout)
        assert j["same_tokens"] is True and j["repetitions"] == 2 and j["n_gen"] == 24
        assert j["plain_ts"] > 0 and j["speculative_ts"] > 0
        assert 0 <= j["accepted"] <= j["drafted"] and 0 <= j["acceptance"] <= 1
        assert j["tokens_per_pass"] >= 1
    table = bench(engine, "-m", tiny_qwen2["path"], "-n", "8", "-t", "1", "-r", "1", "--lookup")
    assert table.returncode == 0 and "| speculative t/s |" in table.stdout and "| yes |" in table.stdout
    for bad, needle in ((["--lookup", "--draft", tiny_qwen2["path"]], "one of them"),
                        (["--lookup", "-n", "8,16"], "one length"),
                        (["--lookup", "-t", "1,2"], "one thread count")):
        proc = bench(engine, "-m", tiny_qwen2["path"], *bad)
        assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
