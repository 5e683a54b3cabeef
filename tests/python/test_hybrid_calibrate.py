"""scripts/calibrate-routing: threshold fitting on synthetic records with a known best answer,
and the collect step against a stub server that answers like a hybrid edge server."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def load_tool():
    path = ROOT / "scripts" / "calibrate-routing"
    loader = importlib.machinery.SourceFileLoader("calibrate_routing", str(path))
    spec = importlib.util.spec_from_loader("calibrate_routing", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def synthetic(n_good=80, n_bad=20, seed=3):
    rng = random.Random(seed)
    recs = [{"quantile_logprob": rng.uniform(-2.0, -0.1), "mean_entropy": rng.uniform(0.2, 1.5), "correct": True}
            for _ in range(n_good)]
    # Wrong answers: half betray themselves by a low p10 log-prob, half by high entropy.
    for i in range(n_bad):
        if i % 2:
            recs.append({"quantile_logprob": rng.uniform(-9.0, -4.0), "mean_entropy": rng.uniform(0.2, 1.5), "correct": False})
        else:
            recs.append({"quantile_logprob": rng.uniform(-2.0, -0.1), "mean_entropy": rng.uniform(2.5, 4.0), "correct": False})
    rng.shuffle(recs)
    return recs


def test_fit_separates_when_budget_allows():
    tool = load_tool()
    recs = synthetic()
    tq, th, m, _ = tool.fit(recs, 0.25)
    assert m["errors_caught"] == 1.0
    assert m["false_escalations"] == 0.0
    assert abs(m["escalation"] - 0.2) < 1e-9
    bad_q = max(r["quantile_logprob"] for r in recs if not r["correct"] and r["mean_entropy"] < 2)
    good_q = min(r["quantile_logprob"] for r in recs if r["correct"])
    good_h = max(r["mean_entropy"] for r in recs if r["correct"])
    bad_h = min(r["mean_entropy"] for r in recs if not r["correct"] and r["quantile_logprob"] > -3)
    assert bad_q < tq <= good_q  # between the wrong and right log-prob clusters
    assert good_h <= th < bad_h


def test_fit_respects_a_tight_budget():
    tool = load_tool()
    recs = synthetic()
    for share in (0.05, 0.1):
        _, _, m, _ = tool.fit(recs, share)
        assert m["escalation"] <= share + 1e-9
        # With a perfect separation every escalation should hit a wrong answer.
        assert m["false_escalations"] == 0.0
        assert m["errors_caught"] == pytest.approx(m["escalation"] / 0.2)


def test_missing_scores_count_as_escalated():
    tool = load_tool()
    recs = [{"quantile_logprob": None, "mean_entropy": None, "correct": False},
            {"quantile_logprob": -0.5, "mean_entropy": 0.5, "correct": True}]
    _, _, m, _ = tool.fit(recs, 0.5)
    assert m["errors_caught"] == 1.0 and m["escalation"] == 0.5


class _Stub(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["route"] == {"local_only": True}
        q = body["messages"][-1]["content"]
        answer = "Paris" if "France" in q else "I am not sure"
        score = -0.3 if answer == "Paris" else -6.0
        out = {"choices": [{"message": {"role": "assistant", "content": answer}}], "tier": "local",
               "route": {"tier": "device", "scores": {"quantile_logprob": score, "mean_entropy": 0.4}}}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_collect_then_fit(tmp_path, capsys):
    tool = load_tool()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        prompts = tmp_path / "p.jsonl"
        prompts.write_text("\n".join(json.dumps(x) for x in [
            {"prompt": "Capital of France?", "expect": ["paris"]},
            {"prompt": "Capital of Burkina Faso?", "expect": ["Ouagadougou"]},
            {"prompt": "France again?", "expect": ["Paris"]},
            {"prompt": "Who wrote it?", "expect": ["Marquez"]}]))
        out = tmp_path / "r.jsonl"
        tool.main(["collect", "--server", f"http://127.0.0.1:{httpd.server_address[1]}",
                   "--prompts", str(prompts), "--out", str(out)])
        recs = [json.loads(l) for l in out.read_text().splitlines()]
        assert [r["correct"] for r in recs] == [True, False, True, False]
        tool.main(["fit", "--records", str(out), "--max-escalation", "0.5"])
        printed = capsys.readouterr().out
        snippet = json.loads(printed[printed.index("{"):])
        assert -6.0 < snippet["confidence"]["min_quantile_logprob"] <= -0.3
    finally:
        httpd.shutdown()


def test_calibration_prompt_set_is_well_formed():
    lines = (ROOT / "tests/data/hybrid/calibration_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 40
    for l in lines:
        j = json.loads(l)
        assert j["prompt"] and j["expect"]
