"""LoRA gradients of the fine-tuning backward pass (`edgellm lora-grad`, src/train/) against
central finite differences of an independent NumPy forward pass in float64.

For tiny random-weight models of each family (reference/tiny_models.py: llama with a tied head,
qwen2 with biases and NeoX RoPE, gemma3 with QK-norm, post-norms, GeGLU, a sliding window and two
RoPE bases) and a random adapter on every q/k/v/output/gate/up/down matrix (B non-zero, so dL/dA
is not trivially zero), the engine returns the summed cross-entropy over the target tokens and
its gradient for every factor. The reference merges W + scale·B·A in float64 and differentiates
the same loss along one random direction per factor tensor: (L(θ+εD) - L(θ-εD)) / 2ε against
<grad, D>, relative error ≤ 1e-3. A quantized base (Q8_0 weights, dequantized row by row in
the backward pass; the reference reads the same dequantized values) is checked too.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGUFReader

sys.path.insert(0, os.path.dirname(__file__))
from lora_adapters import write_adapter  # noqa: E402

import reference  # noqa: E402
from reference.tiny_models import write_tiny_gemma3, write_tiny_llama, write_tiny_qwen2  # noqa: E402

RANK, ALPHA, EPS, TOL = 4, 8.0, 1e-4, 1e-3
BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")




def f64_logits(fwd, ids) -> np.ndarray:
    # Forward.logits casts its result to float32; run its steps here to keep float64.
    c = fwd.c
    pos = np.arange(len(ids))
    x = fwd.m.w("token_embd.weight")[np.asarray(ids)].astype(np.float64) * c.embed_scale
    for il in range(c.n_layer):
        x = fwd._layer(il, x, pos)
    x = fwd._norm(x, "output_norm")
    head = "output" if fwd.m.has("output.weight") else "token_embd"
    out = fwd._linear(x, head)
    if c.final_softcap > 0:
        out = c.final_softcap * np.tanh(out / c.final_softcap)
    return out


def ce_sum(model, weights, ids, targets) -> float:
    fwd = reference.Forward(dataclasses.replace(model, weights=weights), dtype=np.float64)
    z = f64_logits(fwd, ids)
    z = z - z.max(axis=-1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    t = np.nonzero(np.asarray(targets[1:]))[0]  # positions t predicting ids[t+1]
    return float(-lp[t, np.asarray(ids)[t + 1]].sum())


def merged64(model, factors, scale):
    w = {k: v.astype(np.float64) for k, v in model.weights.items()}
    for name, (A, B) in factors.items():
        w[name] = w[name] + scale * (B.astype(np.float64) @ A.astype(np.float64))
    return w


def perturbed(model, merged, name, A, B, kind, D, step, scale):
    """The merged float64 weights with factor `kind` of `name` moved by step·D (one side of a central difference)."""
    A2, B2 = A.astype(np.float64), B.astype(np.float64)
    if kind == "lora_a":
        A2 = A2 + step * D
    else:
        B2 = B2 + step * D
    w = dict(merged)
    w[name] = model.weights[name].astype(np.float64) + scale * (B2 @ A2)
    return w


def read_grads(path):
    r = GGUFReader(path)
    out = {}
    for t in r.tensors:
        base, kind = t.name.rsplit(".", 1)
        shape = tuple(int(x) for x in reversed(t.shape))  # ggml ne -> NumPy
        out.setdefault(base, {})[kind] = np.array(t.data, dtype=np.float64).reshape(shape)
    return out


FAMILIES = {
    "llama": write_tiny_llama,
    "qwen2": write_tiny_qwen2,
    "gemma3": write_tiny_gemma3,
}


@pytest.mark.parametrize("family,quant", [("llama", None), ("qwen2", None), ("gemma3", None), ("qwen2", "Q8_0")])
def test_lora_gradients_match_finite_differences(tmp_path, family, quant):
    path = str(tmp_path / f"{family}.gguf")
    info = FAMILIES[family](path)
    if quant:
        qpath = str(tmp_path / f"{family}-{quant}.gguf")
        subprocess.run([BIN, "quantize", path, qpath, quant], check=True, capture_output=True)
        path = qpath
    model = reference.load_model(path)
    adapter = str(tmp_path / "adapter.gguf")
    factors = write_adapter(adapter, model, rank=RANK, alpha=ALPHA, seed=7, strength=0.3)
    rng = np.random.default_rng(3)
    T = 14  # gemma3's window is 8: its local layers mask keys
    ids = rng.integers(0, info["n_vocab"], T).tolist()
    targets = [0] * 4 + [1] * (T - 4)
    grads_file = str(tmp_path / "grads.gguf")
    out = subprocess.run([BIN, "lora-grad", "-m", path, "--lora", adapter, "--exact", "-t", "2",
                          "--ids", ",".join(map(str, ids)), "--targets", ",".join(map(str, targets)),
                          "--out", grads_file], check=True, capture_output=True, text=True).stdout
    engine_loss = float(out.split()[1])
    grads = read_grads(grads_file)
    scale = ALPHA / RANK
    base_w = merged64(model, factors, scale)
    ref_loss = ce_sum(model, base_w, ids, targets)
    assert abs(engine_loss - ref_loss) <= 1e-4 * abs(ref_loss), (engine_loss, ref_loss)
    assert set(grads) == set(factors)
    worst = 0.0
    for name, (A, B) in factors.items():
        g = grads[name]
        for kind, X in (("lora_a", A), ("lora_b", B)):
            D = rng.standard_normal(X.shape)
            analytic = float((g[kind] * D).sum())

            def at(sign):
                return ce_sum(model, perturbed(model, base_w, name, A, B, kind, D, sign * EPS, scale), ids, targets)
            numeric = (at(1) - at(-1)) / (2 * EPS)
            rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
            worst = max(worst, rel)
            assert rel <= TOL, f"{name}.{kind}: analytic {analytic:.9g} numeric {numeric:.9g} rel {rel:.2e}"
    print(f"{family}{'-' + quant if quant else ''}: loss {engine_loss:.6f} (ref {ref_loss:.6f}), "
          f"{2 * len(factors)} factor tensors, worst relative error {worst:.2e}")


@pytest.mark.parametrize("family,isa", [("llama", None), ("qwen2", None), ("gemma3", None), ("qwen2", "scalar")])
def test_transposed_backward_matches_dequantizing_backward(tmp_path, family, isa):
    """finetune's default backward pass (W^T·dy through Q8_0 transposes of the base matrices on the int8
    matmul kernels, src/train/transposed.h) against the one that dequantizes W (--no-transpose), on the same
    int8 forward pass of a Q8_0 base: every factor's gradient within 3% (relative L2 norm), and the
    transposes really used (the tiny vocabulary of 264 rows has none: its head takes the other path)."""
    path = str(tmp_path / f"{family}.gguf")
    info = FAMILIES[family](path)
    qpath = str(tmp_path / f"{family}-q8.gguf")
    subprocess.run([BIN, "quantize", path, qpath, "Q8_0"], check=True, capture_output=True)
    model = reference.load_model(qpath)
    adapter = str(tmp_path / "adapter.gguf")
    factors = write_adapter(adapter, model, rank=RANK, alpha=ALPHA, seed=7, strength=0.3)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, info["n_vocab"], 14).tolist()
    targets = [0] * 4 + [1] * 10
    env = dict(os.environ)
    env.pop("EDGELLM_EXACT", None)
    if isa:
        env["EDGELLM_ISA"] = isa
    runs = {}
    for variant in ("transposed", "dequantizing"):
        out_file = str(tmp_path / f"{variant}.gguf")
        cmd = [BIN, "lora-grad", "-m", qpath, "--lora", adapter, "-t", "2", "--ids", ",".join(map(str, ids)),
               "--targets", ",".join(map(str, targets)), "--out", out_file]
        if variant == "dequantizing":
            cmd.append("--no-transpose")
        words = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.split()
        runs[variant] = (float(words[1]), int(words[5]), read_grads(out_file))
    (loss_t, bytes_t, g_t), (loss_d, bytes_d, g_d) = runs["transposed"], runs["dequantizing"]
    assert bytes_t > 0 and bytes_d == 0
    assert loss_t == loss_d  # same forward pass
    worst = 0.0
    for name in factors:
        for kind in ("lora_a", "lora_b"):
            a, b = g_t[name][kind], g_d[name][kind]
            rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))
            worst = max(worst, rel)
            assert rel <= 0.03, f"{name}.{kind}: relative difference {rel:.3e}"
    print(f"{family} ({isa or 'default ISA'}): worst relative gradient difference {worst:.2e}")


def log_softmax64(model, weights, ids) -> np.ndarray:
    z = f64_logits(reference.Forward(dataclasses.replace(model, weights=weights), dtype=np.float64), ids)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def margin_weights(base_lp, targets, boost, tau) -> np.ndarray:
    """finetune --kl-margin-boost's per-target weights 1 + boost·exp(-margin / tau), margin the base's top-2 gap."""
    t = np.nonzero(np.asarray(targets[1:]))[0]
    top2 = np.sort(base_lp[t], axis=-1)[:, -2:]
    return 1.0 + boost * np.exp(-(top2[:, 1] - top2[:, 0]) / tau)


def ce_kl_sum(model, weights, ids, targets, kl_weight, base_lp, ce_weight=1.0, kl_w_row=None) -> tuple[float, float]:
    """Summed ce_weight·cross-entropy + kl_weight·KL(p_base || p) over the target positions (each KL times its
    kl_w_row weight when given), and the unweighted KL sum alone."""
    lp = log_softmax64(model, weights, ids)
    t = np.nonzero(np.asarray(targets[1:]))[0]
    ce = -lp[t, np.asarray(ids)[t + 1]].sum()
    kl_rows = (np.exp(base_lp[t]) * (base_lp[t] - lp[t])).sum(axis=-1)
    w = np.ones(len(t)) if kl_w_row is None else kl_w_row
    return float(ce_weight * ce + kl_weight * (w * kl_rows).sum()), float(kl_rows.sum())


def tiny_with_adapter(tmp_path, family, seed):
    """A tiny random model of the family and a random adapter on it: (path, info, model, adapter path, factors)."""
    path = str(tmp_path / f"{family}.gguf")
    info = FAMILIES[family](path)
    model = reference.load_model(path)
    adapter = str(tmp_path / "adapter.gguf")
    factors = write_adapter(adapter, model, rank=RANK, alpha=ALPHA, seed=seed, strength=0.3)
    return path, info, model, adapter, factors


def lora_grad_run(tmp_path, path, adapter, ids, targets, kl, ce, tag, boost=0.0, tau=0.1):
    out = str(tmp_path / f"g-{tag}.gguf")
    words = subprocess.run([BIN, "lora-grad", "-m", path, "--lora", adapter, "--exact", "-t", "2", "--kl-weight",
                            str(kl), "--ce-weight", str(ce), "--kl-margin-boost", str(boost), "--kl-margin-tau",
                            str(tau), "--ids", ",".join(map(str, ids)), "--targets",
                            ",".join(map(str, targets)), "--out", out],
                           check=True, capture_output=True, text=True).stdout.split()
    return float(words[1]), float(words[7]), read_grads(out)


# gemma3 is left out: its tiny random model's next-token distributions are so peaked (cross-entropy ~28 nats per
# token) that no adapter strength moves them measurably (KL ~0.002 at strength 20), so the check would hold without
# the KL term. The head code is shared by every family; gemma3's soft-cap, if any, comes before the KL.
@pytest.mark.parametrize("family,ce", [("llama", 1.0), ("qwen2", 1.0), ("llama", 0.0), ("qwen2", 0.0), ("qwen2", 0.5)])
def test_kl_term_gradients_match_finite_differences(tmp_path, family, ce):
    """finetune --kl-data's loss (lora-grad --kl-weight, --ce-weight as finetune --kl-data-ce): ce·cross-entropy plus
    W·KL(p_base || p) at every target, p_base the same model with the adapter off. Its value and its LoRA gradients
    against the NumPy reference in float64 (central finite differences along one random direction per factor
    tensor), relative error ≤ 1e-3. The weight is large enough that the KL part dominates the gradient, so a wrong KL
    gradient fails here; and the same engine gradient is far from the reference with another cross-entropy weight
    (without the KL term at ce 1, with ce 1 at ce < 1), so a missing or ignored weight fails too."""
    path, info, model, adapter, factors = tiny_with_adapter(tmp_path, family, 11)
    rng = np.random.default_rng(13)
    T, W = 14, 4.0
    ids = rng.integers(0, info["n_vocab"], T).tolist()
    targets = [0] * 3 + [1] * (T - 3)
    engine_loss, engine_kl, grads = lora_grad_run(tmp_path, path, adapter, ids, targets, W, ce, "fd")
    scale = ALPHA / RANK
    base_lp = log_softmax64(model, {k: v.astype(np.float64) for k, v in model.weights.items()}, ids)
    merged = merged64(model, factors, scale)
    ref_loss, ref_kl = ce_kl_sum(model, merged, ids, targets, W, base_lp, ce)
    assert W * ref_kl > 0.05 * ref_loss  # the adapter moves the distribution: the KL term is not negligible
    assert abs(engine_kl - ref_kl) <= 1e-4 * ref_kl, (engine_kl, ref_kl)
    assert abs(engine_loss - ref_loss) <= 1e-4 * abs(ref_loss), (engine_loss, ref_loss)
    # The other loss the same gradient must not match: the cross-entropy alone (ce 1), or ce 1 with the KL (ce < 1).
    other = (1.0, 0.0) if ce == 1.0 else (1.0, W)
    worst, worst_other = 0.0, 0.0
    for name, (A, B) in factors.items():
        for kind, X in (("lora_a", A), ("lora_b", B)):
            D = rng.standard_normal(X.shape)
            analytic = float((grads[name][kind] * D).sum())

            def at(sign, ce_w, kl_w):
                w = perturbed(model, merged, name, A, B, kind, D, sign * EPS, scale)
                return ce_kl_sum(model, w, ids, targets, kl_w, base_lp, ce_w)[0]
            numeric = (at(1, ce, W) - at(-1, ce, W)) / (2 * EPS)
            rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
            worst = max(worst, rel)
            numeric_other = (at(1, *other) - at(-1, *other)) / (2 * EPS)
            worst_other = max(worst_other, abs(analytic - numeric_other) / max(abs(numeric_other), 1e-12))
            assert rel <= TOL, f"{name}.{kind}: analytic {analytic:.9g} numeric {numeric:.9g} rel {rel:.2e}"
    assert worst_other > 100 * TOL  # the check can tell this loss's gradient from the other one's
    print(f"{family} ce {ce}: loss {engine_loss:.6f} (ref {ref_loss:.6f}), KL {engine_kl:.6f} (ref {ref_kl:.6f}), "
          f"worst relative error {worst:.2e} (against ce {other[0]:g} + KL {other[1]:g}: {worst_other:.2e})")


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_ce_weight_zero_is_the_kl_term_alone(tmp_path, family):
    """finetune --kl-data-ce 0 (lora-grad --ce-weight 0): the loss is W·KL and its gradient the KL term's alone. The
    engine's own decomposition: grad(ce 0, KL W) = grad(ce 1, KL W) - grad(ce 1, KL 0), every factor within 1e-4
    (L2 norm relative to grad(ce 1, KL W)'s: the gradient is linear in the two weights, the fp32
    difference cancels), and far from grad(ce 1, KL W), so the cross-entropy really is left out. Without the KL term (W 0) a ce-0 example has loss 0 and gradient 0."""
    path, info, _, adapter, factors = tiny_with_adapter(tmp_path, family, 17)
    rng = np.random.default_rng(19)
    ids = rng.integers(0, info["n_vocab"], 12).tolist()
    targets = [0] * 2 + [1] * 10
    W = 3.0
    l_kl, kl_kl, g_kl = lora_grad_run(tmp_path, path, adapter, ids, targets, W, 0.0, "kl")
    l_both, kl_both, g_both = lora_grad_run(tmp_path, path, adapter, ids, targets, W, 1.0, "both")
    l_ce, _, g_ce = lora_grad_run(tmp_path, path, adapter, ids, targets, 0.0, 1.0, "ce")
    l_none, _, g_none = lora_grad_run(tmp_path, path, adapter, ids, targets, 0.0, 0.0, "none")
    assert kl_kl > 0 and abs(l_kl - W * kl_kl) <= 1e-5 * l_kl, (l_kl, kl_kl)
    assert abs(l_both - (l_ce + W * kl_both)) <= 1e-5 * l_both, (l_both, l_ce, kl_both)
    assert l_none == 0.0
    worst, nearest_both = 0.0, np.inf
    for name in factors:
        for kind in ("lora_a", "lora_b"):
            kl_only = g_kl[name][kind]
            diff = g_both[name][kind] - g_ce[name][kind]
            # fp32 sums: the difference cancels, so the error is measured against the larger terms' size.
            rel = float(np.linalg.norm(kl_only - diff) / max(np.linalg.norm(g_both[name][kind]), 1e-12))
            worst = max(worst, rel)
            assert rel <= 1e-4, f"{name}.{kind}: relative difference {rel:.3e} (|diff| {np.linalg.norm(diff):.3e})"
            nearest_both = min(nearest_both, float(np.linalg.norm(kl_only - g_both[name][kind]) /
                                                   np.linalg.norm(g_both[name][kind])))
            assert not np.any(g_none[name][kind])
    assert nearest_both > 0.1  # the cross-entropy's part is not negligible: a ce weight ignored would fail
    print(f"{family}: KL-only gradient = (ce + KL) - ce within {worst:.2e}; "
          f"at least {nearest_both:.2f} (relative) from the ce + KL gradient")


@pytest.mark.parametrize("family,ce", [("llama", 0.0), ("qwen2", 0.0), ("qwen2", 1.0)])
def test_margin_weighted_kl_gradients_match_finite_differences(tmp_path, family, ce):
    """finetune --kl-margin-boost B --kl-margin-tau τ: each target's KL times 1 + B·exp(-margin / τ), margin the base's
    top log-probability minus the runner-up's at that position. Value and LoRA gradients against the NumPy reference
    (central finite differences in float64, relative error ≤ 1e-3). The weights differ between positions by more than
    a factor 2 here, and the engine's gradient is far from that of the KL weighted alike everywhere by the weights'
    mean, so a weight taken at the wrong position, ignored or applied to the loss only fails."""
    path, info, model, adapter, factors = tiny_with_adapter(tmp_path, family, 23)
    rng = np.random.default_rng(29)
    T, W, BOOST = 14, 4.0, 20.0
    ids = rng.integers(0, info["n_vocab"], T).tolist()
    targets = [0] * 3 + [1] * (T - 3)
    scale = ALPHA / RANK
    base_lp = log_softmax64(model, {k: v.astype(np.float64) for k, v in model.weights.items()}, ids)
    # The tiny random models' margins are nats wide, not the real models' tenths: τ = their median spreads the weights.
    top2 = np.sort(base_lp[np.nonzero(np.asarray(targets[1:]))[0]], axis=-1)[:, -2:]
    TAU = float(np.median(top2[:, 1] - top2[:, 0]))
    w_row = margin_weights(base_lp, targets, BOOST, TAU)
    engine_loss, engine_kl, grads = lora_grad_run(tmp_path, path, adapter, ids, targets, W, ce, "mw", BOOST, TAU)
    assert w_row.max() > 2 * w_row.min(), w_row  # the positions really are weighted differently
    merged = merged64(model, factors, scale)
    ref_loss, ref_kl = ce_kl_sum(model, merged, ids, targets, W, base_lp, ce, w_row)
    assert abs(engine_kl - ref_kl) <= 1e-4 * ref_kl, (engine_kl, ref_kl)  # the KL reported stays unweighted
    assert abs(engine_loss - ref_loss) <= 1e-4 * abs(ref_loss), (engine_loss, ref_loss)
    uniform = np.full_like(w_row, w_row.mean())
    worst, worst_uniform = 0.0, 0.0
    for name, (A, B) in factors.items():
        for kind, X in (("lora_a", A), ("lora_b", B)):
            D = rng.standard_normal(X.shape)
            analytic = float((grads[name][kind] * D).sum())

            def at(sign, w):
                m = perturbed(model, merged, name, A, B, kind, D, sign * EPS, scale)
                return ce_kl_sum(model, m, ids, targets, W, base_lp, ce, w)[0]
            numeric = (at(1, w_row) - at(-1, w_row)) / (2 * EPS)
            rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
            worst = max(worst, rel)
            numeric_u = (at(1, uniform) - at(-1, uniform)) / (2 * EPS)
            worst_uniform = max(worst_uniform, abs(analytic - numeric_u) / max(abs(numeric_u), 1e-12))
            assert rel <= TOL, f"{name}.{kind}: analytic {analytic:.9g} numeric {numeric:.9g} rel {rel:.2e}"
    assert worst_uniform > 100 * TOL  # the check tells per-position weights from one weight for all
    print(f"{family} ce {ce}: weights {w_row.min():.2f}-{w_row.max():.2f}, loss {engine_loss:.6f} "
          f"(ref {ref_loss:.6f}), worst relative error {worst:.2e} (against the mean weight: {worst_uniform:.2e})")


def hinge_parts(base_lp, lp, t, cap, chosen=None):
    """finetune --hinge-weight's pieces per target: the hinge's argument γ - (lp_c - max_{j≠c} lp_j), c the base's
    argmax at each position (or `chosen`), γ = min(the base's margin there, cap), and the adapted gap between the best
    and second-best token other than c (where the runner-up would switch). Log-probability gaps are logit gaps."""
    b = base_lp[t]
    c = b.argmax(axis=-1) if chosen is None else np.asarray(chosen)
    rows = np.arange(len(t))
    top2 = np.sort(b, axis=-1)[:, -2:]
    gamma = np.minimum(top2[:, 1] - top2[:, 0], cap)
    a = lp[t].copy()
    lc = a[rows, c]
    a[rows, c] = -np.inf
    others = np.sort(a, axis=-1)[:, -2:]
    return gamma - (lc - others[:, 1]), others[:, 1] - others[:, 0]


def hinge_rows(base_lp, lp, t, cap, chosen=None) -> np.ndarray:
    """The per-target hinges max(0, γ - (lp_c - max_{j≠c} lp_j))."""
    return np.maximum(0.0, hinge_parts(base_lp, lp, t, cap, chosen)[0])


def ce_kl_hinge_sum(model, weights, ids, targets, ce, kl, hw, cap, base_lp, chosen=None,
                    hinge_base_lp=None) -> tuple[float, float]:
    """ce·cross-entropy + kl·KL(p_base || p) + hw·hinge summed over the targets, and the unweighted hinge sum. The
    hinge's choices and γ come from hinge_base_lp when given (a misplaced hinge), its choices from `chosen`."""
    lp = log_softmax64(model, weights, ids)
    t = np.nonzero(np.asarray(targets[1:]))[0]
    ce_sum_ = -lp[t, np.asarray(ids)[t + 1]].sum()
    kl_sum = (np.exp(base_lp[t]) * (base_lp[t] - lp[t])).sum()
    h = hinge_rows(base_lp if hinge_base_lp is None else hinge_base_lp, lp, t, cap, chosen).sum()
    return float(ce * ce_sum_ + kl * kl_sum + hw * h), float(h)


def hinge_run(tmp_path, path, adapter, ids, targets, ce, kl, hw, cap, tag):
    out = str(tmp_path / f"h-{tag}.gguf")
    words = subprocess.run([BIN, "lora-grad", "-m", path, "--lora", adapter, "--exact", "-t", "2", "--ce-weight",
                            str(ce), "--kl-weight", str(kl), "--hinge-weight", str(hw), "--hinge-margin-cap",
                            str(cap), "--ids", ",".join(map(str, ids)), "--targets", ",".join(map(str, targets)),
                            "--out", out], check=True, capture_output=True, text=True).stdout.split()
    return float(words[1]), float(words[9]), int(words[11]), read_grads(out)


@pytest.mark.parametrize("family,ce,kl", [("llama", 0.0, 0.0), ("qwen2", 0.0, 0.0), ("qwen2", 1.0, 2.0)])
def test_hinge_on_the_base_choice_gradients_match_finite_differences(tmp_path, family, ce, kl):
    """finetune --hinge-weight W --hinge-margin-cap G: at each target W·max(0, γ - (l_c - max_{j≠c} l_j)), c the base's
    argmax there (adapter off), γ = min(base margin, G). Value, number of active hinges and LoRA gradients against
    the NumPy reference (central finite differences in float64, relative error ≤ 1e-3). The targets are the
    positions where neither the hinge's argument nor the runner-up's lead sits within 0.02 nats of a kink (so the
    difference quotient sees one linear piece), with some hinges active and some not. The same engine gradient is
    far from that of the loss without the hinge, with c the next token of the sequence instead of the base's
    choice, and with every position's (c, γ) taken from the next position: a hinge ignored, on the wrong token or at
    the wrong position fails."""
    path, info, model, adapter, factors = tiny_with_adapter(tmp_path, family, 31)
    rng = np.random.default_rng(37)
    T, HW, CLEAR = 24, 3.0, 0.02
    ids = rng.integers(0, info["n_vocab"], T).tolist()
    scale = ALPHA / RANK
    base_lp = log_softmax64(model, {k: v.astype(np.float64) for k, v in model.weights.items()}, ids)
    merged = merged64(model, factors, scale)
    lp = log_softmax64(model, merged, ids)
    every = np.arange(T - 1)
    top2 = np.sort(base_lp[every], axis=-1)[:, -2:]
    CAP = float(np.median(top2[:, 1] - top2[:, 0]))  # some positions' γ is the cap, the others' their margin
    arg, lead = hinge_parts(base_lp, lp, every, CAP)
    clear = (np.abs(arg) > CLEAR) & (lead > CLEAR)
    targets = [0] + [int(x) for x in clear]
    t = np.nonzero(np.asarray(targets[1:]))[0]
    active = int((arg[t] > 0).sum())
    assert 2 <= active <= len(t) - 2, (arg, clear)  # some hinges on, some off
    engine_loss, engine_hinge, engine_active, grads = hinge_run(tmp_path, path, adapter, ids, targets, ce, kl, HW,
                                                                CAP, "fd")
    ref_loss, ref_hinge = ce_kl_hinge_sum(model, merged, ids, targets, ce, kl, HW, CAP, base_lp)
    assert engine_active == active, (engine_active, active)
    assert abs(engine_hinge - ref_hinge) <= 1e-4 * ref_hinge, (engine_hinge, ref_hinge)
    assert abs(engine_loss - ref_loss) <= 1e-4 * abs(ref_loss), (engine_loss, ref_loss)
    next_token = np.asarray(ids)[t + 1]
    assert np.any(next_token != base_lp[t].argmax(axis=-1))  # the sequence's own tokens are not the base's choices
    shifted = np.roll(base_lp, -1, axis=0)  # row t holds position t+1's base distribution
    variants = {"no hinge": dict(hw=0.0), "next token": dict(chosen=next_token), "next position": dict(hinge_base_lp=shifted)}
    worst, nearest = 0.0, {k: 0.0 for k in variants}
    for name, (A, B) in factors.items():
        for kind, X in (("lora_a", A), ("lora_b", B)):
            D = rng.standard_normal(X.shape)
            analytic = float((grads[name][kind] * D).sum())

            def at(sign, hw=HW, **kw):
                m = perturbed(model, merged, name, A, B, kind, D, sign * EPS, scale)
                return ce_kl_hinge_sum(model, m, ids, targets, ce, kl, hw, CAP, base_lp, **kw)[0]
            numeric = (at(1) - at(-1)) / (2 * EPS)
            rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
            worst = max(worst, rel)
            assert rel <= TOL, f"{name}.{kind}: analytic {analytic:.9g} numeric {numeric:.9g} rel {rel:.2e}"
            for v, kw in variants.items():
                other = (at(1, **kw) - at(-1, **kw)) / (2 * EPS)
                nearest[v] = max(nearest[v], abs(analytic - other) / max(abs(other), 1e-12))
    for v, far in nearest.items():
        assert far > 100 * TOL, (v, far)  # the check tells the hinge from a missing or misplaced one
    print(f"{family} ce {ce} KL {kl}: {active}/{len(t)} hinges active, cap {CAP:.3f}, loss {engine_loss:.6f} "
          f"(ref {ref_loss:.6f}), worst relative error {worst:.2e}; against "
          + ", ".join(f"{v} {far:.2e}" for v, far in nearest.items()))

