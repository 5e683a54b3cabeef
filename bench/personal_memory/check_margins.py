#!/usr/bin/env python3
"""How close to a tie the base model's greedy answers to the ten general questions (general.CHECK) are, and where
each measured adapter's reply leaves them.

The acceptance asks the ten answers to stay unchanged in meaning; a greedy answer flips when an adapter moves the
runner-up's logit past the chosen token's, so a claim decided by 0.05 nats flips under almost any weight update
while one decided by 3 nats flips only when something is learned (a memory fact or the memory's style leaking).
This prints, per question, the base's margin (log-probability of the chosen token minus the runner-up's) at every
token under 0.5 nats, and for each finetune_memory.py result (--out JSON) the token where its reply first leaves the
base's text with the base's margin there.

    bench/personal_memory/check_margins.py --bin build/edgellm -m qwen2.5-coder-0.5b --base margins.json [m-*.json ...]

The base's answers (greedy, 48 tokens, one request at a time, top-2 log-probabilities) are cached in --base."""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import general  # noqa: E402


def margin(token):
    """Chosen minus runner-up log-probability of one token ([text, logprob, [top-2 logprobs]])."""
    top = token[2]
    return top[0] - top[1] if len(top) > 1 else float("inf")


def divergence(tokens, reply):
    """The index of the base token holding the first character where `reply` (stripped, as finetune_memory.py records
    replies) differs from the base's text (the concatenated tokens), or None when the texts are identical. A reply
    that stops early or runs on diverges at the token after the common text (or the last token when the base's text
    ends there)."""
    full = "".join(t[0] for t in tokens)
    text = full.strip()
    if reply == text:
        return None
    k = next((i for i in range(min(len(text), len(reply))) if text[i] != reply[i]), min(len(text), len(reply)))
    k += len(full) - len(full.lstrip())
    pos = 0
    for i, t in enumerate(tokens):
        pos += len(t[0])
        if pos > k:
            return i
    return len(tokens) - 1


def base_answers(bin_, model, path):
    if os.path.exists(path):
        return json.load(open(path))
    import finetune_memory  # the server wrapper; only needed to ask the model
    s = finetune_memory.Server(bin_, model, 2, parallel=1)
    try:
        out = []
        for q in general.CHECK:
            body = json.dumps({"messages": [{"role": "user", "content": q}], "max_tokens": 48, "temperature": 0,
                               "logprobs": True, "top_logprobs": 2}).encode()
            req = urllib.request.Request(s.url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=3600) as r:
                c = json.load(r)["choices"][0]
            toks = [[t["token"], t["logprob"], [x["logprob"] for x in t["top_logprobs"]]]
                    for t in c["logprobs"]["content"]]
            out.append({"question": q, "reply": c["message"]["content"], "tokens": toks})
    finally:
        s.close()
    json.dump(out, open(path, "w"), indent=1)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/edgellm")
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("--base", required=True, help="cache of the base's answers with their log-probabilities")
    ap.add_argument("results", nargs="*", help="finetune_memory.py --out JSON files of adapters")
    args = ap.parse_args()
    base = base_answers(args.bin, args.model, args.base)
    runs = [(p, json.load(open(p))) for p in args.results]
    for p, r in runs:
        if [c["question"] for c in r["check_after"]] != [b["question"] for b in base]:
            sys.exit(f"{p}: its check questions are not general.CHECK's")
    print("question | smallest margin, first 12 tokens | tokens under 0.5 nats | replies changed")
    for i, b in enumerate(base):
        ms = [margin(t) for t in b["tokens"]]
        low = [f"{t[0]!r} {m:.3f}" for t, m in zip(b["tokens"], ms) if m < 0.5]
        changed = sum(divergence(b["tokens"], r["check_after"][i]["reply"]) is not None for _, r in runs)
        print(f"{b['question']} | {min(ms[:12]):.3f} | {', '.join(low[:6]) or '-'} | {changed}/{len(runs)}")
    for p, r in runs:
        print(f"== {os.path.basename(p)}")
        for b, a in zip(base, r["check_after"]):
            i = divergence(b["tokens"], a["reply"])
            if i is not None:
                print(f"  {b['question']} leaves the base at token {i} {b['tokens'][i][0]!r} (base margin "
                      f"{margin(b['tokens'][i]):.3f}): {a['reply'][:80]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
