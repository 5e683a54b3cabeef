"""Device drafts, the cloud verifies, inside `edgellm serve`'s routing policy (issue 12):
chat requests with "speculative": {"mode": "cloud"} on an edge server started with --policy.

The "cloud" is a second `edgellm serve` running the same SmolLM2 with a random LoRA adapter
(another model of the same vocabulary, so some drafts are rejected), behind the recording
pass-through (hybrid_recorder.py), which logs every request that reaches it and injects faults.
Float activations (EDGELLM_EXACT=1) on both servers make greedy answers independent of how the
tokens were batched, so answers can be compared with each tier's own greedy answer.

- The verified answer is the cloud's own greedy chat answer (plain and streamed), in fewer
  verifier rounds than tokens, and the route record says so.
- Text the privacy policy keeps on the device never reaches the verifier.
- An exhausted budget and an open circuit keep the request on the device (plain device decode).
- A verifier failing mid-answer: the device completes it.
- Probe back-off: a cloud that keeps failing is probed ever more rarely.
"""
from __future__ import annotations

import tempfile
import time

import pytest

from conftest import reference_model  # noqa: E402
from hybrid_recorder import Recorder, Streamed, chat_body, write_policy
from lora_adapters import write_adapter  # noqa: E402
from server_harness import ServerProcess, default_model, http

EXACT = {"EDGELLM_EXACT": "1"}
PROMPT = "List three facts about the Moon."
N = 16
VERIFY = {"mode": "cloud", "max": 6}


@pytest.fixture(scope="module")
def cloud():
    tmp = tempfile.mkdtemp(prefix="edgellm-verify-")
    adapter = f"{tmp}/cloud.gguf"
    write_adapter(adapter, reference_model(default_model()), rank=4, alpha=8, seed=3, strength=0.3)
    srv = ServerProcess(["--alias", "cloud-model", "--lora", adapter], ctx=1024, parallel=2, env=EXACT)
    rec = Recorder(srv.url)
    rec.srv = srv
    try:
        yield rec
    finally:
        rec.close()
        code = srv.stop()
    assert code == 0, srv.output()


