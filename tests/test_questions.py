"""The questions the avatar missed: kept only for tenants that opt in, masked, expired, grouped, and turned into
paraphrases of the FAQ the next fine-tune reads; every route checks the operator's tenant."""
from __future__ import annotations

import json
import time

import pytest

from agent.answer.faq import load_faq
from agent.answer.questions import MissedQuestion, QuestionStore, group, mask, missed
from agent.config import HearConfig, TenantConfig
from agent.conversation import Conversation
from agent.engines import TenantQuestions
from agent.messages import Answer

from .fakes import fake_stages
from .test_operator import DEMO, SHOP, operator, versions  # noqa: F401  (fixtures)

SURE = Answer("We open at nine.", "neutral", 0.9, False, "What are your opening hours?")
HANDED = Answer("Let me connect you to a person.", "apologetic", 0.1, True, None)
CLARIFY = Answer("Which do you mean?", "neutral", 0.6, False, None, options=("A?", "B?"))
NEAR = Answer("We open at nine.", "neutral", 0.52, False, "What are your opening hours?")


def test_what_is_kept_is_masked():
    said = "my card 4111 1111 1111 1111 was charged twice, order 4729, write to jo.smith+x@mail.example.com"
    masked = mask(said)
    assert "4111" not in masked and "4729" not in masked and "jo.smith" not in masked
    assert "[card]" in masked and "[email]" in masked and "order ####" in masked


def test_which_turns_count_as_missed():
    assert [missed(a, 0.5) for a in (SURE, HANDED, CLARIFY, NEAR)] == [None, "handoff", "clarify", "near_line"]


def test_the_store_keeps_expires_and_survives_a_damaged_line(tmp_path):
    store = QuestionStore(tmp_path / "q.jsonl", retention_days=30)
    assert store.keep("what is the weather", SURE, 0.5) is None and not store.path.exists(), "a sure answer is not kept"
    store.keep("do you sell cars", HANDED, 0.5)
    store.keep("call me on 0123 456789", CLARIFY, 0.5)
    old = MissedQuestion(time.time() - 31 * 86400, "an old one", "handoff")
    with store.path.open("a") as f:
        f.write(json.dumps(old.__dict__) + "\n{not json\n")
    kept = store.all()
    assert [q.text for q in kept] == ["do you sell cars", "call me on #### ######"] and kept[1].options == ("A?", "B?")
    assert "an old one" not in store.path.read_text() and "not json" not in store.path.read_text(), "expired and damaged lines are gone"
    assert store.remove(["do you sell cars"]) == 1 and [q.text for q in store.all()] == ["call me on #### ######"]


def test_similar_questions_are_grouped():
    questions = [MissedQuestion(0, t, "handoff") for t in
                 ("do you sell gift cards", "can I buy a gift card", "gift cards for christmas?", "is there parking nearby", "where can I park")]
    groups = [[q.text for q in g] for g in group(questions)]
    assert groups[0] == ["do you sell gift cards", "can I buy a gift card", "gift cards for christmas?"]
    assert ["is there parking nearby"] in groups or ["is there parking nearby", "where can I park"] in groups


async def test_a_call_keeps_its_missed_turns_only_when_the_tenant_opted_in(tmp_path):
    path = tmp_path / "q.jsonl"
    kept = Conversation("keeps", fake_stages(questions=TenantQuestions(QuestionStore(path, 30), lambda: 0.5)), HearConfig(), lambda e: None)
    kept.ask_text("Can I pay with my card 4111 1111 1111 1111 in bitcoin?")
    await kept.settled()
    kept.stages.executor.shutdown(wait=True)  # the store is written off the event loop
    await kept.close()
    [line] = path.read_text().splitlines()
    assert json.loads(line)["did"] == "handoff" and "[card]" in line and "4111" not in line
    private = Conversation("private", fake_stages(), HearConfig(), lambda e: None)
    private.ask_text("Can I pay in bitcoin?")
    await private.settled()
    await private.close()
    assert private.stages.questions is None


def test_only_opted_in_tenants_have_a_store(config):
    cfg = config.model_copy(deep=True)
    cfg.tenants = {"a": TenantConfig(), "b": TenantConfig(keep_questions=True, keep_questions_days=7)}
    assert cfg.tenant("a").questions_path is None
    assert cfg.tenant("b").questions_path == cfg.answer.versions_dir / "b" / "questions.jsonl" and cfg.tenant("b").keep_questions_days == 7


