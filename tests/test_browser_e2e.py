"""End to end in real headless Chromium: its fake microphone asks a question, the avatar answers on video."""
from __future__ import annotations

import shutil
import time
import urllib.request

import pytest

from benchmarks.browser import agent_server, chromium_args

import numpy as np

from benchmarks.speech_sets import spoken
from models.audio import write_wav

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


# The received frame as drawn: a PNG of it, and the darkest pixel of its top 4% (the backdrop when the framing leaves room above the hair).
RECEIVED_FRAME_JS = """() => {
  const video = document.getElementById('avatar-video');
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(video, 0, 0);
  const band = ctx.getImageData(0, 0, canvas.width, Math.max(2, Math.round(canvas.height * 0.04))).data;
  let darkest = 255;
  for (let j = 0; j < band.length; j += 4) darkest = Math.min(darkest, 0.299 * band[j] + 0.587 * band[j + 1] + 0.114 * band[j + 2]);
  return { png: canvas.toDataURL('image/png'), darkest, width: canvas.width, height: canvas.height };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The shipped config, plus a tenant `paints` whose pages draw the avatar themselves when they can (render_where: auto)."""
    import yaml

    from agent.config import DEFAULT_CONFIG

    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["answer"]["faq_path"] = str((DEFAULT_CONFIG.parent / config["answer"]["faq_path"]).resolve())
    config["answer"].pop("versions_dir", None)
    config["tenants"]["paints"] = {"render_where": "auto"}
    path = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    with agent_server("e2e-server.log", "--config", str(path)) as served:
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
        # The video is showing (a loaded machine can take a while to start the call's render process).
        page.wait_for_function("() => document.getElementById('avatar-video').videoWidth > 0", timeout=60_000)
        # While the answer is spoken: frames keep arriving, and the mouth region of the picture changes.
        frames_before = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        mouth_change = page.evaluate(MOUTH_CHANGE_JS)
        frames_after = page.evaluate("document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames")
        page.screenshot(path=str(ARTIFACTS / "e2e-call.png"))
        received = page.evaluate(RECEIVED_FRAME_JS)
        import base64

        (ARTIFACTS / "e2e-frame.png").write_bytes(base64.b64decode(received["png"].split(",", 1)[1]))
        assert page.locator("#captions li.avatar").count() >= 2  # greeting and answer
        page.click("#hangup")
        browser.close()
    print(f"browser: {frames_after - frames_before} frames during the answer, mouth region changed by up to {mouth_change:.1f} grey levels")
    assert frames_after - frames_before >= 10, "video frames stopped arriving"
    assert mouth_change > 3.0, "the mouth does not move on the received video"
    assert received["width"] == 512 and received["darkest"] > 120, f"the top of the picture is not backdrop (the hair is cut): {received['darkest']:.0f}"
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


# The mouth region of the page's own canvas, 12 times 100 ms apart: the largest change between two looks.
CANVAS_MOUTH_JS = """async () => {
  const canvas = document.getElementById('avatar-canvas');
  const small = document.createElement('canvas');
  small.width = 48; small.height = 32;
  const g = small.getContext('2d', { willReadFrequently: true });
  let previous = null, largest = 0;
  for (let i = 0; i < 12; i++) {
    g.drawImage(canvas, canvas.width * 0.38, canvas.height * 0.68, canvas.width * 0.24, canvas.height * 0.18, 0, 0, 48, 32);
    const px = g.getImageData(0, 0, 48, 32).data;
    if (previous) {
      let sum = 0;
      for (let j = 0; j < px.length; j += 4) sum += Math.abs(px[j] - previous[j]);
      largest = Math.max(largest, sum / (px.length / 4));
    }
    previous = px;
    await new Promise((r) => setTimeout(r, 100));
  }
  return largest;
}"""


