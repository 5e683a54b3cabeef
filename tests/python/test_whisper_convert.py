"""`edgellm convert` (issue #13): a CTranslate2 Whisper folder -> GGUF whose tensors equal what an
independent NumPy reader of model.bin reads, bit for bit (F16), and which `edgellm quantize`
turns into Q8_0 / Q4_0. Uses the real Whisper tiny folder (the test is about that format)."""
import os
import shutil
import subprocess

import numpy as np
import pytest
from gguf import GGUFReader
from gguf.quants import dequantize

from whisper_ref import ct2_dir_or_skip, read_ct2

BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")


def run(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    src = ct2_dir_or_skip("tiny")
    out = tmp_path_factory.mktemp("conv") / "whisper-tiny.f16.gguf"
    r = run("convert", src, out)
    assert r.returncode == 0, r.stderr
    return src, out


def test_tensors_equal_the_ct2_variables(converted):
    src, out = converted
    variables, aliases = read_ct2(src / "model.bin")
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    reader = GGUFReader(str(out))
    tensors = {t.name: t for t in reader.tensors}
    expected = {k.replace("/", "."): v for k, v in variables.items() if v.ndim > 0}
    assert set(tensors) == set(expected)
    for name, ref in expected.items():
        t = tensors[name]
        assert list(t.shape) == list(reversed(ref.shape)), name  # ggml order
        got = np.asarray(t.data).reshape(ref.shape)
        if ref.ndim >= 2:
            assert got.dtype == np.float16 and np.array_equal(got.view(np.uint16), ref.view(np.uint16)), name
        else:  # vectors are widened to F32 exactly
            assert got.dtype == np.float32 and np.array_equal(got, ref.astype(np.float32)), name
    f = reader.fields
    scalar = lambda k: f[k].parts[f[k].data[0]][0]  # noqa: E731
    assert bytes(f["general.architecture"].parts[-1]).decode() == "whisper"
    assert scalar("whisper.encoder.block_count") == 4 and scalar("whisper.decoder.block_count") == 4
    assert scalar("whisper.encoder.attention.head_count") == variables["encoder/num_heads"].item() == 6
    assert scalar("whisper.embedding_length") == 384 and scalar("whisper.n_mels") == 80
    assert bool(scalar("whisper.multilingual")) is False  # this tiny is the English-only one (51864 tokens)
    vocab = (src / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    tokens = f["tokenizer.ggml.tokens"]
    assert len(tokens.data) == variables["decoder/embeddings/weight"].shape[0]
    assert [bytes(tokens.parts[i]).decode() for i in tokens.data[50256:50260]] == vocab[50256:50260]


FULL = os.environ.get("EDGELLM_FULL_TESTS") == "1"


@pytest.mark.parametrize("qtype,tol", [("Q8_0", 0.01)] + ([("Q4_0", 0.2)] if FULL else []))
def test_quantize_converted(converted, tmp_path, qtype, tol):
    src, out = converted
    q = tmp_path / f"whisper-tiny.{qtype}.gguf"
    r = run("quantize", "-q", out, q, qtype)
    assert r.returncode == 0, r.stderr
    reader = GGUFReader(str(q))
    t = {t.name: t for t in reader.tensors}["encoder.layer_0.ffn.linear_0.weight"]
    assert t.tensor_type.name == qtype
    ref = read_ct2(src / "model.bin")[0]["encoder/layer_0/ffn/linear_0/weight"].astype(np.float32)
    got = dequantize(t.data, t.tensor_type).reshape(ref.shape)
    assert np.abs(got - ref).max() < tol * np.abs(ref).max()


def test_bad_folders_are_clear_errors(tmp_path):
    src = ct2_dir_or_skip("tiny")
    r = run("convert", tmp_path / "nope", tmp_path / "o.gguf")
    assert r.returncode == 1 and "model.bin" in r.stderr
    bad = tmp_path / "trunc"
    bad.mkdir()
    for f in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(src / f, bad / f)
    (bad / "model.bin").write_bytes((src / "model.bin").read_bytes()[:100000])
    r = run("convert", bad, tmp_path / "o.gguf")
    assert r.returncode == 1 and "not a valid CTranslate2 model.bin" in r.stderr, r.stderr
    (bad / "model.bin").write_bytes(b"")
    r = run("convert", bad, tmp_path / "o.gguf")
    assert r.returncode == 1 and "truncated" in r.stderr, r.stderr
    assert not (tmp_path / "o.gguf").exists()
