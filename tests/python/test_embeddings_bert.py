"""BERT sentence embeddings (#16): `edgellm embed` on GGUFs made by `edgellm convert` against the NumPy
BERT reference (tests/python/reference/bert.py), which reads model.safetensors itself and tokenizes
with HF `tokenizers` from tokenizer.json, so neither the converter nor our WordPiece is trusted.

Tiny random-weight folders always run (mean and CLS pooling, F32 and F16, batching, errors);
all-minilm-l6-v2 (scripts/fetch-models all-minilm-l6-v2) runs on 50 varied sentences when it is
in the model cache: cosine >= 0.999 per sentence (measured: see the results file)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from conftest import model_dir, write_results
from embedding_sentences import SENTENCES
from reference.bert import BertReference, write_tiny_bert

TINY_TEXTS = ["the cat sat on the mat", "A red car runs FAST!", "dog", "search my notes and mail",
              "zebra quickly jumped", "the train station is near, isn't it?", "é ü 東 unknownish words",
              "the " * 20 + "end"]


def embed(engine, model, texts, *extra):
    r = subprocess.run([engine.path, "embed", "-m", str(model), "--jsonl", "-t", "2", *extra],
                       input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = np.array([json.loads(line) for line in r.stdout.splitlines()], dtype=np.float64)
    assert out.shape[0] == len(texts)
    return out


def convert(engine, folder, out, wtype):
    r = subprocess.run([engine.path, "convert", str(folder), str(out), "-q", "--type", wtype], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-hf")


@pytest.mark.parametrize("wtype,min_cos", [("f32", 0.99999), ("f16", 0.9999)])
@pytest.mark.parametrize("cls", [False, True])
def test_tiny_bert_matches_numpy(engine, tmp_path, wtype, min_cos, cls):
    folder = write_tiny_bert(tmp_path / "tiny-hf", seed=3 if cls else 1, cls_pooling=cls)
    gguf = convert(engine, folder, tmp_path / "tiny.gguf", wtype)
    ref = BertReference(folder)
    got = embed(engine, gguf, TINY_TEXTS)
    for text, e in zip(TINY_TEXTS, got):
        r = ref.embed(text)
        assert abs(np.linalg.norm(e) - 1) < 1e-5
        assert float(e @ r) >= min_cos, text
        if wtype == "f32":
            assert np.max(np.abs(e - r)) < 1e-4, text


def test_a_sentence_embeds_the_same_alone_and_in_a_batch(engine, tiny, tmp_path):
    gguf = convert(engine, tiny, tmp_path / "tiny.gguf", "f32")
    together = embed(engine, gguf, TINY_TEXTS, "-b", "64")
    alone = embed(engine, gguf, TINY_TEXTS, "-b", "1")
    assert np.max(np.abs(together - alone)) < 1e-5


def test_refusals(engine, tiny, tmp_path, smollm_path):
    gguf = convert(engine, tiny, tmp_path / "tiny.gguf", "f32")
    run = lambda *a: subprocess.run([engine.path, "embed", *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run("-m", str(gguf), "-p", "the " * 70)  # 72 tokens; the tiny model has 64 positions
    assert r.returncode == 1 and "at most 64" in r.stderr, r.stderr
    # --truncate: the first 63 tokens and [SEP], as sentence-transformers truncates.
    r = run("-m", str(gguf), "-p", "the " * 70 + "cat", "--truncate")
    assert r.returncode == 0, r.stderr
    ref = BertReference(tiny)
    ids = ref.encode("the " * 70)[:63] + [ref.encode("x")[-1]]
    want = ref.hidden(ids).mean(0)
    assert float(np.asarray(json.loads(r.stdout)) @ (want / np.linalg.norm(want))) > 0.99999
    r = run("-m", smollm_path, "-p", "hello")
    assert r.returncode == 1 and "not a sentence-embedding model" in r.stderr, r.stderr
    r = run("-m", str(gguf))
    assert r.returncode == 1 and "nothing to embed" in r.stderr, r.stderr
    r = subprocess.run([engine.path, "run", "-m", str(gguf), "-p", "hi"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "sentence-embedding model" in r.stderr and "edgellm embed" in r.stderr, r.stderr


def minilm_folder():
    d = model_dir() / "all-minilm-l6-v2-hf"
    if not (d / "model.safetensors").is_file():
        pytest.skip(f"{d} is absent (scripts/fetch-models all-minilm-l6-v2)")
    return d


@pytest.fixture(scope="module")
def minilm_reference():
    """The NumPy reference's vectors of SENTENCES (computed once: ~0.1 s each)."""
    ref = BertReference(minilm_folder())
    return np.array([ref.embed(s) for s in SENTENCES])


@pytest.mark.parametrize("wtype", ["f16", "f32"])
def test_minilm_matches_numpy_on_varied_sentences(engine, tmp_path, wtype, minilm_reference):
    gguf = convert(engine, minilm_folder(), tmp_path / f"minilm.{wtype}.gguf", wtype)
    got = embed(engine, gguf, SENTENCES)
    cos = np.sum(got * minilm_reference, axis=1)
    write_results(f"embeddings_minilm_{wtype}.json", {"min_cos": cos.min(), "mean_cos": cos.mean(), "n": len(cos)})
    assert cos.min() >= 0.999, [(SENTENCES[i], cos[i]) for i in np.argsort(cos)[:3]]
    # The vectors mean something: paraphrases are nearer than unrelated sentences.
    assert got[0] @ got[1] > got[0] @ got[2] and got[3] @ got[6] > got[3] @ got[4]
