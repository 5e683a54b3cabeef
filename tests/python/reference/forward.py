"""Transformer forward pass in NumPy for the llama, qwen2, qwen3, gemma2, gemma3, phi3 and minicpm
GGUF architectures.

Written from the architecture descriptions, not from the engine. Conventions that follow
from how llama.cpp's converter writes GGUF files:
  * llama, minicpm: the converter permutes the rows of attn_q/attn_k so that RoPE rotates ADJACENT
    pairs (2i, 2i+1) of each head ("normal" rope applied directly to the GGUF weights).
  * qwen2, qwen3, gemma2, gemma3, phi3: weights are stored unpermuted, RoPE rotates pairs (i, i + n_rot/2) (NeoX).
  * gemma2, gemma3: the converter already added 1 to every *norm.weight, so RMSNorm is plain x*w.
Every tensor carries a shape comment: T = tokens, D = d_model, H = heads, Hkv = kv heads,
Dh = head_dim, F = ffn width, V = vocab.
"""
from __future__ import annotations

import math

import numpy as np

from .gguf_model import Config, Model


def rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """x: [..., N], w: [N] -> [..., N]; normalizes over the last axis."""
    ms = np.mean(np.square(x, dtype=np.float64), axis=-1, keepdims=True)  # [..., 1]
    return (x / np.sqrt(ms + eps)).astype(x.dtype) * w


def rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, neox: bool,
         factors: np.ndarray | None = None, mscale: float = 1.0) -> np.ndarray:
    """Rotary embedding. x: [T, nH, Dh], pos: [T] -> [T, nH, Dh].

    Pair i (0 <= i < n_rot/2) is rotated by angle pos * base^(-2i/n_rot) / factors[i]; dims >= n_rot
    pass through. mscale multiplies cos and sin (LongRoPE).
    """
    half = n_rot // 2
    inv_freq = base ** (-2.0 * np.arange(half, dtype=np.float64) / n_rot)  # [half]
    if factors is not None:
        inv_freq = inv_freq / factors.astype(np.float64)
    ang = pos.astype(np.float64)[:, None] * inv_freq[None, :]             # [T, half]
    cos = (np.cos(ang) * mscale)[:, None, :].astype(x.dtype)               # [T, 1, half]
    sin = (np.sin(ang) * mscale)[:, None, :].astype(x.dtype)               # [T, 1, half]
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]          # [T, nH, half] each
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]       # [T, nH, half] each
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    return out


def attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float, window: int,
              softcap: float = 0.0) -> np.ndarray:
    """Causal grouped-query attention.

    q: [T, H, Dh], k: [T, Hkv, Dh], v: [T, Hkv, Dh] -> [T, H*Dh].
    Query head h reads kv head h // (H/Hkv). window > 0 keeps keys j with i - j < window.
    softcap > 0 maps the scaled scores s to softcap * tanh(s / softcap) (Gemma 2).
    """
    T, H, Dh = q.shape
    group = H // k.shape[1]
    qh = q.transpose(1, 0, 2)                                    # [H, T, Dh]
    kh = np.repeat(k, group, axis=1).transpose(1, 2, 0)          # [H, Dh, T]
    vh = np.repeat(v, group, axis=1).transpose(1, 0, 2)          # [H, T, Dh]
    scores = (qh @ kh) * scale                                   # [H, T, T]
    if softcap > 0:
        scores = softcap * np.tanh(scores / softcap)
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    allowed = j <= i                                              # [T, T]
    if window > 0:
        allowed &= (i - j) < window
    scores = np.where(allowed[None], scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)                           # [H, T, T]
    out = (p @ vh).transpose(1, 0, 2)                            # [T, H, Dh]
    return np.ascontiguousarray(out).reshape(T, H * Dh)


def silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def q8_roundtrip(x: np.ndarray, block: int = 32) -> np.ndarray:
    """Round x: [T, N] to 8-bit blocks of `block` values along N (scale = amax/127), the way
    llama.cpp-style engines quantize matmul inputs. Used only to size test tolerances."""
    T, N = x.shape
    xb = x.reshape(T, N // block, block)                                   # [T, N/32, 32]
    scale = np.abs(xb).max(axis=-1, keepdims=True) / 127.0                 # [T, N/32, 1]
    q = np.round(xb / np.where(scale == 0, 1, scale))                      # [T, N/32, 32]
    return (q * scale).reshape(T, N).astype(x.dtype)


class Forward:
    """Runs the whole sequence at once (equivalent to a decode from an empty KV cache).

    quantize_activations=True emulates int8 matmul inputs (to measure that error, not as truth).
    """

    def __init__(self, model: Model, dtype=np.float32, quantize_activations: bool = False):
        self.m = model
        self.c: Config = model.config
        self.dtype = dtype
        self.quantize_activations = quantize_activations

    def _w(self, name: str) -> np.ndarray:
        w = self.m.w(name)
        return w if w.dtype == self.dtype else w.astype(self.dtype)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        """x: [T, in] @ W[out, in]^T (+ bias[out]) -> [T, out]."""
        if self.quantize_activations and x.shape[1] % 32 == 0:
            x = q8_roundtrip(x)
        y = x @ self._w(name + ".weight").T
        if self.m.has(name + ".bias"):
            y = y + self._w(name + ".bias")
        return y

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        return rms_norm(x, self._w(name + ".weight"), self.c.rms_eps)

    def _layer(self, il: int, x: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """x: [T, D] -> [T, D]."""
        c, p = self.c, f"blk.{il}."
        T = x.shape[0]
        h = self._norm(x, p + "attn_norm")                                   # [T, D]
        qd, kvd = c.n_head * c.head_dim, c.n_head_kv * c.head_dim
        if self.m.has(p + "attn_qkv.weight"):    # phi3: one projection, q | k | v along its output
            qkv = self._linear(h, p + "attn_qkv")                              # [T, qd + 2 kvd]
            q, k, v = qkv[:, :qd], qkv[:, qd:qd + kvd], qkv[:, qd + kvd:]
        else:
            q, k, v = (self._linear(h, p + n) for n in ("attn_q", "attn_k", "attn_v"))
        q = q.reshape(T, c.n_head, c.head_dim)                                 # [T, H, Dh]
        k = k.reshape(T, c.n_head_kv, c.head_dim)                              # [T, Hkv, Dh]
        v = v.reshape(T, c.n_head_kv, c.head_dim)                              # [T, Hkv, Dh]
        if self.m.has(p + "attn_q_norm.weight"):   # gemma3/qwen3 QK-norm, per head over Dh
            q = self._norm(q, p + "attn_q_norm")
            k = self._norm(k, p + "attn_k_norm")
        sliding = c.is_sliding(il)
        base = c.rope_base_local if sliding else c.rope_base
        ff = c.rope_factors_for(pos.size)  # the logits protocol: context = sequence length
        q = rope(q, pos, c.n_rot, base, c.neox_rope, ff, c.rope_mscale)        # [T, H, Dh]
        k = rope(k, pos, c.n_rot, base, c.neox_rope, ff, c.rope_mscale)        # [T, Hkv, Dh]
        att = attention(q, k, v, c.attn_scale, c.sliding_window if sliding else 0,
                        c.attn_softcap)                                        # [T, H*Dh]
        o = self._linear(att, p + "attn_output")                               # [T, D]
        if self.m.has(p + "post_attention_norm.weight"):
            o = self._norm(o, p + "post_attention_norm")
        x = x + o * self.dtype(c.residual_scale)                               # [T, D]

        h = self._norm(x, p + "ffn_norm")                                      # [T, D]
        if self.m.has(p + "ffn_gate.weight"):
            gate = self._linear(h, p + "ffn_gate")                             # [T, F]
            up = self._linear(h, p + "ffn_up")                                 # [T, F]
        else:  # phi3: ffn_up of width 2F, the gate's half first
            gate, up = np.split(self._linear(h, p + "ffn_up"), 2, axis=1)      # [T, F] each
        act = gelu_tanh(gate) if c.arch in ("gemma2", "gemma3") else silu(gate)  # [T, F]
        f = self._linear(act * up, p + "ffn_down")                             # [T, D]
        if self.m.has(p + "post_ffw_norm.weight"):
            f = self._norm(f, p + "post_ffw_norm")
        return x + f * self.dtype(c.residual_scale)                            # [T, D]

    def logits(self, ids) -> np.ndarray:
        """ids: [T] token ids (positions 0..T-1) -> logits [T, V] (float32)."""
        c = self.c
        ids = np.asarray(ids, dtype=np.int64)
        if ids.ndim != 1 or ids.size == 0 or ids.min() < 0 or ids.max() >= c.n_vocab:
            raise ValueError("ids must be a non-empty 1-D sequence of valid token ids")
        pos = np.arange(ids.size)                                              # [T]
        emb = self.m.w("token_embd.weight")                                    # [V, D]
        x = emb[ids].astype(self.dtype) * self.dtype(c.embed_scale)            # [T, D]
        for il in range(c.n_layer):
            x = self._layer(il, x, pos)
        x = self._norm(x, "output_norm")                                       # [T, D]
        head = "output" if self.m.has("output.weight") else "token_embd"       # tied if absent
        out = self._linear(x, head) / self.dtype(c.logit_scale)                # [T, V]
        if c.final_softcap > 0:
            out = c.final_softcap * np.tanh(out / c.final_softcap)
        return out.astype(np.float32)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """[T, V] -> [T, V] float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def perplexity(fwd: Forward, ids, ctx: int, n_chunks: int | None = None, first: int = 0) -> dict:
    """Perplexity over non-overlapping chunks of `ctx` tokens of `ids` (last partial one dropped),
    each from an empty cache; position j predicts token j+1 for j in first..ctx-2. first = 0 scores
    every position; first = ctx // 2 is llama-perplexity's protocol (the first half of a chunk is
    context only). BOS handling is the caller's: pass the ids exactly as the chunks hold them."""
    ids = np.asarray(ids, dtype=np.int64)
    total = ids.size // ctx
    k = total if n_chunks is None else min(n_chunks, total)
    if k <= 0:
        raise ValueError(f"need at least {ctx} tokens, have {ids.size}")
    if not 0 <= first <= ctx - 2:
        raise ValueError(f"first must be in 0..{ctx - 2}")
    nll = []
    for ci in range(k):
        chunk = ids[ci * ctx:(ci + 1) * ctx]                                   # [ctx]
        lp = log_softmax(fwd.logits(chunk))                                    # [ctx, V]
        nll.append(-lp[np.arange(first, ctx - 1), chunk[first + 1:]])          # [ctx-1-first]
    nll = np.concatenate(nll)
    return {"perplexity": float(np.exp(nll.mean())), "n_predictions": int(nll.size), "n_chunks": k}


def greedy(fwd: Forward, ids, n_new: int, stop_ids=()) -> list[int]:
    """Greedy continuation (recomputes the full prefix each step: simple, fine for tests)."""
    out = list(ids)
    for _ in range(n_new):
        nxt = int(np.argmax(fwd.logits(out)[-1]))
        out.append(nxt)
        if nxt in stop_ids:
            break
    return out[len(ids):]
