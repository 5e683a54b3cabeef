"""Engine perplexity vs the NumPy reference on the GPL-3 text (SmolLM2, -c 512).

Protocol (both sides): tokenize the whole file without BOS and without parsing special tokens,
cut consecutive non-overlapping chunks of CTX tokens (last partial chunk dropped), evaluate each
chunk from an empty cache, and score position j -> token j+1 for j in 0..CTX-2 in the first
N_CHUNKS chunks. P = exp(mean NLL).

The engine runs twice: with --exact (fp32 activations) it must equal the reference to 3
significant digits (REL_TOL_EXACT); with the default int8-activation kernels it must stay within
0.5% of the exact path (REL_TOL_FAST, the fast-kernels acceptance bound).
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from conftest import reference_model, write_results

import reference

TEXT = "/usr/share/common-licenses/GPL-3"
CTX = 512
N_CHUNKS = 4      # 2044 predictions; NumPy side ~45 s on one core (engine v0.1 scalar: ~100 s/chunk)
REL_TOL_EXACT = 5e-4  # 3 significant digits on a value near 24
REL_TOL_FAST = 5e-3


@pytest.fixture(scope="module")
def text_file():
    if not os.path.isfile(TEXT):
        pytest.skip(f"{TEXT} is absent (Debian package base-files provides it)")
    return TEXT


def test_smollm_perplexity_matches_reference(engine, smollm_path, text_file):
    model = reference_model(smollm_path)
    tok = reference.GGUFTokenizer(model.metadata)
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    ids = tok.encode(text, parse_special=False)                    # no BOS
    assert len(ids) >= CTX * N_CHUNKS, f"{TEXT} has only {len(ids)} tokens"

    # Same ids on both sides, or the comparison below would be meaningless.
    eng_ids = engine.tokenize(smollm_path, [text])[0]
    if eng_ids != ids:
        first = next((i for i, (a, b) in enumerate(zip(ids, eng_ids)) if a != b), min(len(ids), len(eng_ids)))
        pytest.fail(f"engine tokenization differs from the reference at token {first} "
                    f"(reference {ids[first:first + 5]}, engine {eng_ids[first:first + 5]})")

    t0 = time.time()
    eng = engine.perplexity(smollm_path, text_file, CTX, N_CHUNKS, exact=True)
    t_eng = time.time() - t0
    t0 = time.time()
    fast = engine.perplexity(smollm_path, text_file, CTX, N_CHUNKS)
    t_fast = time.time() - t0
    t0 = time.time()
    ref = reference.perplexity(reference.Forward(model), ids, CTX, N_CHUNKS)
    t_ref = time.time() - t0

    rel = abs(eng["perplexity"] / ref["perplexity"] - 1.0)
    rel_fast = abs(fast["perplexity"] / eng["perplexity"] - 1.0)
    figures = {"model": os.path.basename(smollm_path), "text": TEXT, "ctx": CTX,
               "n_chunks": N_CHUNKS, "n_tokens": len(ids), "n_predictions": ref["n_predictions"],
               "ppl_engine": eng["perplexity"], "ppl_reference": ref["perplexity"],
               "rel_diff": rel, "ppl_engine_fast": fast["perplexity"], "rel_diff_fast_vs_exact": rel_fast,
               "seconds_engine": round(t_eng, 1), "seconds_engine_fast": round(t_fast, 1),
               "seconds_reference": round(t_ref, 1)}
    write_results("perplexity.json", figures)
    print(f"\nperplexity GPL-3 c={CTX} chunks={N_CHUNKS}: engine {eng['perplexity']:.4f} "
          f"reference {ref['perplexity']:.4f} (rel diff {rel:.2e}; {t_eng:.0f}s vs {t_ref:.0f}s); "
          f"fast kernels {fast['perplexity']:.4f} (rel diff to exact {rel_fast:.2e}; {t_fast:.0f}s)")

    assert eng["n_tokens"] == len(ids)
    assert eng["n_chunks"] == N_CHUNKS
    assert np.isfinite(eng["perplexity"])
    assert rel < REL_TOL_EXACT, f"perplexity engine {eng['perplexity']:.4f} vs reference {ref['perplexity']:.4f}"
    assert f"{eng['perplexity']:.3g}" == f"{ref['perplexity']:.3g}"
    assert rel_fast < REL_TOL_FAST, f"fast kernels {fast['perplexity']:.4f} vs exact {eng['perplexity']:.4f}"
