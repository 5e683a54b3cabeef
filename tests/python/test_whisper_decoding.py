"""Whisper decoding against faster-whisper running the same model.bin (CTranslate2 float32, issue
#13): segment timestamps (timestamp tokens, the timestamp rules, seeking to the last complete
segment across 30 s windows), the previous text and a user prompt as the window's prompt, the
no-speech check on silence and noise. Same tokens and the same segment boundaries. Uses the real
Whisper tiny (the test is about that model's decoding); EDGELLM_FULL_TESTS=1 adds base."""
import json
import os
import subprocess
import wave

import numpy as np
import pytest

from whisper_ref import ct2_dir_or_skip, make_clips, wav_samples

BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")
FULL = os.environ.get("EDGELLM_FULL_TESTS") == "1"
_MODELS = {}


def run(*args, timeout=900):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def write_wav(path, pcm):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())


def faster_whisper(ct2_dir, samples, **kw):
    """faster-whisper's segments: greedy at temperature 0 first, its default fallback, thresholds
    and condition_on_previous_text, no VAD, no word timestamps."""
    from faster_whisper import WhisperModel
    if str(ct2_dir) not in _MODELS:  # loaded once per module
        _MODELS[str(ct2_dir)] = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=2)
    model = _MODELS[str(ct2_dir)]
    args = dict(language="en", beam_size=1, word_timestamps=False, without_timestamps=False, vad_filter=False)
    args.update(kw)
    segments, _ = model.transcribe(samples, **args)
    return [dict(start=s.start, end=s.end, tokens=list(s.tokens), text=s.text, temperature=s.temperature)
            for s in segments]


def edgellm(gguf, path, *extra, beam=1):
    r = run("transcribe", path, "-m", gguf, "--format", "json", "-t", 2, "--beam-size", beam, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def assert_same_segments(got, want):
    assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in want], (got["text"], want)
    for g, w in zip(got["segments"], want):
        assert abs(g["start"] - w["start"]) < 1e-6 and abs(g["end"] - w["end"]) < 1e-6, (g, w)
        assert g["text"] == w["text"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    src = ct2_dir_or_skip("tiny")
    d = tmp_path_factory.mktemp("whisper_dec")
    gguf = d / "tiny.gguf"
    r = run("convert", src, gguf)
    assert r.returncode == 0, r.stderr
    clips = make_clips(d, limit=12)  # the English sentences
    # The twelve English sentences one after another with 0.75 s pauses (40 s), so the second
    # window starts where the first's last complete segment ended.
    parts = []
    for c in clips:
        if c["language"] == "en" and not c["noisy"]:
            parts += [np.round(wav_samples(d / c["file"]) * 32768).astype("<i2"), np.zeros(12000, "<i2")]
    write_wav(d / "long.wav", np.concatenate(parts))
    return src, gguf, d, clips


def test_segment_timestamps_equal_faster_whisper(setup):
    src, gguf, d, clips = setup
    path = d / "long.wav"
    want = faster_whisper(src, wav_samples(path))
    got = edgellm(gguf, path, "--timestamps")
    assert len(want) >= 4 and all(s["temperature"] == 0 for s in want)
    assert_same_segments(got, want)
    print(f"segments identical to faster-whisper: {len(want)} over {wav_samples(path).size / 16000:.1f} s")
    # Subtitles carry the same times.
    srt = run("transcribe", path, "-m", gguf, "--format", "srt", "-t", 2, "--beam-size", 1).stdout
    first = want[0]
    stamp = lambda t: f"{int(t // 3600):02d}:{int(t // 60) % 60:02d}:{int(t) % 60:02d},{round(t * 1000) % 1000:03d}"
    assert srt.startswith(f"1\n{stamp(first['start'])} --> {stamp(first['end'])}\n")
    assert srt.count(" --> ") == len(want)


def test_prompt_changes_decoding_as_in_faster_whisper(setup):
    """A user prompt (initial_prompt) is the text before the first window: it changes the
    transcript ("21" becomes words), in both engines alike."""
    src, gguf, d, clips = setup
    path = d / clips[0]["file"]
    prompt = "Twenty one, twenty two, twenty three degrees."
    plain = edgellm(gguf, path)
    want = faster_whisper(src, wav_samples(path), initial_prompt=prompt, without_timestamps=True)
    got = edgellm(gguf, path, "--prompt", prompt)
    assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in want]
    assert got["text"] != plain["text"], got["text"]


def test_silence_and_noise_give_no_text(setup):
    src, gguf, d, clips = setup
    rng = np.random.default_rng(13)
    write_wav(d / "silence.wav", np.zeros(16000 * 8, "<i2"))
    write_wav(d / "noise.wav", np.round(rng.standard_normal(16000 * 8) * 300).astype("<i2"))
    for name in ("silence.wav", "noise.wav"):
        want = faster_whisper(src, wav_samples(d / name))
        got = edgellm(gguf, d / name, "--timestamps")
        assert got["text"] == "" and got["segments"] == [], (name, got["text"])
        assert [s["tokens"] for s in want] == [], (name, want)


def test_beam_search_equals_faster_whisper(setup):
    """Beam search (5 beams, patience 1, length penalty 1: faster-whisper's defaults and
    `edgellm transcribe`'s) on a noisy clip without timestamps and two clips with. (On the 40 s
    recording one segment's end differs by one timestamp, <|2.90|> for <|2.88|>: a near tie
    between neighbouring timestamps that float rounding of the beams decides.)"""
    src, gguf, d, clips = setup
    by_id = {c["id"]: d / c["file"] for c in clips}
    for cid, ts in (("en00n", False), ("en05", True), ("en07n", True)):
        want = faster_whisper(src, wav_samples(by_id[cid]), beam_size=5, without_timestamps=not ts)
        got = edgellm(gguf, by_id[cid], *(["--timestamps"] if ts else []), beam=5)
        if ts:
            assert_same_segments(got, want)
        else:
            assert [s["tokens"] for s in got["segments"]] == [s["tokens"] for s in want], cid


@pytest.mark.skipif(not FULL, reason="Whisper base runs with EDGELLM_FULL_TESTS=1")
def test_base_segment_timestamps_equal_faster_whisper(setup, tmp_path):
    src_tiny, _, d, clips = setup
    src = ct2_dir_or_skip("base")
    gguf = tmp_path / "base.gguf"
    assert run("convert", src, gguf).returncode == 0
    path = d / "long.wav"
    assert_same_segments(edgellm(gguf, path, "--timestamps", "--language", "en"),
                         faster_whisper(src, wav_samples(path)))
