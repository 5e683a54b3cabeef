"""Every pre-tokenizer name (tokenizer.ggml.pre) and the WordPiece and SentencePiece models
against HF `tokenizers` built from the same vocabulary, on the 1,200-string corpus.

Vocabularies: llama.cpp's conformance files (../shared/conformance/vocab) and SmolLM2's, each
rewritten to a vocabulary-only GGUF with the pre-tokenizer name under test. The references are
the HF pipelines those models' tokenizer.json files hold (written here independently of the
engine's tables): Split regexes with behavior "isolated", Digits, Punctuation and ByteLevel, in
order; user-defined tokens as added tokens (the engine splits them out of plain text too).
Normalizers that GGUF engines do not apply (NFC of GPT-NeoX/MPT, Qwen2) are left out.
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import write_results  # noqa: E402
from test_tokenizer_hf import (LLAMA3_PATTERN, NORMAL, QWEN2_PATTERN, USER_DEFINED, bpe_reference,  # noqa: E402
                               compare, first_index, read_vocab, spm_merges, with_digit_groups)

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers  # noqa: E402

VOCAB_DIR = os.path.join(os.environ.get("EDGELLM_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")),
                         "..", "shared", "conformance", "vocab")

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# DeepSeek LLM's cased-letter class, with the code points its tokenizer.json has (NFC would turn
# U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126 and U+212A into other characters).
DEEPSEEK_LETTERS = (
    "A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
    "\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba"
    "\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45"
    "\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe"
    "\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc"
    "\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134"
    "\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee"
    "\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf"
    "\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3"
    "\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df"
    "\U0001e900-\U0001e943")
DEEPSEEK_CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"
BLOOM_PATTERN = " ?[^(\\s|[.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c])]+"
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
                  r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
                  r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def split(pattern: str):
    return pre_tokenizers.Split(Regex(pattern), behavior="isolated")


def byte_level(use_regex: bool):
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)


def digits(individual: bool):
    return pre_tokenizers.Digits(individual_digits=individual)


# pipeline -> HF pre-tokenizer steps, as in the models' tokenizer.json files.
PIPELINES = {
    "gpt-2": lambda: [byte_level(True)],
    "llama3": lambda: [split(LLAMA3_PATTERN), byte_level(False)],
    "qwen2": lambda: [split(QWEN2_PATTERN), byte_level(False)],
    "starcoder": lambda: [digits(True), byte_level(True)],
    "deepseek-llm": lambda: [split(p) for p in ("[\r\n]", "\\s?[" + DEEPSEEK_LETTERS + "]+",
                                                 "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
                                                 "\\s+$", DEEPSEEK_CJK, "\\p{N}+")] + [byte_level(False)],
    "deepseek-coder": lambda: [split(p) for p in ("[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DEEPSEEK_CJK, "\\p{N}")]
                               + [byte_level(False)],
    "falcon": lambda: [pre_tokenizers.Punctuation("contiguous"), byte_level(True), digits(False),
                        split("[0-9][0-9][0-9]")],
    "bloom": lambda: [split(BLOOM_PATTERN), byte_level(False)],
    "viking": lambda: [split(BLOOM_PATTERN), digits(True), byte_level(False)],
    "tekken": lambda: [split(TEKKEN_PATTERN), byte_level(False)],
}
# Every name llama.cpp writes, with the pipeline its model's tokenizer.json has and the vocabulary
# it is checked on ("smollm2+digits": SmolLM2's with 2- and 3-digit tokens, so number grouping shows).
NAMES = [
    ("gpt-2", "gpt-2", "gpt-2"), ("mpt", "gpt-2", "gpt-2"), ("olmo", "gpt-2", "gpt-2"),
    ("jais", "gpt-2", "gpt-2"),
    ("llama3", "llama3", "smollm2+digits"), ("llama-bpe", "llama3", "smollm2+digits"),
    ("chatglm-bpe", "llama3", "smollm2+digits"), ("dbrx", "llama3", "smollm2+digits"),
    ("smaug-bpe", "llama3", "smollm2+digits"),
    ("qwen2", "qwen2", "smollm2+digits"), ("deepseek-r1-qwen", "qwen2", "smollm2+digits"),
    ("stablelm2", "qwen2", "smollm2+digits"),
    ("starcoder", "starcoder", "starcoder"), ("refact", "starcoder", "starcoder"),
    ("command-r", "starcoder", "starcoder"), ("smollm", "starcoder", "smollm2"),
    ("codeshell", "starcoder", "starcoder"), ("exaone", "starcoder", "starcoder"),
    ("minerva-7b", "starcoder", "starcoder"),
    ("deepseek-llm", "deepseek-llm", "deepseek-llm"), ("deepseek-coder", "deepseek-coder", "deepseek-llm"),
    ("falcon", "falcon", "falcon"),
    ("bloom", "bloom", "gpt-2"), ("poro-chat", "bloom", "gpt-2"), ("gpt3-finnish", "bloom", "gpt-2"),
    ("viking", "viking", "gpt-2"),
    ("tekken", "tekken", "smollm2"),
]
# The Llama 3 family reads ignore_merges from its name (llama3, llama-bpe, ...), not the pattern.
IGNORE_MERGES = {"llama3", "llama-bpe", "tekken"}


def conformance_vocab(name: str) -> str:
    path = os.path.join(VOCAB_DIR, f"ggml-vocab-{name}.gguf")
    if not os.path.isfile(path):
        pytest.skip(f"conformance vocabulary {path} is absent")
    return path


_VOCABS: dict = {}


def vocab(key: str, smollm_path: str) -> dict:
    if key not in _VOCABS:
        if key.startswith("smollm2"):
            md = read_vocab(smollm_path)
            _VOCABS[key] = with_digit_groups(md) if key.endswith("+digits") else md
        else:
            _VOCABS[key] = read_vocab(conformance_vocab(key))
    return _VOCABS[key]


def write_vocab(path: str, md: dict, model: str, pre: str | None, ids: dict | None = None) -> None:
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    w.add_token_list(md["tokenizer.ggml.tokens"])
    w.add_token_types(md["tokenizer.ggml.token_type"])
    if "tokenizer.ggml.merges" in md:
        w.add_token_merges(md["tokenizer.ggml.merges"])
    if "tokenizer.ggml.scores" in md:
        w.add_token_scores(md["tokenizer.ggml.scores"])
    for key, value in (ids or {}).items():
        w.add_uint32(key, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def with_user_defined(ref: Tokenizer, md: dict) -> Tokenizer:
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    user = [tokens[i] for i, t in enumerate(types) if t == USER_DEFINED]
    if user:
        ref.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])
    return ref


_REFERENCES: dict = {}


@pytest.mark.parametrize("name,pipeline,vocab_key", NAMES, ids=[n[0] for n in NAMES])
def test_pre_tokenizer_matches_hf(engine, smollm_path, tmp_path, name, pipeline, vocab_key):
    md = vocab(vocab_key, smollm_path)
    path = str(tmp_path / f"vocab-{name}.gguf")
    write_vocab(path, md, "gpt2", name)
    key = (pipeline, vocab_key, name in IGNORE_MERGES)  # names sharing a pipeline share it
    if key not in _REFERENCES:
        _REFERENCES[key] = with_user_defined(bpe_reference(md, PIPELINES[pipeline](), ignore_merges=key[2]), md)
    compare(engine, path, _REFERENCES[key], f"pre_{name}")


# --- WordPiece --------------------------------------------------------------------------------
def wordpiece_reference(md: dict, lowercase: bool) -> Tokenizer:
    """HF WordPiece over llama.cpp's form of the vocabulary ("\u2581word" initial, bare continuation)."""
    vocab = {}
    for i, t in enumerate(md["tokenizer.ggml.tokens"]):
        if t.startswith("[") and t.endswith("]"):
            hf = t
        elif t.startswith("\u2581"):
            hf = t[1:]
        else:
            hf = "##" + t
        vocab.setdefault(hf, i)
    ref = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    ref.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=lowercase)
    ref.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return ref