def test_the_page_draws_the_avatar_in_time_with_its_voice_and_barge_in_stops_it(server, speech_dir):
    from playwright.sync_api import sync_playwright

    parts = [np.zeros(6 * 48000), spoken("How do I reset my password?", 48000), np.zeros(int(3.5 * 48000)),
             spoken("Sorry, wait a moment please, I need to look for my order number, it is somewhere on my desk.", 48000),
             np.zeros(25 * 48000)]  # the customer talks on for seconds after cutting in: the avatar must rest meanwhile
    conversation = write_wav(speech_dir / "browser_mode.wav", np.concatenate(parts), 48000)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(conversation))
        page = browser.new_page(viewport={"width": 600, "height": 900})
        page.goto(server + "/?tenant=paints&readable=1")
        page.click("#call")
        page.wait_for_function(
            "() => (window.avatarEvents || []).some(e => e.type === 'avatar' && e.text.startsWith('Click on forgot password'))", timeout=90_000)
        render = page.evaluate("window.avatarRender")
        assert render["where"] == "browser", render
        speaking = page.evaluate(CANVAS_MOUTH_JS)
        clock = page.evaluate("(() => { const f = window.avatarFace, q = f.queue; return [f.playingPts(), q[0].pts, q[q.length - 1].pts]; })()")
        page.screenshot(path=str(ARTIFACTS / "e2e-browser-mode.png"))
        # The answer's own interruption: on a slow machine the question itself may have cut the greeting short.
        page.wait_for_function("""() => { const events = window.avatarEvents || [];
          const answer = events.find(e => e.type === 'avatar' && e.text.startsWith('Click on forgot password'));
          return events.some(e => e.type === 'interrupted' && e.turn === answer.turn); }""", timeout=60_000)
        page.wait_for_timeout(300)
        resting = page.evaluate(CANVAS_MOUTH_JS)
        frames = page.evaluate("window.avatarFace.frames")
        assert page.locator("#avatar-video").is_hidden() and page.locator("#avatar-canvas").is_visible()
        page.click("#hangup")
        browser.close()
    print(f"page-drawn face: mouth region changed by up to {speaking:.1f} grey levels while speaking, {resting:.1f} after barge-in; "
          f"{frames} frames drawn; clock {clock}")
    now, first, last = clock
    assert now is not None and first - 48000 <= now <= last, "the page maps the audio it plays onto the agent's clock"
    assert speaking > 3.0, "the mouth does not move while the answer plays"
    assert resting < speaking / 3, "the mouth must rest once the customer interrupts"
    assert '"sessions": 0' in wait_until_no_sessions(server)


def test_a_page_that_cannot_draw_the_avatar_gets_video_and_says_why(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        for args, broken, expected in ((["--disable-webgl"], False, "no WebGL2"), ([], True, "could not load the 3D avatar")):
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args() + args)
            page = browser.new_page()
            if broken:
                page.route("**/api/avatar.glb*", lambda route: route.fulfill(status=500, body="broken"))
            page.goto(server + "/?tenant=paints")
            page.click("#call")
            page.wait_for_function("() => document.getElementById('avatar-video').getVideoPlaybackQuality().totalVideoFrames > 5",
                                   timeout=60_000)
            render = page.evaluate("window.avatarRender")
            captions = page.inner_text("#captions")
            page.click("#hangup")
            browser.close()
            assert render["where"] == "server" and expected in render["reason"], render
            assert f"Showing video: {expected}" in captions or expected == "no WebGL2", captions


def test_the_page_draws_fewer_pixels_when_its_frame_rate_falls_and_more_when_it_recovers(server):
    """The page's frame-rate governor (`Resolution` in avatar-face.js), fed frame times as a slow and then a fast GL would."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        page = browser.new_page()
        page.goto(server + "/")
        scales = page.evaluate("""async () => {
          const { Resolution } = await import('/client/avatar-face.js');
          const applied = [];
          const resolution = new Resolution((scale) => applied.push(scale));
          let now = 0;
          const run = (fps, seconds) => { for (let i = 0; i < fps * seconds; i++) { now += 1000 / fps; resolution.frame(now); } };
          run(20, 4);  // a software GL that draws 20 fps at full size
          const low = resolution.scale;
          run(60, 10);  // the same page, now drawing quickly (from the floor, 10% larger a second)
          const high = resolution.scale;
          now += 5000; resolution.frame(now);  // a hidden tab: a long pause is not a slow GL
          run(60, 0.5);
          return { low, high, afterPause: resolution.scale, applied: applied.length };
        }""")
        browser.close()
    assert scales["low"] < 0.9, f"a slow page draws fewer pixels: {scales}"
    assert scales["low"] >= 0.5 - 1e-9, "never below half the size"
    assert scales["high"] == 1, f"and the full size again once it is quick: {scales}"
    assert scales["afterPause"] == 1 and scales["applied"] >= 2, scales
