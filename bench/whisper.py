#!/usr/bin/env python3
"""Whisper figures (issue #13): edgellm against CTranslate2/faster-whisper on every clip of
scripts/make-speech-clips, in one run.
  bench/whisper.py [--size tiny|base] [--threads 2] [--limit N] [--out results.json]
Prints per clip and in total: whether edgellm's greedy tokens equal CTranslate2's (float32, the
same model.bin, beam 1, no timestamps), WER (English) / CER (Chinese) of edgellm and of
faster-whisper (int8, beam 1, temperature 0, no timestamps) against the source sentences, and the
real-time factor (transcription seconds / audio seconds, model load excluded) of both.
Needs the venv of tests/requirements.txt, the CTranslate2 folder (scripts/fetch-models whisper)
and a built edgellm (EDGELLM_BIN, default build/edgellm)."""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from whisper_ref import Ct2Reference, make_clips, wav_samples  # noqa: E402


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def units(text, lang):
    """Words (English: lower case, punctuation dropped) or characters (Chinese: no punctuation)."""
    if lang == "zh":
        return [c for c in text if re.match(r"\w", c) and not c.isspace()]
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--quant", default="", help="run edgellm on the model quantized to this type (e.g. Q8_0)")
    args = ap.parse_args()
    binary = os.environ.get("EDGELLM_BIN", str(ROOT / "build" / "edgellm"))
    src = Path(os.environ.get("EDGELLM_MODEL_DIR", Path.home() / ".cache/edgellm/models")) / f"whisper-{args.size}-ct2"
    from faster_whisper import WhisperModel

    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        gguf = td / f"{args.size}.gguf"
        subprocess.run([binary, "convert", str(src), str(gguf)], check=True, capture_output=True)
        if args.quant:
            q = td / f"{args.size}.{args.quant}.gguf"
            subprocess.run([binary, "quantize", "-q", str(gguf), str(q), args.quant], check=True, capture_output=True)
            gguf = q
        clips = make_clips(td / "clips", args.limit)
        ref = Ct2Reference(src, threads=args.threads)
        fw = WhisperModel(str(src), device="cpu", compute_type="int8", cpu_threads=args.threads)
        rows = []
        tot = {"audio": 0.0, "ours": 0.0, "fw": 0.0, "cpu_ours": 0.0, "cpu_fw": 0.0}
        err = {"ours": [0, 0], "fw": [0, 0]}  # per unit kind: errors, reference units
        errs_by = {k: {"en": [0, 0], "zh": [0, 0]} for k in ("ours", "fw")}
        same = 0
        for c in clips:
            path = td / "clips" / c["file"]
            x = wav_samples(path)
            dur = len(x) / 16000
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run([binary, "transcribe", str(path), "-m", str(gguf), "--format", "json", "--beam-size", "1",
                                "--temperature-increment", "0", "-t",
                                str(args.threads), "--timing"], capture_output=True, text=True, check=True)
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_ours = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
            ours = json.loads(r.stdout)
            rtf_ours = float(re.search(r"transcribe ([0-9.]+) s", r.stderr).group(1))
            tokens = [t for s in ours["segments"] for t in s["tokens"]]
            _, want = ref.transcribe(x)
            t0, p0 = time.perf_counter(), time.process_time()
            segs, info = fw.transcribe(x, beam_size=1, temperature=0.0, without_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=False)
            fw_text = "".join(s.text for s in segs).strip()
            t_fw = time.perf_counter() - t0
            cpu_fw = time.process_time() - p0
            identical = tokens == want
            same += identical
            lang = c["language"]
            row = {"id": c["id"], "lang": lang, "audio_s": round(dur, 3), "identical": identical,
                   "ours": ours["text"], "faster_whisper": fw_text, "ours_s": rtf_ours, "fw_s": round(t_fw, 3)}
            for k, text in (("ours", ours["text"]), ("fw", fw_text)):
                ref_u, hyp_u = units(c["text"], lang), units(text, lang)
                e = edit_distance(ref_u, hyp_u)
                errs_by[k][lang][0] += e
                errs_by[k][lang][1] += len(ref_u)
                row[f"{k}_err"] = e
            tot["audio"] += dur
            tot["ours"] += rtf_ours
            tot["fw"] += t_fw
            tot["cpu_ours"] += cpu_ours
            tot["cpu_fw"] += cpu_fw
            rows.append(row)
            print(f"{c['id']:6s} {'=' if identical else '!'} ours[{rtf_ours / dur:.3f}] {ours['text'][:48]!r:52s} "
                  f"fw[{t_fw / dur:.3f}] {fw_text[:48]!r}", flush=True)
        summary = {
            "model": f"whisper-{args.size}", "edgellm_weights": args.quant or "F16", "threads": args.threads, "clips": len(clips),
            "identical_greedy_vs_ctranslate2": f"{same}/{len(clips)}",
            "wer_en": {k: round(v["en"][0] / max(1, v["en"][1]), 4) for k, v in errs_by.items()},
            "cer_zh": {k: round(v["zh"][0] / max(1, v["zh"][1]), 4) for k, v in errs_by.items()},
            "rtf": {"edgellm": round(tot["ours"] / tot["audio"], 4),
                    "faster_whisper_int8": round(tot["fw"] / tot["audio"], 4)},
            # CPU seconds per audio second (all threads; edgellm's includes its model load):
            # on a shared, overloaded machine wall time says more about the neighbours
            "cpu_per_audio_s": {"edgellm": round(tot["cpu_ours"] / tot["audio"], 4),
                                "faster_whisper_int8": round(tot["cpu_fw"] / tot["audio"], 4)},
            "audio_seconds": round(tot["audio"], 2),
        }
        print(json.dumps(summary, indent=1))
        if args.out:
            Path(args.out).write_text(json.dumps({"summary": summary, "clips": rows}, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
