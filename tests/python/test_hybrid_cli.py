"""`edgellm run` / `edgellm chat` with --policy / --cloud: each prompt goes through the same
orchestrator as the server; the answer is on stdout and the tier and reason on stderr. The cloud
is a real `edgellm serve` behind the recording pass-through.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from hybrid_recorder import recorded_cloud, write_policy
from server_harness import default_model, free_port, server_binary

ALWAYS = {"min_quantile_logprob": -1e9, "max_mean_entropy": 0.0}
ID_CARD = "11010519491231002X"


@pytest.fixture(scope="module")
def cloud():
    with recorded_cloud() as rec:
        yield rec


def cli(*args, stdin=None):
    cmd = [server_binary(), args[0], "-m", default_model(), "-t", "2", "-n", "12", "--temp", "0", *args[1:]]
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=600)


def tiers(stderr):
    return re.findall(r"\[tier (local|cloud): (\w+)", stderr)


def test_run_with_policy_escalates_and_reports(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-cli-hybrid-")
    policy = write_policy(tmp, "cli", cloud.url, confidence=ALWAYS)
    before = cloud.count()
    r = cli("run", "-p", "Name a colour.", "--policy", policy)
    assert r.returncode == 0, r.stderr
    assert tiers(r.stderr) == [("cloud", "low_confidence")], r.stderr
    assert r.stdout.strip()
    assert cloud.count() == before + 1
    assert cloud.bodies[-1]["messages"] == [{"role": "user", "content": "Name a colour."}]
    assert cloud.bodies[-1]["model"] == "cloud-model"
    # Blocked data never leaves, even when every answer would be escalated.
    r = cli("run", "-p", f"Is {ID_CARD} valid?", "--policy", policy)
    assert r.returncode == 0, r.stderr
    assert tiers(r.stderr) == [("local", "privacy_block")] and r.stdout.strip()
    assert cloud.count() == before + 1
    lines = [json.loads(l) for l in (Path(tmp) / "cli.audit.jsonl").read_text().splitlines()]
    assert [l["route"]["reason"] for l in lines] == ["low_confidence", "privacy_block"]


def test_run_cloud_shortcut_and_unreachable_cloud(cloud):
    # --cloud alone: prefer-local with default thresholds; whatever is decided is reported.
    r = cli("run", "-p", "Say hi.", "--cloud", cloud.url + "/v1", "--cloud-model", "cloud-model")
    assert r.returncode == 0, r.stderr
    assert len(tiers(r.stderr)) == 1 and r.stdout.strip()
    tmp = tempfile.mkdtemp(prefix="edgellm-cli-hybrid-")
    policy = write_policy(tmp, "down", None, mode="cloud-only")
    r = cli("run", "-p", "Say hi.", "--policy", policy, "--cloud", f"http://127.0.0.1:{free_port()}/v1")
    assert r.returncode == 0, r.stderr
    assert tiers(r.stderr) == [("local", "cloud_down")] and r.stdout.strip()
    assert "cloud error connect" in r.stderr


def test_chat_routes_every_turn_with_the_conversation(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-cli-hybrid-")
    policy = write_policy(tmp, "chat", cloud.url, mode="cloud-only")
    before = cloud.count()
    r = cli("chat", "--policy", policy, stdin="Name a fruit.\nAnd a vegetable?\n/exit\n")
    assert r.returncode == 0, r.stderr
    assert tiers(r.stderr) == [("cloud", "cloud_only")] * 2, r.stderr
    assert cloud.count() == before + 2
    second = cloud.bodies[-1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1]["content"].strip() and second[1]["content"] in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--policy", "/nonexistent/policy.json"], "policy"),
    (["--cloud", "ftp://example.com"], "http:// or https://"),
    (["--cloud-model", "x"], "--cloud-model needs"),
])
def test_bad_routing_flags_are_clear_errors(args, message):
    r = cli("run", "-p", "hi", *args)
    assert r.returncode == 1 and "error:" in r.stderr and message in r.stderr, r.stderr


def test_bad_policy_key_stops_serve(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"mdoe": "cloud-only"}))
    r = subprocess.run([server_binary(), "serve", "-m", default_model(), "--port", "0", "--policy", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "mdoe" in r.stderr, r.stderr
