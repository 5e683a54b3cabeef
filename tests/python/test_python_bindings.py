"""The Python bindings (python/edgellm, ctypes over libedgellm.so) against the CLI: the same
greedy chat answer as `edgellm run`, the same token ids as `edgellm tokenize`, streaming that
adds up to the whole answer and stops when the consumer does, embeddings, and errors."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEFAULT_MODEL, model_path_or_skip

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def edgellm():
    cli = os.environ.get("EDGELLM_BIN")
    if not cli:
        pytest.skip("EDGELLM_BIN is not set to the built edgellm CLI")
    lib = Path(cli).parent / "lib" / "libedgellm.so"
    if not lib.is_file():
        pytest.skip(f"{lib} is not built (ninja edgellm_shared)")
    os.environ["EDGELLM_LIBRARY"] = str(lib)
    src = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
    sys.path.insert(0, str(src / "python"))
    import edgellm as module
    return module


@pytest.fixture(scope="module")
def llm(edgellm):
    model = model_path_or_skip(DEFAULT_MODEL)
    with edgellm.Llama(model_path=model, n_ctx=1024, n_threads=2) as m:
        yield m


def test_greedy_chat_equals_cli(llm, engine, smollm_path):
    out = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=48)
    text = out["choices"][0]["message"]["content"]
    cli = engine.run(["run", "-m", smollm_path, "-p", QUESTION, "--temp", "0", "-n", "48", "-t", "2"])
    assert text + "\n" == cli
    assert out["usage"]["completion_tokens"] > 0
    assert out["choices"][0]["finish_reason"] in ("stop", "length")


def test_stream_adds_up_and_stops(llm):
    msgs = [{"role": "user", "content": "Write a haiku about trains."}]
    whole = llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
    chunks = list(llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=24, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == whole
    # Leaving the stream early stops the generation; the model is usable right after.
    it = llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=200, stream=True)
    next(it)
    next(it)
    it.close()
    again = llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
    assert again == whole


def test_batched_completions_equal_one_by_one(llm):
    """create_chat_completions decodes the conversations together (edgellm_batch_generate): the
    greedy answers are create_chat_completion's, in fewer forward passes than tokens generated."""
    convs = [[{"role": "user", "content": q}] for q in
             (QUESTION, "Write a haiku about trains.", "List three prime numbers.")]
    alone = [llm.create_chat_completion(messages=c, temperature=0, max_tokens=16)["choices"][0]["message"]["content"]
             for c in convs]
    stats: dict[str, int] = {}
    together = llm.create_chat_completions(convs, temperature=0, max_tokens=16, stats=stats)
    assert [o["choices"][0]["message"]["content"] for o in together] == alone
    generated = sum(o["usage"]["completion_tokens"] for o in together)
    assert 0 < stats["passes"] < generated
    assert llm.create_chat_completions([], max_tokens=4) == []


def test_tokenize_equals_cli(llm, engine, smollm_path):
    texts = ["Hello world", "  leading spaces and ünïcödé", "<|im_start|>user"]
    ref = engine.tokenize(smollm_path, texts)
    assert [llm.tokenize(t.encode(), add_bos=False) for t in texts] == ref
    assert llm.detokenize(llm.tokenize(b"Hello world", add_bos=False)) == b"Hello world"
    assert len(llm.tokenize("<|im_start|>", add_bos=False, special=True)) == 1


def test_embed(llm):
    a = llm.embed("The cat sat on the mat.")
    assert len(a) == llm.n_embd() == 576
    assert math.isclose(sum(x * x for x in a), 1.0, rel_tol=1e-4)
    assert llm.embed("The cat sat on the mat.") == a
    b = llm.embed("Quarterly revenue grew by four percent.")
    assert sum(x * y for x, y in zip(a, b)) < 0.999
    assert llm.create_embedding(["x", "y"])["data"][1]["index"] == 1


def test_json_schema_response_format(llm):
    import json
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"], "additionalProperties": False}
    out = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0, max_tokens=48,
                                     response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    content = out["choices"][0]["message"]["content"]
    if out["choices"][0]["finish_reason"] == "stop":
        assert set(json.loads(content)) == {"city"}
    else:
        assert content.startswith('{')


