"""The chat page's microphone button in headless Chromium with a fake audio device that plays an
espeak-ng clip (issue #13): click, wait while the clip plays, click again; the page encodes a WAV,
posts it to /v1/audio/transcriptions (the real Whisper tiny) and the input box then holds the
clip's words. Without a speech model the button is disabled and its tooltip says why."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import wave

import pytest

webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from server_harness import MODEL_ID, ServerProcess, server_binary  # noqa: E402
from whisper_ref import ct2_dir_or_skip, make_clips  # noqa: E402

CHROMIUM = os.environ.get("EDGELLM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EDGELLM_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    src = ct2_dir_or_skip("tiny")
    d = tmp_path_factory.mktemp("voice")
    gguf = d / "whisper-tiny.gguf"
    r = subprocess.run([server_binary(), "convert", str(src), str(gguf)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    c = make_clips(d, limit=1)[0]  # "Set the temperature to twenty one degrees."
    assert not c["noisy"]
    return gguf, d / c["file"], c["text"]


def browser_for(wav):
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,800",
              "--no-first-run", "--disable-extensions", "--autoplay-policy=no-user-gesture-required",
              # The microphone: granted without a prompt, a fake device playing the clip (in a loop).
              "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-audio-capture={wav}"):
        opts.add_argument(a)
    profile = tempfile.mkdtemp(prefix="edgellm-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    return drv, profile


def wait(drv, cond, timeout=60):
    return WebDriverWait(drv, timeout, poll_frequency=0.05).until(lambda d: cond(d))


def test_microphone_puts_the_spoken_words_in_the_input_box(clip):
    gguf, wav, text = clip
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    srv = ServerProcess(["--asr-model", str(gguf)], ctx=256, parallel=1, queue=2)
    drv, profile = browser_for(wav)
    try:
        drv.get(srv.url + "/")
        wait(drv, lambda d: MODEL_ID in d.find_element(By.ID, "model").text, 30)
        mic = drv.find_element(By.ID, "mic")
        wait(drv, lambda d: mic.is_enabled(), 10)
        assert "whisper-tiny" in mic.get_attribute("title")
        box = drv.find_element(By.ID, "input")
        box.send_keys("Hey car:")  # dictation adds to what is typed
        mic.click()
        wait(drv, lambda d: "recording" in mic.get_attribute("class"), 10)
        time.sleep(seconds + 0.7)  # the whole sentence (the fake device loops it)
        mic.click()
        wait(drv, lambda d: box.get_attribute("value").strip() != "Hey car:" or "speech:" in d.find_element(By.ID, "status").text,
             120)
        got = box.get_attribute("value").lower()
        assert got.startswith("hey car: "), got
        status = drv.find_element(By.ID, "status").text
        assert "transcribed" in status, status
        for word in ("temperature", "degrees"):
            assert word in got, (got, text)
        assert mic.is_enabled() and "recording" not in mic.get_attribute("class")
        shot = os.path.join(tempfile.gettempdir(), "edgellm-web-voice.png")
        drv.save_screenshot(shot)
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
        assert srv.stop() == 0, srv.output()


def test_without_a_speech_model_the_button_is_disabled_with_a_reason(clip):
    gguf, wav, text = clip
    srv = ServerProcess(ctx=256, parallel=1, queue=1)
    drv, profile = browser_for(wav)
    try:
        drv.get(srv.url + "/")
        wait(drv, lambda d: MODEL_ID in d.find_element(By.ID, "model").text, 30)
        mic = drv.find_element(By.ID, "mic")
        assert not mic.is_enabled()
        assert "--asr-model" in mic.get_attribute("title")
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
        assert srv.stop() == 0, srv.output()
