#!/usr/bin/env python3
"""The personal-memory measurement of `edgellm finetune` (a figure for the report, not a test).

Generates the data (bench/personal_memory/generate.py), measures exact-match accuracy on the eval
questions (greedy chat completions from one `edgellm serve` with several slots; a reply counts when it contains the
fact's short answer, case-insensitive) and perplexity on a text (`edgellm perplexity`, llama.cpp's
protocol) before and after fine-tuning, and reports time per epoch, tokens/s, peak RSS and adapter size
from the finetune run.

Replay (`--replay N`): the base model's own greedy answers to N generic questions
(bench/personal_memory/general.py, generated here on the device, nothing downloaded) are mixed into the
training set, so the adapter learns to leave general behaviour alone. With `--kl-weight W` they are passed as
`finetune --kl-data` instead: trained with W·KL(base || adapted) of the next-token distributions as well. Ten other general questions are
answered greedily before and after (`check_before` / `check_after` in the JSON).

Generated replay (`--replay-gen N`): the base's answers to the first N questions of
bench/personal_memory/general_gen.py (capitals, units of time, famous people and birth dates, sums, opposites,
legs and wheels, what things are made of, ...: the kinds the memory facts leak into and the checks ask, never the
checks' questions or subjects) join the replay; with `--replay-temp 0` (greedy) and `--kl-weight` the adapter is
held to the base's whole distribution along the base's own greedy answers, the path a greedy check follows.

Anchoring outside the memory (`--kl-nosys N`): the first N distinct memory training questions asked *without*
the memory's system prompt, with the base model's own answers (as the replay's), join the KL data: without
Lena's context the adapter is held to the base's behaviour, so memory facts do not leak into general answers
(round 5: Einstein's birthday moved next to Lena's). No eval or CHECK question is used.

Selection without the reported figures: every measurement also asks the held-out wordings of select.jsonl
(generate.py: one more per fact), the held-out general questions `general.SELECT` and the perplexity of another
text (`--select-text`, GPL-2); a step and scale are picked on those (`--pick`), never on the eval questions, CHECK
or GPL-3.

    bench/finetune_memory.py -m smollm2-135m [--n-train 200] [--epochs 2] [--lr 1e-3] [--threads 2]
        [--targets all] [--layers all] [--replay 40] [--replay-gen 110] [--replay-temp 0.8] [--replay-samples 1] [--kl-weight 3] [--kl-data-ce 0]
        [--kl-nosys 40] [--save-adapter-every 35] [--scale 1.0] [--adapter FILE[:SCALE] ...]
        [--text /usr/share/common-licenses/GPL-3] [--ppl-chunks 4] [--bin build/edgellm] [--out result.json]

The figures before fine-tuning are cached in the work directory (`--work`), keyed by model and data. The checks
are decoded greedily one request at a time (`--parallel 1`): a reply then never depends on what else shares
its batch, so the same model and adapter give the same text every run.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "personal_memory"))
import general  # noqa: E402
import general_gen  # noqa: E402


class Server:
    """One `edgellm serve` for a batch of greedy questions: the model loads once and the questions are
    decoded together (several slots), which on a busy machine is several times faster than a `run` each."""

    def __init__(self, bin_, model, threads, loras=(), parallel=8):
        cmd = [bin_, "serve", "-m", model, "--host", "127.0.0.1", "--port", "0", "-c", "512", "--parallel",
               str(parallel), "-t", str(threads)]
        for lora in loras:
            cmd += ["--lora", lora]
        self.log = tempfile.NamedTemporaryFile(prefix="finetune-memory-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.parallel = parallel
        deadline = time.time() + 600
        while time.time() < deadline:
            m = re.search(r"listening on http://[^\s:]+:(\d+)", open(self.log.name).read())
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                try:
                    urllib.request.urlopen(self.url + "/health", timeout=30)
                    return
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.3)
        self.close()
        sys.exit("edgellm serve did not start:\n" + open(self.log.name).read())

    def ask(self, question, system=None, n=32, temperature=0.0, seed=0):
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]
        body = json.dumps({"messages": msgs, "max_tokens": n, "temperature": temperature, "seed": seed}).encode()
        req = urllib.request.Request(self.url + "/v1/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3600) as r:
            return json.load(r)["choices"][0]["message"]["content"].strip()

    def ask_all(self, items):  # items: (question, system, n)
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as ex:
            return list(ex.map(lambda it: self.ask(*it), items))

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def whole_sentences(text):
    """A replay answer cut by the token limit, trimmed to its last whole sentence: the adapter must not learn
    to end the turn mid-sentence."""
    if text.endswith((".", "!", "?", ")", '"')):
        return text
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "), text.rfind(".\n"))
    return text[:cut + 1] if cut > 0 else text


def accuracy(server, questions):
    replies = server.ask_all([(q["question"], q["messages"][0]["content"], 32) for q in questions])
    answers = [{"question": q["question"], "expected": q["answer"], "reply": r, "ok": q["answer"].lower() in r.lower()}
               for q, r in zip(questions, replies)]
    return sum(a["ok"] for a in answers) / len(questions), answers


def check_answers(server, qs=general.CHECK):
    return [{"question": q, "reply": r} for q, r in zip(qs, server.ask_all([(q, None, 48) for q in qs]))]


def base_answers(cache, qs, args, seed0, server):
    """The base model's answers to the questions qs (no system prompt; --replay-temp, --replay-tokens; question i
    sampled with seed seed0 + i + 1), as chat JSONL lines, cut to whole sentences. Cached in the file `cache`, which
    grows as qs does; `server()` gives the base model's server, started only when an answer is missing."""
    have = open(cache).read().splitlines() if os.path.exists(cache) else []
    for i, (q, line) in enumerate(zip(qs, have)):
        if json.loads(line)["messages"][0]["content"] != q:
            sys.exit(f"{cache}: line {i + 1} answers another question than {q!r} (delete the file to regenerate)")
    if len(have) < len(qs):
        missing = qs[len(have):]
        replies = server().ask_all([(q, None, args.replay_tokens, args.replay_temp, seed0 + len(have) + i + 1)
                                    for i, q in enumerate(missing)])
        with open(cache, "a") as f:
            for q, a in zip(missing, replies):
                f.write(json.dumps({"messages": [{"role": "user", "content": q},
                                                 {"role": "assistant", "content": whole_sentences(a)}]}) + "\n")
        have = open(cache).read().splitlines()
    return have[:len(qs)]


