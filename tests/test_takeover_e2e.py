"""A person takes a call over, in real headless Chromium with two pages: the customer's widget and the operator's
console, each with its own fake microphone (two browsers), against the real server with fake models."""
from __future__ import annotations

import shutil

import pytest

from benchmarks.browser import chromium_args

from .conftest import ARTIFACTS, espeak
from .test_browser_e2e import MOUTH_CHANGE_JS
from .test_console_e2e import sign_in
from .test_takeover import server  # noqa: F401  (fixture)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]


def _said(text: str) -> str:
    return f"() => (window.avatarEvents || []).some(e => e.type === 'avatar' && e.text.includes({text!r}))"


async def test_an_operator_takes_a_waiting_call_over_from_the_console_and_hands_it_back(server, speech_dir):  # noqa: F811
    from playwright.async_api import async_playwright

    from agent.transport.server import CALLS

    question = espeak("Can you explain the clause in my contract about liability?", speech_dir / "e2e-liability.wav",
                      rate=48000, lead_s=5.0, tail_s=40.0)
    operator_voice = espeak("Hello, this is Sam from the legal team. Let me explain how that clause works for you.",
                            speech_dir / "e2e-operator.wav", rate=48000, lead_s=0.5, tail_s=0.5)
    async with async_playwright() as p:
        customer_browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(question))
        operator_browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(operator_voice))
        customer = await customer_browser.new_page(viewport={"width": 600, "height": 900})
        await customer.goto(str(server.make_url("/")))
        await customer.click("#call")
        await customer.wait_for_function("() => (window.avatarEvents || []).some(e => e.type === 'person' && e.status === 'waiting')",
                                         timeout=90_000)

        context = await operator_browser.new_context(viewport={"width": 1000, "height": 1100}, bypass_csp=True)
        console = await context.new_page()
        await sign_in(console, server.make_url("/operator"), "demo", "demo-secret-0123456789abcdef")
        await console.wait_for_selector("#live-calls tbody tr.waiting", timeout=30_000)
        assert "1 waiting for a person" in await console.text_content("#live-summary")
        await console.screenshot(path=str(ARTIFACTS / "takeover-console-waiting.png"), full_page=True)
        await console.click("#live-calls tbody tr.waiting button.join")
        await console.wait_for_function("document.getElementById('takeover-state').textContent.includes('speaking through the avatar')",
                                        timeout=30_000)
        await console.wait_for_function("document.getElementById('captions').textContent.includes('contract')", timeout=30_000)

        # The customer's page: a person is speaking, and the avatar's mouth moves with the operator's voice.
        await customer.wait_for_function("document.getElementById('status').textContent.includes('A person is speaking')", timeout=30_000)
        await customer.wait_for_function("() => document.getElementById('avatar-video').videoWidth > 0", timeout=60_000)
        mouth_change = await customer.evaluate(MOUTH_CHANGE_JS)
        await customer.screenshot(path=str(ARTIFACTS / "takeover-customer.png"))
        await console.screenshot(path=str(ARTIFACTS / "takeover-console-on-call.png"), full_page=True)
        assert mouth_change > 3.0, f"the avatar's mouth did not move with the person's voice ({mouth_change:.1f})"
        call = server.server.app[CALLS].call(server.server.app[CALLS].directory.records()[0].session)
        assert call.conversation.person is not None and call.conversation.person.voiced_blocks > 3, "the operator's microphone reached the avatar"
        heard = await console.evaluate("() => { const a = document.getElementById('customer-audio'); return !!a.srcObject && a.srcObject.getAudioTracks().length; }")
        assert heard, "the operator's page receives the customer's audio"

        await console.fill("#say-text", "I will also send the details by e-mail.")
        await console.click("#say-form button")
        await customer.wait_for_function(_said("details by e-mail"), timeout=30_000)

        server.server.app[CALLS].engines.transcriber.text = "How do I reset my password?"
        await console.click("#hand-back")
        await customer.wait_for_function(_said("back with the assistant"), timeout=30_000)
        await customer.fill("#ask-text", "How do I reset my password?")
        await customer.click("#ask-send")
        await customer.wait_for_function(_said("forgot password"), timeout=30_000)
        assert not await customer.evaluate("document.getElementById('status').textContent.includes('A person is speaking')")
        await customer.click("#hangup")
        await customer_browser.close()
        await operator_browser.close()
