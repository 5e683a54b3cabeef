"""Long audio in bounded memory (issue #13): `edgellm transcribe` decodes, resamples and computes
the log-mel window by window, so its peak resident memory does not grow with the recording's
length. Silent WAVs (little to decode, so the windows go fast) of 1 and 4 minutes here, 2 hours
with EDGELLM_FULL_TESTS=1; both are several windows (a second window raises the peak once, by
~12 MB, whatever follows). Holding the whole file would add 96 KB per second (float samples and
the log-mel): 17 MB more for the 4 minutes. Without temperature fallback, so every window takes
the same path (a fallback's extra decoder states would raise the peak by themselves). Uses the
real Whisper tiny (the windows run its encoder)."""
import os
import subprocess
import wave

import pytest

from whisper_ref import ct2_dir_or_skip

BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")
FULL = os.environ.get("EDGELLM_FULL_TESTS") == "1"


def silent_wav(path, seconds):
    block = bytes(2 * 16000 * 60)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        left = seconds * 16000 * 2
        while left > 0:
            w.writeframes(block[: min(left, len(block))])
            left -= len(block)


def test_memory_does_not_grow_with_length(tmp_path):
    src = ct2_dir_or_skip("tiny")
    gguf = tmp_path / "tiny.gguf"
    assert subprocess.run([BIN, "convert", str(src), str(gguf)], capture_output=True).returncode == 0
    peaks = {}
    for seconds in (60, 7200 if FULL else 240):
        wav = tmp_path / f"silence{seconds}.wav"
        silent_wav(wav, seconds)
        args = [BIN, "transcribe", wav, "-m", gguf, "--beam-size", 1, "--temperature-increment", 0,
                "--format", "json", "-t", 2]
        r = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", *map(str, args)],
                           capture_output=True, text=True, timeout=3600)
        assert r.returncode == 0, r.stderr
        assert '"duration":%.1f' % seconds in r.stdout.replace(" ", "")
        peaks[seconds] = int(r.stderr.rsplit("maxrss_kb=", 1)[1].split()[0]) / 1024
        wav.unlink()
    print("peak RSS (MB) by audio seconds:", {k: round(v, 1) for k, v in peaks.items()})
    short, long = peaks.values()
    assert long - short < 8, peaks
