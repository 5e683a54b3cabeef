"""`edgellm serve` under a long prefill and hostile parameters (issue 17): a short request is not
starved by a long prompt being read, a client that hangs up mid-prefill frees its slot between
chunks, more embedding inputs than slots + queue are served on an idle server (429 only when the
server is really full), and a request whose sampler parameters are refused costs a 4xx, not the
process.

The orderings asserted are counted in forward passes with wide margins (a small --batch makes
the long prompt take dozens of passes), never in seconds.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from server_harness import MODEL_ID, ServerProcess, get, http

N_BATCH = 32


def long_text(n_sentences: int, tag: str) -> str:
    lines = [f"Record {tag}."]
    lines += [f"Line {i}: the river runs past mill number {i * 7 % 101} at dawn." for i in range(n_sentences)]
    return " ".join(lines) + "\nSummarise the records above in one word."


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(ctx=2048, parallel=2, queue=4, extra_args=["--batch", str(N_BATCH), "--chat-embeddings"])
    yield srv
    assert srv.stop() == 0, srv.output()


def health(srv) -> dict:
    return get(srv.url + "/health").json()


def wait_for(pred, what: str, limit_s: float = 300) -> None:
    deadline = time.monotonic() + limit_s
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def completion(srv, prompt: str, max_tokens: int, **extra):
    return http("POST", srv.url + "/v1/completions",
                {"model": MODEL_ID, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, **extra},
                timeout=600)


def test_short_request_is_not_starved_by_a_long_prefill(server):
    # ~1,070 tokens read 32 per pass: about 33 passes. The short request needs one pass for its
    # prompt and three to decode, so it ends long before the long one, unless it waits for the
    # whole prefill (the defect: the first prefilling slot took the entire budget).
    prompt = long_text(60, "starve")
    long_res = {}

    def run_long():
        long_res["r"] = completion(server, prompt, 1)
        long_res["t"] = time.monotonic()

    t = threading.Thread(target=run_long)
    t.start()
    wait_for(lambda: health(server)["slots_processing"] >= 1 or "r" in long_res, "the long request to start")
    short = completion(server, "The capital of France is", 4, ignore_eos=True)
    t_short = time.monotonic()
    t.join()
    assert short.status_code == 200, short.text
    assert long_res["r"].status_code == 200, long_res["r"].text
    assert long_res["r"].json()["usage"]["prompt_tokens"] > 30 * N_BATCH
    assert short.json()["usage"]["completion_tokens"] == 4
    assert t_short < long_res["t"], "the short request waited for the whole long prefill"


@pytest.mark.parametrize("stream", [False, True])
def test_disconnect_mid_prefill_frees_the_slot_between_chunks(server, stream):
    prompt = long_text(60, f"gone {stream}")
    body = json.dumps({"model": MODEL_ID, "prompt": prompt, "max_tokens": 1, "temperature": 0,
                       "stream": stream}).encode()
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    wait_for(lambda: health(server)["slots_processing"] >= 1, "the request to start")
    s.close()  # the client gives up while its prompt is being read
    wait_for(lambda: health(server)["slots_processing"] == 0, "the slot to be freed")
    # The same prompt again finds what the cancelled request had read in a slot's cache: some
    # of the prompt, not all of it (had it run to the end, only the last token would be re-run).
    again = completion(server, prompt, 1).json()
    t = again["timings"]
    assert t["prompt_n"] > 30 * N_BATCH
    assert 1 < t["prompt_evaluated"] < t["prompt_n"], t


def test_embeddings_with_more_inputs_than_slots_and_queue(server):
    # 2 slots + 4 queued = 6; the API allows 256 inputs, and an idle server must serve them all.
    texts = [f"sentence number {i} about rivers" for i in range(40)]
    r = http("POST", server.url + "/v1/embeddings", {"model": MODEL_ID, "input": texts})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [d["index"] for d in data] == list(range(40))
    # Each equals the same input embedded alone.
    for i in (0, 17, 39):
        one = http("POST", server.url + "/v1/embeddings", {"model": MODEL_ID, "input": texts[i]}).json()["data"][0]
        np.testing.assert_allclose(data[i]["embedding"], one["embedding"], rtol=1e-4, atol=1e-5)
    assert r.json()["usage"]["prompt_tokens"] > 40
    assert health(server)["slots_processing"] == 0


def test_embeddings_429_only_when_the_server_is_full():
    srv = ServerProcess(ctx=512, parallel=1, queue=0, extra_args=["--chat-embeddings"])
    try:
        # A streamed generation holds the only slot; with no queue nothing else fits.
        conn = socket.create_connection(("127.0.0.1", srv.port))
        body = json.dumps({"model": MODEL_ID, "messages": [{"role": "user", "content": "Tell a long story."}],
                           "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert b"200" in conn.recv(64)
        wait_for(lambda: get(srv.url + "/health").json()["slots_processing"] == 1, "the stream to hold the slot")
        busy = http("POST", srv.url + "/v1/embeddings", {"model": MODEL_ID, "input": ["a", "b", "c"]})
        assert busy.status_code == 429, busy.text
        assert busy.json()["error"]["code"] == "rate_limit_exceeded"
        conn.close()  # the stream's client leaves: the slot frees
        wait_for(lambda: get(srv.url + "/health").json()["slots_processing"] == 0, "the slot to be freed")
        ok = http("POST", srv.url + "/v1/embeddings", {"model": MODEL_ID, "input": [f"x {i}" for i in range(20)]})
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["data"]) == 20
    finally:
        assert srv.stop() == 0, srv.output()


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_refused_sampler_parameters_cost_a_4xx_not_the_server(server, route):
    body = {"model": MODEL_ID, "max_tokens": 4, "repeat_penalty": 0}
    body.update({"messages": [{"role": "user", "content": "hi"}]} if "chat" in route else {"prompt": "hi"})
    r = http("POST", server.url + route, body)
    assert 400 <= r.status_code < 500, r.text
    assert "repeat_penalty" in r.json()["error"]["message"]
    assert health(server)["status"] == "ok"
    ok = completion(server, "The capital of France is", 2)
    assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] >= 1
