"""`edgellm perplexity`: llama-perplexity's protocol (the default), the every-token protocol
(--all-tokens) and KL-divergence against a saved base run, each checked against an independent
NumPy computation.

Protocols (src/cli/perplexity.h). The text is tokenized without BOS and without parsing
special tokens and cut into consecutive non-overlapping chunks of CTX tokens (the last partial
chunk dropped), each evaluated from an empty cache; position j predicts token j+1.
* llama.cpp (default): positions CTX//2 .. CTX-2 are scored (the first half is context only).
  When the tokenizer asks for BOS (tokenizer.ggml.add_bos_token: Gemma yes, SmolLM2 and Qwen2
  no) the token stream starts with BOS and the first token of every chunk is replaced by BOS,
  as llama-perplexity does.
* all-tokens: positions 0 .. CTX-2; no BOS in front of the stream, only the substitution.

Checks:
1. The protocols from the engine's own logits (`edgellm logits` per chunk; NumPy does the
   chunking, BOS, log-softmax and scoring): SmolLM2 (no BOS) and Gemma 3 (BOS), both protocols.
2. The whole pipeline against the NumPy reference forward pass on GPL-3 (-c 512): with --exact
   the engine equals the reference to 3 significant digits (REL_TOL_EXACT), both protocols;
   the default int8 kernels stay within REL_TOL_FAST of the exact path.
3. KL-divergence: a base saved with --exact (full distribution, and top-k), compared with the
   default kernels; mean KL, same top-1 and both perplexities recomputed in NumPy from
   `edgellm logits`; damaged or mismatched base files are clean errors.

Why REL_TOL_FAST is not tighter. Over 2044 predictions the fast-vs-exact perplexity gap is
dominated by which int8 rounding realization a build gets, not by a bias: the same SmolLM2
Q4_1 kernels gave +0.50% and, after a change that only reordered fp32 sums (4-row tiles),
-0.12%; making single matrix classes exact moved it anywhere in +0.09..+0.42%. The mean effect
is KL(exact || fast) ~ 3e-3 nats/token (0.3%), the spread about as large, so a bound under
0.5% would fail on harmless reorderings. The llama.cpp protocol scores half as many positions,
so its bound is REL_TOL_FAST_HALF. Gemma with BOS: exact 19.344, fast 19.338 (-0.03%).
"""
from __future__ import annotations

import json
import os
import subprocess
import time

import numpy as np
import pytest

from conftest import reference_model, write_results

import reference

TEXT = "/usr/share/common-licenses/GPL-3"
CTX = 512
N_CHUNKS = 4      # 2044 predictions; NumPy side ~45 s on one core
REL_TOL_EXACT = 5e-4  # 3 significant digits on a value near 24
REL_TOL_FAST = 5e-3
REL_TOL_FAST_HALF = 1e-2


@pytest.fixture(scope="module")
def text_file():
    if not os.path.isfile(TEXT):
        pytest.skip(f"{TEXT} is absent (Debian package base-files provides it)")
    return TEXT


def ppl_json(engine, model, *args) -> dict:
    out = engine.run(["perplexity", "-m", model, "-t", "2", "--json", *args])
    return json.loads(out.strip().splitlines()[-1])


