"""Speculative decoding inside `edgellm serve`'s batch scheduler (issue 12): greedy answers with
prompt lookup or a draft model are byte for byte the answers of plain serving, alone, streamed,
with two requests at once (one speculating, one not, decoded in the same passes) and for a
follow-up that reuses a rolled-back cache; the `speculative` field's bad values are 400s.

A tiny random-weight qwen2 (tests/python/reference/tiny_models.py) makes most of it fast; its
greedy text soon repeats itself, so lookup drafts are accepted, and as its own draft model every
guess is. SmolLM2 (skipped when absent) checks a real model with an input-grounded prompt.
"""
from __future__ import annotations

import json
import subprocess
import threading
import urllib.request

import pytest

from server_harness import ServerProcess, default_model, http, server_binary

PROMPTS = ["the theory of the", "in the heart", "hello there, the other", "a b c d e f"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from reference.tiny_models import write_tiny_qwen2
    return write_tiny_qwen2(str(tmp_path_factory.mktemp("spec") / "tiny-qwen2.gguf"))["path"]


@pytest.fixture(scope="module")
def server(tiny):
    # The tiny model as its own draft; requests choose lookup, draft or off per request.
    srv = ServerProcess(model=tiny, ctx=256, parallel=2, queue=8, extra_args=["--draft", tiny, "--draft-max", "6"])
    yield srv
    code = srv.stop()
    assert code == 0, f"server exited {code}:\n{srv.output()}"


def complete(srv, prompt, spec=None, n=48, **extra):
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0, **extra}
    if spec is not None:
        body["speculative"] = spec
    r = http("POST", srv.url + "/v1/completions", body)
    assert r.status_code == 200, r.text
    j = r.json()
    return j["choices"][0]["text"], j["timings"]