def test_save_and_load_session(edgellm, llm, tmp_path):
    msgs = [{"role": "user", "content": QUESTION}]
    first = llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=8)
    held = llm.n_tokens()
    llm.save_session(tmp_path / "s.bin")
    llm.create_chat_completion(messages=[{"role": "user", "content": "Something else entirely."}], max_tokens=4)
    llm.load_session(tmp_path / "s.bin")
    assert llm.n_tokens() == held
    again = llm.create_chat_completion(messages=msgs, temperature=0, max_tokens=8)
    assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    (tmp_path / "bad.bin").write_bytes(b"junk")
    with pytest.raises(edgellm.EdgellmError) as e:
        llm.load_session(tmp_path / "bad.bin")
    assert e.value.status == "EDGELLM_ERR_BAD_STATE"


def test_errors(edgellm, llm, tmp_path):
    with pytest.raises(edgellm.EdgellmError) as e:
        edgellm.Llama(model_path=str(tmp_path / "missing.gguf"))
    assert e.value.status == "EDGELLM_ERR_IO" and "missing.gguf" in str(e.value)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(edgellm.EdgellmError) as e:
        edgellm.Llama(model_path=str(bad))
    assert e.value.status == "EDGELLM_ERR_MODEL_FORMAT"
    with pytest.raises(edgellm.EdgellmError) as e:
        llm.create_chat_completion(messages=[{"role": "user", "content": "x"}],
                                   response_format={"type": "json_schema", "json_schema": {"schema": {"not": {}}}})
    assert e.value.status == "EDGELLM_ERR_SCHEMA"
    with pytest.raises(edgellm.EdgellmError) as e:
        llm.detokenize([10 ** 7])
    assert e.value.status == "EDGELLM_ERR_INVALID_ARGUMENT"


