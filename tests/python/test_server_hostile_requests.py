"""Hostile single requests against a real `edgellm serve` (issue 17): each must cost the sender a
4xx with an OpenAI error object and leave the server answering /health and a normal chat.

Reproducers: sampler parameters that are invalid only after rounding to float
(`repeat_penalty: 0`, `1e-50`), JSON nested far beyond the 128-level limit in the body, in a
response_format schema, in a tool call's argument string and (with --cloud) under any key the
hybrid PII collector walks, and a NUL inside the model id.

A crashed server is restarted for the next test, so each test fails on its own.
"""
from __future__ import annotations

import json

import pytest

from server_harness import MODEL_ID, Resp, ServerProcess, get, http

CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
EMB = "/v1/embeddings"
MAX_DEPTH = 128  # src/hybrid/json_depth.h


class LiveServer:
    """One server for the module; a test that crashed it gets a fresh one for the next test."""

    def __init__(self, args: list[str], env: dict | None = None):
        self.args = args
        self.env = env
        self.srv = self._start()

    def _start(self) -> ServerProcess:
        return ServerProcess(self.args, ctx=512, parallel=2, queue=4, env=self.env)

    def get(self) -> ServerProcess:
        if self.srv.proc.poll() is not None:
            self.srv = self._start()
        return self.srv


@pytest.fixture(scope="module")
def live():
    s = LiveServer([])
    yield s
    code = s.srv.stop()
    assert code == 0, f"server exited {code}:\n{s.srv.output()}"


@pytest.fixture
def server(live):
    return live.get()


@pytest.fixture(scope="module")
def exact_server():
    # Float activations: a row's result does not depend on its batch (prefix reuse changes the
    # batch), so greedy answers repeat exactly.
    s = LiveServer([], env={"EDGELLM_EXACT": "1"})
    yield s.get()
    code = s.srv.stop()
    assert code == 0, f"server exited {code}:\n{s.srv.output()}"


@pytest.fixture(scope="module")
def live_hybrid():
    # Nothing listens on port 9: the cloud is down, so every request is answered on the device.
    s = LiveServer(["--cloud", "http://127.0.0.1:9/v1"])
    yield s
    code = s.srv.stop()
    assert code == 0, f"server exited {code}:\n{s.srv.output()}"


def post(srv: ServerProcess, path: str, body, timeout: float = 120) -> Resp:
    return http("POST", srv.url + path, body, timeout=timeout)


def ok_chat() -> dict:
    return {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def assert_error(srv: ServerProcess, r: Resp, status: int, param: str | None = None,
                 code: str | None = None) -> dict:
    assert srv.proc.poll() is None, f"the server died:\n{srv.output()}"
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if param is not None:
        assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    return err


def assert_alive(srv: ServerProcess) -> None:
    assert srv.proc.poll() is None, f"the server died:\n{srv.output()}"
    assert get(srv.url + "/health").status_code == 200
    r = post(srv, CHAT, ok_chat())
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] in ("stop", "length")


def nested(depth: int, open_: str = "[", close: str = "]", inner: str = "1") -> str:
    return open_ * depth + inner + close * depth


# --- Defect 1: values that pass a range check but reach the sampler invalid -----------------

@pytest.mark.parametrize("route", [CHAT, COMP])
@pytest.mark.parametrize("value", [0, 1e-50, 1e-39, -1])
def test_repeat_penalty_that_rounds_to_zero_is_400(server, route, value):
    body = ok_chat() if route == CHAT else {"model": MODEL_ID, "prompt": "hi", "max_tokens": 2}
    body["repeat_penalty"] = value
    assert_error(server, post(server, route, body), 400, "repeat_penalty", "invalid_value")
    # The streamed form is checked before any header goes out.
    assert_error(server, post(server, route, {**body, "stream": True}), 400, "repeat_penalty")
    assert_alive(server)


@pytest.mark.parametrize("param,value", [
    ("temperature", -1e-300), ("top_p", 1.0000001), ("min_p", -0.5), ("top_k", -1), ("top_k", 2 ** 40),
    ("presence_penalty", 2.5), ("frequency_penalty", 1e308), ("seed", 1.5), ("n", 0),
    ("max_tokens", 2 ** 31), ("stop", ["a", "b", "c", "d", "e"]), ("stop", ""), ("logit_bias", [1]),
    ("logit_bias", {"abc": 1}), ("logit_bias", {"1": 500}), ("logit_bias", {"1": "x"}),
])
def test_out_of_range_sampling_values_are_400(server, param, value):
    body = {**ok_chat(), param: value}
    assert_error(server, post(server, CHAT, body), 400, param)