BERT_IDS = {"tokenizer.ggml.unknown_token_id": 100, "tokenizer.ggml.cls_token_id": 101,
            "tokenizer.ggml.seperator_token_id": 102}


def test_wordpiece_uncased_matches_hf(engine, tmp_path):
    md = read_vocab(conformance_vocab("bert-bge"))
    path = str(tmp_path / "vocab-bert.gguf")
    write_vocab(path, md, "bert", "bert-bge", BERT_IDS)
    compare(engine, path, wordpiece_reference(md, lowercase=True), "wordpiece_uncased")


def test_wordpiece_cased_matches_hf(engine, tmp_path):
    """The same vocabulary plus capitalized and accented word pieces reads as cased: no
    lowercasing, no accent stripping (HF BertNormalizer(lowercase=False))."""
    md = dict(read_vocab(conformance_vocab("bert-bge")))
    tokens, types = list(md["tokenizer.ggml.tokens"]), list(md["tokenizer.ggml.token_type"])
    have = set(tokens)
    extra = []
    for t in tokens[1000:6000]:
        for v in (t[:1] + t[1:2].upper() + t[2:], t.replace("e", "\u00e9")):
            if t.startswith("\u2581") and v not in have:
                have.add(v)
                extra.append(v)
    md["tokenizer.ggml.tokens"] = tokens + extra
    md["tokenizer.ggml.token_type"] = types + [NORMAL] * len(extra)
    path = str(tmp_path / "vocab-bert-cased.gguf")
    write_vocab(path, md, "bert", "bert-bge", BERT_IDS)
    compare(engine, path, wordpiece_reference(md, lowercase=False), "wordpiece_cased")


