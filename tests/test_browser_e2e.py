"""End to end in real headless Chromium: its fake microphone asks a question, the avatar answers on video."""
from __future__ import annotations

import shutil
import time
import urllib.request

import pytest

from benchmarks.browser import agent_server, chromium_args

from .conftest import ARTIFACTS, espeak

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]


def wait_until_no_sessions(url: str, seconds: float = 15) -> str:
    deadline = time.time() + seconds
    health = ""
    while time.time() < deadline:
        health = urllib.request.urlopen(url + "/healthz").read().decode()
        if '"sessions": 0' in health:
            break
        time.sleep(0.5)
    return health


# Samples the received video 15 times, 120 ms apart, and returns the largest mean change of the
# lower-middle of the picture (where the mouth is framed) between two samples.
MOUTH_CHANGE_JS = """async () => {
  const video = document.getElementById('avatar-video');
  const canvas = document.createElement('canvas');
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let previous = null, largest = 0;
  for (let i = 0; i < 15; i++) {
    ctx.drawImage(video, video.videoWidth * 0.35, video.videoHeight * 0.5, video.videoWidth * 0.3, video.videoHeight * 0.3, 0, 0, 64, 64);
    const pixels = ctx.getImageData(0, 0, 64, 64).data;
    if (previous) {
      let sum = 0;
      for (let j = 0; j < pixels.length; j += 4) sum += Math.abs(pixels[j] - previous[j]);
      largest = Math.max(largest, sum / (pixels.length / 4));
    }
    previous = pixels;
    await new Promise((r) => setTimeout(r, 120));
  }
  return largest;
}"""


@pytest.fixture(scope="module")
def server():
    with agent_server("e2e-server.log") as served:
        yield served.url


def test_browser_call_gets_spoken_answer_and_moving_face(server, speech_dir):
    from playwright.sync_api import sync_playwright

    # The fake microphone loops this file: a pause for the greeting, the question, then a long pause for the answer.
    question = espeak("What are your opening hours?", speech_dir / "browser_question.wav", rate=48000, lead_s=6.0, tail_s=25.0)
    args = chromium_args(question)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": 600, "height": 900})
        page.goto(server)
        page.click("#call")
        page.wait_for_function(
            "() => (window.avatarEvents || []).some(e => e.type === 'avatar' && e.text.startsWith('We are open'))", timeout=90_000
        )
        events = page.evaluate("window.avatarEvents")
        assert any(e["type"] == "user" and "hours" in e["text"].lower() for e in events), events
        # While the answer is spoken: frames keep arriving, and the mouth region of the picture changes.
        frames_before = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        mouth_change = page.evaluate(MOUTH_CHANGE_JS)
        frames_after = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        page.screenshot(path=str(ARTIFACTS / "e2e-call.png"))
        assert page.locator("#captions li.avatar").count() >= 2  # greeting and answer
        page.click("#hangup")
        browser.close()
    print(f"browser: {frames_after - frames_before} frames during the answer, mouth region changed by up to {mouth_change:.1f} grey levels")
    assert frames_after - frames_before >= 10, "video frames stopped arriving"
    assert mouth_change > 3.0, "the mouth does not move on the received video"
    assert '"sessions": 0' in wait_until_no_sessions(server)


def test_denied_microphone_is_explained_in_words(server):
    from playwright.sync_api import sync_playwright

    args = ["--use-fake-device-for-media-stream", "--deny-permission-prompts", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        page.goto(server)
        page.click("#call")
        page.wait_for_function("() => document.getElementById('status').classList.contains('error')", timeout=20_000)
        status = page.inner_text("#status")
        page.screenshot(path=str(ARTIFACTS / "e2e-mic-denied.png"))
        browser.close()
    assert "Microphone permission was denied" in status
