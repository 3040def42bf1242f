"""The operator's console in real headless Chromium: sign-in, the FAQ with the validator's errors, versions, and a missed
question turned into a paraphrase."""
from __future__ import annotations

import shutil

import pytest

from agent.answer.questions import QuestionStore
from agent.messages import Answer

from .conftest import ARTIFACTS
from .test_operator import operator, versions  # noqa: F401  (fixtures)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")]
HANDED = Answer("Let me connect you to a person.", "apologetic", 0.1, True, None)


async def test_the_console_signs_in_shows_errors_and_turns_a_missed_question_into_a_paraphrase(operator, tmp_path):  # noqa: F811
    from playwright.async_api import async_playwright

    from agent.transport.server import CONFIG

    config = operator.server.app[CONFIG]
    config.tenants["demo"].keep_questions = True
    QuestionStore(config.tenant("demo").questions_path, 30).keep("do you sell gift vouchers for 50 dollars", HANDED, 0.5)
    broken = tmp_path / "broken.csv"
    broken.write_text("question,answer\nDo you deliver?,\n")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        # The page's CSP (no inline or evaluated script) would also stop the test's own waits: checked here, then bypassed.
        context = await browser.new_context(viewport={"width": 900, "height": 1000}, bypass_csp=True)
        page = await context.new_page()
        response = await page.goto(str(operator.make_url("/operator")))
        assert "default-src 'self'" in response.headers["content-security-policy"] and response.headers["x-frame-options"] == "DENY"
        assert await page.locator("#console").is_hidden(), "nothing shows before signing in"
        await page.fill("#tenant", "demo")
        await page.fill("#token", "shop-secret")
        await page.click("#sign-in button")
        await page.wait_for_function("document.getElementById('sign-in-error').textContent.length > 0")
        assert "not allowed" in await page.text_content("#sign-in-error")
        await page.fill("#token", "demo-secret")
        await page.click("#sign-in button")
        await page.wait_for_selector("#faq-entries tbody tr")
        entries = await page.locator("#faq-entries tbody tr").count()
        assert entries > 3 and "demo-secret" not in page.url and await context.cookies() == [], "the token is in no URL and no cookie"
        await page.set_input_files("#faq-upload", str(broken))
        await page.wait_for_function("document.getElementById('faq-error').textContent.includes('upload:2')")
        assert "empty answer" in await page.text_content("#faq-error")
        assert "(handoff)" in await page.text_content("#missed-groups") and "##" in await page.text_content("#missed-groups"), "masked"
        await page.click("#missed-groups button.assign")
        await page.wait_for_function("document.getElementById('faq-entries').textContent.includes('gift vouchers')")
        assert "0 questions in 0 groups" in await page.text_content("#missed-state")
        await page.wait_for_selector("#versions tbody tr >> text=v1")
        await page.click("#versions tbody tr:has-text('v1') button")
        await page.wait_for_selector("#versions tbody tr:has-text('v1') td.active")
        await page.screenshot(path=str(ARTIFACTS / "operator-console.png"), full_page=True)
        await browser.close()
