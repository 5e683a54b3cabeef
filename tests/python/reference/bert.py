"""BERT sentence encoder in NumPy, read straight from a Hugging Face folder (model.safetensors +
config.json + tokenizer.json via HF `tokenizers`): independent of edgellm's converter and GGUF.

The forward pass is the published BERT encoder: word + absolute position + token-type-0
embeddings, LayerNorm, then per layer bidirectional multi-head attention and an erf-GELU MLP,
each followed by residual add and LayerNorm (post-LN); sentence-transformers' mean pooling over
the tokens and L2 normalisation. Also writes tiny random BERT folders for fast tests.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        buf = raw[8 + n + b:8 + n + e]
        if t["dtype"] == "BF16":
            a = (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(buf, dtype=np.dtype(_DTYPES[t["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(t["shape"]).astype(np.float32) if t["dtype"] != "I64" else a.reshape(t["shape"])
    return out


def write_safetensors(path: str | Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


class BertReference:
    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.cfg = json.loads((folder / "config.json").read_text())
        w = read_safetensors(folder / "model.safetensors")
        pre = "" if "embeddings.word_embeddings.weight" in w else "bert."
        self.w = {k[len(pre):]: v.astype(np.float64) for k, v in w.items() if k.startswith(pre)}
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.no_padding()
        self.tok.no_truncation()
        pooling = folder / "1_Pooling" / "config.json"
        self.cls_pooling = pooling.is_file() and json.loads(pooling.read_text()).get("pooling_mode_cls_token", False)

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text).ids

    def hidden(self, ids: list[int]) -> np.ndarray:
        """Final token states [n, d] (float64)."""
        c, w = self.cfg, self.w
        eps = c.get("layer_norm_eps", 1e-12)
        n, nh = len(ids), c["num_attention_heads"]
        d = c["hidden_size"]
        hd = d // nh
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layernorm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for il in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{il}."

            def lin(name, v):
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q = lin("attention.self.query", x).reshape(n, nh, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, nh, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, nh, hd).transpose(1, 0, 2)
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = (s @ v).transpose(1, 0, 2).reshape(n, d)
            x = _layernorm(x + lin("attention.output.dense", a), w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
            h = _gelu(lin("intermediate.dense", x))
            x = _layernorm(x + lin("output.dense", h), w[p + "output.LayerNorm.weight"],
                           w[p + "output.LayerNorm.bias"], eps)
        return x

    def embed(self, text: str) -> np.ndarray:
        h = self.hidden(self.encode(text))
        e = h[0] if self.cls_pooling else h.mean(0)  # one sequence: every token is unmasked
        return e / np.linalg.norm(e)


# ---- tiny random BERT folders ----
TINY_WORDS = ["the", "cat", "dog", "sat", "on", "mat", "red", "blue", "car", "runs", "fast", "slow",
              "search", "notes", "mail", "train", "station", "is", "near"]


def write_tiny_bert(folder: str | Path, seed: int = 0, n_layer: int = 2, d: int = 64, n_head: int = 4,
                    ff: int = 128, n_ctx: int = 64, cls_pooling: bool = False) -> Path:
    """A random-weight BERT in Hugging Face's layout with a small uncased WordPiece vocabulary."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    folder = Path(folder)
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + ["##" + ch for ch in letters] + TINY_WORDS
    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": d, "num_hidden_layers": n_layer,
           "num_attention_heads": n_head, "intermediate_size": ff, "max_position_embeddings": n_ctx,
           "vocab_size": len(vocab), "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
           "position_embedding_type": "absolute"}
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": d, "pooling_mode_cls_token": cls_pooling, "pooling_mode_mean_tokens": not cls_pooling}))
    rng = np.random.default_rng(seed)

    def r(*shape, s=0.1):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    t = {"embeddings.word_embeddings.weight": r(len(vocab), d, s=0.5),
         "embeddings.position_embeddings.weight": r(n_ctx, d, s=0.3),
         "embeddings.token_type_embeddings.weight": r(2, d, s=0.3),
         "embeddings.LayerNorm.weight": 1 + r(d), "embeddings.LayerNorm.bias": r(d)}
    for il in range(n_layer):
        p = f"encoder.layer.{il}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + name + ".weight"] = r(d, d, s=0.3)
            t[p + name + ".bias"] = r(d)
        t[p + "attention.output.LayerNorm.weight"] = 1 + r(d)
        t[p + "attention.output.LayerNorm.bias"] = r(d)
        t[p + "intermediate.dense.weight"] = r(ff, d, s=0.3)
        t[p + "intermediate.dense.bias"] = r(ff)
        t[p + "output.dense.weight"] = r(d, ff, s=0.2)
        t[p + "output.dense.bias"] = r(d)
        t[p + "output.LayerNorm.weight"] = 1 + r(d)
        t[p + "output.LayerNorm.bias"] = r(d)
    write_safetensors(folder / "model.safetensors", t)
    return folder
