"""OpenAI's logprobs, top_logprobs, echo and n on `edgellm serve`, through the `openai` client on
SmolLM2 (float activations, so every row of a pass is independent of its batch): chat and
completions log-probabilities and the prompt's (echo) against `edgellm logits` + NumPy on the same
ids, an echo that extends a cached prompt (kept log-probabilities reused), n choices plain and
streamed, and the bad-input cases.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

openai = pytest.importorskip("openai")

from server_harness import MODEL_ID, ServerProcess, http  # noqa: E402

N_VOCAB = 49152  # SmolLM2


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(ctx=512, parallel=3, queue=8, env={"EDGELLM_EXACT": "1"})
    yield srv
    code = srv.stop()
    assert code == 0, f"server exited {code}:\n{srv.output()}"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def prompt_ids(engine, server, text: str) -> list[int]:
    return engine.tokenize(server.model, [text])[0]


def test_echo_prompt_logprobs_match_reference(client, server, engine):
    ids = prompt_ids(engine, server, "The quick brown fox jumps over the lazy dog because")
    r = client.completions.create(model=MODEL_ID, prompt=ids, max_tokens=0, echo=True, logprobs=5)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(ids) and lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    ref = log_softmax(engine.logits(server.model, ids, N_VOCAB, exact=True))
    for p in range(1, len(ids)):
        want = ref[p - 1, ids[p]]
        assert abs(lp.token_logprobs[p] - want) < 2e-4, (p, lp.token_logprobs[p], want)
        top = lp.top_logprobs[p]
        best = np.argsort(-ref[p - 1], kind="stable")[:5]
        assert len(top) in (5, 6)  # the prompt's token is added when it is not among the five
        got = sorted(top.values(), reverse=True)[:5]
        assert np.allclose(got, ref[p - 1, best], atol=2e-4)
    # The echoed text is the prompt; text_offset indexes it.
    text = r.choices[0].text
    assert text == "The quick brown fox jumps over the lazy dog because"
    for p in range(len(ids) - 1):
        assert text[lp.text_offset[p]:lp.text_offset[p + 1]] == lp.tokens[p]
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 0


def test_echo_extending_a_cached_prompt_reuses_kept_logprobs(client, server, engine):
    base = prompt_ids(engine, server, "Counting: one, two, three, four, five, six")
    longer = base + prompt_ids(engine, server, ", seven, eight")
    body = {"model": MODEL_ID, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0,
            "return_tokens_as_token_ids": True}
    first = http("POST", server.url + "/v1/completions", {**body, "prompt": base}).json()
    second = http("POST", server.url + "/v1/completions", {**body, "prompt": longer}).json()
    t = second["timings"]
    assert t["prompt_evaluated"] < t["prompt_n"] - 1, t  # the shared prefix was not run again
    lp1, lp2 = first["choices"][0]["logprobs"], second["choices"][0]["logprobs"]
    assert lp2["tokens"][:len(base)] == [f"token_id:{i}" for i in base]
    assert lp2["token_logprobs"][:len(base)] == lp1["token_logprobs"][:len(base)]
    ref = log_softmax(engine.logits(server.model, longer, N_VOCAB, exact=True))
    got = np.array(lp2["token_logprobs"][1:len(longer)])
    assert np.allclose(got, [ref[p - 1, longer[p]] for p in range(1, len(longer))], atol=2e-4)
    # The generated token (greedy) is the reference's best after the whole prompt.
    assert lp2["tokens"][len(longer)] == f"token_id:{int(np.argmax(ref[-1]))}"


def test_chat_logprobs_and_top_logprobs(client):
    r = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Say hello."}],
                                       max_tokens=4, temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert "".join(c.token for c in content) == r.choices[0].message.content
    for c in content:
        assert len(c.top_logprobs) == 3
        lps = [t.logprob for t in c.top_logprobs]
        assert lps == sorted(lps, reverse=True) and sum(math.exp(x) for x in lps) <= 1 + 1e-6
        assert c.top_logprobs[0].token == c.token and abs(c.top_logprobs[0].logprob - c.logprob) < 1e-6  # greedy
        assert bytes(c.bytes).decode() == c.token
    # Streamed: the same entries, spread over the chunks.
    stream = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Say hello."}],
                                            max_tokens=4, temperature=0, logprobs=True, top_logprobs=3, stream=True)
    streamed = [c for ch in stream for choice in ch.choices if choice.logprobs for c in choice.logprobs.content]
    assert [(c.token, c.logprob) for c in streamed] == [(c.token, c.logprob) for c in content]
    # Without logprobs there are none.
    plain = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Say hello."}],
                                           max_tokens=2, temperature=0)
    assert plain.choices[0].logprobs is None


def test_completion_logprobs_without_echo(client):
    r = client.completions.create(model=MODEL_ID, prompt="Once upon a time", max_tokens=5, temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == r.usage.completion_tokens and "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset[0] == 0 and all(len(t) <= 3 for t in lp.top_logprobs)
    assert all(v is not None for v in lp.token_logprobs)


def test_n_choices_plain_and_streamed(client):
    args = dict(model=MODEL_ID, prompt="My favourite animal is", max_tokens=4, temperature=1.0, seed=7)
    r = client.completions.create(n=2, **args)
    assert [c.index for c in r.choices] == [0, 1]
    # Choice i is its own sequence, seeded with seed + i.
    alone = client.completions.create(**{**args, "seed": 8})
    assert alone.choices[0].text == r.choices[1].text
    assert 0 < r.usage.completion_tokens <= 8 and r.usage.prompt_tokens == alone.usage.prompt_tokens
    stream = client.completions.create(n=2, stream=True, **args)
    texts = ["", ""]
    for ch in stream:
        for c in ch.choices:
            texts[c.index] += c.text
    assert texts == [c.text for c in r.choices]
    chat = client.chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": "Hi"}], n=2,
                                          max_tokens=2, temperature=1.0, seed=3)
    assert [c.index for c in chat.choices] == [0, 1]


def test_bad_logprobs_echo_and_n(server):
    chat = server.url + "/v1/chat/completions"
    comp = server.url + "/v1/completions"
    msgs = [{"role": "user", "content": "hi"}]
    cases = [
        (chat, {"messages": msgs, "top_logprobs": 2}, "top_logprobs"),
        (chat, {"messages": msgs, "logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        (chat, {"messages": msgs, "logprobs": "yes"}, "logprobs"),
        (comp, {"prompt": "x", "logprobs": True}, "logprobs"),
        (comp, {"prompt": "x", "logprobs": 99}, "logprobs"),
        (comp, {"prompt": "x", "max_tokens": 0}, "max_tokens"),
        (comp, {"prompt": "x", "echo": 1}, "echo"),
        (comp, {"prompt": "x", "echo": True, "logprobs": 1, "stream": True}, "echo"),
        (chat, {"messages": msgs, "n": 17}, "n"),
        (chat, {"messages": msgs, "n": 0}, "n"),
    ]
    for url, body, param in cases:
        r = http("POST", url, {"model": MODEL_ID, "max_tokens": 2, **body} if "max_tokens" not in body
                 else {"model": MODEL_ID, **body})
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"] == param, (body, r.text)
    assert http("GET", server.url + "/health").status_code == 200
