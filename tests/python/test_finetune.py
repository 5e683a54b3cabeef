"""`edgellm finetune` end to end on a tiny random-weight qwen2 model (reference/tiny_models.py; no chat
template, so conversations render as ChatML): a few steps make the loss go down, the adapter loads with
--lora and changes the logits; malformed lines are reported with their numbers before training starts;
over-long conversations are skipped with a warning; --resume continues from the checkpoint; a
non-finite loss stops training and keeps the last good checkpoint; Ctrl-C saves and stops.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGUFReader

sys.path.insert(0, os.path.dirname(__file__))
from reference.tiny_models import write_tiny_llama, write_tiny_qwen2  # noqa: E402

BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")

FACTS = [("What is my car?", "the red one"), ("Who is my sister?", "Ann the baker"),
         ("Where do I live?", "in the north"), ("What do I drink?", "tea in the evening")]


def conv(q, a, system=None):
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return json.dumps({"messages": msgs})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("finetune")
    model = write_tiny_qwen2(str(d / "tiny-qwen2.gguf"))["path"]
    data = d / "train.jsonl"
    data.write_text("\n".join(conv(q, a) for q, a in FACTS) + "\n")
    return {"dir": d, "model": model, "data": str(data)}


def finetune(tiny, *args, check=True):
    r = subprocess.run([BIN, "finetune", "-m", tiny["model"], "--data", tiny["data"], "-t", "2", *args],
                       capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def epoch_losses(stderr):
    return [(float(m.group(1)), float(m.group(2)) if m.group(2) else None)
            for m in re.finditer(r"epoch \d+: train loss ([\d.]+)(?:  eval loss ([\d.]+))?", stderr)]


def logits(model, ids, *lora):
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        extra = [a for p in lora for a in ("--lora", p)]
        subprocess.run([BIN, "logits", "-m", model, "--ids", ",".join(map(str, ids)), "--out", f.name, "--exact",
                        *extra], check=True, capture_output=True)
        return np.fromfile(f.name, dtype=np.float32)


def test_loss_goes_down_and_adapter_loads(tiny):
    out = str(tiny["dir"] / "a.gguf")
    r = finetune(tiny, "--eval", tiny["data"], "--epochs", "4", "--lr", "0.01", "--rank", "4", "--alpha", "8",
                 "--out", out)
    losses = epoch_losses(r.stderr)
    assert len(losses) == 4, r.stderr
    before = float(re.search(r"eval loss before training: ([\d.]+)", r.stderr).group(1))
    assert losses[-1][1] < 0.5 * before, r.stderr  # eval loss (here: the training set) falls
    assert losses[-1][0] < losses[0][0]
    assert re.search(r"step 1/16  loss [\d.]+  \d+ tok/s  left \d+m\d\ds", r.stderr), r.stderr
    # llama.cpp's adapter layout, every projection of every layer, rank 4.
    rd = GGUFReader(out)
    kv = {f.name: f for f in rd.fields.values()}
    assert bytes(kv["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(kv["adapter.type"].parts[-1]).decode() == "lora"
    names = {t.name for t in rd.tensors}
    assert len(names) == 2 * 7 * 2 and "blk.1.ffn_down.weight.lora_b" in names
    # It loads with --lora and changes what the model computes.
    ids = [1, 2, 3, 40, 50]
    base, adapted = logits(tiny["model"], ids), logits(tiny["model"], ids, out)
    assert np.abs(base - adapted).max() > 1e-3
    info = subprocess.run([BIN, "info", "-m", out], capture_output=True, text=True, check=True).stdout
    assert "lora" in info


def test_targets_subset(tiny):
    out = str(tiny["dir"] / "qv.gguf")
    finetune(tiny, "--epochs", "1", "--targets", "q,v", "--out", out)
    names = {t.name for t in GGUFReader(out).tensors}
    assert names == {f"blk.{i}.{p}.weight.lora_{ab}" for i in range(2) for p in ("attn_q", "attn_v") for ab in "ab"}


def test_malformed_lines_reported_before_training(tiny):
    bad = tiny["dir"] / "bad.jsonl"
    bad.write_text(conv("q", "a") + "\n{oops\n\n" + json.dumps({"messages": [{"role": "user", "content": "x"}]})
                   + "\n" + json.dumps({"messages": [{"role": "robot", "content": "x"}]}) + "\n")
    out = tiny["dir"] / "never.gguf"
    r = subprocess.run([BIN, "finetune", "-m", tiny["model"], "--data", str(bad), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "3 malformed lines" in r.stderr
    for line, why in ((2, "invalid JSON"), (4, "no assistant message"), (5, "message 1: role 'robot'")):
        assert f"bad.jsonl:{line}: {why}" in r.stderr, r.stderr
    assert "finetune:" not in r.stderr and not out.exists()


def test_long_conversations_skipped_with_warning(tiny):
    data = tiny["dir"] / "long.jsonl"
    data.write_text(conv("short?", "yes") + "\n" + conv("long " * 200, "answer") + "\n")
    r = subprocess.run([BIN, "finetune", "-m", tiny["model"], "--data", str(data), "--ctx", "64",
                        "--out", str(tiny["dir"] / "l.gguf")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"warning: .*long.jsonl: skipped 1 conversation\(s\) longer than --ctx 64 tokens: line 2 \(\d+ tokens\)",
                     r.stderr), r.stderr
    assert "finetune: 1 conversations" in r.stderr


def test_resume_and_non_finite_loss(tiny):
    out = str(tiny["dir"] / "r.gguf")
    ckpt = str(tiny["dir"] / "r.ckpt")
    finetune(tiny, "--epochs", "1", "--lr", "0.01", "--out", out, "--checkpoint", ckpt)
    r = finetune(tiny, "--epochs", "2", "--lr", "0.01", "--out", out, "--checkpoint", ckpt, "--resume", ckpt)
    assert [m for m in re.findall(r"epoch (\d+): train", r.stderr)] == ["2"], r.stderr
    assert "step 5/8" in r.stderr
    good = open(ckpt, "rb").read()
    # A learning rate of 1e30 overflows the factors after one step: the next loss is not finite.
    r = finetune(tiny, "--epochs", "3", "--lr", "1e30", "--out", str(tiny["dir"] / "nan.gguf"), "--checkpoint", ckpt,
                 "--resume", ckpt, check=False)
    assert r.returncode == 1
    assert "not a finite number" in r.stderr and "last checkpoint is kept" in r.stderr, r.stderr
    assert open(ckpt, "rb").read() == good
    assert not (tiny["dir"] / "nan.gguf").exists()
    # Another rank than the checkpoint's is refused.
    r = finetune(tiny, "--epochs", "3", "--rank", "4", "--out", out, "--resume", ckpt, check=False)
    assert r.returncode == 1 and "another --rank" in r.stderr


def test_ctrl_c_saves_and_stops(tiny):
    out = tiny["dir"] / "c.gguf"
    ckpt = tiny["dir"] / "c.ckpt"
    p = subprocess.Popen([BIN, "finetune", "-m", tiny["model"], "--data", tiny["data"], "-t", "2", "--epochs",
                          "1000000", "--out", str(out), "--checkpoint", str(ckpt)],
                         stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:  # the first progress line: training is under way
        lines.append(line)
        if line.startswith("epoch 1/"):
            break
    p.send_signal(signal.SIGINT)
    rest = p.stderr.read()
    assert p.wait(timeout=60) == 0, rest
    assert "interrupted: adapter saved to" in rest and "--resume" in rest
    assert out.exists() and ckpt.exists()
    kv = {f.name for f in GGUFReader(str(ckpt)).fields.values()}
    assert {"train.epoch", "train.position", "train.step"} <= kv


def test_adapter_for_another_base_is_refused(tiny):
    out = str(tiny["dir"] / "q.gguf")
    finetune(tiny, "--epochs", "1", "--out", out)
    llama = write_tiny_llama(str(tiny["dir"] / "tiny-llama.gguf"))["path"]
    r = subprocess.run([BIN, "run", "-m", llama, "--lora", out, "-p", "hi", "-n", "1"], capture_output=True, text=True)
    assert r.returncode == 1 and "architecture 'qwen2'" in r.stderr, r.stderr


def test_dry_run_marks_assistant_tokens_only(tiny):
    data = tiny["dir"] / "turns.jsonl"
    data.write_text(json.dumps({"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Car?"},
        {"role": "assistant", "content": "the red one", "weight": 0}, {"role": "user", "content": "Sister?"},
        {"role": "assistant", "content": "Ann <|im_end|> too"}]}) + "\n")
    r = subprocess.run([BIN, "finetune", "-m", tiny["model"], "--data", str(data), "--dry-run"],
                       capture_output=True, text=True, check=True)
    # ChatML (the tiny model has no template of its own); weight 0 keeps a reply as context only; the
    # learned part is the reply and the template's end of turn after it.
    assert ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCar?<|im_end|>\n<|im_start|>assistant\n"
            "the red one<|im_end|>\n<|im_start|>user\nSister?<|im_end|>\n<|im_start|>assistant\n"
            "\u00abAnn <|im_end|> too<|im_end|>\n\u00bb") in r.stdout, r.stdout


def test_out_type_f16_and_q8_0(tiny):
    """--out-type: the same factors (a checkpoint resumed with nothing left to train) written as F16 and
    Q8_0 hold those values to the type's precision (checked with gguf-py's own dequantizer), lora_b at
    rank 4 stays F16 in the Q8_0 file (its rows are shorter than a block), and each file loads with
    --lora and computes nearly what the F32 adapter does."""
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize
    ckpt = str(tiny["dir"] / "ot.ckpt")
    outs = {t: str(tiny["dir"] / f"ot-{t}.gguf") for t in ("f32", "f16", "q8_0")}
    finetune(tiny, "--epochs", "2", "--lr", "0.01", "--rank", "4", "--out", outs["f32"], "--checkpoint", ckpt)
    for t in ("f16", "q8_0"):
        finetune(tiny, "--epochs", "2", "--rank", "4", "--out", outs[t], "--checkpoint", str(tiny["dir"] / "x.ckpt"),
                 "--resume", ckpt, "--out-type", t)
    ref = {x.name: x for x in GGUFReader(outs["f32"]).tensors}
    for t, want_a, tol in (("f16", T.F16, 1e-3), ("q8_0", T.Q8_0, 1e-2)):
        for x in GGUFReader(outs[t]).tensors:
            want = want_a if x.name.endswith("lora_a") else T.F16
            assert x.tensor_type == want, (t, x.name, x.tensor_type)
            r = np.asarray(ref[x.name].data, dtype=np.float32).reshape(-1)
            v = dequantize(np.asarray(x.data), x.tensor_type).astype(np.float32).reshape(-1)
            assert np.abs(v - r).max() <= tol * max(np.abs(r).max(), 1e-6), (t, x.name)
    sizes = {t: os.path.getsize(p) for t, p in outs.items()}
    assert sizes["q8_0"] < sizes["f16"] < sizes["f32"], sizes
    ids = [1, 2, 3, 40, 50]
    base, full = logits(tiny["model"], ids), logits(tiny["model"], ids, outs["f32"])
    for t in ("f16", "q8_0"):
        diff = np.abs(logits(tiny["model"], ids, outs[t]) - full).max()
        assert diff < 0.05 * np.abs(full - base).max(), (t, diff)
    r = finetune(tiny, "--epochs", "1", "--out", outs["f32"], "--out-type", "q4_0", check=False)
    assert r.returncode == 1 and "--out-type must be f32, f16 or q8_0" in r.stderr


def test_kl_data_holds_the_model_near_the_base(tiny):
    """--kl-data: its conversations are trained with cross-entropy plus --kl-weight times KL(base || adapted); the
    epoch line reports the mean KL. On the same conversations as data and KL data, a large weight keeps the
    adapted distribution nearer the base's than a small one (the term pulls toward the base, not away)."""
    kls = {}
    for w in ("0.1", "30"):
        out = str(tiny["dir"] / f"kl{w}.gguf")
        r = finetune(tiny, "--kl-data", tiny["data"], "--kl-weight", w, "--epochs", "3", "--lr", "0.01", "--rank", "4",
                     "--out", out)
        assert f"KL term toward the base model (weight {w}) on" in r.stderr, r.stderr
        assert "finetune: 8 conversations" in r.stderr  # --data and --kl-data together
        kls[w] = [float(x) for x in re.findall(r"KL to base ([\d.]+)", r.stderr)]
        assert len(kls[w]) == 3, r.stderr
    assert kls["0.1"][-1] > 0.05, kls  # the adapter does move the distribution...
    assert kls["30"][-1] < 0.5 * kls["0.1"][-1], kls  # ...and the KL term holds it back


