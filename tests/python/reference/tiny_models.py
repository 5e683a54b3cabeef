"""Write tiny random-weight GGUF files (F32 tensors) with the `gguf` package.

* llama: write_tiny_qwen2's shapes without biases, adjacent-pair RoPE, a tied output head.
* qwen2: q/k/v biases, NeoX RoPE, an untied output head, kv-group size 2.
* gemma3: a sliding window of 8 tokens (so a 48-token prompt exercises it), 6 layers (layer 5
  is the global one, with its own RoPE base), head_dim != d_model / n_head, QK-norm,
  post-attention/post-FFN norms, GeGLU, scaled and tied embeddings.
Weights are seeded, so every run writes the same file.
"""
from __future__ import annotations

import numpy as np
from gguf import GGUFWriter

N_LAYER, D_MODEL, N_HEAD, N_HEAD_KV, N_FF = 2, 64, 4, 2, 128
HEAD_DIM = D_MODEL // N_HEAD
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _byte_level_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 byte values, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def _vocab() -> tuple[list[str], list[int], list[str]]:
    tokens = _byte_level_alphabet()
    merges = ["\u0120 t", "h e", "\u0120t he", "i n", "e r"]
    tokens += ["\u0120t", "he", "\u0120the", "in", "er"]
    types = [1] * len(tokens) + [3] * len(SPECIALS)
    tokens += SPECIALS
    return tokens, types, merges


def _random_makers(rng: np.random.Generator):
    def mat(n_out: int, n_in: int) -> np.ndarray:  # [out, in], unit-variance outputs
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n: int, mean: float = 0.0, std: float = 0.1) -> np.ndarray:  # [n]
        return (mean + std * rng.standard_normal(n)).astype(np.float32)
    return mat, vec


def write_tiny_qwen2(path: str, seed: int = 1234, arch: str = "qwen2") -> dict:
    """Writes the file and returns {"n_vocab": V, "path": path}. arch="llama": no biases, tied head."""
    llama = arch == "llama"
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab()
    n_vocab = len(tokens)

    mat, vec = _random_makers(rng)

    w = GGUFWriter(path, arch)
    w.add_name(f"tiny-{arch}-test")
    w.add_context_length(256)
    w.add_embedding_length(D_MODEL)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)  # all F32
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)

    w.add_tensor("token_embd.weight", (rng.standard_normal((n_vocab, D_MODEL))).astype(np.float32))
    for il in range(N_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", vec(D_MODEL, 1.0))
        w.add_tensor(p + "attn_q.weight", mat(N_HEAD * HEAD_DIM, D_MODEL))
        if not llama:
            w.add_tensor(p + "attn_q.bias", vec(N_HEAD * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * HEAD_DIM, D_MODEL))
        if not llama:
            w.add_tensor(p + "attn_k.bias", vec(N_HEAD_KV * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * HEAD_DIM, D_MODEL))
        if not llama:
            w.add_tensor(p + "attn_v.bias", vec(N_HEAD_KV * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_output.weight", mat(D_MODEL, N_HEAD * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", vec(D_MODEL, 1.0))
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, D_MODEL))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, D_MODEL))
        w.add_tensor(p + "ffn_down.weight", mat(D_MODEL, N_FF))
    w.add_tensor("output_norm.weight", vec(D_MODEL, 1.0))
    if not llama:
        w.add_tensor("output.weight", mat(n_vocab, D_MODEL) * 4.0)  # logits of a few units
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"n_vocab": n_vocab, "path": path}


def write_tiny_llama(path: str, seed: int = 2345) -> dict:
    return write_tiny_qwen2(path, seed, arch="llama")


# --- gemma3 ----------------------------------------------------------------------------------
G_LAYER, G_MODEL, G_HEAD, G_HEAD_KV, G_HEAD_DIM, G_FF, G_WINDOW = 6, 64, 4, 1, 32, 128, 8


def _spm_vocab() -> tuple[list[str], list[float], list[int]]:
    """sentencepiece-style: specials, 256 byte pieces, then a few word pieces."""
    tokens = ["<pad>", "<eos>", "<bos>", "<unk>"]
    types = [3, 3, 3, 2]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [6] * 256
    pieces = ["\u2581", "\u2581t", "\u2581the", "he", "in", "e", "t", "h", "i", "n", "a"]
    tokens += pieces
    types += [1] * len(pieces)
    scores = [0.0] * 260 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, types


def write_tiny_gemma3(path: str, seed: int = 4321) -> dict:
    """Writes the file and returns {"n_vocab": V, "path": path}."""
    rng = np.random.default_rng(seed)
    mat, vec = _random_makers(rng)
    tokens, scores, types = _spm_vocab()
    n_vocab = len(tokens)

    w = GGUFWriter(path, "gemma3")
    w.add_name("tiny-gemma3-test")
    w.add_context_length(256)
    w.add_embedding_length(G_MODEL)
    w.add_block_count(G_LAYER)
    w.add_feed_forward_length(G_FF)
    w.add_head_count(G_HEAD)
    w.add_head_count_kv(G_HEAD_KV)
    w.add_key_length(G_HEAD_DIM)
    w.add_value_length(G_HEAD_DIM)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_sliding_window(G_WINDOW)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)

    # Embeddings ~N(0, 1/d): the sqrt(d) input scale brings them to unit size.
    w.add_tensor("token_embd.weight", (rng.standard_normal((n_vocab, G_MODEL)) / np.sqrt(G_MODEL) * 4)
                 .astype(np.float32))
    q_dim, kv_dim = G_HEAD * G_HEAD_DIM, G_HEAD_KV * G_HEAD_DIM
    for il in range(G_LAYER):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", vec(G_MODEL, 1.0))
        w.add_tensor(p + "attn_q.weight", mat(q_dim, G_MODEL))
        w.add_tensor(p + "attn_k.weight", mat(kv_dim, G_MODEL))
        w.add_tensor(p + "attn_v.weight", mat(kv_dim, G_MODEL))
        w.add_tensor(p + "attn_q_norm.weight", vec(G_HEAD_DIM, 1.0, 0.3))
        w.add_tensor(p + "attn_k_norm.weight", vec(G_HEAD_DIM, 3.0, 0.3))  # sharp attention
        w.add_tensor(p + "attn_output.weight", mat(G_MODEL, q_dim))
        w.add_tensor(p + "post_attention_norm.weight", vec(G_MODEL, 1.0))
        w.add_tensor(p + "ffn_norm.weight", vec(G_MODEL, 1.0))
        w.add_tensor(p + "ffn_gate.weight", mat(G_FF, G_MODEL))
        w.add_tensor(p + "ffn_up.weight", mat(G_FF, G_MODEL))
        w.add_tensor(p + "ffn_down.weight", mat(G_MODEL, G_FF))
        w.add_tensor(p + "post_ffw_norm.weight", vec(G_MODEL, 1.0))
    w.add_tensor("output_norm.weight", vec(G_MODEL, 1.0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"n_vocab": n_vocab, "path": path}
