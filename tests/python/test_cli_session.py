"""Saved sessions in the CLI (issue 18): `run --session` and `chat --session` keep tokens + KV cache
in a file. A resumed run continues with exactly the greedy tokens of an uninterrupted one, a prompt
that extends the saved tokens reuses them instead of recomputing, a chat resumed in a new process
answers its next turn as the same chat in one process does, and a file for another model, other
cache types or a damaged one is a clear error that leaves the file as it was."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from conftest import model_path_or_skip

QWEN = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
PROMPT = "Write a short story about a lighthouse keeper and a storm."


def cli(engine, args, stdin=None, ok=True):
    proc = subprocess.run([engine.path, *args], capture_output=True, text=True, timeout=600, input=stdin)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def session_line(stderr: str) -> dict:
    m = re.search(r"\[session .*: restored (\d+) tokens, reused (\d+) of the prompt's (\d+); saved (\d+)\]", stderr)
    assert m, stderr
    return dict(zip(("restored", "reused", "prompt", "saved"), map(int, m.groups())))


@pytest.mark.parametrize("model", ["smollm", "qwen0.5b"])
def test_resumed_run_continues_like_an_uninterrupted_one(engine, smollm_path, tmp_path, model):
    path = smollm_path if model == "smollm" else model_path_or_skip(QWEN)
    sess = str(tmp_path / "s.bin")
    base = ["run", "-m", path, "--temp", "0", "-t", "2"]
    whole = cli(engine, base + ["-p", PROMPT, "-n", "32"]).stdout
    first = cli(engine, base + ["-p", PROMPT, "-n", "16", "--session", sess])
    info = session_line(first.stderr)
    assert info["restored"] == 0 and info["saved"] == info["prompt"] + 16
    second = cli(engine, base + ["-n", "16", "--session", sess])  # no prompt: continue
    info2 = session_line(second.stderr)
    assert info2["restored"] == info["saved"] and info2["reused"] == info["saved"] - 1
    # Each run ends its output with one newline.
    assert first.stdout[:-1] + second.stdout == whole, (first.stdout, second.stdout, whole)


def test_a_longer_prompt_reuses_the_saved_prefix(engine, smollm_path, tmp_path):
    sess = str(tmp_path / "s.bin")
    text = "Here is a long note about gardening. " * 20
    cli(engine, ["run", "-m", smollm_path, "--raw", "-p", text, "-n", "1", "--session", sess])
    info = session_line(cli(engine, ["run", "-m", smollm_path, "--raw", "-p", text + "Summarise it.", "-n", "4",
                                     "--temp", "0", "--session", sess]).stderr)
    assert info["reused"] >= info["prompt"] - 8, info  # all but the new words
    plain = cli(engine, ["run", "-m", smollm_path, "--raw", "-p", text + "Summarise it.", "-n", "4", "--temp", "0"])
    again = cli(engine, ["run", "-m", smollm_path, "--raw", "-p", text + "Summarise it.", "-n", "4", "--temp", "0",
                         "--session", sess])
    assert again.stdout == plain.stdout


def test_chat_resumed_in_a_new_process_answers_as_one_process_does(engine, smollm_path, tmp_path):
    sess = str(tmp_path / "chat.bin")
    base = ["chat", "-m", smollm_path, "--temp", "0", "-n", "24", "-t", "2"]
    turns = ["My name is Ada and I drive a blue car.", "What colour is my car?"]
    one = cli(engine, base, stdin="\n".join(turns) + "\n").stdout
    a = cli(engine, base + ["--session", sess], stdin=turns[0] + "\n")
    b = cli(engine, base + ["--session", sess], stdin=turns[1] + "\n")
    assert "(resumed 2 messages" in b.stderr, b.stderr
    assert a.stdout + b.stdout == one, (a.stdout, b.stdout, one)


def test_foreign_damaged_or_mismatched_files_are_refused_untouched(engine, smollm_path, gemma3_path, tmp_path):
    sess = tmp_path / "s.bin"
    cli(engine, ["run", "-m", smollm_path, "-p", "Hello", "-n", "4", "--session", str(sess)])
    good = sess.read_bytes()
    cases = [(["-m", gemma3_path], "saved with another model file"),
             (["-m", smollm_path, "-ctk", "q8_0"], "different KV cache type"),
             (["-m", smollm_path, "-c", "8"], "raise the context size")]
    for args, message in cases:
        proc = cli(engine, ["run", *args, "-n", "2", "--session", str(sess)], ok=False)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
        assert sess.read_bytes() == good
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x10
    sess.write_bytes(bytes(damaged))
    proc = cli(engine, ["run", "-m", smollm_path, "-n", "2", "--session", str(sess)], ok=False)
    assert proc.returncode != 0 and "damaged" in proc.stderr, proc.stderr
    assert sess.read_bytes() == bytes(damaged)
    proc = cli(engine, ["chat", "-m", smollm_path, "--session", str(tmp_path / "s2.bin")], stdin="")
    assert not os.path.exists(tmp_path / "s2.bin")  # nothing said, nothing saved
    sess.write_bytes(good)
    proc = cli(engine, ["chat", "-m", smollm_path, "--session", str(sess)], stdin="hi\n", ok=False)
    assert proc.returncode != 0 and "no chat turns" in proc.stderr, proc.stderr
    proc = cli(engine, ["run", "-m", smollm_path, "--session", str(tmp_path / "none.bin")], ok=False)
    assert proc.returncode != 0 and "does not exist yet" in proc.stderr, proc.stderr


def test_chat_four_times_longer_than_the_context_runs_to_the_end(engine, smollm_path, tmp_path):
    """Context shift (on by default): 26 turns of ~45 tokens in a 256-token context. Every turn is
    answered, the oldest turns go, and the answers stay on topic (a wrongly rotated cache gives
    unrelated text); with --no-context-shift the turns that do not fit are refused instead."""
    turns = [f"Tell me one fact about the number {i + 1}." for i in range(26)]
    base = ["chat", "-m", smollm_path, "-c", "256", "-n", "32", "--temp", "0", "-t", "2", "--system", "You are brief."]
    proc = cli(engine, base + ["--session", str(tmp_path / "long.bin")], stdin="\n".join(turns) + "\n")
    answers = [line for line in proc.stdout.splitlines() if line.strip()]
    shifts = re.findall(r"context full: dropped the (\d+) oldest messages; (\d+) tokens kept by shifting", proc.stderr)
    assert "error" not in proc.stderr, proc.stderr
    assert len(answers) == len(turns), proc.stdout
    assert len(shifts) >= 10 and all(int(kept) > 50 for _, kept in shifts), proc.stderr
    on_topic = sum(str(i + 1) in a for i, a in enumerate(answers))
    assert on_topic >= 20, answers
    total = sum(len(engine.tokenize(smollm_path, [t + a])[0]) for t, a in zip(turns, answers))
    assert total >= 4 * 256, total
    refused = cli(engine, base + ["--no-context-shift"], stdin="\n".join(turns) + "\n")
    assert "error:" in refused.stderr and "context" in refused.stderr, refused.stderr
