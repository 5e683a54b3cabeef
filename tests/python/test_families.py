"""Families added after llama/qwen2/gemma3, each on a tiny random-weight GGUF written here the way
llama.cpp's converter lays it out, against the NumPy reference (tests/python/reference) logit by
logit: `--exact` (fp32 activations) to EXACT_TOL with the same top-1 everywhere, and the default
int8-activation kernels (the matrices are Q8_0) to TINY_TOL (test_logits.py explains both
tolerances and the top-1 rules).

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
from test_logits import EXACT_TIE_EPS, EXACT_TOL, FAST_TIE_EPS, TINY_TOL, compare


def check(engine, name: str, info: dict, ids: list[int], ref: np.ndarray) -> None:
    """Engine logits in both modes against the reference's [T, V]."""
    for mode in ("exact", "fast"):
        eng = engine.logits(info["path"], ids, info["n_vocab"], exact=mode == "exact")
        if mode == "exact":
            compare(f"{name}/{mode}", ref, eng, EXACT_TOL, tie_eps=EXACT_TIE_EPS)
        else:
            # int8 rounding may flip near-tied top-1s (test_logits.py); TOP1_MIN still holds.
            compare(f"{name}/{mode}", ref, eng, TINY_TOL, tie_eps=FAST_TIE_EPS)


def ids_for(info: dict, n: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, info["n_vocab"], size=n).tolist()


def differs(model: reference.Model, ids, ref: np.ndarray, weights=None, margin: float = 2 * TINY_TOL[0],
            **config_change) -> bool:
    """Whether the reference with a block switched off (changed config or weights) moves the
    logits past `margin` (by default twice the fast-mode tolerance)."""
    other = reference.Model(dataclasses.replace(model.config, **config_change),
                            weights if weights is not None else model.weights, model.metadata)
    return float(np.abs(reference.Forward(other).logits(ids) - ref).max()) > margin


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


def test_mistral_llama_file_with_sliding_window(engine, tmp_path):
    """48 tokens through a window of 8 on every layer of a Mistral-named llama-arch file."""
    info = tiny.write_tiny_mistral(str(tmp_path / "mistral.gguf"))
    model = reference.load_model(info["path"])
    c = model.config
    assert c.arch == "llama" and c.sliding_window == 8 and all(c.is_sliding(i) for i in range(c.n_layer))
    ids = ids_for(info, 48, 2)
    ref = reference.Forward(model).logits(ids)
    assert differs(model, ids, ref, sliding_window=0)
    check(engine, "tiny-mistral/window8", info, ids, ref)


@pytest.mark.parametrize("source", ["rope_freqs", "metadata"])
def test_llama31_rope_scaling(engine, tmp_path, source):
    info = tiny.write_tiny_llama31(str(tmp_path / "llama31.gguf"), as_tensor=source == "rope_freqs")
    model = reference.load_model(info["path"])
    f = model.config.rope_factors
    assert f is not None and f.max() == 8.0 and f.min() == 1.0 and ((f > 1) & (f < 8)).any()
    ids = ids_for(info, 48, 3)
    ref = reference.Forward(model).logits(ids)
    assert differs(model, ids, ref, rope_factors=None)
    check(engine, f"tiny-llama3.1/{source}", info, ids, ref)


def test_gemma2_softcaps_alternating_window_query_scale(engine, tmp_path):
    info = tiny.write_tiny_gemma2(str(tmp_path / "gemma2.gguf"))
    model = reference.load_model(info["path"])
    c = model.config
    assert [c.is_sliding(i) for i in range(4)] == [True, False, True, False] and c.sliding_window == 8
    assert c.attn_softcap == 8.0 and c.final_softcap == 15.0 and c.attn_scale == 0.25 and c.head_dim == 64
    ids = ids_for(info, 48, 4)
    ref = reference.Forward(model).logits(ids)
    for change in ({"attn_softcap": 0.0}, {"final_softcap": 0.0}, {"sliding_window": 0},
                   {"attn_scale": 1 / np.sqrt(c.head_dim)}, {"rope_base_local": c.rope_base}):
        assert differs(model, ids, ref, **change), change
    check(engine, "tiny-gemma2/softcap-window8", info, ids, ref)


@pytest.mark.parametrize("n_tokens", [24, 48])
def test_phi3_fused_projections_longrope(engine, tmp_path, n_tokens):
    """24 tokens: context within the original 32, short factors; 48: long factors."""
    info = tiny.write_tiny_phi3(str(tmp_path / "phi3.gguf"))
    model = reference.load_model(info["path"])
    c = model.config
    assert model.has("blk.0.attn_qkv.weight") and not model.has("blk.0.ffn_gate.weight")
    assert c.n_rot == 8 and c.rope_ctx_orig == tiny.PHI3_CTX_ORIG and c.rope_mscale > 1.1
    ids = ids_for(info, n_tokens, 5)
    ref = reference.Forward(model).logits(ids)
    # The short factors (8 of 16 dims rotated, positions under 24) move the logits less: 1.7.
    factors = "rope_factors_long" if n_tokens > c.rope_ctx_orig else "rope_factors"
    assert differs(model, ids, ref, margin=TINY_TOL[0], **{factors: None})
    assert differs(model, ids, ref, rope_mscale=1.0)
    check(engine, f"tiny-phi3/longrope-{n_tokens}", info, ids, ref)


def test_minicpm_scales(engine, tmp_path):
    info = tiny.write_tiny_minicpm(str(tmp_path / "minicpm.gguf"))
    model = reference.load_model(info["path"])
    c = model.config
    assert (c.embed_scale, c.logit_scale) == (3.0, 4.0) and abs(c.residual_scale - 6 / np.sqrt(2)) < 1e-6
    assert not c.neox_rope
    ids = ids_for(info, 32, 6)
    ref = reference.Forward(model).logits(ids)
    for change in ({"embed_scale": 1.0}, {"residual_scale": 1.0}, {"logit_scale": 1.0}):
        assert differs(model, ids, ref, **change), change
    check(engine, "tiny-minicpm/scales", info, ids, ref)
