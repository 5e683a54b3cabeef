"""`edgellm convert` of a Hugging Face BERT folder into llama.cpp's "bert" GGUF layout (#16): every
tensor lands under llama.cpp's name with the same values (F32 exactly, F16 to half precision),
the metadata keys llama.cpp reads are there, the vocabulary is in llama.cpp's WordPiece form, and
broken folders are refused with the reason. Tiny random-weight folders only (fast)."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from gguf import GGUFReader

from reference.bert import read_safetensors, write_safetensors, write_tiny_bert


def convert(engine, folder, out, *extra):
    return subprocess.run([engine.path, "convert", str(folder), str(out), "-q", *extra], capture_output=True,
                          text=True, timeout=120)


def field(reader, key):
    f = reader.fields[key]
    if f.types and f.types[0].name == "STRING":
        return bytes(f.parts[f.data[0]]).decode()
    if f.types and f.types[0].name == "ARRAY":
        if f.types[-1].name == "STRING":
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [int(f.parts[i][0]) for i in f.data]
    return f.parts[f.data[0]][0].item()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny-bert-hf")


@pytest.mark.parametrize("wtype", ["f32", "f16"])
def test_tensors_and_metadata_in_llama_cpp_layout(engine, tiny, tmp_path, wtype):
    out = tmp_path / "tiny.gguf"
    r = convert(engine, tiny, out, "--type", wtype)
    assert r.returncode == 0, r.stderr
    g = GGUFReader(str(out))
    cfg = json.loads((tiny / "config.json").read_text())
    assert field(g, "general.architecture") == "bert"
    assert field(g, "general.name") == "tiny-bert"
    assert field(g, "bert.block_count") == cfg["num_hidden_layers"]
    assert field(g, "bert.embedding_length") == cfg["hidden_size"]
    assert field(g, "bert.feed_forward_length") == cfg["intermediate_size"]
    assert field(g, "bert.attention.head_count") == cfg["num_attention_heads"]
    assert field(g, "bert.context_length") == cfg["max_position_embeddings"]
    assert field(g, "bert.attention.causal") is False
    assert field(g, "bert.pooling_type") == 1  # mean
    assert field(g, "tokenizer.ggml.model") == "bert"
    assert field(g, "tokenizer.ggml.token_type_count") == 2
    toks = field(g, "tokenizer.ggml.tokens")
    vocab = (tiny / "vocab.txt").read_text().split("\n")[:-1]
    assert len(toks) == len(vocab)
    assert toks[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert toks[vocab.index("cat")] == "\u2581cat" and toks[vocab.index("##a")] == "a"
    types = field(g, "tokenizer.ggml.token_type")
    assert types[:5] == [3, 2, 3, 3, 3] and set(types[5:]) == {1}
    assert field(g, "tokenizer.ggml.cls_token_id") == 2 and field(g, "tokenizer.ggml.seperator_token_id") == 3

    hf = read_safetensors(tiny / "model.safetensors")
    names = {"token_embd.weight": "embeddings.word_embeddings.weight",
             "token_types.weight": "embeddings.token_type_embeddings.weight",
             "position_embd.weight": "embeddings.position_embeddings.weight",
             "token_embd_norm.weight": "embeddings.LayerNorm.weight", "token_embd_norm.bias": "embeddings.LayerNorm.bias"}
    for il in range(cfg["num_hidden_layers"]):
        for g_name, h_name in [("attn_q", "attention.self.query"), ("attn_k", "attention.self.key"),
                               ("attn_v", "attention.self.value"), ("attn_output", "attention.output.dense"),
                               ("attn_output_norm", "attention.output.LayerNorm"), ("ffn_up", "intermediate.dense"),
                               ("ffn_down", "output.dense"), ("layer_output_norm", "output.LayerNorm")]:
            for s in ("weight", "bias"):
                names[f"blk.{il}.{g_name}.{s}"] = f"encoder.layer.{il}.{h_name}.{s}"
    got = {t.name: t for t in g.tensors}
    assert set(got) == set(names)
    for g_name, h_name in names.items():
        t, want = got[g_name], hf[h_name]
        assert list(t.shape) == list(reversed(want.shape)), g_name  # ggml order
        matrix = want.ndim == 2
        assert t.tensor_type.name == ("F16" if matrix and wtype == "f16" else "F32"), g_name
        data = np.asarray(t.data, dtype=np.float32).reshape(want.shape)
        if t.tensor_type.name == "F32":
            assert np.array_equal(data, want), g_name
        else:
            assert np.array_equal(data, want.astype(np.float16).astype(np.float32)), g_name


def test_vocab_txt_when_there_is_no_tokenizer_json(engine, tiny, tmp_path):
    import shutil
    d = tmp_path / "no-json"
    shutil.copytree(tiny, d)
    (d / "tokenizer.json").unlink()
    r = convert(engine, d, tmp_path / "a.gguf", "--type", "f32")
    assert r.returncode == 0, r.stderr
    r2 = convert(engine, tiny, tmp_path / "b.gguf", "--type", "f32")
    assert r2.returncode == 0, r2.stderr
    a, b = GGUFReader(str(tmp_path / "a.gguf")), GGUFReader(str(tmp_path / "b.gguf"))
    assert field(a, "tokenizer.ggml.tokens") == field(b, "tokenizer.ggml.tokens")
    assert field(a, "tokenizer.ggml.token_type") == field(b, "tokenizer.ggml.token_type")


def _broken(tiny, tmp_path, how):
    import shutil
    d = tmp_path / "broken"
    shutil.copytree(tiny, d)
    st = d / "model.safetensors"
    if how == "truncated":
        st.write_bytes(st.read_bytes()[:-100])
    elif how == "header":
        st.write_bytes(b"\xff" * 8 + st.read_bytes()[8:])
    elif how == "missing":
        w = read_safetensors(st)
        del w["encoder.layer.1.output.dense.bias"]

        write_safetensors(st, w)
    elif how == "shape":
        c = json.loads((d / "config.json").read_text())
        c["intermediate_size"] = 96
        (d / "config.json").write_text(json.dumps(c))
    elif how == "pooling":
        (d / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    elif how == "act":
        c = json.loads((d / "config.json").read_text())
        c["hidden_act"] = "relu"
        (d / "config.json").write_text(json.dumps(c))
    return d


@pytest.mark.parametrize("how,message", [("truncated", "outside the file"), ("header", "header length"),
                                         ("missing", "'encoder.layer.1.output.dense.bias' is missing"),
                                         ("shape", "expected [96, 64]"), ("pooling", "mean or CLS pooling"),
                                         ("act", "hidden_act")])
def test_broken_folders_are_refused_with_the_reason(engine, tiny, tmp_path, how, message):
    out = tmp_path / "out.gguf"
    r = convert(engine, _broken(tiny, tmp_path, how), out)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not out.exists()


def test_an_input_no_converter_takes_lists_the_accepted_ones(engine, tmp_path):
    r = convert(engine, tmp_path, tmp_path / "o.gguf")
    assert r.returncode == 1 and "no converter takes" in r.stderr and "bert:" in r.stderr