def test_hinge_holds_the_base_choices_on_kl_data(tiny):
    """--hinge-weight on --kl-data (here alone: --kl-weight 0 --kl-data-ce 0, which it makes a valid set-up): each epoch
    line reports the mean hinge and where it was active. Training on the facts moves the base's own choices on other
    conversations; a large hinge weight leaves less of that than a small one (it pushes toward the base's choices)."""
    other = tiny["dir"] / "other.jsonl"
    other.write_text("\n".join(conv(q, a) for q, a in [("What is the weather like?", "It is sunny and warm today."),
                                                         ("Name a colour.", "Blue is a colour of the sky."),
                                                         ("Count to five.", "One, two, three, four, five.")]) + "\n")
    hinges = {}
    for w in ("0.01", "3"):
        r = finetune(tiny, "--kl-data", str(other), "--kl-weight", "0", "--kl-data-ce", "0", "--hinge-weight", w,
                     "--hinge-margin-cap", "1", "--epochs", "6", "--lr", "0.003", "--rank", "4",
                     "--out", str(tiny["dir"] / f"h{w}.gguf"))
        assert f"hinge {w}·max(0, min(base margin, 1)" in r.stderr, r.stderr
        hinges[w] = [(float(h), float(a)) for h, a in re.findall(r"hinge ([\d.]+) \(active at ([\d.]+)%\)", r.stderr)]
        assert len(hinges[w]) == 6, r.stderr
    assert hinges["0.01"][-1][0] > 0.05 and hinges["0.01"][-1][1] > 10, hinges  # the facts do move the choices...
    assert hinges["3"][-1][0] < 0.5 * hinges["0.01"][-1][0], hinges  # ...and the hinge holds them


