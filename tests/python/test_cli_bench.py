"""`edgellm bench`: llama-bench's flags and table, the --json fields the issue names, the
parallel-sequence decode test, and clean errors for bad flags. Figures are not asserted
(speed is shown by benchmarks, not timed tests); only that they exist and are consistent."""
from __future__ import annotations

import json
import os
import subprocess

from conftest import DEFAULT_MODEL, model_path_or_skip


def bench(engine, *args, timeout=600):
    return subprocess.run([engine.path, "bench", *args], capture_output=True, text=True, timeout=timeout)


def test_json_fields_and_parallel_decode(engine, smollm_path):
    proc = bench(engine, "-m", smollm_path, "-p", "16", "-n", "4", "-P", "1,3", "-r", "2", "-t", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["n_prompt"], r["n_gen"], r["n_parallel"]) for r in rows] == [(16, 0, 1), (0, 4, 1), (0, 4, 3)]
    size = os.path.getsize(smollm_path)
    for r in rows:
        assert r["n_threads"] == 1
        assert r["avg_ts"] > 0 and r["stddev_ts"] >= 0 and len(r["samples_ts"]) == 2
        assert r["mem_bandwidth_gbs"] > 0
        # Bytes read per token: the weight matrices, i.e. most of the file but not more.
        assert 0.5 * size < r["bytes_per_token"] <= size
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


def test_markdown_table_like_llama_bench(engine, smollm_path):
    proc = bench(engine, "-m", smollm_path, "-p", "8", "-n", "2", "-P", "2", "-r", "1", "-t", "1")
    assert proc.returncode == 0, proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith("|")]
    assert lines[0].startswith("| model | size | params |") and "| t/s |" in lines[0]
    assert "of roofline" in lines[0] and "of best-bw roofline" in lines[0]
    body = lines[2:]
    assert len(body) == 2, proc.stdout
    assert "| pp8 |" in body[0] and "| tg2 x2 |" in body[1]
    assert "±" in body[0]


def test_bad_flags_are_clean_errors(engine, smollm_path):
    for args, needle in [(["-p", "12,x"], "-p"), (["-P", "0"], "-P"), (["-r", "0"], "-r"), (["-t", "0"], "-t")]:
        proc = bench(engine, "-m", smollm_path, "-n", "1", *args)
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
