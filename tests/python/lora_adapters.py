"""Random LoRA adapters in llama.cpp's GGUF layout, written with the `gguf` package, and the NumPy
merge that gives the reference model they should act as.

Layout (llama.cpp's convert_lora_to_gguf / llama-adapter, read from their documentation and
code): general.type = "adapter", adapter.type = "lora", adapter.lora.alpha; for a base matrix W
of NumPy shape [n_out, n_in]: "<name>.lora_a" of NumPy shape [rank, n_in] and "<name>.lora_b" of
shape [n_out, rank] (GGUF ne [n_in, rank] and [rank, n_out]). Applied as
W·x + scale·B·(A·x), scale = user_scale·alpha/rank (user_scale alone when alpha is 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import dequantize, quantize

TARGETS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
QTYPES = {"F32": GGMLQuantizationType.F32, "F16": GGMLQuantizationType.F16, "Q8_0": GGMLQuantizationType.Q8_0}


def _stored(x: np.ndarray, qtype: str) -> tuple[np.ndarray, np.ndarray, GGMLQuantizationType | None]:
    """(the array to write, the float32 values the file then holds, raw dtype for the writer)."""
    x = x.astype(np.float32)
    if qtype == "F32":
        return x, x, None
    if qtype == "F16":
        h = x.astype(np.float16)
        return h, h.astype(np.float32), None
    q = quantize(x, QTYPES[qtype])
    return q, dequantize(q, QTYPES[qtype]).astype(np.float32).reshape(x.shape), QTYPES[qtype]


def write_adapter(path: str, model, *, rank: int, alpha: float, seed: int, targets=TARGETS, layers=None,
                  qtype: str = "F32", strength: float = 0.15, arch: str | None = None) -> dict:
    """Writes an adapter for `model` (a reference.Model) and returns {base name: (A, B)} as stored.

    B is sized so that alpha/rank·B·A has `strength` times W's Frobenius norm: a change the
    logits show clearly, small enough to keep the model a language model.
    """
    rng = np.random.default_rng(seed)
    c = model.config
    w = GGUFWriter(path, arch or c.arch)
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", alpha)
    factors = {}
    for il in range(c.n_layer) if layers is None else layers:
        for t in targets:
            name = f"blk.{il}.{t}.weight"
            W = model.w(name)                                               # [n_out, n_in]
            n_out, n_in = W.shape
            A = rng.standard_normal((rank, n_in)).astype(np.float32) / np.sqrt(n_in)   # [r, n_in]
            B = rng.standard_normal((n_out, rank)).astype(np.float32)                  # [n_out, r]
            s = alpha / rank if alpha else 1.0
            B *= strength * np.linalg.norm(W) / max(np.linalg.norm(s * (B @ A)), 1e-12)
            a_raw, a_val, a_dt = _stored(A, qtype)
            b_raw, b_val, b_dt = _stored(B, qtype if rank % 32 == 0 else "F16" if qtype == "Q8_0" else qtype)
            w.add_tensor(name + ".lora_a", a_raw, raw_dtype=a_dt)
            w.add_tensor(name + ".lora_b", b_raw, raw_dtype=b_dt)
            factors[name] = (a_val, b_val)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return factors


def merged(model, adapters):
    """A reference.Model whose weights are W + Σ scale·B·A. adapters: [(factors, alpha, user_scale)]."""
    weights = dict(model.weights)
    for factors, alpha, user_scale in adapters:
        for name, (A, B) in factors.items():
            s = user_scale * alpha / A.shape[0] if alpha else user_scale
            weights[name] = (weights[name].astype(np.float64) + s * (B.astype(np.float64) @ A)).astype(np.float32)
    return dataclasses.replace(model, weights=weights)
