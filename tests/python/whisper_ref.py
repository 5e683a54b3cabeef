"""Helpers of the Whisper tests (issue #13): an independent NumPy reader of CTranslate2's
model.bin, the model folders, and the speech clips."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import model_dir

SOURCE_DIR = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}


def ct2_dir_or_skip(size: str = "tiny") -> Path:
    d = model_dir() / f"whisper-{size}-ct2"
    if not (d / "model.bin").is_file():
        pytest.skip(f"{d} is absent (scripts/fetch-models whisper-{size})")
    return d


def read_ct2(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """{name: array} of a CTranslate2 model.bin (version 6) and its aliases, read with struct."""
    buf = Path(path).read_bytes()
    off = 0

    def take(fmt):
        nonlocal off
        vals = struct.unpack_from("<" + fmt, buf, off)
        off += struct.calcsize("<" + fmt)
        return vals

    def string():
        nonlocal off
        (n,) = take("H")
        s = buf[off:off + n - 1].decode()
        off += n
        return s

    (version,) = take("I")
    assert version == 6
    string()
    take("I")
    (count,) = take("I")
    variables = {}
    for _ in range(count):
        name = string()
        (rank,) = take("B")
        dims = take(f"{rank}I") if rank else ()
        type_id, nbytes = take("B")[0], take("I")[0]
        variables[name] = np.frombuffer(buf, dtype=CT2_DTYPES[type_id], count=nbytes // np.dtype(CT2_DTYPES[type_id]).itemsize,
                                        offset=off).reshape(dims)
        off += nbytes
    (n_alias,) = take("I")
    aliases = {}
    for _ in range(n_alias):
        a = string()
        aliases[a] = string()
    assert off == len(buf)
    return variables, aliases


def make_clips(out: Path, limit: int = 0) -> list:
    import json
    args = [sys.executable, str(SOURCE_DIR / "scripts" / "make-speech-clips"), str(out)]
    if limit:
        args += ["--limit", str(limit)]
    subprocess.run(args, check=True, capture_output=True)
    return json.loads((out / "clips.json").read_text(encoding="utf-8"))


def wav_samples(path) -> np.ndarray:
    import wave
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


class Ct2Reference:
    """CTranslate2 running the same model.bin: faster-whisper's NumPy log-mel of the first 30 s
    window (last frame dropped, zero-padded to 3000 frames as faster-whisper does), the
    encoder, language detection and greedy generation (beam 1, no timestamps, suppress_blank,
    the model's suppress list)."""

    def __init__(self, ct2_dir: Path, threads: int = 2, compute_type: str = "float32"):
        import ctranslate2
        from faster_whisper.feature_extractor import FeatureExtractor
        import tokenizers
        self.model = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type=compute_type,
                                                intra_threads=threads)
        self.fe = FeatureExtractor(feature_size=80)
        self.tok = tokenizers.Tokenizer.from_file(str(ct2_dir / "tokenizer.json"))
        self.vocab = (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")

    def features(self, samples: np.ndarray):
        import ctranslate2
        f = self.fe(samples)[:, :-1][:, :3000]
        f = np.pad(f, ((0, 0), (0, 3000 - f.shape[1])))
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(f[None], dtype=np.float32))

    def encode(self, samples: np.ndarray) -> np.ndarray:
        return np.array(self.model.encode(self.features(samples)))[0]

    def transcribe(self, samples: np.ndarray, language: str = "auto") -> tuple[str, list[int]]:
        feats = self.features(samples)
        ids = {t: i for i, t in enumerate(self.vocab)}
        prompt = [ids["<|startoftranscript|>"]]
        lang = "en"
        if self.model.is_multilingual:
            if language == "auto":
                enc = self.model.encode(feats)
                lang = self.model.detect_language(enc)[0][0][0][2:-2]
            else:
                lang = language
            prompt += [ids[f"<|{lang}|>"], ids["<|transcribe|>"]]
        prompt.append(ids["<|notimestamps|>"])
        r = self.model.generate(feats, [prompt], beam_size=1, suppress_blank=True, suppress_tokens=[-1],
                                max_length=448)
        return lang, list(r[0].sequences_ids[0])