def stream(srv, prompt, spec, n=48):
    body = {"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True, "speculative": spec}
    req = urllib.request.Request(srv.url + "/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    text, pieces = "", 0
    with urllib.request.urlopen(req, timeout=120) as r:
        for line in r:
            line = line.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"]:
                text += chunk["choices"][0]["text"]
                pieces += 1
    return text, pieces


def test_same_text_as_plain_serving_with_each_proposer(server):
    drafted = accepted = self_accepted = 0
    for p in PROMPTS:
        plain, t = complete(server, p, {"mode": "off"})
        assert t["draft_n"] == 0
        for mode in ("lookup", "draft"):
            text, t = complete(server, p, {"mode": mode})
            assert text == plain, (p, mode)
            assert 0 <= t["draft_n_accepted"] <= t["draft_n"]
            if mode == "draft":
                drafted += t["draft_n"]
                self_accepted += t["draft_n_accepted"]
            else:
                accepted += t["draft_n_accepted"]
    assert accepted > 0, "some lookup guesses were accepted"
    # Its own draft guesses the target's greedy tokens, but for the random model's near-ties,
    # where a one-token pass and a batched one round apart (SmolLM2 below: all accepted).
    assert drafted > 0 and self_accepted >= 0.75 * drafted, (self_accepted, drafted)


def test_default_is_the_servers_draft_and_max_zero_is_plain(server):
    plain, _ = complete(server, PROMPTS[0], {"mode": "off"})
    text, t = complete(server, PROMPTS[0])  # no field: --draft
    assert text == plain and t["draft_n"] > 0
    text, t = complete(server, PROMPTS[0], {"max": 0})
    assert text == plain and t["draft_n"] == 0
    text, t = complete(server, PROMPTS[0], {"mode": "lookup", "max": 1})
    assert text == plain and t["draft_n"] <= t["predicted_n"]


def test_streamed_and_concurrent_requests_match(server):
    refs = {p: complete(server, p, {"mode": "off"}, n=64)[0] for p in PROMPTS[:2]}
    text, pieces = stream(server, PROMPTS[0], {"mode": "lookup"}, n=64)
    assert text == refs[PROMPTS[0]] and pieces > 1
    # Two at once on two slots: one speculating (streamed), one plain, in the same passes.
    for specs in (({"mode": "lookup"}, {"mode": "off"}), ({"mode": "draft"}, {"mode": "off"}),
                  ({"mode": "off"}, {"mode": "draft", "max": 3})):
        out = {}
        def run_stream():
            out["a"] = stream(server, PROMPTS[0], specs[0], n=64)[0]
        def run_plain():
            out["b"] = complete(server, PROMPTS[1], specs[1], n=64)[0]
        threads = [threading.Thread(target=run_stream), threading.Thread(target=run_plain)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert out["a"] == refs[PROMPTS[0]], specs
        assert out["b"] == refs[PROMPTS[1]], specs


def test_follow_up_reuses_the_rolled_back_cache(server):
    first, _ = complete(server, PROMPTS[2], {"mode": "lookup"}, n=40)
    follow = PROMPTS[2] + first + " and"
    plain, _ = complete(server, follow, {"mode": "off"}, n=24)
    for mode in ("lookup", "draft"):
        complete(server, PROMPTS[2], {"mode": mode}, n=40)  # the slot now holds a rolled-back cache
        text, t = complete(server, follow, {"mode": mode}, n=24)
        assert text == plain, mode
        assert t["prompt_evaluated"] < t["prompt_n"], "the follow-up reused the slot's prefix"


def test_server_takes_the_draft_speed_flags_with_runs_defaults(server, tiny):
    # Without the flags: run's defaults (a 32,768-id head, p-min 0.5), said at start.
    assert "draft vocabulary 32768, draft p-min 0.50" in server.output(), server.output()
    # --draft-vocab 8: the draft guesses among ids 0-7 only, which the answers hardly use, so its
    # guesses are rejected where the fixture's (the whole head) are mostly accepted; the text is
    # still plain serving's.
    srv = ServerProcess(model=tiny, ctx=256, parallel=1, queue=4,
                        extra_args=["--draft", tiny, "--draft-max", "6", "--draft-vocab", "8", "--draft-p-min", "0"])
    try:
        assert "draft vocabulary 8, draft p-min 0.00" in srv.output(), srv.output()
        drafted = accepted = 0
        for p in PROMPTS:
            plain, _ = complete(srv, p, {"mode": "off"})
            text, t = complete(srv, p, {"mode": "draft"})
            assert text == plain, p
            drafted += t["draft_n"]
            accepted += t["draft_n_accepted"]
        assert drafted > 0 and accepted <= 0.25 * drafted, (accepted, drafted)
    finally:
        assert srv.stop() == 0, srv.output()
    for flag, value in (("--draft-p-min", "1.5"), ("--draft-vocab", "-8")):
        r = subprocess.run([server_binary(), "serve", "-m", tiny, "--draft", tiny, flag, value],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and flag in r.stderr, (flag, r.stderr)


@pytest.mark.parametrize("spec,needle", [
    ("lookup", "must be an object"),
    ({"mode": "fast"}, "must be \\\"lookup\\\""),
    ({"mode": 1}, "must be \\\"lookup\\\""),
    ({"max": 99}, "between 0 and 32"),
    ({"max": -1}, "between 0 and 32"),
    ({"max": "4"}, "must be an integer"),
    ({"mode": "lookup", "depth": 2}, "no field"),
])
def test_bad_speculative_field_is_400(server, spec, needle):
    r = http("POST", server.url + "/v1/completions", {"prompt": "hi", "max_tokens": 2, "speculative": spec})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "speculative" and needle.replace("\\", "") in err["message"], err


def test_draft_mode_without_a_draft_model_is_400(tiny):
    srv = ServerProcess(model=tiny, ctx=256, parallel=1, extra_args=["--lookup"])
    try:
        r = http("POST", srv.url + "/v1/completions", {"prompt": "hi", "max_tokens": 2,
                                                       "speculative": {"mode": "draft"}})
        assert r.status_code == 400 and "--draft" in r.json()["error"]["message"], r.text
        plain, _ = complete(srv, PROMPTS[0], {"mode": "off"})
        text, t = complete(srv, PROMPTS[0])  # the server's default: lookup
        assert text == plain and t["draft_n"] > 0
    finally:
        assert srv.stop() == 0, srv.output()


def test_smollm2_input_grounded_chat(tiny):
    model = default_model()  # skips when SmolLM2 is absent
    # A fixed draft cost: with costs learnt from pass times, a loaded machine priced guesses out
    # and the lookup's accepted count below fell short of 5 once.
    srv = ServerProcess(model=model, ctx=1024, parallel=2,
                        extra_args=["--draft", model, "--draft-max", "8", "--draft-fixed-cost"])
    code = ("def mean(values):\n    total = 0\n    for v in values:\n        total += v\n"
            "    return total / len(values)\n")
    msgs = [{"role": "user", "content": "Rename the function to average and repeat the code:\n" + code}]
    try:
        def chat(spec, stream=False):
            body = {"messages": msgs, "max_tokens": 48, "temperature": 0, "speculative": spec}
            r = http("POST", srv.url + "/v1/chat/completions", body)
            assert r.status_code == 200, r.text
            j = r.json()
            return j["choices"][0]["message"]["content"], j["timings"]
        plain, _ = chat({"mode": "off"})
        text, t = chat({"mode": "lookup"})
        assert text == plain and t["draft_n_accepted"] >= 5, t
        text, t = chat({"mode": "draft"})
        assert text == plain and t["draft_n_accepted"] == t["draft_n"] > 0, t
    finally:
        assert srv.stop() == 0, srv.output()
