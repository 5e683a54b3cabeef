"""bench/routing_bench.py without servers: thresholds chosen from device scores give the cloud
shares asked for under the router's own rule, and the table and the PNG are written."""
from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def load():
    spec = importlib.util.spec_from_file_location("routing_bench", ROOT / "bench/routing_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("signal", ["entropy", "logprob"])
def test_thresholds_give_the_requested_shares(signal):
    rb = load()
    rng = random.Random(5)
    values = [round(rng.uniform(0.2, 3.5) if signal == "entropy" else rng.uniform(-6, -0.1), 3) for _ in range(45)]
    shares = [0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0]
    ts = rb.pick_thresholds(values, shares, signal)
    got = sorted(rb.predicted_share(values, t, signal) for t in ts)
    for s in shares:
        assert min(abs(g - s) for g in got) <= 1 / 45 + 1e-9, (s, got)
    assert 0.0 in got
    # No score at all (an empty answer) always escalates, as in the router.
    assert rb.predicted_share([None, 1.0], 9.9, "entropy") == 0.5


def test_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    rb = load()
    row = lambda tier, ok, ms: {"correct": ok, "tier": tier, "escalated": tier == "cloud", "fallback": False,
                                "reason": "x", "wall_ms": ms, "device_ms": ms, "cloud_ms": None, "scores": {}}
    out = [rb.summarize("device-only", [row("device", True, 10), row("device", False, 20)]),
           rb.summarize("cloud-only", [row("cloud", True, 50), row("cloud", True, 70)]),
           rb.summarize("max_mean_entropy 1", [row("cloud", True, 40), row("device", False, 20)], 1.0, 0.5)]
    assert out[2]["cloud_share"] == 0.5 and out[2]["accuracy"] == 0.5

    class A:
        prompts, max_tokens, local_model, cloud_model = "p.jsonl", 8, "a.gguf", "b.gguf"
    md = rb.table(out, 2, A)
    assert "| max_mean_entropy 1 | 50% | 50% | 50.0% | 1 |" in md
    rb.plot(out, tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
