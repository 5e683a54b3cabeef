"""POST /slots/{id}?action=save|restore (issue 18, as llama-server): a slot's KV state saved to
--slot-save-path and restored into a new server process, which then answers the same prompt
running only its last token, with the same greedy text; hostile file names, unknown slots and
actions, missing and damaged files are 4xx and the server keeps serving; without the flag the
route answers 501."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from server_harness import MODEL_ID, ServerProcess, get, http  # noqa: E402

MESSAGES = [{"role": "system", "content": "You are a helpful assistant. " * 20},
            {"role": "user", "content": "Name a colour."}]


def chat(srv) -> dict:
    r = http("POST", srv.url + "/v1/chat/completions",
             {"model": MODEL_ID, "max_tokens": 8, "temperature": 0, "messages": MESSAGES})
    assert r.status_code == 200, r.text
    return r.json()


def slot(srv, action: str, body, sid="0"):
    return http("POST", f"{srv.url}/slots/{sid}?action={action}", body)


def test_saved_slot_serves_the_same_prompt_after_a_restart(tmp_path):
    d = tmp_path / "slots"
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=["--slot-save-path", str(d)])
    try:
        first = chat(srv)
        r = slot(srv, "save", {"filename": "conv.bin"})
        assert r.status_code == 200, r.text
        saved = r.json()
        assert saved["id_slot"] == 0 and saved["n_saved"] > first["timings"]["prompt_n"] and saved["n_written"] > 0
        assert (d / "conv.bin").is_file()
    finally:
        assert srv.stop() == 0
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=["--slot-save-path", str(d)])
    try:
        r = slot(srv, "restore", {"filename": "conv.bin"})
        assert r.status_code == 200, r.text
        assert r.json()["n_restored"] == saved["n_saved"]
        again = chat(srv)
        assert again["timings"]["prompt_evaluated"] == 1, again["timings"]
        assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    finally:
        assert srv.stop() == 0


def test_bad_slot_requests_are_4xx_and_the_server_keeps_serving(tmp_path):
    d = tmp_path / "slots"
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=["--slot-save-path", str(d)])
    try:
        for name in ["../escape.bin", "a/b.bin", "..", "", "x" * 300]:
            r = slot(srv, "save", {"filename": name})
            assert r.status_code == 400 and r.json()["error"]["param"] == "filename", (name, r.text)
        assert not (tmp_path / "escape.bin").exists()
        assert slot(srv, "save", {"file": "x"}).status_code == 400
        assert slot(srv, "save", "not an object").status_code == 400
        assert slot(srv, "erase", {"filename": "x.bin"}).status_code == 400
        assert slot(srv, "save", {"filename": "x.bin"}, sid="7").status_code == 400
        assert slot(srv, "save", {"filename": "x.bin"}, sid="99999999999999").status_code == 400
        r = slot(srv, "restore", {"filename": "missing.bin"})
        assert r.status_code == 404, r.text
        (d / "junk.bin").write_bytes(b"junk" * 100)
        r = slot(srv, "restore", {"filename": "junk.bin"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_saved_state", r.text
        chat(srv)
        assert slot(srv, "save", {"filename": "good.bin"}).status_code == 200
        data = bytearray((d / "good.bin").read_bytes())
        data[len(data) // 2] ^= 1
        (d / "bad.bin").write_bytes(bytes(data))
        r = slot(srv, "restore", {"filename": "bad.bin"})
        assert r.status_code == 400 and "damaged" in r.json()["error"]["message"], r.text
        # The failed restore emptied the slot; the server still answers.
        assert get(srv.url + "/health").status_code == 200
        assert chat(srv)["choices"][0]["message"]["content"]
    finally:
        assert srv.stop() == 0


def test_without_a_save_path_the_route_is_off():
    srv = ServerProcess(ctx=512, parallel=1)
    try:
        r = slot(srv, "save", {"filename": "x.bin"})
        assert r.status_code == 501 and "--slot-save-path" in r.json()["error"]["message"], r.text
    finally:
        assert srv.stop() == 0


class ShapesOnly:
    """What write_adapter reads of a model, from the GGUF header alone (no dequantized weights): the
    architecture, the layer count and a stand-in of each matrix's shape (its norm only scales B)."""

    def __init__(self, path: str):
        import types
        from gguf import GGUFReader
        r = GGUFReader(path)
        self.shapes = {t.name: tuple(int(x) for x in reversed(t.shape)) for t in r.tensors}
        field = r.fields["general.architecture"]
        arch = bytes(field.parts[field.data[0]]).decode()
        field = r.fields[f"{arch}.block_count"]
        self.config = types.SimpleNamespace(arch=arch, n_layer=int(field.parts[field.data[0]][0]))

    def w(self, name: str):
        import numpy as np
        return np.full(self.shapes[name], 0.02, dtype=np.float32)


def test_a_slot_computed_under_lora_is_restored_with_its_adapters(tmp_path):
    # A random rank-8 adapter for SmolLM2 (lora_adapters.py); the saved slot records the adapter set,
    # and a server started with the same --lora restores it under that set.
    from lora_adapters import write_adapter
    from server_harness import default_model
    adapter = str(tmp_path / "a.gguf")
    write_adapter(adapter, ShapesOnly(default_model()), rank=8, alpha=16.0, seed=3)
    d = tmp_path / "slots"
    args = ["--slot-save-path", str(d), "--lora", f"{adapter}:0.5"]
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=args)
    try:
        first = chat(srv)
        assert slot(srv, "save", {"filename": "lora.bin"}).status_code == 200
    finally:
        assert srv.stop() == 0
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=args)
    try:
        r = slot(srv, "restore", {"filename": "lora.bin"})
        assert r.status_code == 200, r.text
        again = chat(srv)
        assert again["timings"]["prompt_evaluated"] == 1, again["timings"]
        assert again["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
        # The base model (no adapter) does not reuse what the adapter computed.
        assert slot(srv, "restore", {"filename": "lora.bin"}).status_code == 200
        r = http("POST", srv.url + "/v1/chat/completions",
                 {"model": MODEL_ID, "max_tokens": 8, "temperature": 0, "messages": MESSAGES, "lora": []})
        assert r.status_code == 200 and r.json()["timings"]["prompt_evaluated"] == r.json()["timings"]["prompt_n"]
    finally:
        assert srv.stop() == 0
    # Without the adapter loaded the file cannot be used: a clear 400, and the server keeps serving.
    srv = ServerProcess(ctx=1024, parallel=1, extra_args=["--slot-save-path", str(d)])
    try:
        r = slot(srv, "restore", {"filename": "lora.bin"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_saved_state", r.text
        assert "a.gguf" in r.json()["error"]["message"] and "--lora" in r.json()["error"]["message"], r.text
        assert chat(srv)["choices"][0]["message"]["content"]
    finally:
        assert srv.stop() == 0