@pytest.fixture(scope="module")
def edges(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-verify-edges-")
    servers = {}

    def get(name, **sections):
        if name not in servers:
            servers[name] = ServerProcess(["--policy", write_policy(tmp, name, cloud.url, **sections)],
                                          ctx=1024, parallel=2, env=EXACT)
        return servers[name]
    yield get
    for s in servers.values():
        assert s.stop() == 0, s.output()


def chat(srv, content=PROMPT, **kw):
    r = http("POST", srv.url + "/v1/chat/completions", chat_body(content, max_tokens=N, **kw), timeout=600)
    assert r.status_code == 200, r.text
    return r.json()


def text_of(j) -> str:
    return j["choices"][0]["message"]["content"] or ""


@pytest.fixture(scope="module")
def cloud_alone(cloud) -> str:
    """The cloud model's own greedy chat answer (asked directly, not through the recorder)."""
    return text_of(chat(cloud.srv))


def device_alone(srv, content=PROMPT) -> str:
    j = chat(srv, content, route={"local_only": True})
    assert j["route"]["tier"] == "device"
    return text_of(j)


def test_verified_answer_is_the_clouds_greedy_answer(cloud, edges, cloud_alone):
    edge = edges("plain", mode="prefer-local")
    assert device_alone(edge) != cloud_alone  # the cloud is another model than the device
    before = cloud.count()
    j = chat(edge, speculative=VERIFY)
    assert text_of(j) == cloud_alone
    route = j["route"]
    assert j["tier"] == "cloud" and route["tier"] == "cloud" and route["reason"] == "verified", route
    assert "verify" in route["notes"] and not route["fallback"]
    sent = cloud.bodies[before:]
    # Every request was a /v1/completions scoring request of token ids, one per round.
    assert all(b.get("echo") is True and b.get("max_tokens") == 1 and isinstance(b.get("prompt"), list)
               for b in sent), sent
    s = route["scores"]
    assert s["verify_rounds"] == len(sent) == route["cloud_attempts"]
    assert 0 < s["verify_rounds"] < j["usage"]["completion_tokens"], route
    assert 0 < s["verify_accepted"] <= s["verify_drafted"], route
    assert route["latency"]["cloud_ms"] >= 0 and route["latency"]["device_ms"] >= 0

    # Streamed: the same text, the route on the final chunk.
    r = http("POST", edge.url + "/v1/chat/completions",
             chat_body(PROMPT, max_tokens=N, stream=True, speculative=VERIFY), timeout=600)
    assert r.status_code == 200, r.text
    st = Streamed(r.text)
    assert st.done and not st.errors and st.text == cloud_alone
    assert st.final["route"]["reason"] == "verified"


def test_text_the_policy_keeps_local_never_reaches_the_verifier(cloud, edges):
    edge = edges("plain", mode="prefer-local")
    for content, note in (("Write one line to li.na@example.com about the Moon.", "redacted"),
                          ("My ID is 11010519491231002X, list three facts about the Moon.", None)):
        alone = device_alone(edge, content)
        before = cloud.count()
        j = chat(edge, content, speculative=VERIFY)
        assert cloud.count() == before, cloud.bodies[before:]
        route = j["route"]
        assert route["tier"] == "device" and route["reason"] == "privacy_block", route
        assert text_of(j) == alone
        if note:
            assert note in route["notes"]
    # A local-only request too.
    before = cloud.count()
    j = chat(edge, speculative=VERIFY, route={"local_only": True})
    assert cloud.count() == before and j["route"]["reason"] == "local_only"


def test_exhausted_budget_keeps_it_on_the_device(cloud, edges, cloud_alone):
    edge = edges("budget", budget={"max_requests": 1})
    alone = device_alone(edge)  # a device answer: counts as a request, not as a cloud one
    first = chat(edge, speculative=VERIFY)
    assert first["route"]["reason"] == "verified" and text_of(first) == cloud_alone
    before = cloud.count()
    j = chat(edge, speculative=VERIFY)
    assert cloud.count() == before
    route = j["route"]
    assert route["tier"] == "device" and route["reason"] == "budget_exhausted" and route["fallback"], route
    assert text_of(j) == alone


def test_failing_verifier_opens_the_circuit_and_probes_back_off(cloud, edges):
    edge = edges("breaker", cloud={"failure_threshold": 1, "cooldown_ms": 3000, "probe_backoff": 8})
    alone = device_alone(edge)
    # HTTP 500 at the first round: the device answers alone, and the circuit opens.
    before = cloud.count()
    cloud.fail_next(1, "fail")
    j = chat(edge, speculative=VERIFY)
    assert cloud.count() == before + 1
    route = j["route"]
    assert route["tier"] == "device" and route["fallback"] and route["reason"] == "cloud_error", route
    assert route["cloud_error"] == "http_status" and route["scores"]["verify_rounds"] == 0
    assert text_of(j) == alone
    # Open: not contacted at all.
    j = chat(edge, speculative=VERIFY)
    assert cloud.count() == before + 1
    assert j["route"]["reason"] == "cloud_down" and j["route"]["fallback"] and text_of(j) == alone
    # After the cool-down one probe goes out; it fails, and the next cool-down is 8x as long.
    time.sleep(3.3)
    cloud.fail_next(1, "fail")
    j = chat(edge, speculative=VERIFY)
    assert cloud.count() == before + 2 and j["route"]["reason"] == "cloud_error"
    time.sleep(3.3)  # past the first cool-down, well within the second (24 s)
    j = chat(edge, speculative=VERIFY)
    assert cloud.count() == before + 2, "probed again before the backed-off cool-down"
    assert j["route"]["reason"] == "cloud_down"


def test_verifier_failing_mid_answer_completes_on_the_device(cloud, edges):
    edge = edges("midway", cloud={"failure_threshold": 1000})
    before = cloud.count()
    cloud.queue_modes(["forward", "malformed"])
    j = chat(edge, speculative={"mode": "cloud", "max": 2})
    assert cloud.count() == before + 2
    route = j["route"]
    assert route["tier"] == "device" and route["fallback"] and route["cloud_error"] == "malformed_json", route
    assert route["scores"]["verify_rounds"] == 1 and route["scores"]["verify_device_tokens"] > 0, route
    assert j["choices"][0]["finish_reason"] in ("stop", "length") and text_of(j)


@pytest.mark.parametrize("extra,needle", [
    ({"temperature": 0.7}, "temperature"),
    ({"speculative": {"mode": "cloud", "max": 0}}, "max"),
    ({"speculative": {"mode": "sometimes"}}, "cloud"),
])
def test_bad_cloud_verify_requests_are_400(edges, extra, needle):
    edge = edges("plain", mode="prefer-local")
    body = {**chat_body(PROMPT, max_tokens=4, speculative=VERIFY), **extra}
    r = http("POST", edge.url + "/v1/chat/completions", body, timeout=120)
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_cloud_verify_needs_a_routing_policy():
    srv = ServerProcess(ctx=512, parallel=1)
    try:
        r = http("POST", srv.url + "/v1/chat/completions", chat_body(PROMPT, max_tokens=4, speculative=VERIFY))
        assert r.status_code == 400 and "routing policy" in r.json()["error"]["message"], r.text
    finally:
        assert srv.stop() == 0
