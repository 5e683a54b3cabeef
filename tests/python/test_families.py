"""Families added after llama/qwen2/gemma3, each on a tiny random-weight GGUF written here the way
llama.cpp's converter lays it out, against the NumPy reference (tests/python/reference) logit by
logit: `--exact` (fp32 activations) to EXACT_TOL with the same top-1 everywhere, and the default
int8-activation kernels to TINY_TOL (test_logits.py explains both tolerances).

Each test also checks that the reference is sensitive to the family's own block: switching it
off in the reference moves the logits far past TINY_TOL, so agreement cannot come from the
engine ignoring it. Figures: pytest -s, and /tmp/edgellm-results/logits.json.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import reference
from reference import tiny_families as tiny
from test_logits import EXACT_TIE_EPS, EXACT_TOL, TINY_TOL, compare


def check(engine, name: str, info: dict, ids: list[int], ref: np.ndarray) -> None:
    """Engine logits in both modes against the reference's [T, V]."""
    for mode in ("exact", "fast"):
        eng = engine.logits(info["path"], ids, info["n_vocab"], exact=mode == "exact")
        if mode == "exact":
            compare(f"{name}/{mode}", ref, eng, EXACT_TOL, tie_eps=EXACT_TIE_EPS)
        else:
            compare(f"{name}/{mode}", ref, eng, TINY_TOL)


def ids_for(info: dict, n: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, info["n_vocab"], size=n).tolist()


def differs(model: reference.Model, ids, ref: np.ndarray, weights=None, **config_change) -> bool:
    """Whether the reference with a block switched off (changed config or weights) moves the
    logits past twice the fast-mode tolerance."""
    other = reference.Model(dataclasses.replace(model.config, **config_change),
                            weights if weights is not None else model.weights, model.metadata)
    return float(np.abs(reference.Forward(other).logits(ids) - ref).max()) > 2 * TINY_TOL[0]


def test_qwen3_qk_norm(engine, tmp_path):
    info = tiny.write_tiny_qwen3(str(tmp_path / "qwen3.gguf"))
    model = reference.load_model(info["path"])
    assert model.config.neox_rope and model.config.head_dim == 32 and not model.has("blk.0.attn_q.bias")
    ids = ids_for(info, 32, 1)
    ref = reference.Forward(model).logits(ids)
    no_norm = {k: v for k, v in model.weights.items()
               if not k.endswith(("attn_q_norm.weight", "attn_k_norm.weight"))}
    assert differs(model, ids, ref, weights=no_norm)
    check(engine, "tiny-qwen3/qk-norm", info, ids, ref)