def log_softmax(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def numpy_chunks(text_ids, ctx, n_chunks, bos, llama_cpp):
    """llama-perplexity's chunking, written from its description: BOS in front of the stream
    (llama.cpp protocol only) and in place of each chunk's first token."""
    stream = ([bos] if (bos is not None and llama_cpp) else []) + list(text_ids)
    n = min(n_chunks, len(stream) // ctx)
    chunks = [stream[c * ctx:(c + 1) * ctx] for c in range(n)]
    if bos is not None:
        for ch in chunks:
            ch[0] = bos
    return chunks


def nll_of(logits, chunk, first):
    lp = log_softmax(logits)
    return -lp[np.arange(first, len(chunk) - 1), np.asarray(chunk[first + 1:])]


# --- 1. the protocols, from the engine's own logits ------------------------------------------
@pytest.mark.parametrize("model_fixture,ctx,n_chunks", [("smollm_path", 128, 3), ("gemma3_path", 64, 2)])
@pytest.mark.parametrize("llama_cpp", [True, False], ids=["llama.cpp", "all-tokens"])
def test_protocol_from_engine_logits(engine, request, text_file, model_fixture, ctx, n_chunks, llama_cpp):
    path = request.getfixturevalue(model_fixture)
    model_md = reference.gguf_model.read_metadata(__import__("gguf").GGUFReader(path))
    add_bos = bool(model_md.get("tokenizer.ggml.add_bos_token"))
    bos = int(model_md["tokenizer.ggml.bos_token_id"]) if add_bos else None
    n_vocab = len(model_md["tokenizer.ggml.tokens"])
    with open(text_file, encoding="utf-8") as f:
        text_ids = engine.tokenize(path, [f.read()])[0]
    chunks = numpy_chunks(text_ids, ctx, n_chunks, bos, llama_cpp)
    first = ctx // 2 if llama_cpp else 0
    nll = np.concatenate([nll_of(engine.logits(path, ch, n_vocab), ch, first) for ch in chunks])
    want = float(np.exp(nll.mean()))
    want_err = want * float(np.sqrt(nll.var() / (nll.size - 1)))
    got = ppl_json(engine, path, "-f", text_file, "-c", str(ctx), "--chunks", str(n_chunks),
                   *([] if llama_cpp else ["--all-tokens"]))
    assert got["protocol"] == ("llama.cpp" if llama_cpp else "all-tokens")
    assert got["bos"] is add_bos
    assert got["n_chunks"] == len(chunks) and got["n_tokens"] == len(text_ids)
    assert got["first_scored"] == first and got["n_predictions"] == nll.size
    assert got["perplexity"] == pytest.approx(want, rel=1e-5)
    assert got["perplexity_error"] == pytest.approx(want_err, rel=1e-3)


def test_protocol_needs_three_tokens_and_a_text(engine, smollm_path, text_file):
    for args, needle in [(["-f", text_file, "-c", "2"], "at least 3"), (["-c", "64"], "-f FILE is required")]:
        proc = subprocess.run([engine.path, "perplexity", "-m", smollm_path, *args], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1 and needle in proc.stderr, proc.stderr
    ok = ppl_json(engine, smollm_path, "-f", text_file, "-c", "2", "--chunks", "2", "--all-tokens")
    assert ok["n_predictions"] == 2


# --- 2. against the NumPy reference forward pass -----------------------------------------------
def test_smollm_perplexity_matches_reference(engine, smollm_path, text_file):
    model = reference_model(smollm_path)
    tok = reference.GGUFTokenizer(model.metadata)
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    ids = tok.encode(text, parse_special=False)                    # no BOS (SmolLM2 asks for none)
    assert len(ids) >= CTX * N_CHUNKS, f"{TEXT} has only {len(ids)} tokens"

    # Same ids on both sides, or the comparison below would be meaningless.
    eng_ids = engine.tokenize(smollm_path, [text])[0]
    if eng_ids != ids:
        first = next((i for i, (a, b) in enumerate(zip(ids, eng_ids)) if a != b), min(len(ids), len(eng_ids)))
        pytest.fail(f"engine tokenization differs from the reference at token {first} "
                    f"(reference {ids[first:first + 5]}, engine {eng_ids[first:first + 5]})")

    common = ["-f", text_file, "-c", str(CTX), "--chunks", str(N_CHUNKS)]
    t0 = time.time()
    eng = ppl_json(engine, smollm_path, *common, "--exact")
    eng_all = ppl_json(engine, smollm_path, *common, "--exact", "--all-tokens")
    t_eng = time.time() - t0
    fast = ppl_json(engine, smollm_path, *common)
    fast_all = ppl_json(engine, smollm_path, *common, "--all-tokens")
    t0 = time.time()
    fwd = reference.Forward(model)
    nll = [nll_of(fwd.logits(np.asarray(ids[c * CTX:(c + 1) * CTX])), ids[c * CTX:(c + 1) * CTX], 0)
           for c in range(N_CHUNKS)]                                 # [N_CHUNKS][CTX-1]
    t_ref = time.time() - t0
    ref_all = float(np.exp(np.concatenate(nll).mean()))
    ref = float(np.exp(np.concatenate([n[CTX // 2:] for n in nll]).mean()))

    rel, rel_all = abs(eng["perplexity"] / ref - 1), abs(eng_all["perplexity"] / ref_all - 1)
    rel_fast = abs(fast["perplexity"] / eng["perplexity"] - 1)
    rel_fast_all = abs(fast_all["perplexity"] / eng_all["perplexity"] - 1)
    figures = {"model": os.path.basename(smollm_path), "text": TEXT, "ctx": CTX, "n_chunks": N_CHUNKS,
               "n_tokens": len(ids), "ppl_engine": eng["perplexity"], "ppl_reference": ref, "rel_diff": rel,
               "ppl_engine_all_tokens": eng_all["perplexity"], "ppl_reference_all_tokens": ref_all,
               "ppl_engine_fast": fast["perplexity"], "rel_diff_fast_vs_exact": rel_fast,
               "ppl_engine_fast_all_tokens": fast_all["perplexity"], "seconds_engine_exact": round(t_eng, 1),
               "seconds_reference": round(t_ref, 1)}
    write_results("perplexity.json", figures)
    print(f"\nperplexity GPL-3 c={CTX} chunks={N_CHUNKS}: llama.cpp protocol engine {eng['perplexity']:.4f} "
          f"reference {ref:.4f} (rel {rel:.2e}), fast {fast['perplexity']:.4f} (rel to exact {rel_fast:.2e}); "
          f"all tokens engine {eng_all['perplexity']:.4f} reference {ref_all:.4f} (rel {rel_all:.2e}), "
          f"fast {fast_all['perplexity']:.4f} (rel {rel_fast_all:.2e})")

    assert eng["n_predictions"] == N_CHUNKS * (CTX - 1 - CTX // 2)
    assert eng_all["n_predictions"] == N_CHUNKS * (CTX - 1)
    assert eng["bos"] is False and fast["bos"] is False, "SmolLM2 does not ask for BOS"
    assert rel < REL_TOL_EXACT and rel_all < REL_TOL_EXACT, figures
    assert f"{eng['perplexity']:.3g}" == f"{ref:.3g}" and f"{eng_all['perplexity']:.3g}" == f"{ref_all:.3g}"
    assert rel_fast < REL_TOL_FAST_HALF and rel_fast_all < REL_TOL_FAST, figures


GEMMA_CHUNKS = 1  # the 262144-token output head makes the NumPy side ~10x slower per token than SmolLM2
# CI runs the reduced form (EDGELLM_FULL_TESTS unset): the NumPy chunk is 256 tokens instead of
# 512 and fast-vs-exact covers 2 chunks with the half-protocol bound; together they were 60% of
# this file's time. The exactness check is the same at either length.
FULL = os.environ.get("EDGELLM_FULL_TESTS", "0") not in ("", "0")
GEMMA_CTX = CTX if FULL else CTX // 2
GEMMA_FAST_CHUNKS, GEMMA_FAST_TOL = (N_CHUNKS, REL_TOL_FAST) if FULL else (2, REL_TOL_FAST_HALF)


def test_gemma3_perplexity_with_bos_matches_reference(engine, gemma3_path, text_file):
    """Gemma 3 asks for BOS: the stream starts with it and every chunk starts with it on both
    sides (without it Gemma's perplexity on this text is 47 instead of 19)."""
    model = reference_model(gemma3_path)
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    # The engine's token ids on both sides: the NumPy reference tokenizer does not merge
    # Gemma's runs of spaces (the text is indented) the way SentencePiece does, and is too slow
    # for the whole file; Gemma tokenization is checked against HF in test_tokenizer_hf.py.
    ids = engine.tokenize(gemma3_path, [text])[0]
    bos = int(model.metadata["tokenizer.ggml.bos_token_id"])
    chunk = numpy_chunks(ids, GEMMA_CTX, GEMMA_CHUNKS, bos, llama_cpp=True)[0]
    eng = ppl_json(engine, gemma3_path, "-f", text_file, "-c", str(GEMMA_CTX), "--chunks", str(GEMMA_CHUNKS),
                   "--exact")
    ref = reference.perplexity(reference.Forward(model), chunk, GEMMA_CTX, GEMMA_CHUNKS, first=GEMMA_CTX // 2)
    # Fast vs exact over several chunks, every token (engine only): one chunk's predictions leave
    # the int8 realization noise near the bound (measured +0.40% on 1 chunk, -0.03% on 4).
    common = ["-f", text_file, "-c", str(CTX), "--chunks", str(GEMMA_FAST_CHUNKS), "--all-tokens"]
    eng4 = ppl_json(engine, gemma3_path, *common, "--exact")
    fast = ppl_json(engine, gemma3_path, *common)
    rel = abs(eng["perplexity"] / ref["perplexity"] - 1.0)
    rel_fast = abs(fast["perplexity"] / eng4["perplexity"] - 1.0)
    print(f"\ngemma3 perplexity with BOS c={GEMMA_CTX}: engine {eng['perplexity']:.4f} reference "
          f"{ref['perplexity']:.4f} ({GEMMA_CHUNKS} chunk, rel {rel:.2e}); c={CTX} {GEMMA_FAST_CHUNKS} chunks every "
          f"token exact {eng4['perplexity']:.4f} "
          f"fast {fast['perplexity']:.4f} (rel {rel_fast:.2e})")
    assert eng["bos"] is True and fast["bos"] is True
    assert rel < REL_TOL_EXACT, f"perplexity engine {eng['perplexity']:.4f} vs reference {ref['perplexity']:.4f}"
    assert rel_fast < GEMMA_FAST_TOL, f"fast kernels {fast['perplexity']:.4f} vs exact {eng4['perplexity']:.4f}"


# --- 3. KL-divergence against a saved base run --------------------------------------------------
KL_CTX, KL_CHUNKS = 128, 3


def numpy_kl(base_lp, lp, top_k):
    """KL(base || model) per position; top_k > 0: the base's top-k tokens plus one bucket for
    the rest (perplexity.h). base_lp, lp: [N, V] log-probs."""
    if top_k == 0:
        return (np.exp(base_lp) * (base_lp - lp)).sum(-1)
    idx = np.argsort(-base_lp, axis=-1, kind="stable")[:, :top_k]
    bp, bq = np.take_along_axis(base_lp, idx, -1), np.take_along_axis(lp, idx, -1)
    kl = (np.exp(bp) * (bp - bq)).sum(-1)
    p_rest = 1 - np.exp(bp).sum(-1)
    q_rest = np.maximum(1 - np.exp(bq).sum(-1), 1e-30)
    return kl + np.where(p_rest > 0, np.maximum(p_rest, 0) * np.log(np.maximum(p_rest, 1e-300) / q_rest), 0)


@pytest.fixture(scope="module")
def kl_case(engine, smollm_path, text_file):
    """SmolLM2 logits of the llama.cpp-protocol chunks, exact and default kernels, from
    `edgellm logits`: [positions, V] log-probs and the next tokens."""
    with open(text_file, encoding="utf-8") as f:
        ids = engine.tokenize(smollm_path, [f.read()])[0]
    chunks = numpy_chunks(ids, KL_CTX, KL_CHUNKS, None, llama_cpp=True)
    n_vocab = 49152
    first = KL_CTX // 2
    exact, fast, nxt = [], [], []
    for ch in chunks:
        exact.append(log_softmax(engine.logits(smollm_path, ch, n_vocab, exact=True))[first:-1])
        fast.append(log_softmax(engine.logits(smollm_path, ch, n_vocab))[first:-1])
        nxt.extend(ch[first + 1:])
    return np.concatenate(exact), np.concatenate(fast), np.asarray(nxt)


@pytest.mark.parametrize("top_k", [0, 16])
def test_kl_divergence_matches_numpy(engine, smollm_path, text_file, tmp_path, kl_case, top_k):
    exact, fast, nxt = kl_case
    base = str(tmp_path / "base.kld")
    common = ["-f", text_file, "-c", str(KL_CTX), "--chunks", str(KL_CHUNKS)]
    saved = ppl_json(engine, smollm_path, *common, "--exact", "--kl-divergence-base", base, "--kl-top-k", str(top_k))
    positions = KL_CHUNKS * (KL_CTX - 1 - KL_CTX // 2)
    per_pos = 4 + (4 * 49152 if top_k == 0 else 8 * top_k)
    assert os.path.getsize(base) == 8 + 16 + 8 + 4 * KL_CHUNKS * KL_CTX + positions * per_pos
    # The text comes from the base file: no -f needed.
    got = ppl_json(engine, smollm_path, "--kl-divergence-base", base, "--kl-divergence")

    kl = numpy_kl(exact, fast, top_k)
    rows = np.arange(len(nxt))
    ppl_base = float(np.exp(-exact[rows, nxt].mean()))
    ppl_fast = float(np.exp(-fast[rows, nxt].mean()))
    same = float((exact.argmax(-1) == fast.argmax(-1)).mean())
    print(f"\nKL(exact||fast) top_k={top_k}: engine {got['kl_divergence']:.6f} numpy {kl.mean():.6f}; "
          f"same top-1 {got['top1_agreement']:.4f} ({same:.4f}); ppl exact {got['perplexity_base']:.4f} "
          f"fast {got['perplexity']:.4f}")
    assert got["n_predictions"] == positions == len(nxt)
    assert got["perplexity_base"] == pytest.approx(saved["perplexity"], rel=1e-6)
    assert got["perplexity_base"] == pytest.approx(ppl_base, rel=1e-5)
    assert got["perplexity"] == pytest.approx(ppl_fast, rel=1e-5)
    assert got["top1_agreement"] == pytest.approx(same, abs=1e-12)
    assert got["kl_divergence"] == pytest.approx(kl.mean(), rel=2e-3, abs=1e-6)
    assert got["kl_max"] == pytest.approx(kl.max(), rel=2e-3, abs=1e-6)
    assert 0 < got["kl_divergence"] < 0.05, "the int8 path is close to the exact one, but not equal"
    if top_k:  # merging the tail can only lower KL: a lower bound of the full KL, and a close one
        full = numpy_kl(exact, fast, 0).mean()
        assert got["kl_divergence"] <= full * (1 + 1e-3) and got["kl_divergence"] > 0.5 * full


def test_kl_divergence_of_a_run_with_itself_is_zero(engine, smollm_path, text_file, tmp_path):
    base = str(tmp_path / "base.kld")
    common = ["-c", "64", "--chunks", "2", "--exact", "--kl-divergence-base", base]
    ppl_json(engine, smollm_path, "-f", text_file, *common)
    got = ppl_json(engine, smollm_path, "-f", text_file, *common, "--kl-divergence")
    assert got["kl_divergence"] == pytest.approx(0, abs=1e-6) and got["top1_agreement"] == 1.0
    assert got["perplexity"] == pytest.approx(got["perplexity_base"], rel=1e-6)


def test_kl_divergence_bad_base_files_are_clean_errors(engine, smollm_path, gemma3_path, text_file, tmp_path):
    base = tmp_path / "base.kld"
    ppl_json(engine, smollm_path, "-f", text_file, "-c", "16", "--chunks", "2", "--kl-divergence-base", str(base))
    data = base.read_bytes()

    def err(model, path, *extra):
        proc = subprocess.run([engine.path, "perplexity", "-m", model, "--kl-divergence-base", str(path),
                               "--kl-divergence", *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, proc.stderr
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]

    (tmp_path / "short.kld").write_bytes(data[:-3])
    assert "truncated or damaged" in err(smollm_path, tmp_path / "short.kld")
    (tmp_path / "junk.kld").write_bytes(b"not a base file at all")
    assert "not a base file" in err(smollm_path, tmp_path / "junk.kld")
    bad_tok = bytearray(data)
    bad_tok[32:36] = (10**8).to_bytes(4, "little")                 # first token id
    (tmp_path / "tok.kld").write_bytes(bytes(bad_tok))
    assert "outside the vocabulary" in err(smollm_path, tmp_path / "tok.kld")
    assert "cannot open" in err(smollm_path, tmp_path / "absent.kld")
    assert "vocabulary" in err(gemma3_path, base)
    assert "differs from the base" in err(smollm_path, base, "-c", "32")
    other = tmp_path / "other.txt"
    other.write_text("An entirely different text. " * 40)
    assert "differ from those of the base" in err(smollm_path, base, "-f", str(other))
    proc = subprocess.run([engine.path, "perplexity", "-m", smollm_path, "--kl-divergence"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1 and "--kl-divergence-base" in proc.stderr
