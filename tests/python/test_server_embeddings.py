"""/v1/embeddings with a sentence-embedding model beside the chat model (serve --embedding-model, #16):
the vectors are the BERT reference's (tests/python/reference/bert.py) for a tiny random BERT converted
here, batches and base64 as OpenAI, the response names the embedding model, a request naming the chat
model is refused (a decoder's hidden state never passes for a sentence embedding), /v1/models lists
both, and a server without an embedding model refuses /v1/embeddings unless --chat-embeddings."""
from __future__ import annotations

import base64
import subprocess

import numpy as np
import pytest

from reference.bert import BertReference, write_tiny_bert
from server_harness import MODEL_ID, ServerProcess, default_model, get, http

TEXTS = ["the cat sat on the mat", "a red car runs fast", "search my notes", "dog"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("bert")
    folder = write_tiny_bert(d / "tiny-bert-hf")
    gguf = d / "tiny-bert.gguf"
    from server_harness import server_binary
    r = subprocess.run([server_binary(), "convert", str(folder), str(gguf), "-q", "--type", "f32"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return folder, gguf


@pytest.fixture(scope="module")
def server(tiny):
    srv = ServerProcess(["--embedding-model", str(tiny[1])], ctx=512, parallel=1, queue=2)
    yield srv
    assert srv.stop() == 0, srv.output()


def post(srv, body):
    return http("POST", srv.url + "/v1/embeddings", body)


def test_vectors_match_the_reference_and_name_the_embedding_model(server, tiny):
    ref = BertReference(tiny[0])
    r = post(server, {"model": "tiny-bert", "input": TEXTS})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["model"] == "tiny-bert" and [d["index"] for d in j["data"]] == list(range(len(TEXTS)))
    assert j["usage"]["prompt_tokens"] == sum(len(ref.encode(t)) for t in TEXTS)
    for text, d in zip(TEXTS, j["data"]):
        got = np.asarray(d["embedding"])
        assert got.shape == (64,) and float(got @ ref.embed(text)) > 0.99999
    # One string, no "model", base64: the same vector.
    one = post(server, {"input": TEXTS[1], "encoding_format": "base64"}).json()
    raw = np.frombuffer(base64.b64decode(one["data"][0]["embedding"]), dtype="<f4")
    assert one["model"] == "tiny-bert" and np.allclose(raw, j["data"][1]["embedding"], atol=1e-6)
    # Token ids as input (the reference's own ids).
    ids = post(server, {"input": [ref.encode(TEXTS[2])]}).json()
    assert np.allclose(ids["data"][0]["embedding"], j["data"][2]["embedding"], atol=1e-6)


def test_the_chat_model_is_not_an_embedding_model(server):
    r = post(server, {"model": MODEL_ID, "input": "hello"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_embedding", r.text
    assert "tiny-bert" in r.json()["error"]["message"]
    r = post(server, {"model": "nope", "input": "hello"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    models = get(server.url + "/v1/models").json()["data"]
    assert [m["id"] for m in models] == [MODEL_ID, "tiny-bert"] and models[1]["meta"]["kind"] == "embedding"
    assert get(server.url + "/v1/models/tiny-bert").json()["meta"]["n_embd"] == 64
    # Chat still works beside it.
    c = http("POST", server.url + "/v1/chat/completions",
             {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
    assert c.status_code == 200, c.text


@pytest.mark.parametrize("body,code", [
    ({"input": "the " * 70}, "context_length_exceeded"),  # 72 tokens; the tiny model has 64 positions
    ({"input": ""}, "invalid_value"), ({"input": ["a", ""]}, "invalid_value"), ({"input": [[]]}, "invalid_value"),
    ({"input": [[1, 999]]}, "invalid_value"), ({"input": 42}, "invalid_type"), ({"input": [{"x": 1}]}, "invalid_type"),
    ({"input": ["a"] * 257}, None), ({"input": "a", "dimensions": 8}, "unsupported_parameter"),
    ({"input": "a", "encoding_format": "hex"}, None), ({}, None), ({"input": "a", "model": 3}, "invalid_type"),
])
def test_bad_requests_are_400(server, body, code):
    r = post(server, body)
    assert r.status_code == 400, r.text
    if code:
        assert r.json()["error"]["code"] == code, r.text
    assert post(server, {"input": "still fine"}).status_code == 200


def test_without_an_embedding_model_embeddings_are_refused_unless_asked():
    srv = ServerProcess([], ctx=512, parallel=1, queue=1)
    try:
        r = post(srv, {"model": MODEL_ID, "input": "hello"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "embeddings_not_enabled", r.text
        assert "--embedding-model" in r.json()["error"]["message"]
    finally:
        assert srv.stop() == 0, srv.output()


def test_with_several_chat_models_none_passes_for_the_embedding_model(tiny):
    # Two chat models (the same small file under two names), one named like the BERT's file: the
    # embedding model is renamed apart, and naming either chat model is refused.
    smol = default_model()
    srv = ServerProcess(["-m", f"other={smol}", "--embedding-model", str(tiny[1])], ctx=256, parallel=1, queue=2,
                        model=f"tiny-bert={smol}")
    try:
        models = get(srv.url + "/v1/models").json()["data"]
        assert [m["id"] for m in models] == ["tiny-bert", "other", "tiny-bert-embedding"], models
        for chat_model in ["tiny-bert", "other"]:
            r = post(srv, {"model": chat_model, "input": "hello"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "model_not_embedding", r.text
        for body in [{"input": "hello"}, {"model": "tiny-bert-embedding", "input": "hello"}]:
            r = post(srv, body)
            assert r.status_code == 200 and r.json()["model"] == "tiny-bert-embedding", r.text
            assert len(r.json()["data"][0]["embedding"]) == 64
    finally:
        assert srv.stop() == 0, srv.output()
