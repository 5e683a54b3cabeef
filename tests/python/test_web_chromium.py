"""The web chat page in headless Chromium (Debian chromium + chromium-driver, selenium):
loads /, shows the model name, sends a message, sees the answer stream in with tokens/s and the
tier, keeps the conversation across a reload (localStorage), and the stop button ends a long
answer. Saves a screenshot to $TMPDIR/edgellm-web-chat.png.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from server_harness import MODEL_ID, ServerProcess, get  # noqa: E402

CHROMIUM = os.environ.get("EDGELLM_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EDGELLM_CHROMEDRIVER", "/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def server():
    srv = ServerProcess(ctx=1024, parallel=2, queue=4)
    yield srv
    assert srv.stop() == 0, srv.output()


@pytest.fixture(scope="module")
def browser():
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})")
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1100,800", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    profile = tempfile.mkdtemp(prefix="edgellm-chromium-")
    opts.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(drv, cond, timeout=120):
    return WebDriverWait(drv, timeout, poll_frequency=0.05).until(lambda d: cond(d))


def test_page_is_self_contained(server):
    html = get(server.url + "/").text
    assert "<script src=\"app.js\"></script>" in html
    for asset in ("app.js", "style.css"):
        r = get(server.url + "/" + asset)
        assert r.status_code == 200 and r.content
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    assert get(server.url + "/../etc/passwd").status_code == 404


def test_chat_streams_an_answer(server, browser):
    drv = browser
    drv.get(server.url + "/")
    wait(drv, lambda d: MODEL_ID in d.find_element(By.ID, "model").text, 30)
    drv.execute_script("localStorage.clear();")
    drv.refresh()
    wait(drv, lambda d: MODEL_ID in d.find_element(By.ID, "model").text, 30)
    # Make the answer long enough to watch it grow.
    drv.find_element(By.ID, "settings-toggle").click()
    mt = drv.find_element(By.ID, "max-tokens")
    mt.clear()
    mt.send_keys("48")
    drv.find_element(By.ID, "settings-toggle").click()

    box = drv.find_element(By.ID, "input")
    box.send_keys("Write two sentences about the sea.")
    drv.find_element(By.ID, "send").click()
    # The stop button shows while streaming, and the answer grows in several steps.
    wait(drv, lambda d: d.find_element(By.ID, "stop").is_displayed(), 30)
    lengths = set()
    t_end = time.monotonic() + 120
    while time.monotonic() < t_end:
        texts = drv.execute_script(
            "return Array.from(document.querySelectorAll('.msg.assistant .text')).map(e => e.textContent)")
        if texts:
            lengths.add(len(texts[-1]))
        if not drv.find_element(By.ID, "stop").is_displayed():
            break
        time.sleep(0.02)
    assert len([n for n in lengths if n > 0]) >= 2, f"answer did not stream: lengths seen {sorted(lengths)}"
    answer = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")[-1].text
    assert answer.strip()
    meta = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .meta")[-1].text
    assert "tok/s" in meta and "tier local" in meta, meta
    assert "local" in drv.find_element(By.ID, "tier").text
    shot = os.path.join(tempfile.gettempdir(), "edgellm-web-chat.png")
    drv.save_screenshot(shot)
    # The conversation survives a reload.
    drv.refresh()
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg")) == 2, 30)
    assert drv.find_elements(By.CSS_SELECTOR, ".msg.user .text")[0].text == "Write two sentences about the sea."
    assert drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")[0].text == answer


def test_stop_button_ends_generation(server, browser):
    drv = browser
    drv.get(server.url + "/")
    drv.find_element(By.ID, "new-chat").click()
    drv.find_element(By.ID, "settings-toggle").click()
    mt = drv.find_element(By.ID, "max-tokens")
    mt.clear()
    mt.send_keys("1000")
    drv.find_element(By.ID, "settings-toggle").click()
    drv.find_element(By.ID, "input").send_keys("Write a very long story about a dragon and a knight.")
    drv.find_element(By.ID, "send").click()
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")) == 1 and
         d.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")[0].text.strip() != "", 60)
    drv.find_element(By.ID, "stop").click()
    wait(drv, lambda d: d.find_element(By.ID, "send").is_displayed(), 10)
    assert "stopped" in drv.find_element(By.ID, "status").text
    # The server frees the slot: the dropped stream cancels the generation.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and get(server.url + "/health").json()["slots_processing"] != 0:
        time.sleep(0.1)
    assert get(server.url + "/health").json()["slots_processing"] == 0
