"""POST /v1/audio/transcriptions (serve --asr-model, issue #13) with the official openai client on
the real Whisper tiny (the test is about that model's answers through the server): the text of
every response_format is the one `edgellm transcribe` prints for the same espeak-ng clip; bad
uploads (no file part, empty, not audio, a truncated WAV, no samples, an unknown format, an
oversized body) get OpenAI error objects and the server keeps serving; a chat answers during a
transcription; a server without a speech model says how to get one. Figures (latency, real-time
factor) are printed and saved to $EDGELLM_RESULTS_DIR/server_audio.json."""
from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import uuid
import wave

import pytest

from conftest import write_results
from server_harness import MODEL_ID, ServerProcess, get, http, server_binary
from whisper_ref import ct2_dir_or_skip, make_clips

openai = pytest.importorskip("openai")

MAX_AUDIO = 1_000_000  # --max-audio-body of the test server (bytes)
MAX_BODY = 4096      # --max-body: every clip is larger, so a transcription shows the audio limit applies


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    src = ct2_dir_or_skip("tiny")
    d = tmp_path_factory.mktemp("asr")
    gguf = d / "whisper-tiny.gguf"
    r = subprocess.run([server_binary(), "convert", str(src), str(gguf)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    clips = [c for c in make_clips(d, limit=2) if not c["noisy"]]
    return gguf, d, clips


@pytest.fixture(scope="module")
def server(setup):
    gguf = setup[0]
    srv = ServerProcess(["--asr-model", str(gguf), "--max-audio-body", str(MAX_AUDIO), "--max-body", str(MAX_BODY)],
                        ctx=512, parallel=1, queue=2)
    yield srv
    assert srv.stop() == 0, srv.output()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=120)


def cli_transcribe(gguf, path, fmt, *extra):
    r = subprocess.run([server_binary(), "transcribe", str(path), "-m", str(gguf), "--format", fmt, "-t", "2",
                        "--beam-size", "1", *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """A multipart/form-data body by hand (stdlib only): fields {name: str}, files {name: (filename, bytes)}."""
    b = uuid.uuid4().hex
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    for k, (fn, data) in files.items():
        out.write(f'--{b}\r\nContent-Disposition: form-data; name="{k}"; filename="{fn}"\r\n'
                  f'Content-Type: application/octet-stream\r\n\r\n'.encode())
        out.write(data + b"\r\n")
    out.write(f"--{b}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={b}"


def post_form(srv, fields, files, path="/v1/audio/transcriptions"):
    body, ctype = multipart(fields, files)
    return http("POST", srv.url + path, body, headers={"Content-Type": ctype})


def wav_bytes(n_frames: int, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * n_frames)
    return buf.getvalue()


def test_every_format_is_the_cli_transcript(server, client, setup):
    gguf, d, clips = setup
    figures = []
    for i, c in enumerate(clips):
        path = d / c["file"]
        cli = json.loads(cli_transcribe(gguf, path, "json"))
        want = cli["text"]
        words = [w.strip(".,?'").lower() for w in c["text"].split()]
        assert sum(w in want.lower() for w in words) >= len(words) // 2, (want, c["text"])  # it is that sentence
        with open(path, "rb") as f:
            t0 = time.monotonic()
            j = client.audio.transcriptions.create(model="whisper-1", file=f)
            latency = time.monotonic() - t0
        assert j.text == want
        with wave.open(str(path)) as w:
            audio_s = w.getnframes() / w.getframerate()
        figures.append({"clip": c["file"], "audio_s": audio_s, "latency_s": latency, "rtf": latency / audio_s})
        if i > 0:
            continue  # the other formats on the first clip only (each is a whole transcription)
        for fmt in ("text", "srt", "vtt"):
            with open(path, "rb") as f:
                got = client.audio.transcriptions.create(model="whisper-tiny", file=f, response_format=fmt,
                                                         language="en", temperature=0.0, prompt="Cockpit commands.")
            assert isinstance(got, str) and got == cli_transcribe(gguf, path, fmt, "--language", "en",
                                                                  "--prompt", "Cockpit commands."), fmt
        with open(path, "rb") as f:
            v = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                                   timestamp_granularities=["segment"])
        assert v.text == want and v.language == "english" and abs(v.duration - audio_s) < 0.01
        # verbose_json has the model's segment timestamps: the CLI's json with --timestamps.
        cli_ts = json.loads(cli_transcribe(gguf, path, "json", "--timestamps"))
        assert [s.text for s in v.segments] == [s["text"] for s in cli_ts["segments"]]
        assert [s.tokens for s in v.segments] == [s["tokens"] for s in cli_ts["segments"]]
        assert [s.end for s in v.segments] == [round(s["end"], 3) for s in cli_ts["segments"]]
        assert v.segments[0].start == 0 and v.segments[0].temperature == 0
        assert all(s.avg_logprob < 0 and 0 <= s.no_speech_prob <= 1 and s.compression_ratio > 0 for s in v.segments)
        assert v.usage.type == "duration" and v.usage.seconds == v.duration
    print("\n".join(f"{f['clip']}: {f['audio_s']:.2f} s of audio in {f['latency_s'] * 1000:.0f} ms "
                    f"(real-time factor {f['rtf']:.3f})" for f in figures))
    write_results("server_audio.json", figures)


def test_raw_form_and_content_types(server, setup):
    gguf, d, clips = setup
    data = (d / clips[0]["file"]).read_bytes()
    assert len(data) > MAX_BODY  # the audio limit, not --max-body, applies to this route
    r = post_form(server, {}, {"file": ("a.wav", data)})  # no model: allowed; json by default
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert set(r.json()) == {"text", "usage"} and float(r.headers["X-Edgellm-Audio-Seconds"]) > 1
    assert float(r.headers["X-Edgellm-Processing-Seconds"]) > 0


def error(r, status, param=None, code=None):
    assert r.status_code == status, (r.status_code, r.text)
    e = r.json()["error"]
    assert e["message"] and e["type"] == "invalid_request_error"
    if param is not None:
        assert e["param"] == param, e
    if code is not None:
        assert e["code"] == code, e
    return e["message"]


def test_bad_uploads_are_openai_errors_and_the_server_keeps_serving(server, client, setup):
    gguf, d, clips = setup
    clip = (d / clips[0]["file"]).read_bytes()
    m = {"model": "whisper-1"}
    error(post_form(server, m, {}), 400, "file")  # no file part
    error(http("POST", server.url + "/v1/audio/transcriptions", {"model": "whisper-1"}), 400, "file")  # JSON, not a form
    assert "empty" in error(post_form(server, m, {"file": ("e.wav", b"")}), 400, "file", "invalid_audio")
    assert "not a readable audio file" in error(post_form(server, m, {"file": ("x.wav", b"hello, not audio" * 50)}),
                                                 400, "file", "invalid_audio")
    error(post_form(server, m, {"file": ("t.wav", clip[:30])}), 400, "file", "invalid_audio")  # cut inside the header
    assert "no samples" in error(post_form(server, m, {"file": ("z.wav", wav_bytes(0))}), 400, "file", "invalid_audio")
    error(post_form(server, {**m, "response_format": "mp3"}, {"file": ("a.wav", clip)}), 400, "response_format")
    error(post_form(server, {**m, "temperature": "1.5"}, {"file": ("a.wav", clip)}), 400, "temperature")
    error(post_form(server, {**m, "language": "zh"}, {"file": ("a.wav", clip)}), 400, "language")  # English-only tiny
    error(post_form(server, {**m, "stream": "true"}, {"file": ("a.wav", clip)}), 400, "stream")
    error(post_form(server, {"model": MODEL_ID}, {"file": ("a.wav", clip)}), 400, "model", "model_not_transcription")
    error(post_form(server, {"model": "nope"}, {"file": ("a.wav", clip)}), 404, "model", "model_not_found")
    msg = error(post_form(server, m, {"file": ("big.wav", b"\0" * (MAX_AUDIO + 1))}), 413, code="request_too_large")
    assert str(MAX_AUDIO) in msg
    # Through the client too: its error carries the server's message.
    with pytest.raises(openai.BadRequestError, match="not a readable audio file"):
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"RIFF....WAVEjunk"))
    # Still serving: a transcription and a chat.
    r = post_form(server, {**m, "response_format": "text"}, {"file": ("a.wav", clip)})
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; charset=utf-8" and r.text.endswith("\n")
    assert get(server.url + "/health").status_code == 200


def test_chat_answers_while_a_transcription_runs(server, setup):
    gguf, d, clips = setup
    # Several seconds of speech (the clips end to end, padded to one window): long enough to overlap.
    frames = b""
    for c in clips:
        with wave.open(str(d / c["file"])) as w:
            frames += w.readframes(w.getnframes())
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(frames + b"\0\0" * (16000 * 10))
    out = {}

    def transcribe():
        out["asr"] = post_form(server, {"response_format": "text"}, {"file": ("long.wav", buf.getvalue())})

    t = threading.Thread(target=transcribe)
    t.start()
    chat = http("POST", server.url + "/v1/chat/completions",
                {"model": MODEL_ID, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    t.join(timeout=300)
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] is not None
    assert out["asr"].status_code == 200 and "temperature" in out["asr"].text.lower()


def test_models_lists_the_speech_model(server):
    ids = {m["id"]: m for m in get(server.url + "/v1/models").json()["data"]}
    assert ids["whisper-tiny"]["meta"]["kind"] == "transcription"
    assert ids["whisper-tiny"]["meta"]["max_upload_bytes"] == MAX_AUDIO
    assert get(server.url + "/v1/models/whisper-tiny").json()["id"] == "whisper-tiny"


def test_without_a_speech_model_the_route_says_how_to_get_one(setup):
    gguf, d, clips = setup
    srv = ServerProcess(ctx=256, parallel=1, queue=1)
    try:
        r = post_form(srv, {"model": "whisper-1"}, {"file": ("a.wav", (d / clips[0]["file"]).read_bytes())})
        assert "--asr-model" in error(r, 400, "model", "transcription_not_enabled")
        assert all(m["meta"].get("kind") != "transcription" for m in get(srv.url + "/v1/models").json()["data"])
        assert get(srv.url + "/health").status_code == 200
    finally:
        assert srv.stop() == 0, srv.output()
