"""The embeddable widget in real headless Chromium, on a page from another origin."""
from __future__ import annotations

import functools
import http.server
import threading
import urllib.request

import pytest
import yaml

from agent.config import DEFAULT_CONFIG
from benchmarks.browser import agent_server, chromium_args, free_port

from .conftest import ARTIFACTS, espeak
from .test_browser_e2e import CHROMIUM, wait_until_no_sessions

pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A support website on its own origin; http://localhost:PORT is allowed, http://127.0.0.1:PORT is not."""
    root = tmp_path_factory.mktemp("shop")
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, port
    httpd.shutdown()


@pytest.fixture(scope="module")
def shop_config(shop, tmp_path_factory):
    _, port = shop
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["answer"]["faq_path"] = str((DEFAULT_CONFIG.parent / config["answer"]["faq_path"]).resolve())
    config["tenants"] = {"shop": {"allowed_origins": [f"http://localhost:{port}"], "greeting": "Welcome to the example shop."}}
    config["server"]["max_sessions"] = 1  # room for one call, so a second caller is turned away
    path = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def shop_page(root, name: str, url: str) -> str:
    """A page of the shop that embeds the widget of the agent at `url`."""
    (root / name).write_text(
        "<!doctype html><html><head><meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<style>button { background: hotpink; } h1 { font-size: 40px; }</style></head>"  # hostile site CSS must not leak in
        f"<body><h1>Example shop</h1><script src='{url}/client/avatar-widget.js' data-server='{url}' data-tenant='shop' async></script></body></html>"
    )
    return name


@pytest.fixture(scope="module")
def agent_for_shop(shop, shop_config):
    with agent_server("e2e-widget-server.log", "--config", str(shop_config)) as served:
        shop_page(shop[0], "index.html", served.url)
        yield served.url


def test_widget_on_an_allowed_site_calls_and_answers(shop, agent_for_shop, speech_dir):
    from playwright.sync_api import sync_playwright

    _, port = shop
    question = espeak("What are your opening hours?", speech_dir / "widget_question.wav", rate=48000, lead_s=6.0, tail_s=25.0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(question))
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(f"http://localhost:{port}/index.html")
        page.click("#launcher")
        panel = page.locator("#panel").bounding_box()
        assert panel["width"] >= 385 and panel["height"] >= 830, "on a phone the call fills the screen"
        assert page.locator("#call").evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 105, 180)", "site CSS leaked in"
        assert page.inner_text("#close") == "\u00d7", "the script must not depend on the host page's charset"
        page.click("#call")
        page.wait_for_function("() => (window.avatarEvents || []).some(e => e.type === 'avatar' && e.text.startsWith('We are open'))", timeout=90_000)
        events = page.evaluate("window.avatarEvents")
        mic = page.evaluate("window.avatarCall.micSettings()")
        assert mic["echoCancellation"] is True, "the browser's echo cancellation keeps the avatar's voice from barging in"
        assert "echo: the browser's canceller and the residue gate" in (ARTIFACTS / "e2e-widget-server.log").read_text(), \
            "the page said so, and the server's own canceller stood down (echo_cancellation: auto)"
        captions = [e["text"] for e in events if e["type"] == "avatar"]  # state events may come first, in any order
        assert captions[0].startswith("Welcome to the example shop"), f"tenant greeting first: {captions}"
        page.fill("#ask-text", "Do you ship internationally?")
        page.click("#ask-send")
        page.wait_for_function("() => window.avatarEvents.filter(e => e.type === 'user').length >= 2", timeout=60_000)
        page.click("#mute")
        assert page.locator("#mute").get_attribute("aria-pressed") == "true"
        page.screenshot(path=str(ARTIFACTS / "e2e-widget-mobile.png"))
        page.click("#hangup")
        browser.close()
    assert '"sessions": 0' in wait_until_no_sessions(agent_for_shop)


def test_widget_on_a_site_that_is_not_allowed_is_refused(shop, agent_for_shop):
    from playwright.sync_api import sync_playwright

    _, port = shop
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/index.html")  # a different origin from http://localhost:PORT
        page.click("#launcher")
        page.click("#call")
        page.wait_for_function("() => document.querySelector('#avatar-widget-host').shadowRoot.querySelector('#status').classList.contains('error')", timeout=20_000)
        status = page.inner_text("#status")
        browser.close()
    assert "not be allowed" in status or "not allowed" in status, status
    assert '"sessions": 0' in urllib.request.urlopen(agent_for_shop + "/healthz").read().decode()
    assert "refused GET /api/ice-servers from origin http://127.0.0.1" in (ARTIFACTS / "e2e-widget-server.log").read_text()


def test_a_second_caller_is_told_the_agents_are_busy(shop, agent_for_shop):
    from playwright.sync_api import sync_playwright

    _, port = shop
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
        first, second = browser.new_page(), browser.new_page()
        for page in (first, second):
            page.goto(f"http://localhost:{port}/index.html")
            page.click("#launcher")
        first.click("#call")
        first.wait_for_function("() => (window.avatarEvents || []).some(e => e.type === 'avatar')", timeout=60_000)
        second.click("#call")
        second.wait_for_function("() => document.querySelector('#avatar-widget-host').shadowRoot.querySelector('#status').classList.contains('error')", timeout=20_000)
        status = second.inner_text("#status")
        first_still_connected = first.evaluate("document.querySelector('#avatar-widget-host').shadowRoot.querySelector('#hangup').disabled") is False
        first.click("#hangup")
        browser.close()
    assert "busy" in status, status
    assert first_still_connected, "the first call is not disturbed"
    assert '"sessions": 0' in wait_until_no_sessions(agent_for_shop)


def test_widget_says_the_call_dropped_when_the_agent_dies(shop, shop_config):
    """A cluster node (here: the whole agent) killed mid-call: the customer is told, and may call again."""
    from playwright.sync_api import sync_playwright

    root, port = shop
    with agent_server("e2e-widget-dying-server.log", "--config", str(shop_config)) as doomed:
        page_name = shop_page(root, "doomed.html", doomed.url)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args())
            page = browser.new_page()
            page.goto(f"http://localhost:{port}/{page_name}")
            page.click("#launcher")
            page.click("#call")
            page.wait_for_function("() => (window.avatarEvents || []).some(e => e.type === 'avatar')", timeout=90_000)
            doomed.process.kill()  # no goodbye: the browser only notices the media stop
            page.wait_for_function("() => document.querySelector('#avatar-widget-host').shadowRoot.querySelector('#status').textContent.includes('dropped')",
                                   timeout=90_000)
            status = page.inner_text("#status")
            call_enabled = page.evaluate("document.querySelector('#avatar-widget-host').shadowRoot.querySelector('#call').disabled") is False
            browser.close()
    assert "Press Call to call again" in status, status
    assert call_enabled, "the customer can call again"
