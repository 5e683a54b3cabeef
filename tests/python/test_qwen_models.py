"""Qwen2.5-Coder-0.5B/1.5B-Instruct, Q4_K_M as shipped (issue 11, acceptance items 1 and 2):
* chat templates: each file's own template (the two differ) rendered by `edgellm template`
  byte-identically to Python jinja2 configured as HF transformers configures it, over the
  conversations of chat_conversations.py (tools, tool calls, tool results included);
* logits: against the NumPy reference forward pass on 5 prompts, --exact must give the same
  top-1 at every position (no near-tie allowance) within EXACT_TOL, the default int8 kernels
  stay within FAST_TOL with >= TOP1_MIN top-1 agreement;
* KL-divergence of the default int8 kernels against --exact (llama.cpp protocol, GPL-3,
  -c 512, one chunk) with bounds on mean KL and same top-1.
Token ids against HF `tokenizers` are in test_tokenizer_hf.py.

CI cost: the 0.5B's reference (2 GB of float32 weights) runs fully; the 1.5B's (6 GB, several
minutes to dequantize) only with EDGELLM_QWEN_FULL=1, as does the 1.5B's KL check. Figures go to
$EDGELLM_RESULTS_DIR/qwen_models.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from chat_conversations import CONVERSATIONS  # noqa: E402
from conftest import _REFERENCE_CACHE, model_path_or_skip, reference_model, write_results  # noqa: E402
from test_logits import CODE, EXACT_TIE_EPS, MULTILINGUAL, NUMBERS, PROSE, compare  # noqa: E402

import reference  # noqa: E402

jinja2 = pytest.importorskip("jinja2")
import jinja2.ext  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

FILES = {"qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
         "qwen2.5-coder-1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}
FULL = os.environ.get("EDGELLM_QWEN_FULL") == "1"
# max, mean |logit diff|. Measured on the 0.5B (5 prompts, AVX-512, 2 threads): exact max
# 0.0000-0.0002, mean < 1e-5, top-1 identical everywhere; int8 max 0.29-0.71, mean 0.035-0.056,
# top-1 63/65, 67/70, 71/71, 109/110, 39/40 (every flip at a reference margin under 0.06).
# The 1.5B (EDGELLM_QWEN_FULL=1): exact max 0.0000-0.0003, top-1 identical everywhere; int8
# max 1.24-2.59, mean 0.027-0.050, top-1 62/65, 69/70, 71/71, 109/110, 40/40. Max is 2x the worst.
EXACT_TOL = (0.02, 0.002)
FAST_TOL = (5.0, 0.15)
TOP1_MIN = 0.85
KL_MAX, SAME_TOP1_MIN = 0.05, 0.90
CHAT = ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWrite a Python function that tells whether a number is prime.<|im_end|>\n"
        "<|im_start|>assistant\n```python\ndef is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n")
PROMPTS = {"chat": (CHAT, True), "prose": (PROSE, False), "code": (CODE, False), "numbers": (NUMBERS, False),
           "multilingual": (MULTILINGUAL, False)}
_FIGURES: dict[str, dict] = {}


def record(key: str, figures: dict) -> None:
    _FIGURES[key] = figures
    write_results("qwen_models.json", _FIGURES)


def heavy(name: str) -> None:
    if name == "qwen2.5-coder-1.5b" and not FULL:
        pytest.skip("the 1.5B NumPy reference needs ~6 GB and minutes: EDGELLM_QWEN_FULL=1 runs it")


# --- chat templates ------------------------------------------------------------------------------
def jinja_render(source, messages, tools, add_generation_prompt, bos, eos):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, ensure_ascii=False, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(source).render(messages=messages, tools=tools, documents=None,
                                          add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos)


@pytest.fixture(scope="module", params=list(FILES))
def template_of(request):
    gguf = pytest.importorskip("gguf")
    path = model_path_or_skip(FILES[request.param])
    r = gguf.GGUFReader(path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    bos = tokens[int(r.fields["tokenizer.ggml.bos_token_id"].contents())]
    eos = tokens[int(r.fields["tokenizer.ggml.eos_token_id"].contents())]
    return path, r.fields["tokenizer.chat_template"].contents(), bos, eos


def test_template_takes_a_short_model_name(engine, template_of, tmp_path):
    """`edgellm template -m qwen2.5-coder-0.5b` names the model as every other command does."""
    path = template_of[0]
    short = next(name for name, file in FILES.items() if path.endswith(file))
    (tmp_path / "m.json").write_text(json.dumps([{"role": "user", "content": "hi"}]), encoding="utf-8")
    out = {}
    for model in (path, short):
        proc = subprocess.run([engine.path, "template", "-m", model, "--messages", str(tmp_path / "m.json")],
                              capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        out[model] = proc.stdout
    assert out[short] == out[path] and b"<|im_start|>user" in out[short]


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=[c["name"] for c in CONVERSATIONS])
def test_chat_template_matches_jinja2(engine, template_of, conv, tmp_path):
    path, source, bos, eos = template_of
    assert "tools" in source and "<tool_call>" in source, "Qwen's template handles tools"
    try:
        want = jinja_render(source, conv["messages"], conv["tools"], conv["add_generation_prompt"], bos, eos)
    except Exception as e:  # any jinja2 / Python error: edgellm must fail too
        want = e
    (tmp_path / "m.json").write_text(json.dumps(conv["messages"], ensure_ascii=False), encoding="utf-8")
    cmd = [engine.path, "template", "-m", path, "--messages", str(tmp_path / "m.json")]
    if conv["tools"] is not None:
        (tmp_path / "t.json").write_text(json.dumps(conv["tools"], ensure_ascii=False), encoding="utf-8")
        cmd += ["--tools", str(tmp_path / "t.json")]
    if conv["add_generation_prompt"]:
        cmd.append("--add-generation-prompt")
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if isinstance(want, Exception):
        assert proc.returncode != 0 and proc.stderr.decode().startswith("error: "), proc.stderr
        if type(want) is jinja2.exceptions.TemplateError:  # raise_exception(): its message must survive
            assert str(want) in proc.stderr.decode()
        return
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode("utf-8") == want


def test_conversations_include_tools():
    assert sum(c["tools"] is not None for c in CONVERSATIONS) >= 2


# --- logits against the NumPy reference ----------------------------------------------------------
@pytest.fixture(scope="module", params=list(FILES))
def qwen(request):
    heavy(request.param)
    path = model_path_or_skip(FILES[request.param])
    model = reference_model(path)
    yield request.param, path, model, reference.Forward(model), reference.GGUFTokenizer(model.metadata)
    _REFERENCE_CACHE.pop(path, None)  # 2-6 GB: free it before the next model


@pytest.mark.parametrize("prompt", list(PROMPTS))
def test_logits_match_reference(engine, qwen, prompt):
    name, path, model, fwd, tok = qwen
    text, special = PROMPTS[prompt]
    ids = tok.encode(text, parse_special=special)
    assert 16 <= len(ids) <= 200
    assert engine.tokenize(path, [text], special=special)[0] == ids
    ref = fwd.logits(ids)                                                        # [T, V]
    exact = engine.logits(path, ids, model.config.n_vocab, exact=True)
    fast = engine.logits(path, ids, model.config.n_vocab)
    fig_exact = compare(f"{name}/{prompt}/exact", ref, exact, EXACT_TOL, record=False, tie_eps=EXACT_TIE_EPS)
    # Acceptance: the same top-1 at every position, near ties included.
    assert (ref.argmax(1) == exact.argmax(1)).all(), f"{name}/{prompt}: exact top-1 differs"
    fig_fast = compare(f"{name}/{prompt}/fast", ref, fast, FAST_TOL, record=False, tie_eps=1.0)
    assert fig_fast["top1_agree"] >= TOP1_MIN * len(ids)
    record(f"{name}/{prompt}", {"exact": fig_exact, "fast": fig_fast})


def test_reference_answers_capital_of_france(qwen):
    """The reference alone gives the right answer: guards against a wrong-but-agreeing pair."""
    name, path, model, fwd, tok = qwen
    prompt = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    out = reference.greedy(fwd, tok.encode(prompt, parse_special=True), 8, stop_ids=(tok.eos_id,))
    assert "Paris" in tok.decode(out)


# --- KL-divergence of the int8 kernels against the exact path -----------------------------------
@pytest.mark.parametrize("name", list(FILES))
def test_int8_kl_divergence_against_exact(engine, name, tmp_path):
    heavy(name)
    path = model_path_or_skip(FILES[name])
    text = "/usr/share/common-licenses/GPL-3"
    if not os.path.isfile(text):
        pytest.skip(f"{text} is absent")
    base = str(tmp_path / "exact.kld")

    def run(*args):
        out = engine.run(["perplexity", "-m", path, "-c", "512", "-t", "2", "--json", *args])
        return json.loads(out.strip().splitlines()[-1])

    run("-f", text, "--chunks", "1", "--exact", "--kl-divergence-base", base)
    got = run("--kl-divergence-base", base, "--kl-divergence")
    print(f"\n{name}: int8 vs exact, GPL-3 c=512 1 chunk: mean KL {got['kl_divergence']:.5f}, same top-1 "
          f"{got['top1_agreement']:.4f}, ppl exact {got['perplexity_base']:.4f} int8 {got['perplexity']:.4f}")
    record(f"{name}/kl_int8_vs_exact", got)
    assert got["protocol"] == "llama.cpp" and got["n_predictions"] == 255
    assert 0 < got["kl_divergence"] < KL_MAX
    assert got["top1_agreement"] >= SAME_TOP1_MIN


# --- speculative decoding with the real pair (issue 12) ------------------------------------------
def test_draft_05b_for_15b_gives_the_plain_greedy_answer(engine):
    """Greedy: the 0.5B drafting for the 1.5B prints exactly the 1.5B's own greedy answer, on a
    prompt where the drafts are largely accepted (the answer copies the code) and one where they
    are not; both accept some drafts, so verification passes of several tokens are compared."""
    import re

    target, draft = model_path_or_skip(FILES["qwen2.5-coder-1.5b"]), model_path_or_skip(FILES["qwen2.5-coder-0.5b"])
    code = "def mean(values):\n    total = 0\n    for v in values:\n        total += v\n    return total / len(values)\n"
    for prompt in ("Rename the function to average and repeat the code:\n" + code,
                   "Write a short poem about the sea."):
        args = [engine.path, "run", "-m", target, "-p", prompt, "--temp", "0", "-n", "40", "-t", "2"]
        plain = subprocess.run(args, capture_output=True, text=True, timeout=600)
        spec = subprocess.run(args + ["--draft", draft, "--draft-max", "8"], capture_output=True, text=True,
                              timeout=600)
        assert plain.returncode == 0 and spec.returncode == 0, plain.stderr + spec.stderr
        assert spec.stdout == plain.stdout, (prompt, plain.stdout, spec.stdout)
        m = re.search(r"drafted (\d+), accepted (\d+)", spec.stderr)
        assert m and int(m.group(2)) > 0, spec.stderr
