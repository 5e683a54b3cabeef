"""Tiny random-weight GGUF files (F32) for the families added after llama/qwen2/gemma3, written
with the `gguf` package the way llama.cpp's converter lays them out (tensor and key names):

* qwen3:   QK-norm (attn_q_norm / attn_k_norm per head), no QKV bias, head_dim != d / n_head.
* mistral: a llama-arch file with a sliding window on every layer (as Mistral 7B v0.1's).
* llama31: Llama 3.1+ rope scaling, as the rope_freqs tensor or as rope.scaling.* metadata.
* gemma2:  attention and final soft-capping, pre+post norms, alternating sliding window, query scale.
* phi3:    fused QKV and gate+up projections, LongRoPE (short/long factors, attention factor).
* minicpm: scaled embeddings, residual branches and logits.
Matrices are stored as Q8_0 (the reference dequantizes them), so the engine's default path runs
its int8-activation kernels; norms and other vectors stay F32. Weights are seeded, so every run
writes the same file.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter
from gguf.quants import quantize

from .tiny_models import _random_makers, _vocab

D, N_HEAD, N_HEAD_KV, N_FF = 64, 4, 2, 128


class _Q8Writer(GGUFWriter):
    """Stores every 2-D tensor as Q8_0 (whose rows are whole 32-value blocks here)."""

    def add_tensor(self, name, tensor, *args, **kwargs):
        if tensor.ndim == 2 and tensor.dtype == np.float32 and tensor.shape[1] % 32 == 0:
            return super().add_tensor(name, quantize(tensor, GGMLQuantizationType.Q8_0),
                                      raw_dtype=GGMLQuantizationType.Q8_0)
        return super().add_tensor(name, tensor, *args, **kwargs)


def _start(path: str, arch: str, *, n_layer: int, head_dim: int, ctx: int = 256,
           rope_base: float = 10000.0, n_ff: int = N_FF, pre: str = "qwen2", name: str = "") -> tuple[GGUFWriter, int]:
    """Writer with the hyper-parameters and a byte-level BPE vocabulary; returns (writer, n_vocab)."""
    tokens, types, merges = _vocab()
    w = _Q8Writer(path, arch)
    w.add_name(name or f"tiny-{arch}-test")
    w.add_context_length(ctx)
    w.add_embedding_length(D)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(rope_base)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    return w, len(tokens)


def _finish(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _layers(w: GGUFWriter, rng, n_layer: int, head_dim: int, extra: Callable | None = None,
            n_ff: int = N_FF, fused: bool = False, q_gain: float = 1.0) -> None:
    """The llama block's tensors; `extra(p, mat, vec)` adds a family's own per layer."""
    mat, vec = _random_makers(rng)
    qd, kvd = N_HEAD * head_dim, N_HEAD_KV * head_dim
    for il in range(n_layer):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", vec(D, 1.0))
        if fused:  # one matrix: q rows, then k rows, then v rows
            w.add_tensor(p + "attn_qkv.weight", np.concatenate([mat(qd, D), mat(kvd, D), mat(kvd, D)]))
        else:
            w.add_tensor(p + "attn_q.weight", mat(qd, D) * q_gain)
            w.add_tensor(p + "attn_k.weight", mat(kvd, D))
            w.add_tensor(p + "attn_v.weight", mat(kvd, D))
        w.add_tensor(p + "attn_output.weight", mat(D, qd))
        w.add_tensor(p + "ffn_norm.weight", vec(D, 1.0))
        if fused:  # ffn_up of double width: gate rows, then up rows
            w.add_tensor(p + "ffn_up.weight", np.concatenate([mat(n_ff, D), mat(n_ff, D)]))
        else:
            w.add_tensor(p + "ffn_gate.weight", mat(n_ff, D))
            w.add_tensor(p + "ffn_up.weight", mat(n_ff, D))
        w.add_tensor(p + "ffn_down.weight", mat(D, n_ff))
        if extra:
            extra(w, p, mat, vec)


def _head(w: GGUFWriter, rng, n_vocab: int, tied: bool) -> None:
    mat, vec = _random_makers(rng)
    # Tied: the embedding is the head too; std 0.5 keeps logits to a few tens.
    w.add_tensor("token_embd.weight", (rng.standard_normal((n_vocab, D)) * (0.5 if tied else 1.0))
                 .astype(np.float32))
    w.add_tensor("output_norm.weight", vec(D, 1.0))
    if not tied:
        w.add_tensor("output.weight", mat(n_vocab, D) * 4.0)  # logits of a few units


def write_tiny_qwen3(path: str, seed: int = 3003) -> dict:
    """2 layers, head_dim 32 (!= 64/4), QK-norm with weights far from 1, tied embeddings."""
    rng = np.random.default_rng(seed)
    hd = 32
    w, n_vocab = _start(path, "qwen3", n_layer=2, head_dim=hd, rope_base=1e6)
    _head(w, rng, n_vocab, tied=True)

    def qk_norm(w, p, mat, vec):
        w.add_tensor(p + "attn_q_norm.weight", vec(hd, 1.0, 0.5))
        w.add_tensor(p + "attn_k_norm.weight", vec(hd, 2.0, 0.5))
    _layers(w, rng, 2, hd, qk_norm)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}


def write_tiny_mistral(path: str, seed: int = 7007, window: int = 8) -> dict:
    """A llama-arch file as llama.cpp writes Mistral's: named Mistral, the tekken pre-tokenizer,
    a sliding window (every layer), an untied head."""
    rng = np.random.default_rng(seed)
    w, n_vocab = _start(path, "llama", n_layer=2, head_dim=16, rope_base=1e6, pre="tekken",
                        name="Mistral-7B-Instruct-v0.1")
    w.add_basename("Mistral")
    w.add_sliding_window(window)
    w.add_vocab_size(n_vocab)
    _head(w, rng, n_vocab, tied=False)
    _layers(w, rng, 2, 16)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}


LLAMA31 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_context_length": 64}


def write_tiny_llama31(path: str, seed: int = 3131, as_tensor: bool = True) -> dict:
    """Llama 3.1+ rope scaling, scaled down so a 48-token prompt reaches the scaled wavelengths
    (original context 64 instead of 8192). as_tensor: the rope_freqs tensor llama.cpp's converter
    writes (its values from Hugging Face's definition, computed here); otherwise
    rope.scaling.type = llama3 and its parameters as metadata."""
    from .gguf_model import llama3_rope_factors
    rng = np.random.default_rng(seed)
    hd, base = 16, 10000.0
    w, n_vocab = _start(path, "llama", n_layer=2, head_dim=hd, rope_base=base)
    p = LLAMA31
    if as_tensor:
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(base, hd, p["factor"], p["low_freq_factor"],
                                                               p["high_freq_factor"], p["original_context_length"]))
    else:
        w.add_string("llama.rope.scaling.type", "llama3")
        w.add_float32("llama.rope.scaling.factor", p["factor"])
        w.add_float32("llama.rope.scaling.low_freq_factor", p["low_freq_factor"])
        w.add_float32("llama.rope.scaling.high_freq_factor", p["high_freq_factor"])
        w.add_uint32("llama.rope.scaling.original_context_length", p["original_context_length"])
    _head(w, rng, n_vocab, tied=True)
    _layers(w, rng, 2, hd)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}


def write_tiny_gemma2(path: str, seed: int = 2002, window: int = 8) -> dict:
    """4 layers (0 and 2 slide over `window` tokens, 1 and 3 are global, with their own RoPE bases),
    pre and post norms, GeGLU, scaled tied embeddings, soft-capping tight enough to matter (scores
    at 8, logits at 15), and query_pre_attn_scalar = d_model / n_head (Gemma 2 27B's choice, so
    != head_dim) written as attention.scale."""
    rng = np.random.default_rng(seed)
    hd = 64
    w, n_vocab = _start(path, "gemma2", n_layer=4, head_dim=hd, rope_base=10000.0)
    w.add_sliding_window(window)
    w.add_float32("gemma2.rope.freq_base_swa", 100.0)
    w.add_attn_logit_softcapping(8.0)
    w.add_final_logit_softcapping(15.0)
    w.add_float32("gemma2.attention.scale", 1.0 / np.sqrt(D / N_HEAD))
    _head(w, rng, n_vocab, tied=True)

    def post_norms(w, p, mat, vec):
        w.add_tensor(p + "post_attention_norm.weight", vec(D, 1.0))
        w.add_tensor(p + "post_ffw_norm.weight", vec(D, 1.0))
    _layers(w, rng, 4, hd, post_norms, q_gain=2.0)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}


PHI3_CTX, PHI3_CTX_ORIG = 256, 32


def write_tiny_phi3(path: str, seed: int = 3333) -> dict:
    """Fused attn_qkv and double-width ffn_up, partial rotary (8 of 16 dims), untied head, and
    LongRoPE as llama.cpp's converter writes Phi-3-128k's: rope_factors_short/long, the original
    context (32 here, so a 48-token sequence takes the long factors and a 24-token one the short)
    and rope.scaling.attn_factor = sqrt(1 + ln(ctx / orig) / ln(orig))."""
    rng = np.random.default_rng(seed)
    hd, n_rot = 16, 8
    w, n_vocab = _start(path, "phi3", n_layer=2, head_dim=hd, ctx=PHI3_CTX, rope_base=10000.0)
    w.add_rope_dimension_count(n_rot)
    w.add_rope_scaling_orig_ctx_len(PHI3_CTX_ORIG)
    w.add_rope_scaling_attn_factors(float(np.sqrt(1 + np.log(PHI3_CTX / PHI3_CTX_ORIG) / np.log(PHI3_CTX_ORIG))))
    w.add_tensor("rope_factors_short.weight", np.geomspace(1.0, 4.0, n_rot // 2).astype(np.float32))
    w.add_tensor("rope_factors_long.weight", np.geomspace(1.0, 16.0, n_rot // 2).astype(np.float32))
    _head(w, rng, n_vocab, tied=False)
    _layers(w, rng, 2, hd, fused=True)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}


MINICPM = {"scale_emb": 3.0, "scale_depth": 6.0, "dim_model_base": 16}


def write_tiny_minicpm(path: str, seed: int = 4004) -> dict:
    """The llama block with MiniCPM's three scales as llama.cpp's converter stores them
    (embedding_scale = scale_emb, residual_scale = scale_depth / sqrt(n_layer), logit_scale =
    hidden_size / dim_model_base), chosen far from 1 so each one matters; tied embeddings."""
    rng = np.random.default_rng(seed)
    hd, n_layer = 16, 2
    w, n_vocab = _start(path, "minicpm", n_layer=n_layer, head_dim=hd, rope_base=10000.0)
    w.add_embedding_scale(MINICPM["scale_emb"])
    w.add_residual_scale(MINICPM["scale_depth"] / np.sqrt(n_layer))
    w.add_logit_scale(D / MINICPM["dim_model_base"])
    _head(w, rng, n_vocab, tied=True)
    _layers(w, rng, n_layer, hd)
    _finish(w)
    return {"n_vocab": n_vocab, "path": path}
