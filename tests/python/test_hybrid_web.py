"""The web page under hybrid routing, in headless Chromium: each answer shows the tier and why,
and "Ask the cloud" re-answers the last turn with route.escalate, which the cloud (a second
`edgellm serve` behind the recording pass-through) really receives; private data the policy
blocks stays on the device even then, and the page says so. Saves a screenshot to
$TMPDIR/edgellm-web-hybrid.png.
"""
from __future__ import annotations

import os
import tempfile

import pytest

pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By  # noqa: E402

from hybrid_recorder import recorded_cloud, write_policy  # noqa: E402
from server_harness import ServerProcess  # noqa: E402
from test_web_chromium import browser, wait  # noqa: E402,F401 - the shared Chromium fixture

ID_CARD = "11010519491231002X"


@pytest.fixture(scope="module")
def cloud():
    with recorded_cloud() as rec:
        yield rec


@pytest.fixture(scope="module")
def edge(cloud):
    tmp = tempfile.mkdtemp(prefix="edgellm-web-hybrid-")
    path = write_policy(tmp, "web", cloud.url, mode="prefer-local",
                        confidence={"min_quantile_logprob": -1e9, "max_mean_entropy": 1e9})
    srv = ServerProcess(["--policy", path], ctx=1024, parallel=2)
    yield srv
    assert srv.stop() == 0, srv.output()


def last_answer(drv):
    metas = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .meta")
    texts = drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .text")
    return texts[-1].text, metas[-1].text, metas[-1].get_attribute("data-reason")


def send(drv, text):
    drv.find_element(By.ID, "input").send_keys(text)
    drv.find_element(By.ID, "send").click()
    wait(drv, lambda d: d.find_element(By.ID, "send").is_displayed() and "done" in d.find_element(By.ID, "status").text)


def ask_cloud(drv):
    n = len(drv.find_elements(By.CSS_SELECTOR, ".msg"))
    drv.find_element(By.ID, "ask-cloud").click()
    wait(drv, lambda d: d.find_element(By.ID, "send").is_displayed() and "done" in d.find_element(By.ID, "status").text)
    assert len(drv.find_elements(By.CSS_SELECTOR, ".msg")) == n  # the answer was replaced


def test_tier_and_reason_shown_and_ask_the_cloud(edge, cloud, browser):  # noqa: F811
    drv = browser
    drv.get(edge.url + "/")
    drv.execute_script("localStorage.clear();")
    drv.refresh()
    wait(drv, lambda d: "routing prefer-local + cloud" in d.find_element(By.ID, "model").text, 30)
    assert not drv.find_element(By.ID, "ask-cloud").is_displayed()  # nothing to re-answer yet

    before = cloud.count()
    send(drv, "Name a colour.")
    text, meta, reason = last_answer(drv)
    assert text.strip() and "tier local" in meta and "why: device first" in meta, meta
    assert reason == "prefer_local"
    assert cloud.count() == before  # a confident device answer stays on the device

    assert drv.find_element(By.ID, "ask-cloud").is_displayed()
    ask_cloud(drv)
    text, meta, reason = last_answer(drv)
    assert text.strip() and "tier cloud" in meta and "why: the cloud was asked for" in meta, meta
    assert reason == "explicit"
    assert "cloud" in drv.find_element(By.ID, "tier").text
    assert cloud.count() == before + 1
    sent = cloud.bodies[-1]
    assert "route" not in sent and sent["messages"][-1] == {"role": "user", "content": "Name a colour."}
    assert sent["stream"] is True

    # Blocked private data: the button still asks, the server keeps the turn on the device.
    send(drv, f"My ID number is {ID_CARD}. Is it valid?")
    ask_cloud(drv)
    text, meta, reason = last_answer(drv)
    assert "tier local" in meta and "private data must stay on the device" in meta, meta
    assert reason == "privacy_block"
    assert cloud.count() == before + 1
    assert ID_CARD not in cloud.sent_text()
    drv.save_screenshot(os.path.join(tempfile.gettempdir(), "edgellm-web-hybrid.png"))
    # Tier and reason survive a reload (kept with the conversation).
    drv.refresh()
    wait(drv, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".msg.assistant")) == 2, 30)
    metas = [m.get_attribute("data-reason") for m in drv.find_elements(By.CSS_SELECTOR, ".msg.assistant .meta")]
    assert metas == ["explicit", "privacy_block"]
