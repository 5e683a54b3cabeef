"""Several models in one server (issue 18, as Ollama / llama-server's router): `serve -m NAME=PATH`
repeated or --models-preset FILE, the request's "model" choosing; loaded on first use, the least
recently used unloaded to stay within --mem-budget / --models-max; /v1/models lists each with its
state; an unknown model is a 404 listing the served names; a model that cannot fit even alone is
a clear 507 while the others serve. A generation in flight keeps its model loaded until it ends
(a waiting request for another model does not unload it under it: the streamed text is complete
and equal to the same request's text run alone, and the ASan run of this file sees no bad access).

Real models on purpose, small ones: the feature is about loading and unloading real weights
(SmolLM2-135M, 135 MiB at -c 512, and gemma-3-270m, 322 MiB with their tokenizers: a 360 MiB budget
holds one).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from server_harness import ServerProcess, get, http, server_binary  # noqa: E402
from conftest import DEFAULT_MODEL, GEMMA3_MODEL, model_path_or_skip  # noqa: E402


@pytest.fixture(scope="module")
def paths():
    return model_path_or_skip(DEFAULT_MODEL), model_path_or_skip(GEMMA3_MODEL)


def serve_two(paths, *extra):
    smol, gemma = paths
    return ServerProcess(model=f"smol={smol}", ctx=512, parallel=1, extra_args=["-m", f"gemma={gemma}", *extra])


def states(srv) -> dict:
    r = get(srv.url + "/v1/models")
    assert r.status_code == 200, r.text
    return {m["id"]: m["status"]["value"] for m in r.json()["data"]}


def complete(srv, model, prompt="1, 2, 3, 4,", n=6) -> dict:
    r = http("POST", srv.url + "/v1/completions",
             {"model": model, "prompt": prompt, "max_tokens": n, "temperature": 0})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == model
    return r.json()


@pytest.fixture(scope="module")
def budget_server(paths):
    srv = serve_two(paths, "--mem-budget", "360M", "--chat-embeddings")
    yield srv
    assert srv.stop() == 0


def test_models_load_on_first_use_and_swap_within_the_budget(budget_server):
    srv = budget_server
    # The first is loaded at start; the second on its first request, the first making room.
    assert states(srv) == {"smol": "loaded", "gemma": "unloaded"}
    models = get(srv.url + "/v1/models").json()["data"]
    assert [m["meta"]["n_ctx"] for m in models] == [512, 512]
    assert models[0]["meta"]["mem_bytes"] + models[1]["meta"]["mem_bytes"] > 360 << 20
    texts = {}
    for model in ["gemma", "smol"]:
        texts[model] = complete(srv, model)["choices"][0]["text"]
        assert states(srv) == {"smol": "loaded" if model == "smol" else "unloaded",
                               "gemma": "loaded" if model == "gemma" else "unloaded"}
    # No "model": the first one served. An unknown one: 404 naming those served.
    r = http("POST", srv.url + "/v1/completions", {"prompt": "1, 2, 3, 4,", "max_tokens": 6, "temperature": 0})
    assert r.status_code == 200 and r.json()["model"] == "smol" and r.json()["choices"][0]["text"] == texts["smol"]
    r = http("POST", srv.url + "/v1/chat/completions",
             {"model": "llama3", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404, r.text
    err = r.json()["error"]
    assert err["code"] == "model_not_found" and "'llama3'" in err["message"], err
    assert "'smol', 'gemma'" in err["message"], err
    assert get(srv.url + "/v1/models/gemma").json()["id"] == "gemma"
    assert get(srv.url + "/v1/models/llama3").status_code == 404
    # Embeddings choose their model too; the reloaded model answers as before.
    r = http("POST", srv.url + "/v1/embeddings", {"model": "gemma", "input": "hello"})
    assert r.status_code == 200 and r.json()["model"] == "gemma", r.text
    assert states(srv) == {"smol": "unloaded", "gemma": "loaded"}
    assert complete(srv, "gemma")["choices"][0]["text"] == texts["gemma"]


def test_logprobs_echo_n_and_chat_embeddings_run_on_the_named_model(budget_server):
    # Each model's own tokenizer names the echoed and generated tokens (another model's would not
    # give back the text), its own slots run the n choices, its own hidden state is the embedding.
    srv = budget_server
    widths = {}
    for model in ["gemma", "smol"]:
        r = http("POST", srv.url + "/v1/completions", {"model": model, "prompt": "1, 2, 3, 4,", "max_tokens": 3,
                                                      "temperature": 0, "echo": True, "logprobs": 1})
        assert r.status_code == 200 and r.json()["model"] == model, r.text
        j = r.json()
        ch, lp = j["choices"][0], j["choices"][0]["logprobs"]
        skip = 1 if lp["text_offset"][1] == 0 else 0  # a BOS (gemma's "<bos>") is named but not in the text
        assert ch["text"].startswith("1, 2, 3, 4,") and "".join(lp["tokens"][skip:]) == ch["text"], (model, ch)
        assert len(lp["tokens"]) == j["usage"]["prompt_tokens"] + j["usage"]["completion_tokens"]
        assert lp["token_logprobs"][0] is None and all(v <= 0 for v in lp["token_logprobs"][1:])
        r = http("POST", srv.url + "/v1/chat/completions",
                 {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "n": 2,
                  "temperature": 1.0, "seed": 7, "logprobs": True, "top_logprobs": 2})
        assert r.status_code == 200 and r.json()["model"] == model, r.text
        choices = r.json()["choices"]
        assert [c["index"] for c in choices] == [0, 1]
        for c in choices:
            content = c["logprobs"]["content"]
            assert "".join(t["token"] for t in content) == c["message"]["content"], (model, c)
        r = http("POST", srv.url + "/v1/embeddings", {"model": model, "input": "hello"})
        assert r.status_code == 200 and r.json()["model"] == model, r.text
        widths[model] = len(r.json()["data"][0]["embedding"])
        assert widths[model] == get(srv.url + f"/v1/models/{model}").json()["meta"]["n_embd"]
    assert widths["gemma"] != widths["smol"]  # 640 and 576: each model's own hidden state


def test_a_model_too_large_for_the_budget_is_a_clear_error_and_the_others_serve(paths):
    srv = serve_two(paths, "--mem-budget", "200M")
    try:
        assert "warning: model gemma does not fit in --mem-budget even alone" in srv.output()
        r = http("POST", srv.url + "/v1/completions", {"model": "gemma", "prompt": "Hi", "max_tokens": 2})
        assert r.status_code == 507, r.text
        err = r.json()["error"]
        assert err["code"] == "model_too_large" and "'gemma'" in err["message"] and "200.0 MiB" in err["message"], err
        gemma = get(srv.url + "/v1/models/gemma").json()
        assert gemma["status"]["value"] == "unloaded" and "memory budget" in gemma["status"]["error"]
        complete(srv, "smol")
        assert states(srv) == {"smol": "loaded", "gemma": "unloaded"}
    finally:
        assert srv.stop() == 0


def stream_completion(url: str, body: dict, events: list, done: threading.Event):
    host, port = url.removeprefix("http://").split(":")
    conn = HTTPConnection(host, int(port), timeout=300)
    conn.request("POST", "/v1/completions", json.dumps({**body, "stream": True}), {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    for raw in r:
        line = raw.decode().strip()
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    conn.close()
    done.set()


def test_a_model_in_use_is_unloaded_only_after_its_requests_end(budget_server):
    # The budget holds one: loading the other model must unload this one; its stream is in flight.
    srv = budget_server
    complete(srv, "smol")
    body = {"model": "smol", "prompt": "Count: 1, 2, 3, 4, 5, 6, 7, 8,", "max_tokens": 32, "temperature": 0}
    events, ended = [], threading.Event()
    t = threading.Thread(target=stream_completion, args=(srv.url, body, events, ended))
    t.start()
    deadline = time.monotonic() + 120
    while not events and not ended.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    other = {}
    t2 = threading.Thread(target=lambda: other.update(r=complete(srv, "gemma", n=4)))
    t2.start()
    seen = []
    while t2.is_alive():
        seen.append(states(srv))
        time.sleep(0.05)
    t.join()
    t2.join()
    assert other["r"]["choices"][0]["text"] is not None
    assert all(list(s.values()).count("loaded") <= 1 for s in seen), seen
    streamed = "".join(e["choices"][0]["text"] for e in events if e.get("choices"))
    # The stream ran to its end, with the text the same request gives alone.
    alone = complete(srv, "smol", prompt=body["prompt"], n=body["max_tokens"])["choices"][0]["text"]
    assert streamed == alone


def test_models_preset_and_bad_presets(paths, tmp_path):
    smol, gemma = paths
    ini = tmp_path / "models.ini"
    ini.write_text(f"; served models\n[*]\nctx-size = 256\n\n[tiny]\nmodel = {smol}\nparallel = 2\n"
                   f"[g]\nmodel = {gemma}\nctx-size = 384\ncache-type-k = f16\n")
    srv = ServerProcess(model=smol, ctx=512, parallel=1, extra_args=["--models-preset", str(ini)])
    try:
        models = get(srv.url + "/v1/models").json()["data"]
        # -m first (named by its file), then the preset's; -c and -P on the command line win.
        assert [m["id"] for m in models] == ["SmolLM2-135M-Instruct.Q4_1", "tiny", "g"]
        assert [(m["meta"]["n_ctx"], m["meta"]["n_parallel"]) for m in models] == [(512, 1)] * 3
        complete(srv, "tiny")
        assert states(srv)["tiny"] == "loaded"
    finally:
        assert srv.stop() == 0
    # Without -c / -P the preset's values hold ([*] for what a section leaves out).
    p = subprocess.Popen([server_binary(), "serve", "--models-preset", str(ini), "--port", "0", "-t", "2"],
                         stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        for line in p.stderr:
            err += line
            if "listening on" in line or line.startswith("error"):
                break
        assert "model tiny: 2 slots x 256 tokens, KV cache f32/f32" in err, err
        assert "model g: 4 slots x 384 tokens, KV cache f16/f32" in err, err
    finally:
        p.terminate()
        p.wait(timeout=60)
    for text, message in [("[a]\nctx-size = 256\n", "[a] has no 'model = FILE'"),
                          ("[a]\nmodel = x.gguf\nflash = on\n", "unknown key 'flash'"),
                          ("[a]\nmodel = x\n[a]\nmodel = y\n", "'a' is given twice"),
                          (f"[a]\nmodel = {smol}\nparallel = lots\n", "'lots' is not a positive whole number")]:
        ini.write_text(text)
        p = subprocess.run([server_binary(), "serve", "--models-preset", str(ini), "--port", "0"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and message in p.stderr and p.stderr.startswith("error: "), p.stderr
    p = subprocess.run([server_binary(), "serve", "-m", f"a={smol}", "-m", f"a={gemma}", "--port", "0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "'a' is given twice" in p.stderr, p.stderr


def test_short_names_and_a_draft_that_fits_only_one_model(paths):
    """Models picked with their short names answer to them (the files' stems stay their ids), and a
    server-wide --draft with the vocabulary of only one model speculates for that one while the
    other serves without it, said at start, instead of failing to load on its first request."""
    smol, _ = paths
    srv = ServerProcess(model="smollm2-135m", ctx=512, parallel=1,
                        extra_args=["-m", "gemma3-270m", "--draft", smol])
    try:
        assert set(states(srv)) == {"SmolLM2-135M-Instruct.Q4_1", "gemma-3-270m-q4_k_m"}
        assert "model gemma-3-270m-q4_k_m: no speculative decoding: the draft" in srv.output()
        assert "model SmolLM2-135M-Instruct.Q4_1: no speculative" not in srv.output()
        drafted = {}
        for short, stem in [("gemma3-270m", "gemma-3-270m-q4_k_m"), ("smollm2-135m", "SmolLM2-135M-Instruct.Q4_1")]:
            replies = []
            for name in (short, stem):
                r = http("POST", srv.url + "/v1/completions",
                         {"model": name, "prompt": "1, 2, 3, 4,", "max_tokens": 8, "temperature": 0})
                assert r.status_code == 200, r.text
                assert r.json()["model"] == stem
                replies.append(r.json())
            assert replies[0]["choices"][0]["text"] == replies[1]["choices"][0]["text"]
            drafted[short] = replies[0]["timings"]["draft_n"]
        assert drafted["gemma3-270m"] == 0 and drafted["smollm2-135m"] > 0, drafted
    finally:
        assert srv.stop() == 0
