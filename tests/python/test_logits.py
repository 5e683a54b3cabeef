"""Engine logits vs the independent NumPy reference (tests/python/reference).

For every prompt and every position: the engine's top-1 token must equal the reference's, and
the max and mean |logit difference| must stay under tolerances. Token ids come from the reference
tokenizer (built from the GGUF vocabulary), so this test does not lean on the engine's tokenizer.

Tolerances. The reference runs the dequantized weights in float32 with float activations. An
engine that rounds matmul inputs to 8-bit blocks (as llama.cpp does) drifts from it; we measured
that drift by running the reference with its inputs rounded to 32-value int8 blocks
(Forward(quantize_activations=True)) on these prompts:
  SmolLM2  max |diff| 0.9-2.7, mean |diff| 0.14-0.24, top-1 swaps where the margin was <= 0.20
  gemma3   max |diff| 0.7-1.8, mean |diff| 0.10-0.21, top-1 swaps where the margin was <= 0.11
  tiny     max |diff| 0.19 (qwen2) / 0.34 (gemma3), mean |diff| 0.035 / 0.042
The tolerances below are about 2x those figures (the mean: 1.5-2.5x of what the engine shows).
The K-quant kernels now take 32-value activation blocks too (they took 256-value ones, and
gemma3 then needed a mean tolerance of 0.6), so gemma3 has SmolLM2's tolerance. An engine that
keeps activations in float matches to ~2e-4; the figures printed by pytest -s (and
/tmp/edgellm-results/logits.json) show which case applies.
Top-1 may differ only where the reference's best two logits are within TIE_EPS (near ties, which
8-bit rounding legitimately flips); such positions are reported, not failed.

Two engine modes are checked. "exact" (--exact: fp32 activations, weights dequantized per row)
must agree with the reference to EXACT_TOL and give the same top-1 at every position (a tie
closer than EXACT_TIE_EPS could flip on float summation order alone). "fast" (the default int8
activation kernels) must stay within the tolerances above; the engine's own int8 rounding was
measured to flip the top-1 where the reference margin was up to 0.52 (smollm2/code position 4),
so fast mode uses FAST_TIE_EPS = 1.0 and additionally requires >= TOP1_MIN top-1 agreement.
Measured with 32-value blocks everywhere (AVX3, 2 threads): SmolLM2 max |diff| 1.0-3.4, mean
0.16-0.26, top-1 94-99%; gemma3 max 1.0-3.0, mean 0.10-0.32 (0.32: the 24-token chat turn),
top-1 94-99% (with 256-value K-quant blocks the range was 88-99%, gemma3 lowest).
Which positions flip is itself rounding noise: the X4 kernels (Q4_0/Q4_1 repacked, the same
integer products and float sums in another order, equal to 1e-5 per matmul) moved SmolLM2's
per-prompt top-1 from 94-100% to 88-100% (prose 67/69 -> 61/69, every flip at a reference
margin under 0.21) with mean |diff| unchanged (0.16-0.27). TOP1_MIN is 0.85 for that spread; a
wrong kernel lands far below it.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import EngineError, reference_model, write_results

import reference

# (max |diff|, mean |diff|) per model family; see the module docstring for the measurements.
SMOLLM_TOL = (5.0, 0.5)
GEMMA3_TOL = (5.0, 0.5)
TINY_TOL = (1.0, 0.1)
EXACT_TOL = (0.01, 0.001)
EXACT_TIE_EPS = 1e-3  # reference top-2 margin under which a swap is reported, not failed (exact)
FAST_TIE_EPS = 1.0    # same for the int8-activation kernels (see the docstring)
TOP1_MIN = 0.85       # fraction of positions whose top-1 must agree (measured >= 0.88)
MODES = ["exact", "fast"]

CHATML = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
          "<|im_end|>\n<|im_start|>user\nCan you give me three tips for staying focused while "
          "studying?<|im_end|>\n<|im_start|>assistant\nSure! 1. Put your phone in another room.")
PROSE = ("The lighthouse keeper climbed the spiral stairs every evening, counting the steps as his "
         "father had taught him. From the lantern room he could see the fishing boats returning "
         "through the fog, their lamps swaying like fireflies over the dark water. Nobody in the "
         "village remembered a night when the light had failed, and he intended to keep it that way.")
CODE = ("def fibonacci(n: int) -> list[int]:\n    \"\"\"Return the first n Fibonacci numbers.\"\"\"\n"
        "    seq = [0, 1]\n    while len(seq) < n:\n        seq.append(seq[-1] + seq[-2])\n"
        "    return seq[:n]\n\n\nif __name__ == \"__main__\":\n    print(fibonacci(10))\n")
NUMBERS = ("Invoice 2024-0917: 3 x 12.50 EUR = 37.50 EUR; shipping 4.99; total 42.49. "
           "Paid on 17/09/2024 at 14:05. Next primes: 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31,")
MULTILINGUAL = ("Bonjour, comment allez-vous aujourd'hui ? Ich hoffe, es geht Ihnen gut. "
                "今天天气很好。 Сегодня хорошая погода. ¿Dónde está la biblioteca?")
LONG = " ".join([PROSE, "Meanwhile, in the city, the engineers argued about the new bridge."] * 2)

SMOLLM_PROMPTS = {"chatml": (CHATML, True), "prose": (PROSE, False), "code": (CODE, False),
                  "numbers": (NUMBERS, False), "multilingual": (MULTILINGUAL, False),
                  "long": (LONG, False)}
GEMMA_TURNS = ("<start_of_turn>user\nGive me two tips for sleeping better.<end_of_turn>\n<start_of_turn>model\n"
               "1. Keep a regular schedule.")
GEMMA3_PROMPTS = {"prose": PROSE, "code": CODE, "multilingual": MULTILINGUAL, "numbers": NUMBERS,
                  "turns": GEMMA_TURNS}

_RESULTS: dict[str, dict] = {}


def compare(name: str, ref: np.ndarray, eng: np.ndarray, tol: tuple[float, float], record: bool = True,
            tie_eps: float = EXACT_TIE_EPS) -> dict:
    """ref, eng: [T, V]. Returns figures; asserts top-1 agreement (modulo ties) and tolerance."""
    assert eng.shape == ref.shape, f"{name}: engine logits {eng.shape} vs reference {ref.shape}"
    assert np.isfinite(eng).all(), f"{name}: engine logits contain NaN/inf"
    diff = np.abs(ref.astype(np.float64) - eng)                     # [T, V]
    ref_top = np.argmax(ref, axis=1)                                # [T]
    eng_top = np.argmax(eng, axis=1)                                # [T]
    ties, bad = [], []
    for pos in np.nonzero(ref_top != eng_top)[0]:
        margin = float(ref[pos, ref_top[pos]] - ref[pos, eng_top[pos]])
        (ties if margin < tie_eps else bad).append((int(pos), margin))
    figures = {
        "n_tokens": int(ref.shape[0]),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_logit": float(np.abs(ref).max()),
        "top1_agree": int((ref_top == eng_top).sum()),
        "near_ties": ties,
    }
    if record:
        _RESULTS[name] = figures
        write_results("logits.json", _RESULTS)
    print(f"\n{name:24s} T={figures['n_tokens']:3d}  max|diff|={figures['max_abs_diff']:.4f}  "
          f"mean|diff|={figures['mean_abs_diff']:.5f}  max|logit|={figures['max_abs_logit']:.1f}  "
          f"top1 {figures['top1_agree']}/{figures['n_tokens']}  near-ties={ties}")
    assert not bad, f"{name}: top-1 differs at (position, reference margin) {bad}"
    max_tol, mean_tol = tol
    assert figures["top1_agree"] >= TOP1_MIN * figures["n_tokens"], f"{name}: top-1 agrees at too few positions"
    assert figures["max_abs_diff"] < max_tol, f"{name}: max |logit diff| {figures['max_abs_diff']:.4f} >= {max_tol}"
    assert figures["mean_abs_diff"] < mean_tol, f"{name}: mean |logit diff| {figures['mean_abs_diff']:.4f} >= {mean_tol}"
    return figures


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm(smollm_path):
    model = reference_model(smollm_path)
    return model, reference.Forward(model), reference.GGUFTokenizer(model.metadata)


def mode_args(mode: str, fast_tol: tuple[float, float]) -> tuple[bool, tuple[float, float], float]:
    """(exact flag, tolerance, tie margin) for an engine mode."""
    return (True, EXACT_TOL, EXACT_TIE_EPS) if mode == "exact" else (False, fast_tol, FAST_TIE_EPS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prompt", list(SMOLLM_PROMPTS))
def test_smollm_logits_match_reference(engine, smollm, smollm_path, prompt, mode):
    model, fwd, tok = smollm
    text, special = SMOLLM_PROMPTS[prompt]
    ids = tok.encode(text, parse_special=special)
    assert 16 <= len(ids) <= 200, f"prompt {prompt} has {len(ids)} tokens"
    exact, tol, tie = mode_args(mode, SMOLLM_TOL)
    ref = fwd.logits(ids)                                                        # [T, V]
    eng = engine.logits(smollm_path, ids, model.config.n_vocab, exact=exact)    # [T, V]
    compare(f"smollm2/{prompt}/{mode}", ref, eng, tol, tie_eps=tie)


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gemma3(gemma3_path):
    model = reference_model(gemma3_path)
    return model, reference.Forward(model), reference.GGUFTokenizer(model.metadata)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prompt", list(GEMMA3_PROMPTS))
def test_gemma3_logits_match_reference(engine, gemma3, gemma3_path, prompt, mode):
    model, fwd, tok = gemma3
    ids = [tok.bos_id] + tok.encode(GEMMA3_PROMPTS[prompt], parse_special=prompt == "turns")
    assert 16 <= len(ids) <= 200
    exact, tol, tie = mode_args(mode, GEMMA3_TOL)
    eng = engine.logits(gemma3_path, ids, model.config.n_vocab, exact=exact)
    ref = fwd.logits(ids)
    compare(f"gemma3/{prompt}/{mode}", ref, eng, tol, tie_eps=tie)


# ---------------------------------------------------------------------------------------------
def test_tiny_qwen2_logits_match_reference(engine, tmp_path):
    from reference.tiny_models import write_tiny_qwen2
    info = write_tiny_qwen2(str(tmp_path / "tiny-qwen2.gguf"))
    model = reference.load_model(info["path"])
    assert model.config.neox_rope and model.has("blk.0.attn_q.bias") and model.has("output.weight")
    ids = np.random.default_rng(7).integers(0, info["n_vocab"], size=48).tolist()
    ref = reference.Forward(model).logits(ids)
    eng = engine.logits(info["path"], ids, info["n_vocab"])
    compare("tiny-qwen2/random48", ref, eng, TINY_TOL)


def test_tiny_gemma3_sliding_window_logits_match_reference(engine, tmp_path):
    """48 tokens through a window of 8: exercises the sliding-window mask, the per-layer RoPE
    base (layers 0-4 local 1e4, layer 5 global 1e6), QK-norm and the post norms."""
    import dataclasses
    from reference.tiny_models import write_tiny_gemma3
    info = write_tiny_gemma3(str(tmp_path / "tiny-gemma3.gguf"))
    model = reference.load_model(info["path"])
    c = model.config
    assert c.sliding_window == 8 and [c.is_sliding(i) for i in range(6)] == [True] * 5 + [False]
    ids = [2] + np.random.default_rng(8).integers(4, info["n_vocab"], size=47).tolist()
    ref = reference.Forward(model).logits(ids)                               # [48, V]
    # The comparison is sensitive to both features: ignoring either moves logits far past TINY_TOL.
    for change in ({"sliding_window": 10**6}, {"rope_base_local": c.rope_base}):
        other = reference.Model(dataclasses.replace(c, **change), model.weights, model.metadata)
        assert np.abs(reference.Forward(other).logits(ids) - ref).max() > 2 * TINY_TOL[0], change
    try:
        eng = engine.logits(info["path"], ids, info["n_vocab"])
    except EngineError as e:  # gemma3 support is optional in the engine: skip, never fail
        pytest.skip(f"engine cannot run gemma3 yet: {e}")
    compare("tiny-gemma3/window8", ref, eng, TINY_TOL)


# --- reference self-checks (no engine needed) -------------------------------------------------
def test_reference_greedy_chatml_is_sensible(smollm):
    """The reference alone must produce the right answer: guards against a wrong-but-agreeing pair."""
    model, fwd, tok = smollm
    prompt = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    out = reference.greedy(fwd, tok.encode(prompt, parse_special=True), 12, stop_ids=(2,))
    text = tok.decode(out)
    print(f"\nreference greedy: {text!r}")
    assert "Paris" in text


def _unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's converter permutation of attn_q/attn_k rows: GGUF rows are ordered
    (head, pair i, member) for adjacent-pair rope; HF order is (head, member, pair i)."""
    rows, cols = w.shape                                        # [n_head*Dh, D]
    return w.reshape(n_head, rows // n_head // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def test_reference_llama_rope_layout_equivalence(smollm):
    """Adjacent-pair rope on the GGUF (permuted) weights == NeoX rope on un-permuted weights.
    This is the claim the llama path rests on; it checks rope() and the layout reasoning."""
    model, fwd, tok = smollm
    c = model.config
    ids = tok.encode(PROSE)[:24]
    hf = reference.Model(config=reference.Config(**{**c.__dict__, "neox_rope": True}),
                         weights=dict(model.weights), metadata=model.metadata)
    for il in range(c.n_layer):
        hf.weights[f"blk.{il}.attn_q.weight"] = _unpermute_rows(model.w(f"blk.{il}.attn_q.weight"), c.n_head)
        hf.weights[f"blk.{il}.attn_k.weight"] = _unpermute_rows(model.w(f"blk.{il}.attn_k.weight"), c.n_head_kv)
    a = fwd.logits(ids)                                         # [T, V]
    b = reference.Forward(hf).logits(ids)                       # [T, V]
    print(f"\nrope layouts: max |diff| = {np.abs(a - b).max():.2e}")
    np.testing.assert_allclose(a, b, atol=2e-3)


@pytest.mark.parametrize("bug", ["neox_rope", "rope_base_1e4", "rms_eps_1e-2"])
def test_compare_rejects_subtly_wrong_forward(smollm, bug):
    """The tolerances are loose enough for int8 activations yet still catch plausible engine
    bugs: a wrong rope pairing, a wrong rope base, a wrong RMSNorm epsilon (1e-2 instead of 1e-5)."""
    model, fwd, tok = smollm
    c = model.config.__dict__
    changes = {"neox_rope": {"neox_rope": True}, "rope_base_1e4": {"rope_base": 1e4},
               "rms_eps_1e-2": {"rms_eps": 1e-2}}[bug]
    wrong = reference.Model(config=reference.Config(**{**c, **changes}), weights=model.weights,
                            metadata=model.metadata)
    ids = tok.encode(PROSE)
    with pytest.raises(AssertionError) as err:
        compare(f"wrong/{bug}", fwd.logits(ids), reference.Forward(wrong).logits(ids), SMOLLM_TOL, record=False)
    print(f"\nrejected {bug}: {str(err.value).splitlines()[0][:160]}")