def test_tiny_but_valid_values_still_answer(server):
    # Values that round to 0 as float but mean something valid: greedy, no nucleus cut, no min-p.
    body = {**ok_chat(), "temperature": 1e-50, "min_p": 1e-50, "top_p": 1, "seed": -1,
            "presence_penalty": -2, "frequency_penalty": 2, "repeat_penalty": 10, "logit_bias": {"1": -100}}
    r = post(server, CHAT, body)
    assert r.status_code == 200, r.text


def test_top_p_zero_is_greedy_not_unrestricted(exact_server):
    server = exact_server
    # Before, the sampler read a float 0 as "top_p off" and sampled the whole vocabulary at
    # temperature 2: three seeds gave three answers. (1e-50 is the same float 0.)
    texts = set()
    for seed in range(3):
        body = {**ok_chat(), "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 4,
                "temperature": 2, "top_p": 0, "seed": seed}
        r = post(server, CHAT, body)
        assert r.status_code == 200, r.text
        texts.add(r.json()["choices"][0]["message"]["content"])
    assert len(texts) == 1, texts


# --- Defect 2: nesting beyond the limit is refused before anything recurses ------------------

@pytest.mark.parametrize("route", [CHAT, COMP, EMB])
def test_deep_array_in_body_is_400(server, route):
    # An ordered object copies the deep value when a later key arrives (stack overflow before).
    body = '{"x": ' + nested(150_000) + ', "y": 1}'
    err = assert_error(server, post(server, route, body.encode()), 400, code="json_too_deep")
    assert str(MAX_DEPTH) in err["message"]
    assert_alive(server)


def test_depth_limit_is_exact(server):
    # The body object is level 1, so "x" may hold 127 more levels and not 128.
    prefix = json.dumps(ok_chat())[:-1] + ', "x": '
    at_limit = (prefix + nested(MAX_DEPTH - 1) + "}").encode()
    over = (prefix + nested(MAX_DEPTH) + "}").encode()
    assert post(server, CHAT, at_limit).status_code == 200
    assert_error(server, post(server, CHAT, over), 400, code="json_too_deep")
    # Brackets inside strings do not count.
    quoted = dict(ok_chat(), x="[" * 1000 + '\\"{' * 500)
    assert post(server, CHAT, quoted).status_code == 200


def test_deep_schema_in_response_format_is_400(server):
    # anyOf nested 60,000 deep (about 720 KB): the schema copy recursed per level before.
    schema = '{"anyOf": [' * 60_000 + '{"type": "string"}' + "]}" * 60_000
    body = ('{"model": "%s", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, '
            '"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": %s}}}'
            % (MODEL_ID, schema))
    assert_error(server, post(server, CHAT, body.encode()), 400, code="json_too_deep")
    assert_alive(server)


def test_deep_tool_call_arguments_string_is_400(server):
    # The arguments of an earlier assistant tool call are a JSON *string*, parsed on the server.
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "c1", "type": "function",
                             "function": {"name": "f", "arguments": nested(150_000)}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}]
    body = {**ok_chat(), "messages": msgs}
    assert_error(server, post(server, CHAT, body), 400, "messages", "json_too_deep")
    assert_alive(server)


def test_hybrid_deep_array_is_400(live_hybrid):
    srv = live_hybrid.get()
    body = json.dumps(ok_chat())[:-1] + ', "metadata": {"tags": ' + nested(100_000) + "}}"
    assert_error(srv, post(srv, CHAT, body.encode()), 400, code="json_too_deep")
    assert_alive(srv)


# --- Defect 10 (part): a NUL in the model id ------------------------------------------------

def test_nul_in_model_id_is_kept_in_the_message(server):
    r = post(server, CHAT, {**ok_chat(), "model": "evil\u0000tail"})
    err = assert_error(server, r, 404, "model", "model_not_found")
    assert "evil\u0000tail" in err["message"], err
    assert MODEL_ID in err["message"], err
    assert_alive(server)