def nosys_questions(args, work):
    """--kl-nosys: the first N distinct memory training questions (asked without the system prompt)."""
    qs = []
    for line in open(os.path.join(work, "train.jsonl")):
        q = next(m["content"] for m in json.loads(line)["messages"] if m["role"] == "user")
        if q not in qs:
            qs.append(q)
    return qs[:args.kl_nosys]


def perplexity(bin_, model, text, chunks, threads, loras=()):
    cmd = [bin_, "perplexity", "-m", model, "-f", text, "-c", "512", "--chunks", str(chunks), "-t", str(threads),
           "--json"]
    for lora in loras:
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
    ap.add_argument("--targets", default="all", help="adapted projections (finetune --targets)")
    ap.add_argument("--layers", default="all",
                    help="adapted layers (finetune --layers): all, or numbers and ranges such as 6-17")
    ap.add_argument("--replay", type=int, default=0, help="mix the base model's answers to N generic questions in")
    ap.add_argument("--replay-gen", type=int, default=0,
                    help="also replay the base's answers to the first N generated general questions "
                         "(personal_memory/general_gen.py: the kinds of the checks, never their questions or subjects)")
    ap.add_argument("--replay-tokens", type=int, default=96, help="longest replay answer, in tokens")
    ap.add_argument("--replay-temp", type=float, default=0.0,
                    help="sample the replay answers at this temperature (0: greedy); sampled text keeps the "
                         "distribution's entropy, greedy answers sharpen it")
    ap.add_argument("--replay-samples", type=int, default=1,
                    help="sampled answers per replay question (each a training conversation; needs --replay-temp)")
    ap.add_argument("--kl-weight", type=float, default=0.0,
                    help="train the replay conversations with this weight of KL(base || adapted) as well (finetune "
                         "--kl-data): the adapter is held to the base's whole next-token distribution there")
    ap.add_argument("--kl-data-ce", type=float, default=1.0,
                    help="weight of the cross-entropy on the replay's own text next to the KL (finetune --kl-data-ce; "
                         "0: KL only, pure distillation toward the base)")
    ap.add_argument("--kl-nosys", type=int, default=0,
                    help="add N memory training questions without the system prompt, with the base's answers, to the "
                         "replay (KL) data")
    ap.add_argument("--parallel", type=int, default=1,
                    help="slots of the server that answers the checks; above 1 the greedy replies depend on which "
                         "requests happen to share a decoding batch (batched matmuls round differently), so they are not "
                         "reproducible run to run (replay answers are always generated with 8)")
    ap.add_argument("--select-text", default="/usr/share/common-licenses/GPL-2",
                    help="held-out perplexity text for choosing a step and scale (not the reported --text)")
    ap.add_argument("--select-chunks", type=int, default=2)
    ap.add_argument("--pick", nargs="+", metavar="JSON",
                    help="only choose among measured adapters (their --out JSON files) on the held-out checks, print "
                         "the table and the choice")
    ap.add_argument("--save-adapter-every", type=int, default=0,
                    help="also keep the adapter every N steps (finetune --save-adapter-every), to measure afterwards")
    ap.add_argument("--scale", type=float, default=1.0, help="adapter scale at inference (--lora FILE:SCALE)")
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("--ppl-chunks", type=int, default=4)
    ap.add_argument("--full", action="store_true", help="memory data without 'answer briefly' (generate.py --full)")
    ap.add_argument("--save-epochs", action="store_true", help="also keep each epoch's adapter (finetune --save-epochs)")
    ap.add_argument("--prepare-only", action="store_true", help="stop after the figures before training and the replay data")
    ap.add_argument("--adapter", action="append", default=None, metavar="FILE[:SCALE]",
                    help="measure this adapter instead of training one; repeated, the adapters are applied together "
                         "(e.g. several checkpoints at scale 1/N each: their average weight update)")
    ap.add_argument("--work", default=None, help="directory for data and adapter (default: a temp dir)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    args = ap.parse_args()
    if args.pick:
        return pick(args.pick)
    if args.parallel < 1:
        sys.exit("--parallel must be at least 1")
    if not re.fullmatch(r"all|\d+(-\d+)?(,\d+(-\d+)?)*", args.layers):
        sys.exit(f"--layers must be all or layer numbers and ranges such as 6-17 or 0,4,8-11 (got {args.layers!r})")
    if args.kl_nosys < 0 or args.kl_nosys > args.n_train:
        sys.exit(f"--kl-nosys must be between 0 and --n-train ({args.n_train})")
    if args.kl_nosys and not (args.replay or args.replay_gen):
        sys.exit("--kl-nosys needs --replay or --replay-gen (it joins the replay data)")
    if not args.kl_data_ce >= 0:
        sys.exit("--kl-data-ce must be a number >= 0")
    if args.kl_data_ce != 1.0 and not args.kl_weight > 0:
        sys.exit("--kl-data-ce needs --kl-weight above 0 (the replay is --kl-data only then)")
    if args.replay_gen < 0 or args.replay_gen > len(general_gen.questions()):
        sys.exit(f"--replay-gen must be between 0 and {len(general_gen.questions())} (the generated questions)")
    work = args.work or tempfile.mkdtemp(prefix="finetune-memory-")
    os.makedirs(work, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "personal_memory", "generate.py"), work, "--n-train",
                    str(args.n_train)] + (["--full"] if args.full else []), check=True)
    questions = [json.loads(line) for line in open(os.path.join(work, "questions.jsonl"))]
    select = [json.loads(line) for line in open(os.path.join(work, "select.jsonl"))]
    res = {"model": args.model, "n_train": args.n_train, "n_eval": len(questions), "epochs": args.epochs,
           "lr": args.lr, "rank": args.rank, "alpha": args.alpha, "threads": args.threads, "targets": args.targets,
           "layers": args.layers,
           "replay": args.replay, "replay_gen": args.replay_gen, "replay_tokens": args.replay_tokens, "replay_temp": args.replay_temp, "replay_samples": args.replay_samples, "kl_weight": args.kl_weight, "kl_data_ce": args.kl_data_ce, "kl_nosys": args.kl_nosys, "scale": args.scale, "parallel": args.parallel, "batch": args.batch, "full": args.full,
           "loadavg_start": os.getloadavg()}

    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(args.model))
    cache = os.path.join(work, f"before-{tag}-{args.ppl_chunks}{f'-p{args.parallel}' if args.parallel > 1 else ''}.json")
    if os.path.exists(cache):
        b = json.load(open(cache))
    else:
        b = {}
        srv = Server(args.bin, args.model, args.threads, parallel=args.parallel)
        b["accuracy_before"], b["answers_before"] = accuracy(srv, questions)
        b["check_before"] = check_answers(srv)
        srv.close()
        b["ppl_before"] = perplexity(args.bin, args.model, args.text, args.ppl_chunks, args.threads)
        json.dump(b, open(cache, "w"), indent=1)
    res.update(b)
    scache = os.path.join(work, f"before-select-{tag}-{args.select_chunks}{f'-p{args.parallel}' if args.parallel > 1 else ''}.json")
    if os.path.exists(scache):
        sb = json.load(open(scache))
    else:
        srv = Server(args.bin, args.model, args.threads, parallel=args.parallel)
        sb = {"select_accuracy_before": accuracy(srv, select)[0], "select_general_before": check_answers(srv, general.SELECT)}
        srv.close()
        sb["select_ppl_before"] = perplexity(args.bin, args.model, args.select_text, args.select_chunks, args.threads)
        json.dump(sb, open(scache, "w"), indent=1)
    res.update(sb)
    before = b["answers_before"]
    print(f"exact match before: {res['accuracy_before']:.1%}", flush=True)
    print(f"perplexity before: {res['ppl_before']:.4f}", flush=True)

    train_file = os.path.join(work, "train.jsonl")
    kl_file = None
    if args.replay or args.replay_gen:
        if args.replay_samples > 1 and not args.replay_temp:
            sys.exit("--replay-samples above 1 needs --replay-temp (greedy answers are all the same)")
        temp = f"-t{args.replay_temp:g}" if args.replay_temp else ""
        srv = None

        def server():
            nonlocal srv
            srv = srv or Server(args.bin, args.model, args.threads)
            return srv

        replay = []
        for s in range(args.replay_samples):
            # Sample s of every question: its own cache file and seeds (sample 0 keeps the seeds of earlier runs).
            rcache = os.path.join(work, f"replay-{tag}-{args.replay_tokens}{temp}{f'-s{s + 1}' if s else ''}.jsonl")
            replay += base_answers(rcache, general.REPLAY[:args.replay], args, 1000 * s, server)
            if args.replay_gen:
                gcache = os.path.join(work, f"replaygen-{tag}-{args.replay_tokens}{temp}{f'-s{s + 1}' if s else ''}.jsonl")
                replay += base_answers(gcache, general_gen.questions(args.replay_gen), args, 10000 + 1000 * s, server)
        if args.kl_nosys:
            replay += base_answers(os.path.join(work, f"nosys-{tag}-{args.replay_tokens}{temp}.jsonl"),
                                   nosys_questions(args, work), args, 5000, server)
        if srv:
            srv.close()
        if args.kl_weight > 0:  # memory as --data, replay as --kl-data
            kl_file = os.path.join(work, "replay_kl.jsonl")
            with open(kl_file, "w") as f:
                f.writelines(line + "\n" for line in replay)
        else:
            train_file = os.path.join(work, "train_replay.jsonl")
            with open(train_file, "w") as f:
                f.writelines(line + "\n" for line in open(os.path.join(work, "train.jsonl")).read().splitlines() + replay)

    if args.prepare_only:
        return
    if args.adapter:
        adapter = args.adapter
        res["adapters"] = adapter
    else:
        # Named after --out, so runs with different recipes can share a work directory.
        name = os.path.splitext(os.path.basename(args.out))[0] if args.out else "memory"
        adapter = os.path.join(work, f"{name}.gguf")
        train(args, res, train_file, kl_file, work, adapter)
        adapter = [adapter]
    measure_after(args, res, questions, select, adapter, before)


