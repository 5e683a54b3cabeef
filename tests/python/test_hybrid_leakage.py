"""Zero leakage: 220 prompts with seeded PII of every kind the detector supports (emails, mainland
and international phones, PRC IDs with a valid check character, Luhn-valid bank cards, IPv4,
IPv6, mainland and UK plates, a user pattern and user keywords), in every message position
(system, user, earlier assistant turn, text parts, and outside the texts: the "user" field,
a message's "name", request metadata), sent through two edge servers: one that
redacts every kind and sends everything to the cloud, one that blocks every kind. Each prompt
goes plain and streamed. The recording pass-through keeps every body the cloud received; no
seeded value may appear there (as written, lower-cased, or as its bare digits), nor in the
audit logs. The counts are printed and written to $EDGELLM_RESULTS_DIR/hybrid_leakage.json.
Values come from tests/data/hybrid/gen_pii_labelled.py's builders (independent of the C++ code),
reseeded here.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import random
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import write_results
from hybrid_recorder import Recorder, Streamed, chat_body, write_policy
from server_harness import ServerProcess, http

ROOT = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
N_PROMPTS = 220
KINDS = ["EMAIL", "PHONE", "ID_CARD", "BANK_CARD", "IPV4", "IPV6", "PLATE", "PATTERN", "KEYWORD"]
KEYWORDS = ["Project Falcon", "蓝鲸计划", "Operation Nightjar"]
EXTRA_TEMPLATES = {
    "PATTERN": ["Employee {} asked for leave.", "工号{}已离职", "Badge: {}"],
    "KEYWORD": ["The {} launch slipped again.", "关于{}的会议改期", "Notes on {}: keep quiet."],
}


def load_builders(seed: int):
    path = ROOT / "tests/data/hybrid/gen_pii_labelled.py"
    loader = importlib.machinery.SourceFileLoader("gen_pii_labelled", str(path))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("gen_pii_labelled", loader))
    loader.exec_module(mod)
    mod.R = random.Random(seed)  # the builders draw from the module's generator
    return mod


def make_prompts(seed=7):
    gen = load_builders(seed)
    rng = random.Random(seed)
    builders = dict(gen.BUILDERS)
    builders["PATTERN"] = lambda: f"EMP-{rng.randint(0, 999999):06d}"
    builders["KEYWORD"] = lambda: rng.choice(KEYWORDS)
    templates = {**gen.TEMPLATES, **EXTRA_TEMPLATES}
    prompts = []
    for i in range(N_PROMPTS):
        kinds = [KINDS[i % len(KINDS)]] + rng.sample(KINDS, rng.randint(0, 2))
        seeded, sentences = [], []
        for k in kinds:
            v = builders[k]()
            while len(v) < 6:  # "::1" and the like would match unrelated text
                v = builders[k]()
            seeded.append((k, v))
            sentences.append(rng.choice(templates[k]).format(v))
        text = " ".join(sentences)
        shape = i % 4
        if shape == 0:
            msgs = [{"role": "user", "content": text + " Reply with one word."}]
        elif shape == 1:
            msgs = [{"role": "system", "content": "Context: " + text}, {"role": "user", "content": "Summarise."}]
        elif shape == 2:
            msgs = [{"role": "user", "content": "What did I tell you?"}, {"role": "assistant", "content": text},
                    {"role": "user", "content": "Thanks, and now?"}]
        else:
            msgs = [{"role": "user", "content": [{"type": "text", "text": s} for s in sentences]}]
        # Private data outside the message texts reaches the cloud too unless it is scanned.
        extra = {}
        if i % 10 == 3:
            extra["user"] = seeded[0][1]
        elif i % 10 == 7:
            msgs[-1]["name"] = "customer " + seeded[0][1]
        elif i % 10 == 9:
            extra["metadata"] = {"note": sentences[0]}
        prompts.append({"messages": msgs, "seeded": seeded, "extra": extra})
    return prompts


def leak_forms(value: str):
    """The value as written, lower-cased, and its bare digits when those are long enough to be
    identifying (a phone or card sent without its separators is still a leak)."""
    forms = {value, value.lower()}
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7:
        forms.add(digits)
        if digits.startswith("86") and len(digits) == 13:
            forms.add(digits[2:])
        if digits.startswith("0086"):
            forms.add(digits[4:])
    return forms


@pytest.fixture(scope="module")
def servers():
    tmp = Path(tempfile.mkdtemp(prefix="edgellm-leak-"))
    cloud_srv = ServerProcess(["--alias", "cloud-model"], ctx=1024, parallel=4, queue=16)
    rec = Recorder(cloud_srv.url, log_path=str(tmp / "cloud_bodies.jsonl"))
    every = {k: "redact" for k in KINDS[:7]}
    redact = write_policy(tmp, "redact", rec.url, mode="prefer-cloud",
                          privacy={"default_action": "redact", "kinds": every, "western_plates": True,
                                   "patterns": [{"name": "employee_id", "regex": "EMP-[0-9]{6}", "action": "redact"}],
                                   "keywords": KEYWORDS, "keyword_action": "redact"})
    block = write_policy(tmp, "block", rec.url, mode="prefer-cloud",
                         privacy={"default_action": "block", "kinds": {k: "block" for k in KINDS[:7]},
                                  "western_plates": True,
                                  "patterns": [{"name": "employee_id", "regex": "EMP-[0-9]{6}", "action": "block"}],
                                  "keywords": KEYWORDS, "keyword_action": "block"})
    edges = {name: ServerProcess(["--policy", path], ctx=1024, parallel=2, queue=16)
             for name, path in (("redact", redact), ("block", block))}
    yield rec, edges, tmp
    rec.close()
    for s in list(edges.values()) + [cloud_srv]:
        assert s.stop() == 0, s.output()


def send(srv, messages, stream, **extra):
    body = chat_body(messages, stream=stream, max_tokens=2, **extra)
    r = http("POST", srv.url + "/v1/chat/completions", body, timeout=600)
    assert r.status_code == 200, r.text
    if stream:
        s = Streamed(r.text)
        assert s.done and s.final is not None and not s.errors, r.text
        return s.final["route"]
    return r.json()["route"]


def test_no_seeded_value_reaches_the_cloud(servers):
    rec, edges, tmp = servers
    prompts = make_prompts()
    jobs = [(p, profile, stream) for p in prompts for profile in ("redact", "block") for stream in (False, True)]

    def run(job):
        p, profile, stream = job
        return job, send(edges[profile], p["messages"], stream, **p["extra"])

    with ThreadPoolExecutor(max_workers=4) as ex:
        outcomes = list(ex.map(run, jobs))
    n_cloud_before_controls = rec.count()
    for (p, profile, stream), route in outcomes:
        if profile == "redact":
            assert route["tier"] == "cloud" and route["redacted"] is True, (p["seeded"], route)
        else:
            assert route["tier"] == "device" and route["reason"] == "privacy_block", (p["seeded"], route)
    # Positive controls: the recorder does see what is sent (a harmless canary arrives), and the
    # blocking edge does use the cloud when nothing private is in the prompt.
    route = send(edges["block"], [{"role": "user", "content": "Say the word canary-7f3a."}], False)
    assert route["tier"] == "cloud"
    sent = rec.sent_text()
    assert "canary-7f3a" in sent

    audits = "".join(Path(tmp / f"{n}.audit.jsonl").read_text(encoding="utf-8") for n in ("redact", "block"))
    seeded = [(k, v) for p in prompts for k, v in p["seeded"]]
    leaks = [(k, v, f) for k, v in seeded for f in leak_forms(v) if f in sent]
    audit_leaks = [(k, v, f) for k, v in seeded for f in leak_forms(v) if f in audits]
    per_kind = {k: sum(1 for kk, _ in seeded if kk == k) for k in KINDS}
    n_redact = sum(1 for j in jobs if j[1] == "redact")
    summary = {"prompts": len(prompts), "requests": len(jobs) + 1, "seeded_values": len(seeded),
               "distinct_values": len({v for _, v in seeded}), "per_kind": per_kind,
               "cloud_bodies": rec.count(), "cloud_bodies_from_redact_profile": n_redact,
               "cloud_bodies_from_block_profile": n_cloud_before_controls - n_redact,
               "leaks": len(leaks), "audit_leaks": len(audit_leaks)}
    print("\nzero-leakage:", summary)
    write_results("hybrid_leakage.json", summary)
    assert all(n >= 20 for n in per_kind.values()), per_kind
    assert n_cloud_before_controls == n_redact  # the blocking edge sent nothing
    assert not leaks, leaks[:20]
    assert not audit_leaks, audit_leaks[:20]
