#!/usr/bin/env python3
"""On-device semantic search over a folder of text files with `edgellm embed` (#16).

Embeds every file of --docs (one vector per file, its first 512 tokens) and every query of --queries (TAB-separated:
query, the name of its one relevant file), ranks the files by cosine similarity and prints
recall@1 and recall@5, next to a TF-IDF keyword search over the same files as a baseline (the
queries are paraphrases, so words alone miss many). Then the embedding speed: texts/s and
tokens/s over the corpus and queries (several times over) in batches, and the single-query
latency (batch of one), with --threads threads.

  python3 bench/semantic_search.py --model minilm.gguf [--bin build/edgellm] [--threads 2]

Without --model, the cached Hugging Face folder (scripts/fetch-models all-minilm-l6-v2) is
converted to a temporary GGUF first. Needs NumPy only.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPEED = re.compile(r"embedded (\d+) texts \((\d+) tokens, (\d+) dims\) in ([\d.]+) s: ([\d.]+) texts/s, ([\d.]+) tokens/s")


def run_embed(binary: str, model: str, texts: list[str], threads: int, batch: int = 32, keep: bool = True):
    """(vectors [n][d] or None, stats dict) from one `edgellm embed` run."""
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "v.f32")
        args = [binary, "embed", "-m", model, "--jsonl", "-t", str(threads), "-b", str(batch), "--truncate"]
        args += ["-o", out] if keep else ["-q"]
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run(args, input="".join(json.dumps(t) + "\n" for t in texts), capture_output=True, text=True)
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            sys.exit(f"edgellm embed failed: {r.stderr.strip()}")
        m = SPEED.search(r.stderr)
        if not m:
            sys.exit(f"no speed line in: {r.stderr}")
        stats = {"texts": int(m[1]), "tokens": int(m[2]), "dims": int(m[3]), "seconds": float(m[4]),
                 "texts_per_s": float(m[5]), "tokens_per_s": float(m[6]),
                 # CPU time of the whole process (load and tokenization too): on a busy machine the wall
                 # clock figure drops, this one much less.
                 "cpu_seconds": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)}
        vecs = np.fromfile(out, dtype="<f4").reshape(len(texts), stats["dims"]) if keep else None
    return vecs, stats


def tfidf_rank(docs: list[str], queries: list[str]) -> np.ndarray:
    """Cosine of TF-IDF vectors (lowercased words): scores [n_queries][n_docs]."""
    tok = lambda s: re.findall(r"[a-z0-9]+", s.lower())  # noqa: E731
    dtoks = [Counter(tok(d)) for d in docs]
    df = Counter(w for c in dtoks for w in c)
    vocab = {w: i for i, w in enumerate(df)}
    idf = np.array([math.log((1 + len(docs)) / (1 + df[w])) + 1 for w in vocab])

    def vec(c):
        v = np.zeros(len(vocab))
        for w, n in c.items():
            if w in vocab:
                v[vocab[w]] = n
        v *= idf
        return v / (np.linalg.norm(v) or 1)

    D = np.array([vec(c) for c in dtoks])
    Q = np.array([vec(Counter(tok(q))) for q in queries])
    return Q @ D.T


def recall(scores: np.ndarray, want: list[int], k: int) -> float:
    top = np.argsort(-scores, axis=1)[:, :k]
    return float(np.mean([w in row for w, row in zip(want, top)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="embedding GGUF (default: convert the cached all-minilm-l6-v2 folder)")
    ap.add_argument("--bin", default=os.environ.get("EDGELLM_BIN", str(HERE.parent / "build" / "edgellm")))
    ap.add_argument("--docs", default=str(HERE / "semantic_search" / "docs"))
    ap.add_argument("--queries", default=str(HERE / "semantic_search" / "queries.tsv"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=4, help="passes over docs+queries for the speed figure")
    ap.add_argument("--json", help="also write the figures to this file")
    a = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    model = a.model
    if not model:
        hf = Path(os.environ.get("EDGELLM_MODEL_DIR", Path.home() / ".cache" / "edgellm" / "models")) / "all-minilm-l6-v2-hf"
        if not (hf / "model.safetensors").is_file():
            sys.exit(f"give --model, or fetch {hf} with scripts/fetch-models all-minilm-l6-v2")
        model = os.path.join(tmp.name, "all-minilm-l6-v2.gguf")
        subprocess.run([a.bin, "convert", str(hf), model, "-q"], check=True, capture_output=True)

    files = sorted(Path(a.docs).glob("*.txt"))
    names = [f.stem for f in files]
    docs = [f.read_text() for f in files]
    pairs = [line.rstrip("\n").split("\t") for line in Path(a.queries).read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    queries = [q for q, _ in pairs]
    want = [names.index(d) for _, d in pairs]

    D, dstats = run_embed(a.bin, model, docs, a.threads)
    Q, _ = run_embed(a.bin, model, queries, a.threads)
    scores = Q @ D.T
    kw = tfidf_rank(docs, queries)
    res = {"docs": len(docs), "queries": len(queries), "dims": dstats["dims"],
           "recall@1": recall(scores, want, 1), "recall@5": recall(scores, want, 5),
           "tfidf_recall@1": recall(kw, want, 1), "tfidf_recall@5": recall(kw, want, 5)}
    print(f"{len(docs)} documents, {len(queries)} queries, {dstats['dims']}-dim embeddings ({Path(model).name})")
    print(f"  semantic search  recall@1 {res['recall@1']:.3f}  recall@5 {res['recall@5']:.3f}")
    print(f"  TF-IDF keywords  recall@1 {res['tfidf_recall@1']:.3f}  recall@5 {res['tfidf_recall@5']:.3f}")
    top = np.argsort(-scores, axis=1)
    for i, w in enumerate(want):
        if top[i, 0] != w:
            rank = int(np.where(top[i] == w)[0][0]) + 1
            print(f"  miss: {queries[i]!r} -> {names[top[i, 0]]} (wanted {names[w]}, rank {rank})")

    texts = (docs + queries) * a.repeat
    _, s = run_embed(a.bin, model, texts, a.threads, batch=32, keep=False)
    _, s1 = run_embed(a.bin, model, queries, a.threads, batch=1, keep=False)
    res.update({"threads": a.threads, "texts_per_s": s["texts_per_s"], "tokens_per_s": s["tokens_per_s"],
                "mean_tokens": s["tokens"] / s["texts"], "query_ms": 1000 * s1["seconds"] / s1["texts"],
                "query_mean_tokens": s1["tokens"] / s1["texts"]})
    res["texts_per_cpu_s"] = s["texts"] / s["cpu_seconds"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; whole run {s['cpu_seconds']:.2f} CPU s = "
          f"{res['texts_per_cpu_s']:.1f} texts per CPU second")
    print(f"speed, {a.threads} threads: {s['texts_per_s']:.1f} texts/s, {s['tokens_per_s']:.0f} tokens/s in batches of 32 "
          f"({s['texts']} texts, {res['mean_tokens']:.1f} tokens each); one query alone: {res['query_ms']:.1f} ms "
          f"({res['query_mean_tokens']:.1f} tokens)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