def test_lora_adapter_equals_cli(edgellm, engine, smollm_path, tmp_path):
    """Llama(lora_path=, lora_scale=) gives `edgellm run --lora FILE:SCALE`'s greedy answer; set_lora([])
    goes back to the base model's."""
    from conftest import reference_model
    from lora_adapters import write_adapter
    adapter = tmp_path / "adapter.gguf"
    write_adapter(str(adapter), reference_model(smollm_path), rank=8, alpha=16.0, seed=1)
    msgs = [{"role": "user", "content": QUESTION}]
    with edgellm.Llama(model_path=smollm_path, n_ctx=512, n_threads=2, lora_path=str(adapter), lora_scale=0.75) as m:
        tuned = m.create_chat_completion(messages=msgs, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
        m.set_lora([])
        base = m.create_chat_completion(messages=msgs, temperature=0, max_tokens=24)["choices"][0]["message"]["content"]
        with pytest.raises(edgellm.EdgellmError) as e:
            m.set_lora([(smollm_path, 1.0)])  # a model, not an adapter
        assert e.value.status == "EDGELLM_ERR_MODEL_FORMAT"
    cli = engine.run(["run", "-m", smollm_path, "-p", QUESTION, "--temp", "0", "-n", "24", "-t", "2",
                      "--lora", f"{adapter}:0.75"])
    assert tuned + "\n" == cli
    assert tuned != base


def test_embedding_model(edgellm, engine, tmp_path):
    """A sentence-embedding model (a tiny BERT from `edgellm convert`) embeds through runtime::Embedder:
    the vector is `edgellm embed`'s; generation is refused with a clear error."""
    import json
    from reference.bert import write_tiny_bert
    folder = write_tiny_bert(tmp_path / "tiny-hf")
    gguf = tmp_path / "tiny.gguf"
    subprocess.run([engine.path, "convert", str(folder), str(gguf), "-q", "--type", "f32"], check=True,
                   capture_output=True, timeout=300)
    texts = ["the cat sat on the mat", "dog"]
    cli = subprocess.run([engine.path, "embed", "-m", str(gguf), "--jsonl", "-t", "2"],
                         input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True,
                         timeout=300, check=True)
    want = [json.loads(line) for line in cli.stdout.splitlines()]
    with edgellm.Llama(model_path=str(gguf), n_threads=2) as m:
        assert m.embedding_only and m.architecture == "bert"
        got = m.embed(texts)
        assert len(m.tokenize("the cat")) >= 2
        with pytest.raises(ValueError, match="sentence-embedding"):
            m.create_chat_completion(messages=[{"role": "user", "content": "hi"}])
    for g, w in zip(got, want):
        assert max(abs(a - b) for a, b in zip(g, w)) < 1e-6


class _EchoCloud:
    """An OpenAI-compatible stand-in for the cloud: answers "You said: <last user message>" (plain
    or streamed in three pieces) and keeps every request body it received."""

    def __init__(self):
        import http.server
        import json
        import threading
        bodies = self.bodies = []
        owner = self
        self.drop_stream = False  # cut the next streamed answers after their first piece

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                bodies.append(body)
                text = "You said: " + body["messages"][-1]["content"]
                if body.get("stream"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    third = len(text) // 3
                    for piece in (text[:third], text[third:2 * third], text[2 * third:]):
                        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        if owner.drop_stream:
                            self.wfile.flush()
                            self.close_connection = True
                            return
                    end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                    return
                out = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 7, "completion_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_router_in_process(edgellm, llm):
    """create_chat_completion(router=...) routes without a server: cloud-only sends the message with
    the e-mail address redacted and restores it in the answer (plain and streamed); local-only answers
    on the device as the plain call does."""
    cloud = _EchoCloud()
    try:
        question = "Please write to jane.doe@example.com about the meeting."
        msgs = [{"role": "user", "content": question}]
        with edgellm.Router({"mode": "cloud-only", "cloud": {"base_url": cloud.url, "model": "echo"}}) as r:
            out = llm.create_chat_completion(messages=msgs, max_tokens=16, router=r)
            assert out["tier"] == "cloud" and out["route"]["redacted"] is True
            assert out["choices"][0]["message"]["content"] == "You said: " + question
            assert "jane.doe@example.com" not in json.dumps(cloud.bodies[-1])
            assert cloud.bodies[-1]["max_tokens"] == 16
            chunks = list(llm.create_chat_completion(messages=msgs, max_tokens=16, router=r, stream=True))
            assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "You said: " + question
            assert cloud.bodies[-1]["stream"] is True
            # The cloud's stream breaks after text reached the app: no tier can complete it.
            cloud.drop_stream = True
            with pytest.raises(edgellm.EdgellmError) as e:
                list(llm.create_chat_completion(messages=msgs, max_tokens=16, router=r, stream=True))
            assert e.value.status == "EDGELLM_ERR_CLOUD"
            cloud.drop_stream = False
        n_cloud = len(cloud.bodies)
        with edgellm.Router({"mode": "local-only", "cloud": {"base_url": cloud.url}}, n_ctx=1024) as r:
            routed = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                                max_tokens=16, router=r)
        plain = llm.create_chat_completion(messages=[{"role": "user", "content": QUESTION}], temperature=0,
                                           max_tokens=16)
        assert routed["tier"] == "device" and routed["route"]["reason"] == "local_only"
        assert routed["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
        assert len(cloud.bodies) == n_cloud
        with pytest.raises(edgellm.EdgellmError) as e:
            edgellm.Router({"mode": "sideways"})
        assert e.value.status == "EDGELLM_ERR_INVALID_ARGUMENT" and "mode" in str(e.value)
    finally:
        cloud.close()


def test_package_bundles_the_library(edgellm, tmp_path):
    """What `pip install ./python` builds: the package with libedgellm.so inside, which it then
    loads without EDGELLM_LIBRARY (pip itself needs a build backend from PyPI, so the test runs
    the setup.py step it performs)."""
    src = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2])) / "python"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)], cwd=src, check=True,
                   env={**os.environ}, capture_output=True, timeout=120)
    assert (tmp_path / "edgellm" / "libedgellm.so").is_file()
    env = {k: v for k, v in os.environ.items() if k != "EDGELLM_LIBRARY"}
    env["PYTHONPATH"] = str(tmp_path)
    code = "import edgellm._lib as L; print(L._find_library()); print(L.lib().edgellm_version().decode())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path, timeout=60).stdout.split()
    assert out == [str(tmp_path / "edgellm" / "libedgellm.so"), "0.1.0"]
