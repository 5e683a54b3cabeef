"""Every routing mode and every routing reason end to end, with real servers on loopback: edge
servers started with `--policy FILE` (one per policy under test) and a "cloud" `edgellm serve`
behind the recording pass-through (hybrid_recorder.py). Each case checks the answer, the route
record (body and x-edgellm-route headers) and what reached the cloud. Faults: test_hybrid_faults.py.
Float activations (EDGELLM_EXACT=1) make greedy answers independent of batching, so a routed
answer can be compared with the tier's own answer.
"""
from __future__ import annotations

import tempfile

import pytest

from hybrid_recorder import Streamed, chat_body, check_route, recorded_cloud, write_policy
from server_harness import ServerProcess, free_port, http

EXACT = {"EDGELLM_EXACT": "1"}
NEVER = {"min_quantile_logprob": -1e9, "max_mean_entropy": 1e9}   # never judged unsure
ALWAYS = {"min_quantile_logprob": -1e9, "max_mean_entropy": 0.0}  # entropy > 0: always unsure
EMAIL = "li.na@example.com"
ID_CARD = "11010519491231002X"


@pytest.fixture(scope="module")
def cloud():
    with recorded_cloud(EXACT) as rec:
        yield rec


@pytest.fixture(scope="module")
def edges(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-routes-")
    servers = {}

    def get(name, cloud_url=cloud.url, **sections):
        if name not in servers:
            servers[name] = ServerProcess(["--policy", write_policy(tmp, name, cloud_url, **sections)],
                                          ctx=1024, parallel=2, env=EXACT)
        return servers[name]
    yield get
    for s in servers.values():
        assert s.stop() == 0, s.output()


def post(srv, body):
    r = http("POST", srv.url + "/v1/chat/completions", body, timeout=300)
    assert r.status_code == 200, r.text
    return r


def answer(srv, content, **kw):
    r = post(srv, chat_body(content, **kw))
    j = r.json()
    h = {k.lower(): v for k, v in r.headers.items()}
    assert h["x-edgellm-route-tier"] == j["tier"]
    assert h["x-edgellm-route-reason"] == j["route"]["reason"]
    assert f"tier={j['tier']}; reason={j['route']['reason']}" in h["x-edgellm-route"]
    assert j["tier"] == ("local" if j["route"]["tier"] == "device" else "cloud")
    return j, j["choices"][0]["message"]["content"] or ""


def streamed(srv, content, **kw):
    s = Streamed(post(srv, chat_body(content, stream=True, **kw)).text)
    assert s.done and s.final is not None, s.raw
    return s


def test_local_only_mode_never_calls_cloud(edges, cloud):
    srv = edges("local", mode="local-only")
    before = cloud.count()
    j, text = answer(srv, "Name a fruit.")
    check_route(j["route"], "device", "local_only")
    s = streamed(srv, "Name a fruit.")
    check_route(s.final["route"], "device", "local_only")
    assert text.strip() and s.text == text
    assert cloud.count() == before


def test_cloud_only_mode(edges, cloud):
    srv = edges("cloudonly", mode="cloud-only")
    before = cloud.count()
    j, text = answer(srv, "Name a fruit.")
    check_route(j["route"], "cloud", "cloud_only")
    assert text.strip() and j["route"]["latency"].get("device_ms") is None
    s = streamed(srv, "Name a fruit.")
    check_route(s.final["route"], "cloud", "cloud_only")
    assert s.text == text
    assert cloud.count() == before + 2
    assert all(b["model"] == "cloud-model" and "route" not in b for b in cloud.bodies[-2:])


def test_prefer_local_keeps_a_confident_answer(edges, cloud):
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    before = cloud.count()
    j, text = answer(srv, "What is the capital of France?")
    check_route(j["route"], "device", "prefer_local")
    sc = j["route"]["scores"]
    assert isinstance(sc["quantile_logprob"], float) and sc["mean_entropy"] > 0
    assert text.strip() and cloud.count() == before


def test_low_confidence_escalates_plain_and_streamed(edges, cloud):
    srv = edges("strict", confidence=ALWAYS)
    before = cloud.count()
    j, text = answer(srv, "Tell me a colour.")
    check_route(j["route"], "cloud", "low_confidence")
    assert j["route"]["escalated"] is True
    assert j["route"]["scores"]["mean_entropy"] > 0
    direct = http("POST", cloud.url + "/v1/chat/completions",
                  chat_body("Tell me a colour.", model="cloud-model"), timeout=300).json()
    assert text == direct["choices"][0]["message"]["content"]  # the cloud's answer, not the device's
    # Streamed: the device answer is held back while judged, so the client sees one answer.
    s = streamed(srv, "Tell me a colour.")
    check_route(s.final["route"], "cloud", "low_confidence")
    assert s.text == text and not s.restarts
    assert cloud.count() == before + 3


def test_low_confidence_when_the_cloud_cannot_help(edges, cloud):
    srv = edges("strict", confidence=ALWAYS)
    local = http("POST", srv.url + "/v1/chat/completions",
                 chat_body("Tell me a shape.", route={"local_only": True}), timeout=300).json()
    device_text = local["choices"][0]["message"]["content"]
    for stream in (False, True):
        cloud.fail_next(1, "fail")
        if stream:
            s = streamed(srv, "Tell me a shape.")
            route, text = s.final["route"], s.text
        else:
            j, text = answer(srv, "Tell me a shape.")
            route = j["route"]
        check_route(route, "device", "cloud_error")
        assert route["fallback"] and "low_confidence" in route["notes"] and not route["escalated"]
        assert text == device_text  # the held device answer, sent once
    tight = edges("strict-budget", confidence=ALWAYS, budget={"max_requests": 1, "grace_requests": 1})
    before = cloud.count()
    j, _ = answer(tight, "Tell me a shape.")
    check_route(j["route"], "cloud", "low_confidence")
    j, text = answer(tight, "Tell me a shape.")
    check_route(j["route"], "device", "budget_exhausted")
    assert "low_confidence" in j["route"]["notes"] and text == device_text
    assert cloud.count() == before + 1


def test_explicit_request_and_prefer_cloud_override(edges, cloud):
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    before = cloud.count()
    j, text = answer(srv, "Say hello.", route={"escalate": True})
    check_route(j["route"], "cloud", "explicit")
    j2, _ = answer(srv, "Say hello.", route={"mode": "prefer-cloud"})
    check_route(j2["route"], "cloud", "prefer_cloud")
    j3, _ = answer(srv, "Say hello.", route={"mode": "cloud_only"})
    check_route(j3["route"], "cloud", "cloud_only")
    assert cloud.count() == before + 3 and text.strip()


def test_privacy_block_wins_over_every_cloud_wish(edges, cloud):
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    before = cloud.count()
    for route in ({"escalate": True}, {"mode": "cloud-only"}):
        j, text = answer(srv, f"My ID is {ID_CARD}. Is it valid?", route=route)
        check_route(j["route"], "device", "privacy_block")
        assert text.strip()
    s = streamed(srv, f"Check {ID_CARD} please.", route={"escalate": True})
    check_route(s.final["route"], "device", "privacy_block")
    assert cloud.count() == before


def test_redaction_round_trip(edges, cloud):
    """The cloud sees placeholders; the placeholder in its answer comes back as the value."""
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    # Greedy SmolLM2 (float activations) echoes this one, placeholder included.
    prompt = [{"role": "system", "content": "You repeat the user's message word for word."},
              {"role": "user", "content": f"My email is {EMAIL}"}]
    n0 = cloud.count()
    j, text = answer(srv, prompt, route={"escalate": True}, max_tokens=24)
    s = streamed(srv, prompt, route={"escalate": True}, max_tokens=24)
    assert cloud.count() == n0 + 2
    for b in cloud.bodies[-2:]:
        assert b["messages"][1]["content"] == "My email is [EMAIL_1]"
    assert EMAIL not in cloud.sent_text()
    for route, out in ((j["route"], text), (s.final["route"], s.text)):
        check_route(route, "cloud", "explicit")
        assert route["redacted"] is True
        # The cloud model echoes the placeholder (checked on its direct answer below); the client
        # must get the address back and never the placeholder.
        assert EMAIL in out and "[EMAIL_1]" not in out, out
    direct = http("POST", cloud.url + "/v1/chat/completions",
                  chat_body(cloud.bodies[-1]["messages"], model="cloud-model", max_tokens=24), timeout=300).json()
    assert "[EMAIL_1]" in direct["choices"][0]["message"]["content"]


def test_budget_exhausted(edges, cloud):
    srv = edges("budget", mode="prefer-cloud",
                budget={"max_requests": 2, "grace_requests": 2, "window_seconds": 3600})
    before = cloud.count()
    tiers = []
    for i in range(3):
        j, text = answer(srv, f"Count to {i + 2}.")
        tiers.append((j["route"]["tier"], j["route"]["reason"]))
        assert text.strip()
    assert tiers == [("cloud", "prefer_cloud"), ("cloud", "prefer_cloud"), ("device", "budget_exhausted")]
    assert j["route"]["fallback"] is True
    assert cloud.count() == before + 2


def test_context_overflow_and_capability(edges, cloud):
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    before = cloud.count()
    long_prompt = "Summarise in one word: " + " ".join(["the quick brown fox jumps over the lazy dog"] * 40)
    j, text = answer(srv, long_prompt)
    check_route(j["route"], "cloud", "context_overflow")
    # prompt + answer > 256 decides the route; how much the cloud then writes does not matter,
    # so it is capped: 250 float-activation tokens on a loaded machine outlasted the client.
    cloud.max_tokens_cap = 8
    try:
        j2, _ = answer(srv, "Write a poem about the sea.", max_tokens=250)
    finally:
        cloud.max_tokens_cap = None
    check_route(j2["route"], "cloud", "capability")
    assert cloud.bodies[-1]["max_tokens"] == 250  # the edge asked for all of it
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    j3, _ = answer(srv, "Weather in Paris?", tools=tools)
    check_route(j3["route"], "cloud", "capability")
    assert "tools" in cloud.bodies[-1] and cloud.count() == before + 3


def test_cloud_down_and_circuit_breaker(edges, cloud):
    down = edges("down", cloud_url=f"http://127.0.0.1:{free_port()}", mode="prefer-cloud")
    j, text = answer(down, "Name a tree.")
    check_route(j["route"], "device", "cloud_down")
    assert j["route"]["fallback"] and j["route"]["cloud_error"] == "connect" and text.strip()
    brk = edges("breaker", mode="prefer-cloud", cloud={"failure_threshold": 2, "cooldown_ms": 600000})
    before = cloud.count()
    cloud.fail_next(2, "fail")
    for _ in range(2):
        j, _ = answer(brk, "Name a tree.")
        check_route(j["route"], "device", "cloud_error")
    j, text = answer(brk, "Name a tree.")  # circuit open: the cloud is not even asked
    check_route(j["route"], "device", "cloud_down")
    assert j["route"]["fallback"] and text.strip()
    assert cloud.count() == before + 2


def test_bad_route_values_are_400(edges):
    srv = edges("lax", confidence=NEVER, local={"n_ctx": 256, "supports_tools": False})
    for route in ({"mode": "sideways"}, {"escalate": "yes"}, "cloud", {"local_only": 1}):
        for stream in (False, True):
            r = http("POST", srv.url + "/v1/chat/completions", chat_body("hi", route=route, stream=stream))
            assert r.status_code == 400, r.text
            assert "route" in r.json()["error"]["message"]