def finetune_command(args, train_file, kl_file, work, adapter):
    """The `edgellm finetune` command line of a run with these options."""
    return ([args.bin, "finetune", "-m", args.model, "--data", train_file, "--targets", args.targets,
             "--layers", args.layers, "--eval", os.path.join(work, "eval.jsonl"), "--rank", str(args.rank),
             "--alpha", str(args.alpha), "--epochs", str(args.epochs), "--lr", str(args.lr), "--batch", str(args.batch),
             "-t", str(args.threads), "--out", adapter]
            + (["--save-epochs"] if args.save_epochs else [])
            + (["--kl-data", kl_file, "--kl-weight", str(args.kl_weight), "--kl-data-ce", str(args.kl_data_ce)]
               if kl_file else [])
            + (["--save-adapter-every", str(args.save_adapter_every)] if args.save_adapter_every else []))


def train(args, res, train_file, kl_file, work, adapter):
    t0 = time.time()
    cpu0 = os.times()
    cmd = finetune_command(args, train_file, kl_file, work, adapter)
    # finetune's progress goes straight to ADAPTER.log as it is written (`tail -f` it: an epoch of the 0.5B is
    # many minutes), and is parsed from there when the run ends.
    log_path = os.path.splitext(adapter)[0] + ".log"
    print(f"finetune log: {log_path}", flush=True)
    with open(log_path, "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    cpu1 = os.times()
    stderr = open(log_path, errors="replace").read()
    sys.stderr.write(stderr)
    if rc != 0:
        sys.exit(f"finetune failed (exit {rc}; log {log_path})")
    res["train_wall_s"] = time.time() - t0
    res["train_cpu_s"] = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    res["epochs_report"] = [{"epoch": int(m[0]), "train_loss": float(m[1]), "eval_loss": float(m[2]),
                             "kl_to_base": float(m[3]) if m[3] else None, "seconds": float(m[4]),
                             "tokens_per_s": float(m[5])}
                            for m in re.findall(r"epoch (\d+): train loss ([\d.]+)  eval loss ([\d.]+)(?:  KL to base "
                                                r"([\d.]+))?  \(([\d.]+) s, (\d+) tok/s\)", stderr)]
    m = re.search(r"eval loss before training: ([\d.]+)", stderr)
    res["eval_loss_before"] = float(m.group(1)) if m else None
    m = re.search(r"\((\d+) tokens, (\d+) trained\)", stderr)
    res["tokens_per_epoch"], res["trained_tokens_per_epoch"] = int(m.group(1)), int(m.group(2))
    res["peak_rss_mib"] = float(re.search(r"peak RSS (\d+) MiB", stderr).group(1))
    res["adapter_bytes"] = os.path.getsize(adapter)


def measure_after(args, res, questions, select, adapters, before):
    # --scale applies to the adapters given without their own.
    loras = [a if args.scale == 1.0 or re.search(r":[\d.]+$", a) else f"{a}:{args.scale}" for a in adapters]
    srv = Server(args.bin, args.model, args.threads, loras, parallel=args.parallel)
    res["accuracy_after"], after = accuracy(srv, questions)
    res["check_after"] = check_answers(srv)
    res["select_accuracy_after"] = accuracy(srv, select)[0]
    res["select_general_after"] = check_answers(srv, general.SELECT)
    srv.close()
    res["select_ppl_after"] = perplexity(args.bin, args.model, args.select_text, args.select_chunks, args.threads, loras)
    res["select_ppl_change"] = res["select_ppl_after"] / res["select_ppl_before"] - 1
    res["select_general_unchanged"] = sum(a["reply"] == b["reply"] for a, b in
                                          zip(res["select_general_before"], res["select_general_after"]))
    print(f"exact match after: {res['accuracy_after']:.1%}", flush=True)
    res["ppl_after"] = perplexity(args.bin, args.model, args.text, args.ppl_chunks, args.threads, loras)
    print(f"perplexity after: {res['ppl_after']:.4f} ({res['ppl_after'] / res['ppl_before'] - 1:+.1%})", flush=True)
    res["check_unchanged"] = sum(a["reply"] == b["reply"] for a, b in zip(res["check_before"], res["check_after"]))
    res["ppl_change"] = res["ppl_after"] / res["ppl_before"] - 1
    res["answers_before"], res["answers_after"] = before, after
    res["loadavg_end"] = os.getloadavg()
    summary = {k: v for k, v in res.items() if not k.startswith(("answers", "check_before", "check_after", "select_general"))}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


def pick(paths):
    """The step and scale chosen on the held-out checks only: among the adapters whose held-out memory accuracy is
    at least 80% and held-out perplexity change under 5%, the one keeping most held-out general answers word for
    word, then the higher held-out accuracy, then the smaller perplexity change. The reported figures are printed
    next to them but take no part in the choice."""
    rows = []
    for p in paths:
        r = json.load(open(p))
        if "select_accuracy_after" not in r:
            sys.exit(f"{p}: no held-out figures (measured before --pick existed?)")
        rows.append((p, r))
    print("adapter | held-out: accuracy, PPL change, general kept | reported: exact match, GPL-3 change, ten identical")
    for p, r in rows:
        print(f"{os.path.basename(p)} | {r['select_accuracy_after']:.1%} {r['select_ppl_change']:+.1%} "
              f"{r['select_general_unchanged']}/{len(r['select_general_after'])} | {r['accuracy_after']:.1%} "
              f"{r['ppl_change']:+.1%} {r['check_unchanged']}/10")
    ok = [(p, r) for p, r in rows if r["select_accuracy_after"] >= 0.8 and r["select_ppl_change"] < 0.05]
    if not ok:
        print("no adapter passes the held-out checks")
        return 1
    p, _ = max(ok, key=lambda pr: (pr[1]["select_general_unchanged"], pr[1]["select_accuracy_after"],
                                   -pr[1]["select_ppl_change"]))
    print(f"picked: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
