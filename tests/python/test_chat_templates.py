"""Chat-template conformance: `edgellm template` must render byte-identically to Python jinja2
configured the way HF transformers' apply_chat_template configures it, for every template in
shared/conformance/chat-templates plus the templates inside the cached GGUF models, over the
conversations in chat_conversations.py; and where jinja2 raises, edgellm must fail too.
chat_snippets.py adds one-construct templates for the engine's breadth.

CI runs a reduced form: every template, model, conversation and snippet still appears, but only
one (template or model, conversation) pair in REDUCE_STRIDE is rendered. EDGELLM_FULL_TESTS=1
renders every pair (see DEVELOPERS.md)."""
import datetime
import functools
import json
import os
import pathlib
import subprocess
import sys

import pytest

jinja2 = pytest.importorskip("jinja2")
import jinja2.ext  # noqa: E402  (loopcontrols, as transformers enables)
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from chat_conversations import CONVERSATIONS  # noqa: E402
from chat_snippets import MESSAGES as SNIPPET_MESSAGES, SNIPPETS  # noqa: E402

SOURCE_DIR = pathlib.Path(os.environ.get("EDGELLM_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
TEMPLATE_DIR = SOURCE_DIR.parent / "shared" / "conformance" / "chat-templates"
MODEL_DIR = pathlib.Path(os.environ.get("EDGELLM_MODEL_DIR", pathlib.Path.home() / ".cache/edgellm/models"))
BIN = os.environ.get("EDGELLM_BIN", str(SOURCE_DIR / "build" / "edgellm"))
BOS, EOS = "<s>", "</s>"
FULL = os.environ.get("EDGELLM_FULL_TESTS", "0") not in ("", "0")
REDUCE_STRIDE = 3


# --- the reference: transformers' chat template environment ------------------------------------
def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers overrides jinja2's HTML-escaping tojson with plain json.dumps
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def reference_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def reference_render(source, messages, tools, add_generation_prompt, bos=BOS, eos=EOS):
    """Returns (text, None) or (None, exception)."""
    env = reference_env()
    try:
        tpl = env.from_string(source)
        return tpl.render(messages=messages, tools=tools, documents=None,
                          add_generation_prompt=add_generation_prompt, bos_token=bos, eos_token=eos), None
    except Exception as e:  # any jinja2 / Python error counts as "the template raises"
        return None, e


# --- the engine under test ---------------------------------------------------------------------
def edgellm_render(tmp_path, messages, tools, add_generation_prompt, template=None, model=None,
                   bos=BOS, eos=EOS):
    if not os.path.exists(BIN):
        pytest.skip(f"edgellm binary not built at {BIN}")
    msg_file = tmp_path / "messages.json"
    msg_file.write_text(json.dumps(messages, ensure_ascii=False), encoding="utf-8")
    cmd = [BIN, "template", "--messages", str(msg_file)]
    if template is not None:
        tpl_file = tmp_path / "template.jinja"
        tpl_file.write_bytes(template.encode("utf-8"))
        cmd += ["--template", str(tpl_file), "--bos", bos, "--eos", eos]
    else:
        cmd += ["-m", str(model)]
    if tools is not None:
        tools_file = tmp_path / "tools.json"
        tools_file.write_text(json.dumps(tools, ensure_ascii=False), encoding="utf-8")
        cmd += ["--tools", str(tools_file)]
    if add_generation_prompt:
        cmd.append("--add-generation-prompt")
    return subprocess.run(cmd, capture_output=True, timeout=60)


def check(tmp_path, source, messages, tools, agp, **kw):
    expected, err = reference_render(source, messages, tools, agp,
                                     bos=kw.get("bos", BOS), eos=kw.get("eos", EOS))
    res = edgellm_render(tmp_path, messages, tools, agp, **kw)
    stderr = res.stderr.decode("utf-8", "replace")
    if err is not None:
        assert res.returncode != 0, f"jinja2 raised {type(err).__name__}: {err}, edgellm printed:\n{res.stdout!r}"
        assert "error" in stderr and "Traceback" not in stderr
        if isinstance(err, jinja2.exceptions.TemplateError) and type(err) is jinja2.exceptions.TemplateError:
            assert str(err) in stderr, f"raise_exception message lost: {stderr}"
        return
    assert res.returncode == 0, f"edgellm failed: {stderr}"
    assert res.stdout.decode("utf-8") == expected


# --- parameters --------------------------------------------------------------------------------
def template_files():
    return sorted(TEMPLATE_DIR.glob("*.jinja")) if TEMPLATE_DIR.is_dir() else []


@functools.lru_cache(maxsize=None)  # GGUFReader takes ~10 s of CPU per model: read each once
def gguf_template(path):
    gguf = pytest.importorskip("gguf")
    r = gguf.GGUFReader(str(path))

    def get_str(key):
        f = r.fields.get(key)
        return None if f is None else bytes(f.parts[f.data[0]]).decode("utf-8")

    def token(which):
        f = r.fields.get(f"tokenizer.ggml.{which}_token_id")
        toks = r.fields.get("tokenizer.ggml.tokens")
        if f is None or toks is None:
            return ""
        idx = int(f.parts[f.data[0]][0])
        return bytes(toks.parts[toks.data[idx]]).decode("utf-8")

    return get_str("tokenizer.chat_template"), token("bos"), token("eos")


CONV_IDS = [c["name"] for c in CONVERSATIONS]


def pairs(items, item_id):
    """(item, conversation) parameters: all of them with EDGELLM_FULL_TESTS=1, else a diagonal
    subset in which each item meets every REDUCE_STRIDE-th conversation (shifted per item, so
    every conversation is still rendered by some item)."""
    out = []
    for i, item in enumerate(items):
        for j, conv in enumerate(CONVERSATIONS):
            if FULL or (i + j) % REDUCE_STRIDE == 0:
                out.append(pytest.param(item, conv, id=f"{item_id(item)}-{CONV_IDS[j]}"))
    return out


@pytest.mark.parametrize("tpl_path,conv", pairs(template_files(), lambda p: p.stem))
def test_conformance_template(tmp_path, tpl_path, conv):
    source = tpl_path.read_text(encoding="utf-8")
    check(tmp_path, source, conv["messages"], conv["tools"], conv["add_generation_prompt"], template=source)


def test_conformance_templates_present():
    if not template_files():
        pytest.skip(f"no conformance templates under {TEMPLATE_DIR}")
    assert len(template_files()) >= 10


@pytest.mark.parametrize("model,conv", pairs(["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"],
                                              lambda m: m))
def test_conformance_gguf(tmp_path, model, conv):
    path = MODEL_DIR / model
    if not path.exists():
        pytest.skip(f"model {path} not downloaded")
    source, bos, eos = gguf_template(path)
    if source is None and "gemma" in model:
        # No tokenizer.chat_template: make_formatter uses the built-in Gemma turn template
        # (src/chat/builtin_templates.cpp); it must render exactly as jinja2 renders it.
        import re
        text = (SOURCE_DIR / "src/chat/builtin_templates.cpp").read_text(encoding="utf-8")
        found = re.search(r'kGemma = R"JINJA\((.*?)\)JINJA"', text, re.S)
        if found:
            check(tmp_path, found.group(1), conv["messages"], conv["tools"], conv["add_generation_prompt"],
                  model=path, bos=bos, eos=eos)
            return
    if source is None:
        # No tokenizer.chat_template: edgellm falls back to ChatML; compare with a ChatML
        # reference written here.
        expected = "".join(f"<|im_start|>{m['role']}\n{m.get('content') or ''}<|im_end|>\n" for m in conv["messages"])
        if conv["add_generation_prompt"]:
            expected += "<|im_start|>assistant\n"
        res = edgellm_render(tmp_path, conv["messages"], conv["tools"], conv["add_generation_prompt"], model=path)
        assert res.returncode == 0, res.stderr.decode()
        assert res.stdout.decode("utf-8") == expected
        return
    check(tmp_path, source, conv["messages"], conv["tools"], conv["add_generation_prompt"],
          model=path, bos=bos, eos=eos)


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"s{i:02d}" for i in range(len(SNIPPETS))])
def test_snippet(tmp_path, snippet):
    check(tmp_path, snippet, SNIPPET_MESSAGES, None, False, template=snippet)