def test_save_adapter_every_and_bad_kl_weight(tiny):
    out = str(tiny["dir"] / "se.gguf")
    r = finetune(tiny, "--epochs", "2", "--save-adapter-every", "3", "--out", out)
    steps = re.findall(r"step (\d+) adapter: (\S+)", r.stderr)
    assert [int(s) for s, _ in steps] == [3, 6], r.stderr  # not step 8: that is --out itself
    for _, path in steps:
        assert os.path.exists(path) and path.endswith(f".step{path.split('.step')[1]}")
        assert {t.name for t in GGUFReader(path).tensors} == {t.name for t in GGUFReader(out).tensors}
    for bad in (("--kl-weight", "-1"), ("--kl-weight", "nan"), ("--save-adapter-every", "-2")):
        r = finetune(tiny, *bad, "--out", str(tiny["dir"] / "never.gguf"), check=False)
        assert r.returncode != 0 and bad[0] in r.stderr, r.stderr
    kl = ("--kl-data", tiny["data"])
    for bad, why in ((("--kl-data-ce", "0"), "--kl-data-ce needs --kl-data"),
                     ((*kl, "--kl-data-ce", "-1"), "--kl-data-ce must be a number >= 0"),
                     ((*kl, "--kl-data-ce", "nan"), "--kl-data-ce must be a number >= 0"),
                     ((*kl, "--kl-data-ce", "0", "--kl-weight", "0"), "leaves nothing to learn from --kl-data"),
                     (("--kl-margin-boost", "5"), "--kl-margin-boost weights the KL term: it needs --kl-data"),
                     ((*kl, "--kl-margin-boost", "-1"), "--kl-margin-boost must be a number >= 0"),
                     ((*kl, "--kl-margin-boost", "5", "--kl-margin-tau", "0"), "--kl-margin-tau must be a number > 0"),
                     (("--hinge-weight", "3"), "--hinge-weight holds the base's choices on --kl-data's target tokens: "
                                               "it needs --kl-data"),
                     ((*kl, "--hinge-weight", "-1"), "--hinge-weight must be a number >= 0"),
                     ((*kl, "--hinge-weight", "inf"), "--hinge-weight must be a number >= 0"),
                     ((*kl, "--hinge-weight", "3", "--hinge-margin-cap", "0"), "--hinge-margin-cap must be a number > 0"),
                     ((*kl, "--hinge-margin-cap", "-0.5"), "--hinge-margin-cap must be a number > 0")):
        r = finetune(tiny, *bad, "--out", str(tiny["dir"] / "never.gguf"), check=False)
        assert r.returncode == 1 and why in r.stderr, r.stderr


def test_layers_subset(tiny):
    out = str(tiny["dir"] / "l1.gguf")
    finetune(tiny, "--epochs", "1", "--layers", "1", "--targets", "gate,down", "--out", out)
    names = {t.name for t in GGUFReader(out).tensors}
    assert names == {f"blk.1.{p}.weight.lora_{ab}" for p in ("ffn_gate", "ffn_down") for ab in "ab"}
    finetune(tiny, "--epochs", "1", "--layers", "0-1", "--targets", "q", "--out", out)
    assert {t.name for t in GGUFReader(out).tensors} == {f"blk.{i}.attn_q.weight.lora_{ab}" for i in (0, 1) for ab in "ab"}
    for bad, why in (("2", "layer 2 does not exist (the model has layers 0-1)"), ("1-0", "the range '1-0' is empty"),
                     ("x", "'x' is not a layer number"), ("0-", "'0-' is not a layer number")):
        r = finetune(tiny, "--layers", bad, "--out", str(tiny["dir"] / "never.gguf"), check=False)
        assert r.returncode == 1 and why in r.stderr, r.stderr
