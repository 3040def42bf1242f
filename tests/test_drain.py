"""A restart that drops no call without a word: `avatar-agent serve` sent SIGTERM (what systemd sends) with a call in
progress refuses new calls with 503 and Retry-After, tells the customer the line will be back, ends the call within
`server.drain_s`, and only then exits, cleanly."""
from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import aiohttp
import pytest
import yaml

from benchmarks.browser import LOGS, agent_server
from benchmarks.cluster import Caller

from .conftest import until

pytestmark = pytest.mark.slow  # a served agent, a call and a drain of DRAIN_S: left out of make test-fast

DRAIN_S = 8


async def test_sigterm_drains_the_served_agent_then_it_exits(config, tmp_path):
    raw = yaml.safe_load(config.source.read_text())
    raw["answer"]["faq_path"] = str(config.answer.faq_path)
    raw["answer"]["versions_dir"] = str(tmp_path / "versions")
    raw["server"]["drain_s"] = DRAIN_S
    raw["tenants"] = {"demo": raw["tenants"]["demo"]}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(agent_server("drain.log", "--config", str(path)))
        async with aiohttp.ClientSession(served.url) as http:
            caller = Caller()
            try:
                response = await caller.call(http)
                assert response.status == 200, await response.text()
                await caller.ask("How do I reset my password?", "password")
                served.process.send_signal(signal.SIGTERM)
                sent = time.monotonic()
                refused = None
                for _ in range(50):  # the signal lands within moments
                    refused = await http.post("/api/offer", json={"sdp": await Caller().offer_sdp(), "type": "offer"})
                    if refused.status == 503:
                        break
                    await asyncio.sleep(0.1)
                assert refused.status == 503 and int(refused.headers["Retry-After"]) > 0
                assert (await refused.json())["reason"] == "draining"
                assert (await (await http.get("/healthz")).json())["draining"] is True
                assert await until(lambda: any(e["type"] == "avatar" and "restart" in e["text"] for e in caller.events), 30), \
                    "the customer is told the line will be back"
                assert await until(lambda: any(e["type"] == "ended" and e["reason"] == "draining" for e in caller.events), DRAIN_S + 30)
            finally:
                await caller.close()
        for _ in range(600):
            if served.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        assert served.process.returncode == 0, (LOGS / "drain.log").read_text()[-3000:]
        assert time.monotonic() - sent >= 1.0, "it did not exit on the spot"
        log = (LOGS / "drain.log").read_text()
        assert "draining" in log and "Traceback" not in log, log[-3000:]
