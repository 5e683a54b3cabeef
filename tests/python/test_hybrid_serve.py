"""Hybrid routing end to end with two real `edgellm serve` processes: an edge server started with
`--policy FILE` and a "cloud" server (same small model, another port) behind a recording
pass-through, so the tests see exactly what left the device.

API (see docs/hybrid.md): answers carry top-level "tier" ("local" | "cloud") and "route" (the
RouteRecord), plain answers also x-edgellm-route headers; streamed answers carry both on the
chunk with finish_reason. Every mode and reason: test_hybrid_routes.py; cloud faults:
test_hybrid_faults.py; zero leakage: test_hybrid_leakage.py.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from hybrid_recorder import recorded_cloud
from server_harness import ServerProcess, http

EMAIL = "zhang.wei@example.com"
PHONE = "13812345678"
ID_CARD = "11010519491231002X"


@pytest.fixture(scope="module")
def cloud():
    with recorded_cloud() as rec:
        yield rec


@pytest.fixture(scope="module")
def edge(cloud):
    tmp = Path(tempfile.mkdtemp(prefix="edgellm-hybrid-"))
    audit = tmp / "audit.jsonl"
    policy = {
        "name": "hybrid-test",
        "mode": "prefer-cloud",
        "cloud": {"base_url": cloud.url + "/v1", "model": "cloud-model", "max_retries": 0,
                  "timeout_ms": 120000, "failure_threshold": 1000},
        "audit": {"path": str(audit), "fsync": "always"},
    }
    (tmp / "policy.json").write_text(json.dumps(policy))
    srv = ServerProcess(["--policy", str(tmp / "policy.json")], ctx=1024, parallel=2)
    srv.audit_path = audit
    yield srv
    assert srv.stop() == 0, srv.output()


def chat(srv, content, route=None, stream=False, max_tokens=12):
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, "temperature": 0}
    if route is not None:
        body["route"] = route
    if stream:
        body["stream"] = True
    return http("POST", srv.url + "/v1/chat/completions", body, timeout=300)


def sse_events(resp):
    events = []
    for line in resp.text.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            events.append(json.loads(line[6:]))
    return events


def test_local_only_override_never_calls_cloud(edge, cloud):
    before = cloud.count()
    r = chat(edge, "Say hi.", route={"local_only": True})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["tier"] == "local"
    assert j["route"]["reason"] == "local_only"
    assert j["choices"][0]["message"]["content"]
    assert cloud.count() == before


def test_prefer_cloud_redacts_what_leaves_the_device(edge, cloud):
    before = cloud.count()
    r = chat(edge, f"Write one short line to {EMAIL}, phone {PHONE}.")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["tier"] == "cloud", j
    assert j["route"]["redacted"] is True
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert headers["x-edgellm-route-tier"] == "cloud"
    assert headers["x-edgellm-route-reason"] == "prefer_cloud"
    assert "redacted=true" in headers["x-edgellm-route"]
    assert cloud.count() == before + 1
    sent = cloud.sent_text()
    assert EMAIL not in sent and PHONE not in sent
    assert "[EMAIL_1]" in sent and "[PHONE_1]" in sent
    assert cloud.bodies[-1]["model"] == "cloud-model"
    assert "route" not in cloud.bodies[-1]


def test_streamed_cloud_answer_reports_route_on_last_chunk(edge, cloud):
    r = chat(edge, "Count from one to five.", stream=True)
    assert r.status_code == 200, r.text
    events = sse_events(r)
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    assert text.strip()
    last = [e for e in events if e.get("choices") and e["choices"][0].get("finish_reason")][-1]
    assert last["tier"] == "cloud"
    assert last["route"]["tier"] == "cloud"


def test_blocked_pii_stays_local(edge, cloud):
    before = cloud.count()
    r = chat(edge, f"My ID is {ID_CARD}. Is it valid?", route={"escalate": True})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["tier"] == "local"
    assert j["route"]["reason"] == "privacy_block"
    assert cloud.count() == before


def test_cloud_failure_falls_back_to_device(edge, cloud):
    cloud.mode = "fail"
    try:
        r = chat(edge, "Name a colour.")
    finally:
        cloud.mode = "forward"
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["tier"] == "local"
    assert j["route"]["fallback"] is True
    assert j["route"]["reason"] == "cloud_error"
    assert j["route"]["cloud_error"] == "http_status"
    assert j["choices"][0]["message"]["content"]


def test_bad_route_override_is_400(edge):
    r = chat(edge, "hi", route={"mode": "sideways"})
    assert r.status_code == 400, r.text


def test_audit_log_has_routes_and_no_pii(edge):
    chat(edge, f"Remind {EMAIL} about the call at {PHONE}.")
    lines = [json.loads(l) for l in Path(edge.audit_path).read_text().splitlines() if l.strip()]
    assert lines, "audit log is empty"
    raw = Path(edge.audit_path).read_text()
    for secret in (EMAIL, PHONE, ID_CARD):
        assert secret not in raw
    assert any(l["pii"].get("EMAIL") for l in lines)
    assert all(len(l["prompt_sha256"]) == 64 for l in lines)
    assert {l["route"]["tier"] for l in lines} >= {"device", "cloud"}
