#!/usr/bin/env python3
"""The personal-memory measurement of `edgellm finetune` (a figure for the report, not a test).

Generates the data (bench/personal_memory/generate.py), measures exact-match accuracy on the eval
questions (greedy `edgellm run` with the model's chat template; a reply counts when it contains the
fact's short answer, case-insensitive) and perplexity on a text (`edgellm perplexity`, llama.cpp's
protocol) before and after fine-tuning, and reports time per epoch, tokens/s, peak RSS and adapter size
from the finetune run.

    bench/finetune_memory.py -m smollm2-135m [--n-train 200] [--epochs 2] [--lr 1e-3] [--threads 2]
        [--text /usr/share/common-licenses/GPL-3] [--ppl-chunks 4] [--bin build/edgellm] [--out result.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def accuracy(bin_, model, questions, threads, lora=None):
    hits, answers = 0, []
    for q in questions:
        cmd = [bin_, "run", "-m", model, "-p", q["question"], "--system", q["messages"][0]["content"], "-n", "32",
               "--temp", "0", "-t", str(threads)]
        if lora:
            cmd += ["--lora", lora]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        ok = q["answer"].lower() in out.lower()
        hits += ok
        answers.append({"question": q["question"], "expected": q["answer"], "reply": out, "ok": ok})
    return hits / len(questions), answers


def perplexity(bin_, model, text, chunks, threads, lora=None):
    cmd = [bin_, "perplexity", "-m", model, "-f", text, "-c", "512", "--chunks", str(chunks), "-t", str(threads),
           "--json"]
    if lora:
        cmd += ["--lora", lora]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["perplexity"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", default="smollm2-135m")
    ap.add_argument("--bin", default="build/edgellm")
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--ppl-chunks", type=int, default=4)
    ap.add_argument("--work", default=None, help="directory for data and adapter (default: a temp dir)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="finetune-memory-")
    os.makedirs(work, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "personal_memory", "generate.py"), work, "--n-train",
                    str(args.n_train)], check=True)
    questions = [json.loads(line) for line in open(os.path.join(work, "questions.jsonl"))]
    res = {"model": args.model, "n_train": args.n_train, "n_eval": len(questions), "epochs": args.epochs,
           "lr": args.lr, "rank": args.rank, "alpha": args.alpha, "threads": args.threads}

    res["accuracy_before"], before = accuracy(args.bin, args.model, questions, args.threads)
    print(f"exact match before: {res['accuracy_before']:.1%}", flush=True)
    res["ppl_before"] = perplexity(args.bin, args.model, args.text, args.ppl_chunks, args.threads)
    print(f"perplexity before: {res['ppl_before']:.4f}", flush=True)

    adapter = os.path.join(work, "memory.gguf")
    t0 = time.time()
    cpu0 = os.times()
    p = subprocess.run([args.bin, "finetune", "-m", args.model, "--data", os.path.join(work, "train.jsonl"),
                        "--eval", os.path.join(work, "eval.jsonl"), "--rank", str(args.rank), "--alpha",
                        str(args.alpha), "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch",
                        str(args.batch), "-t", str(args.threads), "--out", adapter], capture_output=True, text=True)
    cpu1 = os.times()
    sys.stderr.write(p.stderr)
    if p.returncode != 0:
        sys.exit("finetune failed")
    res["train_wall_s"] = time.time() - t0
    res["train_cpu_s"] = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    res["epochs_report"] = [{"epoch": int(m[0]), "train_loss": float(m[1]), "eval_loss": float(m[2]),
                             "seconds": float(m[3]), "tokens_per_s": float(m[4])}
                            for m in re.findall(r"epoch (\d+): train loss ([\d.]+)  eval loss ([\d.]+)  "
                                                r"\(([\d.]+) s, (\d+) tok/s\)", p.stderr)]
    m = re.search(r"eval loss before training: ([\d.]+)", p.stderr)
    res["eval_loss_before"] = float(m.group(1)) if m else None
    m = re.search(r"\((\d+) tokens, (\d+) trained\)", p.stderr)
    res["tokens_per_epoch"], res["trained_tokens_per_epoch"] = int(m.group(1)), int(m.group(2))
    res["peak_rss_mib"] = float(re.search(r"peak RSS (\d+) MiB", p.stderr).group(1))
    res["adapter_bytes"] = os.path.getsize(adapter)

    res["accuracy_after"], after = accuracy(args.bin, args.model, questions, args.threads, adapter)
    print(f"exact match after: {res['accuracy_after']:.1%}", flush=True)
    res["ppl_after"] = perplexity(args.bin, args.model, args.text, args.ppl_chunks, args.threads, adapter)
    res["ppl_change"] = res["ppl_after"] / res["ppl_before"] - 1
    res["answers_before"], res["answers_after"] = before, after
    summary = {k: v for k, v in res.items() if not k.startswith("answers")}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
