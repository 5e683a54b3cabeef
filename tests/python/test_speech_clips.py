"""scripts/make-speech-clips (issue #13): the Whisper test set is deterministic 16 kHz mono
speech from espeak-ng with the sentence it speaks, and a noise-added copy of each clip."""
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(os.environ.get("EDGELLM_SOURCE_DIR", Path(__file__).resolve().parents[2])) / "scripts" / "make-speech-clips"


def make(out: Path, limit: int) -> list:
    subprocess.run([sys.executable, str(SCRIPT), str(out), "--limit", str(limit)], check=True,
                   capture_output=True)
    return json.loads((out / "clips.json").read_text(encoding="utf-8"))


def samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="espeak-ng or sox absent")
def test_clips_are_deterministic_speech_with_noisy_twins(tmp_path):
    a = make(tmp_path / "a", 2)
    b = make(tmp_path / "b", 2)
    assert a == b and len(a) == 4
    assert [c["noisy"] for c in a] == [False, True, False, True]
    for c in a:
        assert (tmp_path / "a" / c["file"]).read_bytes() == (tmp_path / "b" / c["file"]).read_bytes()
        x = samples(tmp_path / "a" / c["file"]).astype(np.float64)
        assert len(x) > 16000 * 0.5 and np.abs(x).max() > 1000  # speech, not silence
    clean, noisy = (samples(tmp_path / "a" / a[i]["file"]).astype(np.float64) for i in (0, 1))
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert 13 < snr < 17  # 15 dB white noise
