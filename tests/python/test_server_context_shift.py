"""Context shift in the server (issue 18): a chat whose messages and room for the answer no longer
fit a slot loses its oldest turns (the system message and the last message stay) and the slot's
cache keeps the remaining turns by moving them down with re-rotated keys. A conversation 4x
longer than the context runs to its end; with --no-context-shift the same conversation is refused
with 400 context_length_exceeded once it no longer fits. Unrelated requests one after another in
one slot are answered as without context shift: a few tokens shared by chance are not a kept turn.

SmolLM2-135M (the fast tests' model) at -c 96: every answer is exactly 16 tokens (ignore_eos),
so the answers alone pass 4 x 96 tokens after 24 turns (two or three turns fit at once).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from server_harness import MODEL_ID, ServerProcess, http  # noqa: E402

CTX, ANSWER = 96, 16
SYSTEM = {"role": "system", "content": "You are a helpful assistant."}


def turn(srv, messages):
    return http("POST", srv.url + "/v1/chat/completions",
                {"model": MODEL_ID, "messages": messages, "max_tokens": ANSWER, "temperature": 0, "ignore_eos": True})


def test_a_conversation_four_times_the_context_runs_to_its_end():
    srv = ServerProcess(ctx=CTX, parallel=1)
    messages, answered, shifted = [SYSTEM], 0, []
    try:
        for i in range(1, 100):
            messages.append({"role": "user", "content": f"Tell me about the number {i}."})
            r = turn(srv, messages)
            assert r.status_code == 200, (i, r.text)
            j = r.json()
            t = j["timings"]
            assert j["usage"]["completion_tokens"] == ANSWER and t["prompt_n"] + ANSWER <= CTX, t
            if t.get("messages_dropped", 0) > 0:
                shifted.append(t)
            messages.append({"role": "assistant", "content": j["choices"][0]["message"]["content"]})
            answered += ANSWER
            if answered >= 4 * CTX:
                break
        assert answered >= 4 * CTX
        assert len(shifted) >= 8, shifted
        # The kept turns came from the slot's cache (moved down), not recomputed: each shifted turn ran
        # little more than its new user message and the previous answer's end.
        assert all(t["prompt_evaluated"] < t["prompt_n"] // 2 for t in shifted[1:]), shifted
    finally:
        assert srv.stop() == 0
    srv = ServerProcess(ctx=CTX, parallel=1, extra_args=["--no-context-shift"])
    try:
        r = turn(srv, messages[:-1])
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded", r.text
        assert turn(srv, [SYSTEM, messages[-2]]).status_code == 200
    finally:
        assert srv.stop() == 0


def test_unrelated_requests_in_one_slot_answer_as_without_context_shift():
    # Each question shares the chat template and a word or a digit with the one before it; a
    # cached run of a token or two used to be moved under the next prompt (keys computed after
    # another question), which turned "What is 7 plus 8?" after the ocean question into "21".
    questions = ["What is the capital of France?", "Who wrote Romeo and Juliet?",
                 "What is the boiling point of water in Celsius?", "What is the largest ocean on Earth?",
                 "What is 7 plus 8?", "How many legs does a spider have?"]
    answers = {}
    for shift in (True, False):
        srv = ServerProcess(ctx=256, parallel=1, extra_args=[] if shift else ["--no-context-shift"])
        try:
            answers[shift] = []
            for q in questions:
                r = http("POST", srv.url + "/v1/chat/completions",
                         {"model": MODEL_ID, "messages": [{"role": "user", "content": q}], "max_tokens": 48,
                          "temperature": 0})
                assert r.status_code == 200, r.text
                answers[shift].append(r.json()["choices"][0]["message"]["content"])
        finally:
            assert srv.stop() == 0
    assert answers[True] == answers[False]
