"""Operator API: tokens and tenants, FAQ upload, fine-tune jobs, and swapping FAQ versions under a live call."""
from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCSessionDescription

from agent.answer.faq import load_faq
from agent.answer.registry import AnswererRegistry
from agent.config import TenantConfig
from agent.calls.local import LocalCalls
from agent.transport.webrtc import WebRtcCall
from agent.transport.server import CALLS, create_app

from .fakes import FakeEngines, PhrasingAnswerer, fake_version, load_fake_version
from .test_server import _browser_like_offer

DEMO, SHOP = {"Authorization": "Bearer demo-secret-0123456789abcdef"}, {"Authorization": "Bearer shop-secret-0123456789abcdef"}
NEW_HOURS = "We are open every day from eight in the morning to eight at night."


@pytest.fixture
def versions(tmp_path, config):
    """A saved version of a changed FAQ (the opening hours moved); loading it needs no model (see fakes.py)."""
    text = config.answer.faq_path.read_text()
    changed = text.replace(text.splitlines()[1].split(",", 1)[1].split('",', 1)[0] + '"', f'"{NEW_HOURS}"')
    assert NEW_HOURS in changed
    fake_version(tmp_path, "demo", "v1", changed)
    return tmp_path


@pytest.fixture
async def operator(config, versions, monkeypatch):
    """The real server and operator API with fake stages and a registry that loads versions without a model."""
    monkeypatch.setenv("TEST_TOKEN_DEMO", "demo-secret-0123456789abcdef")
    monkeypatch.setenv("TEST_TOKEN_SHOP", "shop-secret-0123456789abcdef")
    cfg = config.model_copy(deep=True)
    cfg.answer.versions_dir = versions
    cfg.tenants = {"demo": TenantConfig(operator_token_env="TEST_TOKEN_DEMO"), "shop": TenantConfig(operator_token_env="TEST_TOKEN_SHOP")}
    base = PhrasingAnswerer(load_faq(cfg.answer.faq_path))
    engines = FakeEngines(answerers=AnswererRegistry(base, versions, load_answerer=load_fake_version))
    async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
        yield client
    engines.close()


