"""Engine token ids vs HF `tokenizers` built from the same GGUF vocabulary.

References (built here from tokens/merges/scores read with the gguf package; nothing comes
from the engine):
* SmolLM2 (gpt2 BPE, pre "smollm"): BPE + Sequence[Digits(individual), ByteLevel(regex)],
  no normalizer, no added tokens (the engine runs with parse_special=false, so special-token
  text is plain text).
* The llama3 and qwen2 pre-tokenizer patterns: SmolLM2's vocab written to a vocabulary-only
  GGUF with tokenizer.ggml.pre = llama-bpe / qwen2, reference Split(Regex(pattern)) + ByteLevel.
* Qwen2.5-Coder 0.5B and 1.5B (gpt2 BPE, pre "qwen2"; the two files hold the same vocabulary):
  Split(Regex(qwen2 pattern)) + ByteLevel, the two user-defined tokens (<tool_call>,
  </tool_call>) as added tokens, which the engine also splits out of plain text. Qwen2's
  tokenizer.json also has an NFC normalizer, which GGUF engines (llama.cpp, edgellm) do not
  apply: the reference leaves it out (it matters only for decomposed text such as "e\u0301").
* Gemma 3 (SentencePiece BPE with byte fallback, no space prefix): BPE whose merges are all
  splits of each normal piece into two pieces, ranked by the merged piece's score (the
  SentencePiece rule "merge the highest-scoring adjacent pair"), normalizer " " -> U+2581,
  byte_fallback, user-defined tokens (whitespace/newline runs, ...) as non-normalized added
  tokens (they are always split out, as in SentencePiece).
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from conftest import model_path_or_skip, write_results  # noqa: E402
from tokenizer_corpus import corpus  # noqa: E402

gguf = pytest.importorskip("gguf")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers  # noqa: E402

QWEN_FILES = {"qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
              "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}

N_STRINGS = 1200
NORMAL, USER_DEFINED = 1, 4
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = LLAMA3_PATTERN.replace(r"\p{N}{1,3}", r"\p{N}")


def read_vocab(path: str) -> dict:
    r = gguf.GGUFReader(path)
    out = {}
    for key in ("tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                "tokenizer.ggml.token_type", "tokenizer.ggml.scores", "tokenizer.ggml.merges"):
        if key in r.fields:
            out[key] = r.fields[key].contents()
    return out


def first_index(tokens: list[str]) -> dict:
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    return vocab


def split_merge(m: str) -> tuple[str, str]:
    sp = m.index(" ", 1)
    return m[:sp], m[sp + 1:]


def bpe_reference(md: dict, pre_steps, ignore_merges: bool = False) -> Tokenizer:
    vocab = first_index(md["tokenizer.ggml.tokens"])
    merges = [split_merge(m) for m in md["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence(pre_steps)
    tok.decoder = decoders.ByteLevel()
    return tok


def spm_merges(md: dict) -> list:
    """Every split of a normal piece into two vocabulary pieces, best merged score first."""
    if "_merges" not in md:
        tokens, types, scores = (md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"],
                                 md["tokenizer.ggml.scores"])
        vocab = first_index(tokens)
        normal = [i for i, t in enumerate(types) if t == NORMAL]
        normal.sort(key=lambda i: (-scores[i], i))
        merges = []
        for i in normal:
            piece = tokens[i]
            for k in range(1, len(piece)):
                left, right = piece[:k], piece[k:]
                if left in vocab and right in vocab:
                    merges.append((left, right))
        md["_merges"] = merges
    return md["_merges"]


def spm_reference(md: dict) -> Tokenizer:
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    vocab = first_index(tokens)
    merges = spm_merges(md)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>",
                               fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.add_tokens([AddedToken(tokens[i], normalized=False, special=False)
                    for i, t in enumerate(types) if t == USER_DEFINED])
    return tok


def add_control_tokens(ref: Tokenizer, md: dict) -> Tokenizer:
    """With parse_special the engine also splits out control (3) and unknown (2) tokens."""
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    ref.add_special_tokens([AddedToken(tokens[i], normalized=False, special=True)
                            for i, t in enumerate(types) if t in (2, 3)])
    return ref


def compare(engine, model_path: str, ref: Tokenizer, name: str, special: bool = False) -> None:
    """Asserts identical ids on the corpus (special: with control-token text mixed in)."""
    texts = corpus(N_STRINGS)
    if special:  # make sure real special-token text occurs often
        texts = [t if i % 3 else f"<|im_start|>{t}<end_of_turn><|im_end|>" for i, t in enumerate(texts)]
    ours = engine.tokenize(model_path, texts, special=special)
    assert len(ours) == len(texts)
    want = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    mismatches = [(t, w, o) for t, w, o in zip(texts, want, ours) if w != o]
    n_tokens = sum(len(w) for w in want)
    write_results(f"tokenizer_hf_{name}.json", {
        "strings": len(texts), "reference_tokens": n_tokens, "mismatches": len(mismatches)})
    print(f"{name}: {len(texts)} strings, {n_tokens} tokens, {len(mismatches)} mismatches")
    detail = "\n".join(f"{t!r}\n  hf:  {w}\n  ours: {o}" for t, w, o in mismatches[:10])
    assert not mismatches, f"{len(mismatches)}/{len(texts)} strings differ:\n{detail}"


@pytest.fixture(scope="module")
def smollm_vocab(smollm_path) -> dict:
    return read_vocab(smollm_path)


def test_corpus_is_large_and_deterministic():
    a, b = corpus(N_STRINGS), corpus(N_STRINGS)
    assert a == b and len(a) >= 1000 and len(set(a)) > 900


def smollm_reference(md: dict) -> Tokenizer:
    assert md["tokenizer.ggml.pre"] == "smollm"
    return bpe_reference(md, [pre_tokenizers.Digits(individual_digits=True),
                              pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def test_smollm2_matches_hf(engine, smollm_path, smollm_vocab):
    compare(engine, smollm_path, smollm_reference(smollm_vocab), "smollm2")


def test_smollm2_parse_special_matches_hf(engine, smollm_path, smollm_vocab):
    ref = add_control_tokens(smollm_reference(smollm_vocab), smollm_vocab)
    compare(engine, smollm_path, ref, "smollm2_special", special=True)


def write_vocab_only(path: str, md: dict, pre: str) -> None:
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(md["tokenizer.ggml.tokens"])
    w.add_token_types(md["tokenizer.ggml.token_type"])
    w.add_token_merges(md["tokenizer.ggml.merges"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def with_digit_groups(md: dict) -> dict:
    """SmolLM2's vocab has single digits only; add 2- and 3-digit ASCII tokens and merges so
    that how a pattern groups numbers (\\p{N}{1,3} vs \\p{N}) shows in the ids."""
    md = dict(md)
    tokens, types, merges = (list(md["tokenizer.ggml.tokens"]), list(md["tokenizer.ggml.token_type"]),
                             list(md["tokenizer.ggml.merges"]))
    digits = "0123456789"
    for a in digits:
        for b in digits:
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    for a in digits:
        for b in digits:
            for c in digits:
                tokens.append(a + b + c)
                merges.append(f"{a}{b} {c}")
    types += [NORMAL] * (len(tokens) - len(types))
    md.update({"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": types,
               "tokenizer.ggml.merges": merges})
    return md


@pytest.mark.parametrize("pre,pattern,ignore_merges", [
    ("llama-bpe", LLAMA3_PATTERN, True),
    ("qwen2", QWEN2_PATTERN, False),
])
def test_regex_pretokenizers_match_hf(engine, smollm_vocab, tmp_path, pre, pattern, ignore_merges):
    path = str(tmp_path / f"vocab-{pre}.gguf")
    md = with_digit_groups(smollm_vocab)
    write_vocab_only(path, md, pre)
    ref = bpe_reference(md, [
        pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)], ignore_merges)
    compare(engine, path, ref, pre)


@pytest.fixture(scope="module")
def gemma3_vocab(gemma3_path) -> dict:
    md = read_vocab(gemma3_path)
    assert md["tokenizer.ggml.model"] == "llama"
    return md


def test_gemma3_matches_hf(engine, gemma3_path, gemma3_vocab):
    compare(engine, gemma3_path, spm_reference(gemma3_vocab), "gemma3")


def test_gemma3_parse_special_matches_hf(engine, gemma3_path, gemma3_vocab):
    compare(engine, gemma3_path, add_control_tokens(spm_reference(gemma3_vocab), gemma3_vocab),
            "gemma3_special", special=True)


# --- Qwen2.5-Coder ------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=list(QWEN_FILES))
def qwen(request) -> tuple[str, str, dict]:
    path = model_path_or_skip(QWEN_FILES[request.param])
    return request.param, path, read_vocab(path)


def qwen_reference(md: dict) -> Tokenizer:
    assert md["tokenizer.ggml.pre"] == "qwen2"
    ref = bpe_reference(md, [pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokens, types = md["tokenizer.ggml.tokens"], md["tokenizer.ggml.token_type"]
    user = [tokens[i] for i, t in enumerate(types) if t == USER_DEFINED]
    assert user == ["<tool_call>", "</tool_call>"]
    ref.add_tokens([AddedToken(t, normalized=False, special=False) for t in user])
    return ref


def test_qwen_matches_hf(engine, qwen):
    name, path, md = qwen
    compare(engine, path, qwen_reference(md), name)


def test_qwen_parse_special_matches_hf(engine, qwen):
    name, path, md = qwen
    compare(engine, path, add_control_tokens(qwen_reference(md), md), name + "_special", special=True)


def test_qwen_tool_call_tags_split_out_of_plain_text(engine, qwen):
    name, path, md = qwen
    ids = engine.tokenize(path, ["x<tool_call>{}</tool_call>y"])[0]
    tokens = md["tokenizer.ggml.tokens"]
    assert tokens.index("<tool_call>") in ids and tokens.index("</tool_call>") in ids