@pytest.fixture
def keeping(operator):  # noqa: F811
    """The operator API where tenant demo keeps questions (shop does not), with three missed ones."""
    from agent.transport.server import CONFIG

    config = operator.server.app[CONFIG]
    config.tenants["demo"].keep_questions = True
    store = QuestionStore(config.tenant("demo").questions_path, 30)
    for text in ("do you sell gift cards", "can I buy a gift card", "is there parking"):
        store.keep(text, HANDED, 0.5)
    return operator, store, config


async def test_the_operator_sees_groups_and_assigns_them_to_an_entry_for_the_next_finetune(keeping):
    client, store, config = keeping
    r = await client.get("/operator/demo/questions", headers=DEMO)
    body = await r.json()
    assert r.status == 200 and body["keeping"] and [g["size"] for g in body["groups"]] == [2, 1]
    entry = load_faq(config.tenant("demo").faq_path)[0].question
    texts = [q["text"] for q in body["groups"][0]["questions"]]
    r = await client.post("/operator/demo/questions/assign", json={"texts": texts, "entry": entry}, headers=DEMO)
    result = await r.json()
    assert r.status == 200 and result["added"] == 2 and result["removed"] == 2
    working = config.answer.versions_dir / "demo" / "uploads" / result["file"]
    assert (config.answer.versions_dir / "demo" / "uploads" / "latest").read_text() == result["file"], "the next fine-tune reads it"
    [assigned] = [e for e in load_faq(working) if e.question == entry]
    assert set(texts) <= set(assigned.paraphrases)
    assert [q.text for q in store.all()] == ["is there parking"]
    r = await client.post("/operator/demo/questions/assign", headers=DEMO,
                          json={"texts": ["is there parking"], "question": "Is there parking?", "answer": "Yes, behind the shop."})
    assert r.status == 200 and any(e.question == "Is there parking?" and e.paraphrases == ("is there parking",) for e in load_faq(
        config.answer.versions_dir / "demo" / "uploads" / (await r.json())["file"]))
    assert store.all() == []


async def test_question_routes_check_the_tenant_and_what_is_sent(keeping):
    client, store, _ = keeping
    for method, path, payload in (("get", "/operator/demo/questions", None), ("post", "/operator/demo/questions/assign", {"texts": ["x"], "entry": "y"}),
                                  ("post", "/operator/demo/questions/dismiss", {"texts": ["x"]})):
        for headers, status in (({}, 401), ({"Authorization": "Bearer guess"}, 401), (SHOP, 403)):
            r = await getattr(client, method)(path, json=payload, headers=headers)
            assert r.status == status, (path, headers, r.status)
    r = await client.get("/operator/shop/questions", headers=SHOP)
    assert (await r.json()) == {"tenant": "shop", "keeping": False, "groups": []}, "nothing kept for a tenant that has not opted in"
    r = await client.post("/operator/shop/questions/assign", json={"texts": ["x"], "entry": "y"}, headers=SHOP)
    assert r.status == 409
    for bad in ({}, {"texts": []}, {"texts": ["x" * 600]}, {"texts": ["x"]}, {"texts": ["x"], "entry": "no such entry"}):
        r = await client.post("/operator/demo/questions/assign", json=bad, headers=DEMO)
        assert r.status in (400, 404), (bad, r.status)
    r = await client.post("/operator/demo/questions/dismiss", json={"texts": ["is there parking"]}, headers=DEMO)
    assert (await r.json())["removed"] == 1 and len(store.all()) == 2


async def test_failed_sign_ins_back_off_per_address_but_never_hold_back_a_valid_token(operator):  # noqa: F811
    statuses = [(await operator.get("/operator/demo/versions", headers={"Authorization": "Bearer guess"})).status for _ in range(10)]
    assert statuses[:5] == [401] * 5 and 429 in statuses, statuses
    r = await operator.get("/operator/demo/versions", headers={"Authorization": "Bearer guess"})
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    r = await operator.get("/operator/demo/versions", headers=DEMO)
    assert r.status == 200, "a valid token is never held back by failures from its address"
