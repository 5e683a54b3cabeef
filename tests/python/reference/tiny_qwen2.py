"""Write a tiny random-weight Qwen2-shaped GGUF (F32 tensors) with the `gguf` package.

It exercises what SmolLM2 does not: q/k/v biases, NeoX RoPE, an untied output head, and a
kv-group size of 2. Weights are seeded, so every run writes the same file.
"""
from __future__ import annotations

import numpy as np
from gguf import GGUFWriter

ARCH = "qwen2"
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


def write_tiny_qwen2(path: str, seed: int = 1234) -> dict:
    """Writes the file and returns {"n_vocab": V, "path": path}."""
    rng = np.random.default_rng(seed)
    tokens, types, merges = _vocab()
    n_vocab = len(tokens)

    def mat(n_out: int, n_in: int) -> np.ndarray:  # [out, in], unit-variance outputs
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n: int, mean: float = 0.0, std: float = 0.1) -> np.ndarray:  # [n]
        return (mean + std * rng.standard_normal(n)).astype(np.float32)

    w = GGUFWriter(path, ARCH)
    w.add_name("tiny-qwen2-test")
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
        w.add_tensor(p + "attn_q.bias", vec(N_HEAD * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_k.weight", mat(N_HEAD_KV * HEAD_DIM, D_MODEL))
        w.add_tensor(p + "attn_k.bias", vec(N_HEAD_KV * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_v.weight", mat(N_HEAD_KV * HEAD_DIM, D_MODEL))
        w.add_tensor(p + "attn_v.bias", vec(N_HEAD_KV * HEAD_DIM, std=0.5))
        w.add_tensor(p + "attn_output.weight", mat(D_MODEL, N_HEAD * HEAD_DIM))
        w.add_tensor(p + "ffn_norm.weight", vec(D_MODEL, 1.0))
        w.add_tensor(p + "ffn_gate.weight", mat(N_FF, D_MODEL))
        w.add_tensor(p + "ffn_up.weight", mat(N_FF, D_MODEL))
        w.add_tensor(p + "ffn_down.weight", mat(D_MODEL, N_FF))
    w.add_tensor("output_norm.weight", vec(D_MODEL, 1.0))
    w.add_tensor("output.weight", mat(n_vocab, D_MODEL) * 4.0)  # logits of a few units
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"n_vocab": n_vocab, "path": path}
