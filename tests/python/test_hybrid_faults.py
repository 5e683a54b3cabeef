"""Cloud failures end to end: the recording pass-through in front of a real "cloud" `edgellm serve`
injects a timeout, HTTP 500, malformed JSON, a connection closed without an answer and a
connection dropped mid-answer (before and after text reached the client), for plain and
streamed requests. Each ends in a complete answer from the device with a route record that
names the failure, and under a burst of mixed failures no request is lost (one answer and one
audit line per request).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

import pytest

from hybrid_recorder import Streamed, chat_body, check_route, recorded_cloud, write_policy
from server_harness import ServerProcess, http

EXACT = {"EDGELLM_EXACT": "1"}
PROMPT = "Name three colours."
# The edge's cloud timeout; a sanitizer build answers far slower, so it can be raised.
TIMEOUT_MS = int(os.environ.get("EDGELLM_HYBRID_CLOUD_TIMEOUT_MS", "6000"))
# The "slow" fault answers long after the edge has given up (the edge does not wait for it, so
# the margin costs no test time): "timeout" whatever the machine's speed.
SLOW_S = 2 * TIMEOUT_MS / 1000 + 10


@pytest.fixture(scope="module")
def cloud():
    """The cloud answers from replay (hybrid_recorder.py): every fault but "slow" answers at
    once, so none can turn into a timeout on a loaded machine. Primed with one real upstream
    answer of each kind, fetched without any edge timeout involved."""
    with recorded_cloud(EXACT) as rec:
        for stream in (False, True):
            r = http("POST", rec.url + "/v1/chat/completions",
                     chat_body(PROMPT, model="cloud-model", stream=stream), timeout=600)
            assert r.status_code == 200, r.text
        rec.replay = True
        yield rec


@pytest.fixture(scope="module")
def edge(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-faults-")
    path = write_policy(tmp, "faults", cloud.url, mode="prefer-cloud",
                        cloud={"timeout_ms": TIMEOUT_MS, "connect_timeout_ms": 10000})
    srv = ServerProcess(["--policy", path], ctx=1024, parallel=4, queue=16, env=EXACT)
    srv.audit_path = Path(tmp) / "faults.audit.jsonl"
    yield srv
    assert srv.stop() == 0, srv.output()


@pytest.fixture(scope="module")
def device_answer(edge):
    """What the device says to PROMPT (greedy, float activations: independent of batching)."""
    r = http("POST", edge.url + "/v1/chat/completions", chat_body(PROMPT, route={"local_only": True}), timeout=300)
    text = r.json()["choices"][0]["message"]["content"]
    assert text.strip()
    return text


def plain(edge, **kw):
    r = http("POST", edge.url + "/v1/chat/completions", chat_body(PROMPT, **kw), timeout=300)
    assert r.status_code == 200, r.text
    return r.json()


def streamed(edge, **kw):
    r = http("POST", edge.url + "/v1/chat/completions", chat_body(PROMPT, stream=True, **kw), timeout=300)
    assert r.status_code == 200, r.text
    s = Streamed(r.text)
    assert s.done and s.final is not None and not s.errors, s.raw
    return s


@pytest.mark.parametrize("fault,reason,error", [
    ("fail", "cloud_error", "http_status"),
    ("malformed", "cloud_error", "malformed_json"),
    ("close", "cloud_error", "dropped"),
    ("drop", "cloud_error", "dropped"),
    ("slow", "timeout", "timeout"),
])
def test_fault_before_text_falls_back(edge, cloud, device_answer, fault, reason, error):
    cloud.slow_s = SLOW_S
    cloud.drop_after = 0  # streams: cut before the first piece of text
    for stream in (False, True):
        before = cloud.count()
        cloud.fail_next(1, fault)
        if stream:
            s = streamed(edge)
            route, text = s.final["route"], s.text
            assert not s.restarts  # nothing had reached the client, so no restart was needed
        else:
            j = plain(edge)
            route, text = j["route"], j["choices"][0]["message"]["content"]
        check_route(route, "device", reason)
        assert route["fallback"] is True and route["cloud_error"] == error, route
        assert "prefer_cloud" in route["notes"]
        assert text == device_answer
        assert cloud.count() == before + 1  # max_retries 0: one attempt


def test_stream_dropped_after_text_restarts_on_the_device(edge, cloud, device_answer):
    cloud.drop_after = 2
    cloud.fail_next(1, "drop")
    s = streamed(edge)
    assert len(s.restarts) == 1, s.raw
    ev = s.restarts[0]
    assert ev["error"]["code"] == "cloud_stream_interrupted"
    # Text of the cloud's answer came before the restart event; the device's answer after it.
    first = s.raw.index("cloud_stream_interrupted")
    assert any((c.get("delta") or {}).get("content") for e in s.events[:s.events.index(ev)] for c in e.get("choices") or [])
    assert first > 0
    route = s.final["route"]
    check_route(route, "device", "cloud_error")
    assert route["fallback"] and route["cloud_error"] == "dropped"
    assert "stream_interrupted" in route["notes"]
    assert s.text == device_answer


def test_cloud_recovers_after_faults(edge, cloud):
    j = plain(edge)
    check_route(j["route"], "cloud", "prefer_cloud")
    assert j["choices"][0]["message"]["content"].strip()


def test_no_request_is_lost_under_mixed_faults(edge, cloud):
    cloud.slow_s = SLOW_S
    cloud.drop_after = 1
    faults = ["fail", "malformed", "close", "drop", "slow", "forward"] * 3
    cloud.mode = "forward"
    results, errors = {}, []

    def worker(i):
        try:
            stream = i % 2 == 1
            body = chat_body(f"Give me word number {i}.", stream=stream, max_tokens=8)
            r = http("POST", edge.url + "/v1/chat/completions", body, timeout=600)
            assert r.status_code == 200, r.text
            if stream:
                s = Streamed(r.text)
                assert s.done and s.final and not s.errors, r.text
                results[i] = (s.final["id"], s.final["route"], s.text)
            else:
                j = r.json()
                results[i] = (j["id"], j["route"], j["choices"][0]["message"]["content"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))

    cloud.queue_modes(faults)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(faults))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=900)
    assert not errors, errors
    assert len(results) == len(faults)
    for i, (rid, route, text) in results.items():
        assert text.strip(), (i, route)
        check_route(route, route["tier"], route["reason"])
        if route["tier"] == "device":
            assert route["fallback"] and route["reason"] in ("cloud_error", "timeout"), route
    tiers = [r[1]["tier"] for r in results.values()]
    assert "device" in tiers and "cloud" in tiers, tiers
    # One audit line per request, every one "ok", none for requests that were never made.
    lines = [json.loads(l) for l in edge.audit_path.read_text().splitlines() if l.strip()]
    by_id = {}
    for l in lines:
        by_id.setdefault(l["request_id"], []).append(l)
    for rid, route, _ in results.values():
        assert len(by_id.get(rid, [])) == 1, rid
        assert by_id[rid][0]["status"] == "ok" and by_id[rid][0]["route"]["tier"] == route["tier"]
