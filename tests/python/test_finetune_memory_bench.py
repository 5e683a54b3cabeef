"""bench/finetune_memory.py and its data (bench/personal_memory): the held-out selection set, the step/scale
choice on it (--pick) and the options' bad input. No model is needed: these run before anything is loaded."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "finetune_memory.py"
sys.path.insert(0, str(ROOT / "bench" / "personal_memory"))
import general  # noqa: E402
import generate  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("full", [False, True])
def test_selection_wordings_are_held_out(full):
    train, evals, select = generate.build(100, 1, full)
    assert [s["answer"] for s in select] == [f[0] for f in generate.FACTS]  # one per fact, in order
    seen = {m["content"].lower() for t in train for m in t["messages"] if m["role"] == "user"}
    for s in select:
        q = s["question"].lower()
        assert all(q not in t for t in seen), q
        assert q not in {e["question"].lower() for e in evals}
        assert s["messages"][0]["content"] == (generate.SYSTEM_FULL if full else generate.SYSTEM)
    assert generate.build(100, 1, full) == (train, evals, select)  # deterministic for a seed


def test_general_selection_questions_are_held_out():
    reported = {q.lower() for q in general.CHECK}
    trained = {q.lower() for q in general.REPLAY}
    assert len(general.SELECT) == len(set(general.SELECT)) >= 10
    assert not {q.lower() for q in general.SELECT} & (reported | trained)


def test_training_data_unchanged_by_the_selection_set():
    # Round 5's first training conversation and eval question at --n-train 100 --full (its train.jsonl): the
    # selection set must not move the rng, or rounds stop being comparable.
    train, evals, _ = generate.build(100, 1, True)
    assert train[0]["messages"][1]["content"] == "Please remind me: Which car do I have?"
    assert evals[0]["question"] == "Which family name do I have?"
    assert len(train) == 100 and len(evals) == 40


@pytest.mark.parametrize("args, message", [
    (["--kl-nosys", "-1", "--replay", "4"], "--kl-nosys must be between 0 and --n-train"),
    (["--kl-nosys", "101", "--replay", "4", "--n-train", "100"], "--kl-nosys must be between 0 and --n-train"),
    (["--kl-nosys", "5"], "--kl-nosys needs --replay"),
    (["--parallel", "0"], "--parallel must be at least 1"),
    (["--replay-gen", "-1"], "--replay-gen must be between 0 and"),
    (["--replay-gen", "100000"], "--replay-gen must be between 0 and"),
    (["--kl-nosys", "5", "--replay-gen", "0"], "--kl-nosys needs --replay or --replay-gen"),
    (["--kl-data-ce", "-1", "--kl-weight", "3"], "--kl-data-ce must be a number >= 0"),
    (["--kl-data-ce", "0"], "--kl-data-ce needs --kl-weight above 0"),
    (["--layers", "6-"], "--layers must be all or layer numbers and ranges"),
    (["--layers", "mid"], "--layers must be all or layer numbers and ranges"),
])
def test_bad_options_stop_with_a_message(tmp_path, args, message):
    r = run(*args, "--work", str(tmp_path / "w"))
    assert r.returncode != 0
    assert message in r.stderr
    assert not (tmp_path / "w").exists()  # stopped before generating anything


def test_finetune_command_passes_targets_and_layers():
    sys.path.insert(0, str(ROOT / "bench"))
    import argparse
    import finetune_memory
    a = argparse.Namespace(bin="edgellm", model="m", targets="gate,up,down", layers="6-17", rank=8, alpha=16,
                           epochs=2, lr=5e-4, batch=1, threads=2, save_epochs=False, kl_weight=3, kl_data_ce=0,
                           save_adapter_every=25)
    cmd = finetune_memory.finetune_command(a, "t.jsonl", "kl.jsonl", "w", "a.gguf")
    assert cmd[cmd.index("--targets") + 1] == "gate,up,down"
    assert cmd[cmd.index("--layers") + 1] == "6-17"
    assert cmd[cmd.index("--kl-data-ce") + 1] == "0"
    assert "--kl-data" not in finetune_memory.finetune_command(a, "t.jsonl", None, "w", "a.gguf")


def result(path, sel_acc, sel_ppl, sel_kept, acc=0.5, ppl=0.5, kept=0):
    path.write_text(json.dumps({"select_accuracy_after": sel_acc, "select_ppl_change": sel_ppl,
                                "select_general_unchanged": sel_kept, "select_general_after": [""] * 12,
                                "accuracy_after": acc, "ppl_change": ppl, "check_unchanged": kept}))
    return str(path)


def test_pick_uses_only_the_held_out_figures(tmp_path):
    files = [
        result(tmp_path / "a.json", 0.85, 0.02, 9, acc=0.3, ppl=0.3, kept=2),
        # Best reported figures, but held-out accuracy below 80%: never picked.
        result(tmp_path / "b.json", 0.75, 0.01, 12, acc=0.95, ppl=0.0, kept=10),
        # Held-out perplexity change at 5%: out.
        result(tmp_path / "c.json", 0.95, 0.05, 12),
        result(tmp_path / "d.json", 0.90, 0.03, 9),  # ties a on kept answers, wins on accuracy
    ]
    r = run("--pick", *files)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"picked: {files[3]}"
    assert len(r.stdout.strip().splitlines()) == 2 + len(files)  # header, one row each, the choice


def test_pick_without_a_passing_adapter(tmp_path):
    r = run("--pick", result(tmp_path / "a.json", 0.7, 0.0, 12))
    assert r.returncode == 1
    assert "no adapter passes the held-out checks" in r.stdout


def test_pick_rejects_a_result_without_held_out_figures(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(json.dumps({"accuracy_after": 0.9, "ppl_change": 0.01, "check_unchanged": 7}))
    r = run("--pick", str(p))
    assert r.returncode != 0
    assert "no held-out figures" in r.stderr


def test_generated_replay_never_asks_a_check_or_select_subject():
    import general_gen
    qs = general_gen.questions()
    assert len(qs) == len({q.lower() for q in qs}) >= 300
    for q in qs:
        assert general_gen.excluded(q) is None, q
    # The exclusion rule covers every reported and held-out question, so none of their subjects can be generated.
    for q in general.CHECK + general.SELECT:
        assert general_gen.excluded(q) is not None, q
    assert general_gen.excluded("What is 8 + 7?") and general_gen.excluded("How many hours are in two days?")
    assert general_gen.excluded("What is the capital of germany?") and not general_gen.excluded("What is 8 + 6?")


def test_generated_replay_is_deterministic_and_every_prefix_covers_every_kind():
    import general_gen
    assert general_gen.questions(150) == general_gen.questions()[:150] == general_gen.questions(150)
    first = general_gen.questions(11)
    assert any("capital" in q for q in first) and any(" plus " in q or " times " in q or " minus " in q
                                                       or "+" in q or "*" in q or "-" in q for q in first)
    assert any("opposite" in q for q in first) and any("made " in q for q in first)
    with pytest.raises(ValueError, match="generated questions"):
        general_gen.questions(len(general_gen.questions()) + 1)


def test_cached_base_answers_must_answer_the_same_questions(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import finetune_memory

    class Args:
        replay_tokens, replay_temp = 48, 0.0

    cache = tmp_path / "replay.jsonl"
    line = {"messages": [{"role": "user", "content": "What is 2 plus 3?"}, {"role": "assistant", "content": "5."}]}
    cache.write_text(json.dumps(line) + "\n")

    def no_server():
        raise AssertionError("every answer is cached: no server may start")

    assert finetune_memory.base_answers(str(cache), ["What is 2 plus 3?"], Args, 0, no_server) == [json.dumps(line)]
    with pytest.raises(SystemExit, match="answers another question"):
        finetune_memory.base_answers(str(cache), ["What is 3 plus 2?"], Args, 0, no_server)


def test_check_margins_divergence_and_margin():
    import check_margins
    toks = [["A", -0.1, [-0.1, -2.0]], [" bicycle", -0.01, [-0.01, -5.0]], [" has", 0, [0.0]],
            [" four", -0.6, [-0.6, -0.7]], [" wheels.", -0.2, [-0.2, -3.0]]]
    assert check_margins.margin(toks[3]) == pytest.approx(0.1)
    assert check_margins.margin(toks[2]) == float("inf")  # no runner-up reported
    assert check_margins.divergence(toks, "A bicycle has four wheels.") is None
    assert check_margins.divergence(toks, "A bicycle has 2 wheels.") == 3  # the near-tie token
    # Compared by characters: the first base token holding a differing character (the reply may be tokenized
    # otherwise, " fourteen" as one token).
    assert check_margins.divergence(toks, "A bicycle has fourteen wheels.") == 4
    assert check_margins.divergence(toks, "A bicycle") == 2  # stopped early: the next base token
    assert check_margins.divergence(toks, "A bicycle has four wheels. It") == 4  # ran on: the last base token
    assert check_margins.divergence(toks, "The bicycle") == 0
    # A leading space in the base's first token (the replies are stripped) shifts nothing.
    sp = [[" A", -0.1, [-0.1, -2.0]]] + toks[1:]
    assert check_margins.divergence(sp, "A bicycle has four wheels.") is None
    assert check_margins.divergence(sp, "A bicycle has 2 wheels.") == 3
