"""Load a GGUF checkpoint into NumPy arrays with the PyPI `gguf` package.

Independent of the C++ engine: hyper-parameters come from the GGUF metadata and every
quantized tensor is expanded to float32 by gguf.quants.dequantize (pure NumPy).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

SUPPORTED_ARCHS = ("llama", "qwen2", "gemma3", "qwen3", "gemma2", "phi3", "minicpm")


@dataclass
class Config:
    arch: str
    n_layer: int
    d_model: int
    n_head: int
    n_head_kv: int
    head_dim: int         # per-head width of Q and K (== V width for these archs)
    n_rot: int            # leading dims of each head that RoPE rotates
    n_ff: int
    n_vocab: int
    rms_eps: float
    rope_base: float      # global layers
    rope_base_local: float  # sliding-window layers (gemma3 only; equals rope_base otherwise)
    neox_rope: bool       # pairs (i, i + n_rot/2) instead of adjacent (2i, 2i+1)
    sliding_window: int   # 0 = no sliding window anywhere
    swa_period: int       # gemma3: layer il is global iff il % swa_period == swa_period - 1
    attn_scale: float     # multiplies q.k
    final_softcap: float  # 0 = none
    embed_scale: float    # token embeddings are multiplied by this (gemma: sqrt(d_model))
    swa_layers: tuple = ()  # explicit per-layer sliding flags (overrides swa_period when non-empty)
    rope_factors: np.ndarray | None = None  # [n_rot/2] divisors of each pair's frequency
    rope_mscale: float = 1.0  # multiplies cos and sin
    attn_softcap: float = 0.0  # tanh soft-cap on scaled attention scores (0 = none)

    rope_factors_long: np.ndarray | None = None  # LongRoPE: for contexts over rope_ctx_orig
    rope_ctx_orig: int = 0
    residual_scale: float = 1.0  # sub-layer outputs are multiplied by this before the residual add
    logit_scale: float = 1.0     # logits are divided by this

    def rope_factors_for(self, n_ctx: int) -> np.ndarray | None:
        """LongRoPE picks its long factors once the context exceeds the original one."""
        if self.rope_factors_long is not None and n_ctx > self.rope_ctx_orig:
            return self.rope_factors_long
        return self.rope_factors

    def is_sliding(self, layer: int) -> bool:
        if self.sliding_window <= 0:
            return False
        if self.swa_layers:
            return bool(self.swa_layers[layer])
        if self.swa_period <= 0:
            return False
        return layer % self.swa_period != self.swa_period - 1


@dataclass
class Model:
    config: Config
    # name -> float32 array, shape in NumPy order: matrices are [out_features, in_features]
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, object] = field(default_factory=dict)

    def w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def has(self, name: str) -> bool:
        return name in self.weights


def _field_value(reader: GGUFReader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


def read_metadata(reader: GGUFReader, keys_prefix: tuple[str, ...] = ("general.", "tokenizer.")) -> dict:
    """All scalar/array metadata values keyed by name (tokenizer arrays included)."""
    out = {}
    for key in reader.fields:
        if key.startswith("GGUF."):
            continue
        out[key] = _field_value(reader, key)
    return out


def config_from_metadata(md: dict) -> Config:
    arch = md["general.architecture"]
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"reference forward pass does not implement arch {arch!r}")

    def get(name, default=None):
        v = md.get(f"{arch}.{name}", default)
        if v is None:
            raise KeyError(f"GGUF metadata lacks {arch}.{name}")
        return v

    d_model = int(get("embedding_length"))
    n_head = int(get("attention.head_count"))
    n_head_kv = int(get("attention.head_count_kv", n_head))
    head_dim = int(get("attention.key_length", d_model // n_head))
    n_rot = int(get("rope.dimension_count", head_dim))
    rope_base = float(get("rope.freq_base", 10000.0))
    tokens = md.get("tokenizer.ggml.tokens")
    n_vocab = int(md.get(f"{arch}.vocab_size") or len(tokens))

    is_gemma3 = arch == "gemma3"
    n_layer = int(get("block_count"))
    # gemma3 (llama.cpp hparams): 5 sliding-window layers then 1 global, local rope base 1e4.
    # llama: Mistral's files may name a window, which then holds on every layer.
    sliding_window = int(get("attention.sliding_window", 0)) if arch in ("gemma3", "llama") else 0
    swa_layers = (True,) * n_layer if arch == "llama" and sliding_window > 0 else ()
    is_gemma2 = arch == "gemma2"
    attn_scale = 1.0 / math.sqrt(head_dim)
    if is_gemma2:
        # Gemma 2: even layers slide (window 4096 unless named), odd ones are global; scores
        # capped at 50 and logits at 30 unless named; q scaled by query_pre_attn_scalar^-1/2,
        # carried by attention.scale when the file has it.
        sliding_window = int(get("attention.sliding_window", 4096))
        swa_layers = tuple(il % 2 == 0 for il in range(n_layer))
        attn_scale = float(get("attention.scale", attn_scale))
    rope_factors = None
    if md.get(f"{arch}.rope.scaling.type") == "llama3":
        rope_factors = llama3_rope_factors(rope_base, n_rot, float(get("rope.scaling.factor")),
                                           float(get("rope.scaling.low_freq_factor", 1.0)),
                                           float(get("rope.scaling.high_freq_factor", 4.0)),
                                           float(get("rope.scaling.original_context_length")))
    return Config(
        arch=arch,
        n_layer=n_layer,
        d_model=d_model,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim=head_dim,
        n_rot=n_rot,
        n_ff=int(get("feed_forward_length")),
        n_vocab=n_vocab,
        rms_eps=float(get("attention.layer_norm_rms_epsilon")),
        rope_base=rope_base,
        rope_base_local=10000.0 if is_gemma3 else float(get("rope.freq_base_swa", rope_base)),
        neox_rope=arch in ("qwen2", "gemma3", "qwen3", "gemma2", "phi3"),
        sliding_window=sliding_window,
        swa_period=6 if is_gemma3 else 0,
        # gemma3 270m: query_pre_attn_scalar == head_dim, so 1/sqrt(head_dim) for every arch here.
        attn_scale=attn_scale,
        final_softcap=float(md.get(f"{arch}.final_logit_softcapping", 30.0 if is_gemma2 else 0.0)),
        # MiniCPM: scale_emb, scale_depth / sqrt(n_layer), hidden / dim_model_base; the values
        # when a file lacks them are MiniCPM-2B's (12, 1.4, 256).
        embed_scale=math.sqrt(d_model) if is_gemma3 or is_gemma2 else
        float(get("embedding_scale", 12.0)) if arch == "minicpm" else 1.0,
        residual_scale=float(get("residual_scale", 1.4 / math.sqrt(n_layer))) if arch == "minicpm" else 1.0,
        logit_scale=float(get("logit_scale", d_model / 256)) if arch == "minicpm" else 1.0,
        swa_layers=swa_layers,
        rope_factors=rope_factors,
        attn_softcap=float(md.get(f"{arch}.attn_logit_softcapping", 50.0)) if is_gemma2 else 0.0,
        rope_mscale=float(get("rope.scaling.attn_factor", 1.0)),
        rope_ctx_orig=int(get("rope.scaling.original_context_length", get("context_length"))),
    )


def llama3_rope_factors(base: float, n_rot: int, factor: float, low: float, high: float,
                        orig_ctx: float) -> np.ndarray:
    """Llama 3.1 rope_scaling as Hugging Face defines it, expressed as divisors of each pair's
    frequency: wavelengths under orig_ctx/high kept, over orig_ctx/low divided by factor,
    linear interpolation of 1/divisor in orig_ctx/wavelength between."""
    freq = base ** (-2.0 * np.arange(n_rot // 2, dtype=np.float64) / n_rot)  # [n_rot/2]
    wavelen = 2 * np.pi / freq
    smooth = np.clip((orig_ctx / wavelen - low) / (high - low), 0.0, 1.0)
    new_freq = (1 - smooth) * freq / factor + smooth * freq
    return (freq / new_freq).astype(np.float32)


def load_model(path: str) -> Model:
    """Read metadata and dequantize every tensor to float32."""
    reader = GGUFReader(path)
    md = read_metadata(reader)
    cfg = config_from_metadata(md)
    weights = {}
    for t in reader.tensors:
        # dequantize returns NumPy order: GGUF ne=[in, out] becomes shape (out, in).
        arr = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
        weights[t.name] = np.ascontiguousarray(arr)
    if "rope_freqs.weight" in weights:  # llama.cpp's converter stores Llama 3.1's divisors
        cfg.rope_factors = weights["rope_freqs.weight"]
    if "rope_factors_long.weight" in weights:  # Phi-3 LongRoPE
        cfg.rope_factors = weights["rope_factors_short.weight"]
        cfg.rope_factors_long = weights["rope_factors_long.weight"]
    model = Model(config=cfg, weights=weights, metadata=md)
    _check_shapes(model)
    return model


def _check_shapes(m: Model) -> None:
    c = m.config
    emb = m.w("token_embd.weight")
    if emb.shape != (c.n_vocab, c.d_model):
        raise ValueError(f"token_embd shape {emb.shape} != ({c.n_vocab}, {c.d_model})")
    q = m.w("blk.0.attn_q.weight") if m.has("blk.0.attn_q.weight") else \
        m.w("blk.0.attn_qkv.weight")[:c.n_head * c.head_dim]
    if q.shape != (c.n_head * c.head_dim, c.d_model):
        raise ValueError(f"attn_q shape {q.shape} unexpected for {c}")
