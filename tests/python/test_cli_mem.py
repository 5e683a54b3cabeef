"""`edgellm info --mem` (the memory breakdown) and `--mem-budget` on run and serve.

The breakdown is checked to add up, and its total against the peak RSS of a real `run` with the
same settings. The band is deliberately wide (+-35%): peak RSS also holds the code and the C
library's heap slack, which the estimate leaves out, and only the KV rows a generation
writes become resident. This is an honesty check on the estimate, not a speed or tightness test;
the figures are written to mem_estimate_<model>.json for reports.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import model_path_or_skip, write_results

MiB = 2**20
BAND = 0.35
PROMPT = "Write a paragraph about mountains."


def cli(engine, *args, timeout=600):
    return subprocess.run([engine.path, *args], capture_output=True, text=True, timeout=timeout)


def mem_json(engine, model, *args):
    proc = cli(engine, "info", "--mem", "--json", "-m", model, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_breakdown_adds_up(engine, smollm_path):
    for args, slots, ctx in ((["-c", "1024"], 1, 1024), (["-c", "2048", "-P", "3", "-ctk", "q8_0"], 3, 2048)):
        m = mem_json(engine, smollm_path, *args)
        w, kv = m["weights"], m["kv_cache"]
        assert kv["n_ctx"] == ctx and kv["n_slots"] == slots
        assert kv["bytes"] == kv["bytes_per_token"] * ctx * slots
        assert w["resident_bytes"] == w["mapped_bytes"] + w["repacked_bytes"] + w["vector_bytes"]
        assert m["total_bytes"] == w["resident_bytes"] + kv["bytes"] + m["workspace"]["bytes"] + m["tokenizer_bytes"]
        # 224 bytes per token, 80 per merge (SmolLM2: 49152 tokens, 48900 merges).
        assert m["tokenizer_bytes"] == 224 * 49152 + 80 * 48900
        assert m["workspace"]["bytes"] > 0 and w["file_bytes"] > 0
        assert sum(w["repacked_names"].values()) == w["repacked_tensors"]
    # SmolLM2: 30 layers, 3 KV heads x 64; f32 keys and values 4 bytes each, q8_0 34 bytes per 32.
    assert mem_json(engine, smollm_path)["kv_cache"]["bytes_per_token"] == 30 * 2 * 192 * 4
    q8 = mem_json(engine, smollm_path, "-ctk", "q8_0", "-ctv", "q8_0")["kv_cache"]
    assert q8["bytes_per_token"] == 30 * 2 * 192 // 32 * 34 and q8["type_k"] == "q8_0"


def test_text_breakdown_names_the_parts(engine, smollm_path):
    proc = cli(engine, "info", "--mem", "-m", smollm_path, "-c", "512")
    assert proc.returncode == 0, proc.stderr
    for part in ("weights mapped", "weights repacked", "KV cache: 46080 bytes per token x 512", "workspace",
                 "tokenizer and vocabulary", "total"):
        assert part in proc.stdout, proc.stdout
    for bad, needle in ((["--json"], "--json goes with --mem"), (["--mem", "-c", "0"], "must be positive")):
        proc = cli(engine, "info", "-m", smollm_path, *bad)
        assert proc.returncode == 1 and needle in proc.stderr, proc.stderr


@pytest.mark.skipif(not shutil.which("/usr/bin/time"), reason="/usr/bin/time (Debian package 'time') is absent")
@pytest.mark.parametrize("name", ["SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                                  "gemma-3-270m-q4_k_m.gguf"])
def test_estimate_is_within_band_of_measured_peak_rss(engine, name):
    model = model_path_or_skip(name)
    settings = ["-c", "512", "-t", "2"]
    m = mem_json(engine, model, *settings)
    predicted = m["total_bytes"]
    proc = subprocess.run(["/usr/bin/time", "-v", engine.path, "run", "-m", model, *settings, "-p", PROMPT,
                           "--temp", "0", "-n", "64"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1)) * 1024
    write_results(f"mem_estimate_{name}.json", {"predicted_bytes": predicted, "peak_rss_bytes": rss})
    print(f"{name}: predicted {predicted / MiB:.1f} MiB, peak RSS {rss / MiB:.1f} MiB")
    assert abs(predicted - rss) <= BAND * rss, f"predicted {predicted / MiB:.1f} MiB vs peak RSS {rss / MiB:.1f} MiB"
    # The file pages of repacked matrices are released as their copies are made: both never stay resident.
    w = m["weights"]
    assert w["repacked_bytes"] > 0 and rss < w["file_bytes"] + w["repacked_bytes"], (rss, w)


def budget_line(stderr):
    lines = [l for l in stderr.splitlines() if l.startswith("mem-budget ")]
    assert len(lines) == 1, stderr
    m = re.match(r"mem-budget ([\d.]+ \w+): context (\d+), KV cache (\w+)/(\w+), (\d+) slots?", lines[0])
    assert m, lines[0]
    return lines[0], int(m.group(2)), m.group(3), m.group(4), int(m.group(5))


def run_budget(engine, model, budget, *extra):
    proc = cli(engine, "run", "-m", model, "-p", "Hi", "-n", "2", "--temp", "0", "-t", "2", "--mem-budget", budget,
               *extra)
    assert proc.returncode == 0, proc.stderr
    return budget_line(proc.stderr)


def test_run_budget_chooses_kv_type_then_context(engine, smollm_path):
    # Weights + workspace take about 105 MiB; f32 keys and values for 4096 tokens 180 MiB, f16 90.
    line, ctx, k, v, slots = run_budget(engine, smollm_path, "1G", "-c", "4096")
    assert (ctx, k, v, slots) == (4096, "f32", "f32", 1), line
    line, ctx, k, v, _ = run_budget(engine, smollm_path, "250M", "-c", "4096")
    assert (ctx, k, v) == (4096, "f16", "f16"), line
    line, ctx, k, v, _ = run_budget(engine, smollm_path, "130M", "-c", "4096")
    assert k == v == "q8_0" and 512 <= ctx < 4096 and ctx % 256 == 0, line
    # Types the user set are kept: the context shrinks instead.
    line, ctx, k, v, _ = run_budget(engine, smollm_path, "250M", "-c", "4096", "-ctk", "f32")
    assert (k, v) == ("f32", "f32") and 512 <= ctx < 4096, line


def test_run_budget_counts_the_draft_model(engine, smollm_path):
    # Alone, 4096 f32 tokens fit in 400M (about 105 MiB fixed + 180 MiB KV). A draft (SmolLM2 drafting
    # for itself: the same vocabulary) adds its weights, tokenizer and workspace (~105 MiB) and an
    # f32 cache of its own per token of context (45 KiB), so the context or the types must give.
    line, ctx, k, v, _ = run_budget(engine, smollm_path, "400M", "-c", "4096")
    assert (ctx, k, v) == (4096, "f32", "f32") and "draft" not in line, line
    line, ctx, k, v, _ = run_budget(engine, smollm_path, "400M", "-c", "4096", "--draft", smollm_path)
    assert "the draft model's weights and KV cache included" in line, line
    assert k == v == "q8_0" and 512 <= ctx < 4096 and ctx % 256 == 0, line
    m = re.search(r"weights \+ workspace ([\d.]+) MiB, KV ([\d.]+) MiB, total ([\d.]+) MiB", line)
    fixed, kv, total = map(float, m.groups())
    assert total <= 400 and fixed > 200, line
    # The KV figure holds both caches: target q8_0 (11.95 KiB) + draft f32 (45 KiB) per token.
    assert abs(kv - ctx * (30 * 2 * 192 // 32 * 34 + 30 * 2 * 192 * 4) / 2**20) < 0.1, line
    # With no room for both, a clear refusal.
    proc = cli(engine, "run", "-m", smollm_path, "-p", "Hi", "--mem-budget", "200M", "--draft", smollm_path)
    assert proc.returncode == 1 and "does not fit in the memory budget" in proc.stderr, proc.stderr


def test_chat_budget_line(engine, smollm_path):
    proc = subprocess.run([engine.path, "chat", "-m", smollm_path, "-n", "2", "-t", "2", "-c", "4096",
                           "--mem-budget", "250M"], input="Hi\n", capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    line, ctx, k, v, _ = budget_line(proc.stderr)
    assert (ctx, k, v) == (4096, "f16", "f16"), line


def test_budget_fraction_of_ram(engine, smollm_path):
    line, ctx, _, _, _ = run_budget(engine, smollm_path, "0.5", "-c", "1024")
    assert ctx == 1024, line


def test_budget_too_small_is_a_clear_refusal(engine, smollm_path):
    proc = cli(engine, "run", "-m", smollm_path, "-p", "Hi", "--mem-budget", "50M")
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "does not fit in the memory budget 50.0 MiB" in err and "512 tokens" in err and "at least" in err, err
    proc = cli(engine, "run", "-m", smollm_path, "-p", "Hi", "--mem-budget", "lots")
    assert proc.returncode == 1 and "bad memory size 'lots'" in proc.stderr, proc.stderr


def test_serve_budget_chooses_slots(engine, smollm_path):
    # q8_0 per slot of 2048 tokens is 23.9 MiB: 4 slots do not fit next to ~113 MiB (weights, workspace,
    # tokenizer), 3 do.
    proc = subprocess.Popen([engine.path, "serve", "-m", smollm_path, "--port", "0", "-t", "2", "-c", "2048",
                             "-P", "4", "--mem-budget", "195M"], stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        for line in proc.stderr:
            err += line
            if "listening on" in line or line.startswith("error"):
                break
        line, ctx, k, v, slots = budget_line(err)
        assert (ctx, k, v, slots) == (2048, "q8_0", "q8_0", 3), line
        assert "3 slots x 2048 tokens" in err, err
    finally:
        proc.terminate()
        proc.wait(timeout=60)
