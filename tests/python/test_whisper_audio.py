"""Audio input of the Whisper path (issue #13): WAV/FLAC/OGG/MP3 decoding (libsndfile), resampling
to 16 kHz (libsamplerate) and the 80-bin log-mel (FFTW) against faster-whisper's NumPy log-mel;
bad input is a clear error. No model needed."""
import os
import shutil
import subprocess
import wave

import numpy as np
import pytest

from whisper_ref import make_clips

BIN = os.environ.get("EDGELLM_BIN", "build/edgellm")
pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="espeak-ng or sox absent")


def features(path, tmp_path):
    out = tmp_path / "mel.f32"
    r = subprocess.run([BIN, "features", str(path), str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    n_mels, n_frames = map(int, r.stdout.split())
    return np.fromfile(out, dtype="<f4").reshape(n_mels, n_frames)


def samples(path):
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def reference_mel(x):
    from faster_whisper.feature_extractor import FeatureExtractor
    return FeatureExtractor(feature_size=80)(x)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    clips = make_clips(d, limit=1)
    return d / clips[1]["file"]  # the noisy one: energy in every band


def test_log_mel_matches_numpy_reference(clip, tmp_path):
    got = features(clip, tmp_path)
    ref = reference_mel(samples(clip))
    assert got.shape == ref.shape == (80, len(samples(clip)) // 160 + 1)
    diff = np.abs(got - ref).max()
    print(f"log-mel max |diff| vs NumPy: {diff:.2e}")
    assert diff < 1e-4


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_compressed_formats(clip, tmp_path, fmt):
    out = tmp_path / f"clip.{fmt}"
    if fmt == "mp3":  # sox has no MP3 encoder on Debian; PyAV (a faster-whisper dependency) does
        import av
        x = (samples(clip) * 32767).astype(np.int16)
        with av.open(str(out), "w") as c:
            s = c.add_stream("mp3", rate=16000)
            s.layout = "mono"
            frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 16000
            for p in s.encode(frame):
                c.mux(p)
            for p in s.encode(None):
                c.mux(p)
    else:
        subprocess.run(["sox", str(clip), str(out)], check=True)
    got = features(out, tmp_path)
    ref = reference_mel(samples(clip))
    n = min(got.shape[1], ref.shape[1])
    assert abs(got.shape[1] - ref.shape[1]) < 0.1 * ref.shape[1]
    if fmt == "flac":  # lossless: the same samples
        assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-4
    else:  # lossy (and MP3's encoder delay): the same sound, roughly
        assert np.corrcoef(got[:, : n - 20].ravel(), ref[:, : n - 20].ravel())[0, 1] > 0.5 if fmt == "mp3" else \
            np.abs(got[:, :n] - ref[:, :n]).mean() < 0.1


def test_resampled_to_16k(clip, tmp_path):
    hi = tmp_path / "clip44k.wav"
    subprocess.run(["sox", "-R", str(clip), "-r", "44100", "-b", "16", "-c", "2", str(hi)], check=True)
    got = features(hi, tmp_path)
    ref = reference_mel(samples(clip))
    assert abs(got.shape[1] - ref.shape[1]) <= 1
    n = min(got.shape[1], ref.shape[1])
    assert np.abs(got[:, :n] - ref[:, :n]).mean() < 0.05  # two resamplers: close, not equal


def test_bad_input_is_a_clear_error(clip, tmp_path):
    cases = {}
    cases["empty"] = b""
    cases["text"] = b"this is not audio at all\n" * 20
    cases["truncated"] = clip.read_bytes()[:30]  # a WAV cut inside its header
    with wave.open(str(tmp_path / "zero.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    cases["zero-length"] = (tmp_path / "zero.wav").read_bytes()
    cases["too-short"] = None
    with wave.open(str(tmp_path / "short.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 50)
    for name, data in cases.items():
        p = tmp_path / "short.wav" if data is None else tmp_path / f"{name}.wav"
        if data is not None:
            p.write_bytes(data)
        r = subprocess.run([BIN, "features", str(p), str(tmp_path / "o.f32")], capture_output=True, text=True)
        assert r.returncode == 1, (name, r.returncode, r.stderr)
        assert r.stderr.startswith("error: ") and str(p) in r.stderr or "too short" in r.stderr, (name, r.stderr)
    r = subprocess.run([BIN, "features", str(tmp_path / "empty.wav"), str(tmp_path / "o.f32")],
                       capture_output=True, text=True)
    assert "empty" in r.stderr
    r = subprocess.run([BIN, "features", str(tmp_path / "absent.wav"), str(tmp_path / "o.f32")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "absent.wav" in r.stderr