async def test_tokens_and_tenants(operator):
    r = await operator.get("/operator/demo/versions")
    assert r.status == 401
    r = await operator.get("/operator/demo/versions", headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    r = await operator.get("/operator/demo/versions", headers=SHOP)
    assert r.status == 403 and "not allowed to manage tenant 'demo'" in (await r.json())["error"]
    r = await operator.get("/operator/demo/versions", headers=DEMO)
    body = await r.json()
    assert r.status == 200 and body["active"] == "base" and [v["version"] for v in body["versions"]] == ["v1"]
    r = await operator.post("/operator/demo/versions/v9/activate", headers=DEMO)
    assert r.status == 404


async def test_faq_upload_is_validated_whole(operator):
    r = await operator.put("/operator/demo/faq", data="question,answer\nHi,\n", headers={**DEMO, "Content-Type": "text/csv"})
    assert r.status == 400 and "upload:2: empty answer" in (await r.json())["error"]
    r = await operator.put("/operator/demo/faq", data="question,answer\nHi,Hello\n", headers={**DEMO, "Content-Type": "application/pdf"})
    assert r.status == 415
    r = await operator.put("/operator/demo/faq", data="x" * 600_000, headers={**DEMO, "Content-Type": "text/csv"})
    assert r.status == 413
    good = '{"question": "Do you have gift cards?", "answer": "Yes, from ten to two hundred dollars.", "paraphrases": ["Can I buy a gift card?"]}\n'
    r = await operator.put("/operator/shop/faq", data=good, headers={**SHOP, "Content-Type": "application/jsonl"})
    assert r.status == 200 and (await r.json())["entries"] == 1


async def test_unquoted_commas_in_answers_are_read_when_unambiguous_and_refused_with_a_how_to_otherwise(operator):
    plain = "question,answer\nWhat cards do you take?,Visa, Mastercard, and PayPal.\nDo you ship abroad?,Yes, to forty countries.\n"
    r = await operator.put("/operator/shop/faq", data=plain, headers={**SHOP, "Content-Type": "text/csv"})
    assert r.status == 200 and (await r.json())["entries"] == 2
    unclear = "question,answer\nWrong item, what now,Keep it, we send another.\n"
    r = await operator.put("/operator/shop/faq", data=unclear, headers={**SHOP, "Content-Type": "text/csv"})
    error = (await r.json())["error"]
    assert r.status == 400 and "upload:2" in error and 'double quotes, e.g. "' in error


@pytest.fixture
def orphaned_job(versions):
    """A job a killed server left 'training'."""
    jobs = versions / "demo" / "jobs"
    jobs.mkdir(parents=True)
    (jobs / "abc123.json").write_text(json.dumps({"job": "abc123", "state": "training", "step": 40, "total": 120}))
    return "abc123"


async def test_a_job_left_running_by_a_server_that_died_is_reported_failed(orphaned_job, operator):
    status = await (await operator.get(f"/operator/demo/jobs/{orphaned_job}", headers=DEMO)).json()
    assert status["state"] == "failed" and "restarted" in status["error"]
    r = await operator.post("/operator/demo/finetune", json={"steps": 1}, headers=DEMO)
    assert r.status == 202, "the dead job does not hold the tenant's lock"


async def _ask(channel, events: list[dict], question: str, expect: str) -> str:
    seen = len(events)
    channel.send(json.dumps({"type": "text", "text": question}))
    for _ in range(300):
        answers = [e["text"] for e in events[seen:] if e["type"] == "avatar"]
        if any(expect in a for a in answers):
            return " ".join(answers)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no answer containing {expect!r}: {events[seen:]}")


async def test_swapping_versions_under_a_live_call(operator):
    pc, channel, _ = await _browser_like_offer()
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    r = await operator.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    body = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    session = body["session"]
    for _ in range(100):
        if channel.readyState == "open":
            break
        await asyncio.sleep(0.1)

    assert "Monday to Friday" in await _ask(channel, events, "What are your opening hours?", "Monday to Friday")
    r = await operator.post("/operator/demo/versions/v1/activate", headers=DEMO)
    assert r.status == 200 and (await r.json()) == {"tenant": "demo", "active": "v1", "previous": "base"}
    # Same call, next turn: the new version answers. Nobody reconnected.
    assert NEW_HOURS in await _ask(channel, events, "What are your opening hours?", "every day")
    assert [r.session for r in operator.server.app[CALLS].directory.records()] == [session]
    # Roll back, still live.
    r = await operator.post("/operator/demo/versions/base/activate", headers=DEMO)
    assert r.status == 200
    assert "Monday to Friday" in await _ask(channel, events, "When are you open?", "Monday to Friday")
    await pc.close()


@pytest.mark.finetune
async def test_finetune_job_runs_and_reports_progress(operator, versions):
    r = await operator.post("/operator/demo/finetune", json={"steps": 2}, headers=DEMO)
    assert r.status == 202
    job = (await r.json())["job"]
    r = await operator.post("/operator/demo/finetune", json={"steps": 2}, headers=DEMO)
    assert r.status == 409 and job in (await r.json())["error"], "one fine-tune per tenant at a time"
    status = {}
    for _ in range(900):
        status = await (await operator.get(f"/operator/demo/jobs/{job}", headers=DEMO)).json()
        if status["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.2)
    assert status["state"] == "done", status
    assert "fine-tuning" in (versions / "demo" / "jobs" / f"{job}.log").read_text(), "the job's output goes to its log file"
    versions = await (await operator.get("/operator/demo/versions", headers=DEMO)).json()
    made = next(v for v in versions["versions"] if v["version"] == status["version"])
    assert made["base_model"] and len(made["faq_sha256"]) == 64 and made["created"] and 0 < made["threshold"] < 1 and "metrics" in made
    r = await operator.get(f"/operator/shop/jobs/{job}", headers=DEMO)
    assert r.status == 403
