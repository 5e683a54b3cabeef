"""Tokenizers for the reference side, built from a GGUF vocabulary, independent of the engine.

* gpt2-style BPE (SmolLM2: pre-tokenizer "smollm"): a HF `tokenizers` BPE with byte-level
  pre-tokenization and single-digit splitting, the setup of SmolLM2's tokenizer.json.
  Qwen2.5 (pre "qwen2"): the same BPE after Qwen2's split regex (digits one by one), as in
  Qwen2's tokenizer.json (whose NFC normalizer is left out: GGUF engines do not apply it).
* sentencepiece-style vocab (gemma3, tokenizer.ggml.model == "llama"): a small score-driven
  merge (repeatedly join the adjacent pair whose union is a vocab piece of highest score),
  with byte fallback <0xNN>. Control tokens are matched literally when parse_special is set.
"""
from __future__ import annotations

import re

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

CONTROL = 3  # tokenizer.ggml.token_type value of control/special tokens
_SUPPORTED_PRE = ("smollm", "default", "gpt2", "qwen2")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


class GGUFTokenizer:
    def __init__(self, md: dict):
        self.kind = md["tokenizer.ggml.model"]
        self.tokens: list[str] = list(md["tokenizer.ggml.tokens"])
        self.types: list[int] = list(md["tokenizer.ggml.token_type"])
        self.bos_id = md.get("tokenizer.ggml.bos_token_id")
        self.eos_id = md.get("tokenizer.ggml.eos_token_id")
        self.specials = {t: i for i, t in enumerate(self.tokens) if self.types[i] == CONTROL}
        if self.kind == "gpt2":
            self._hf = self._build_bpe(md)
        elif self.kind == "llama":
            self.scores = list(md["tokenizer.ggml.scores"])
            self.piece_id = {t: i for i, t in enumerate(self.tokens)}
        else:
            raise ValueError(f"unsupported tokenizer model {self.kind!r}")

    def _build_bpe(self, md: dict) -> Tokenizer:
        pre = md.get("tokenizer.ggml.pre", "default")
        if pre not in _SUPPORTED_PRE:
            raise ValueError(f"reference tokenizer lacks pre-tokenizer {pre!r}")
        vocab = {t: i for i, t in enumerate(self.tokens)}
        merges = [tuple(m.split(" ", 1)) for m in md["tokenizer.ggml.merges"]]
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
        steps = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
        if pre == "qwen2":
            steps = [pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
        if pre == "smollm":
            steps.insert(0, pre_tokenizers.Digits(individual_digits=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
        tok.decoder = decoders.ByteLevel()
        return tok

    # -- encoding -------------------------------------------------------------------------
    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        """Token ids of `text` (no BOS is added; callers prepend it where a model needs it)."""
        if not parse_special or not self.specials:
            return self._encode_plain(text)
        pattern = "(" + "|".join(re.escape(s) for s in sorted(self.specials, key=len, reverse=True)) + ")"
        ids: list[int] = []
        for part in re.split(pattern, text):
            if part in self.specials:
                ids.append(self.specials[part])
            elif part:
                ids.extend(self._encode_plain(part))
        return ids

    def _encode_plain(self, text: str) -> list[int]:
        if self.kind == "gpt2":
            return self._hf.encode(text, add_special_tokens=False).ids
        return self._encode_spm(text)

    def _encode_spm(self, text: str) -> list[int]:
        syms = list(text.replace(" ", "\u2581"))  # one symbol per code point
        while len(syms) > 1:
            best, best_i = None, -1
            for i in range(len(syms) - 1):
                pid = self.piece_id.get(syms[i] + syms[i + 1])
                if pid is not None and self.types[pid] != CONTROL:
                    if best is None or self.scores[pid] > best:
                        best, best_i = self.scores[pid], i
            if best_i < 0:
                break
            syms[best_i:best_i + 2] = [syms[best_i] + syms[best_i + 1]]
        ids: list[int] = []
        for s in syms:
            if s in self.piece_id:
                ids.append(self.piece_id[s])
            else:  # byte fallback
                ids.extend(self.piece_id[f"<0x{b:02X}>"] for b in s.encode("utf-8"))
        return ids

    # -- decoding -------------------------------------------------------------------------
    def decode(self, ids) -> str:
        if self.kind == "gpt2":
            return self._hf.decode(list(ids), skip_special_tokens=False)
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            m = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", t)
            out += bytes([int(m.group(1), 16)]) if m else t.replace("\u2581", " ").encode("utf-8")
        return out.decode("utf-8", errors="replace")