def test_wordpiece_adds_cls_and_sep(engine, tmp_path):
    md = read_vocab(conformance_vocab("bert-bge"))
    path = str(tmp_path / "vocab-bert.gguf")
    write_vocab(path, md, "bert", "bert-bge", BERT_IDS)
    ids = engine.tokenize(path, ["hello world"])[0]
    with_bos = [int(x) for x in engine.run(["tokenize", "-m", path, "-p", "hello world", "--bos"]).split()
                if x.strip("[],").isdigit()]
    assert with_bos[0] == 101 and with_bos[-1] == 102 and with_bos[1:-1] == ids


# --- SentencePiece with a space prefix (Llama 2) ----------------------------------------------
def test_llama_spm_matches_hf(engine):
    """llama-spm: SentencePiece BPE with byte fallback and a space prefix (the legacy Llama
    tokenizer.json: Prepend("\u2581") and Replace(" ", "\u2581"))."""
    path = conformance_vocab("llama-spm")
    md = read_vocab(path)
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    ref = Tokenizer(models.BPE(vocab=first_index(tokens), merges=spm_merges(md), byte_fallback=True,
                               unk_token="<unk>", fuse_unk=True))
    ref.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    ref.add_tokens([AddedToken(tokens[i], normalized=False, special=False)
                    for i, t in enumerate(types) if t == USER_DEFINED])
    compare(engine, path, ref, "spm_llama")


def test_names_cover_the_issue_list():
    wanted = {"gpt-2", "llama3", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-r1-qwen", "falcon",
              "mpt", "starcoder", "refact", "command-r", "smollm", "chatglm-bpe", "viking", "jais", "tekken",
              "poro-chat", "bloom", "gpt3-finnish", "exaone", "minerva-7b"}
    assert wanted <= {n[0] for n in NAMES}
    write_results("tokenizer_hf_pretokenizer_names.json", sorted(n[0] for n in NAMES))
