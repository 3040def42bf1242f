"""A real two-node Ray cluster, its front and browser-like callers, all on loopback in a network namespace.

Run by tests/test_cluster.py inside `unshare --net` (see shared MODELS.md: Ray binds
to the machine's interface address otherwise). The nodes load the real models.
Placement, busy, a live FAQ version on both nodes, a fine-tune as a Ray task, a
front restart under live calls, and a node killed with its calls, in that order:
each test starts from the last's state.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal

import aiohttp
import pytest

from agent.answer.registry import mark_active
from agent.cluster import loopback
from benchmarks.cluster import Caller, Front, free_port, loopback_config

TOKEN = {"Authorization": "Bearer cluster-secret-0123456789abcdef"}
NEW_HOURS = "We are open every day from eight in the morning to eight at night."

pytestmark = pytest.mark.skipif(os.environ.get("AVATAR_CLUSTER_NETNS") != "1", reason="runs inside its network namespace (tests/test_cluster.py)")


@pytest.fixture(scope="module")
async def front(tmp_path_factory):
    """Head and worker node (1 CPU, one call host each), and the front as `avatar-agent serve` runs it."""
    tmp = tmp_path_factory.mktemp("cluster")
    address = loopback.start(nodes=2, port=free_port())
    config = loopback_config(
        tmp, address,
        server={"max_sessions": 1, "limits": {"calls_per_address": 100}},  # per node: two nodes, two calls, the third is busy
        render={"width": 256, "height": 256},
        tenants={"demo": {"operator_token_env": "CLUSTER_TEST_TOKEN"}},
        # placement by count only: two nodes on one 2-core machine share its CPU
        cluster={"poll_s": 0.5, "admission": {"min_fps_ratio": 0.01, "max_cpu_percent": 100}},
    )
    process = Front(config, tmp / "front.log", env={"CLUSTER_TEST_TOKEN": "cluster-secret-0123456789abcdef"})
    try:
        async with aiohttp.ClientSession(process.url) as http:
            await process.until_nodes(http, 2, timeout=400)  # two nodes load their models at once on two cores
            http.tmp, http.front = tmp, process
            yield http
    finally:
        process.stop()
        loopback.stop()
        if os.environ.get("CLUSTER_TEST_LOG"):
            shutil.copy(tmp / "front.log", os.environ["CLUSTER_TEST_LOG"])


CALLERS: list[Caller] = []


async def _hosts(http) -> dict[str, str]:
    """session -> node, as the front reports it to the tenant's operator (/healthz names no call: it is public), once
    the nodes' reports (every poll) hold every caller's call."""
    expected = {c.session for c in CALLERS if c.session}
    for _ in range(300):
        live = await (await http.get("/operator/demo/live", headers=TOKEN)).json()
        hosts = {c["session"]: c["node"] for c in live["calls"]}
        if expected <= set(hosts):
            break
        await asyncio.sleep(0.1)
    return hosts


async def test_two_calls_land_on_different_nodes_and_both_answer(front):
    for _ in range(2):
        caller = Caller()
        response = await caller.call(front)
        assert response.status == 200, await response.text()
        CALLERS.append(caller)
    hosts = await _hosts(front)
    assert {CALLERS[0].session, CALLERS[1].session} <= set(hosts)
    assert hosts[CALLERS[0].session] != hosts[CALLERS[1].session], hosts
    for caller in CALLERS:
        await caller.ask("How do I reset my password?", "forgot password")
    metrics = await (await front.get("/metrics")).text()
    for node in set(hosts.values()):
        assert f'avatar_cluster_admissions_total{{node="{node}"}} 1.0' in metrics
        node_metrics = await (await front.get(f"/metrics/nodes/{node}")).text()
        assert "avatar_sessions_active 1.0" in node_metrics and "avatar_stage_seconds_count" in node_metrics
    assert (await front.get("/metrics/nodes/nonexistent")).status == 404


async def test_a_call_when_every_node_is_full_is_told_busy(front):
    caller = Caller()
    response = await caller.call(front)
    assert response.status == 503 and "busy" in (await response.json())["error"]
    await caller.close()
    assert 'avatar_sessions_rejected_total{reason="busy"} 1.0' in await (await front.get("/metrics")).text()


async def test_bad_input_gets_a_short_clear_error_from_a_node(front):
    # Room on a node for the bad offer: hang one call up, then call again afterwards.
    assert (await front.delete(f"/api/sessions/{CALLERS[1].session}", headers=CALLERS[1].hangup_headers())).status == 200
    await CALLERS[1].close()
    r = await front.post("/api/offer", json={"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video garbage\r\n", "type": "offer"})
    error = (await r.json())["error"]
    assert r.status == 400 and "SDP" in error and "Traceback" not in error and "ray::" not in error, error
    r = await front.post("/operator/demo/versions/v9/activate", headers=TOKEN)
    error = (await r.json())["error"]
    assert r.status == 404 and "no version 'v9'" in error and "ray::" not in error, error
    CALLERS[1] = Caller()
    for _ in range(100):  # the node's own list catches up with the hang-up within a poll
        response = await CALLERS[1].call(front)
        if response.status == 200:
            break
        CALLERS[1] = Caller()
        await asyncio.sleep(0.2)
    assert response.status == 200, await response.text()
    hosts = await _hosts(front)
    assert hosts[CALLERS[0].session] != hosts[CALLERS[1].session], hosts


async def test_an_activated_faq_version_answers_on_both_nodes(front):
    # A fine-tune job runs as a Ray task and saves v1; its FAQ then gets new opening hours
    # (a real fine-tune of the changed text would take minutes), and v1 is activated live.
    r = await front.post("/operator/demo/finetune", json={"steps": 2}, headers=TOKEN)
    assert r.status == 202, await r.text()
    job = (await r.json())["job"]
    for _ in range(900):
        status = await (await front.get(f"/operator/demo/jobs/{job}", headers=TOKEN)).json()
        if status["state"] in ("done", "failed"):
            break
        await asyncio.sleep(1)
    assert status["state"] == "done", status
    version = front.tmp / "versions" / "demo" / status["version"]
    faq = version / "faq.csv"
    text = faq.read_text()
    hours = text.splitlines()[1].split(",", 1)[1].split('",', 1)[0] + '"'
    faq.write_text(text.replace(hours, f'"{NEW_HOURS}"'))

    r = await front.post(f"/operator/demo/versions/{status['version']}/activate", headers=TOKEN)
    assert r.status == 200 and (await r.json())["active"] == status["version"], await r.text()
    for caller in CALLERS:
        await caller.ask("What are your opening hours?", "eight in the morning to eight at night")
    versions = await (await front.get("/operator/demo/versions", headers=TOKEN)).json()
    assert versions["active"] == status["version"]

    # Nodes that answer with another version than the store's active one (one that was unreachable
    # when a version was activated, here the store changed by hand) are brought in line by the front.
    mark_active(front.tmp / "versions", "demo", "base")
    for caller in CALLERS:
        for _ in range(30):  # the front notices within a poll or two
            reply = await caller.ask("What are your opening hours?", "")
            if "nine in the morning" in reply["text"]:
                break
            await asyncio.sleep(1)
        assert "nine in the morning" in reply["text"], reply


async def test_a_restarted_front_finds_the_calls_in_progress(front):
    hosts = await _hosts(front)
    front.front.restart()
    await front.front.until_nodes(front, 2, timeout=120)
    assert await _hosts(front) == hosts  # learnt from the nodes themselves
    for caller in CALLERS:  # media never went through the front: the calls went on
        await caller.ask("How do I reset my password?", "forgot password")


async def test_an_operator_takes_over_a_call_on_its_node_through_the_front(front):
    from aiortc import RTCPeerConnection, RTCSessionDescription

    caller = CALLERS[0]
    await caller.ask("Can I talk to a person?", "")
    for _ in range(100):  # the front's view of the node's calls is at most a poll old
        live = await (await front.get("/operator/demo/live", headers=TOKEN)).json()
        if caller.session in live["waiting"]:
            break
        await asyncio.sleep(0.2)
    assert caller.session in live["waiting"], live
    operator = RTCPeerConnection()
    operator.addTransceiver("audio", direction="sendrecv")
    channel = operator.createDataChannel("operator")
    await operator.setLocalDescription(await operator.createOffer())
    r = await front.post(f"/operator/demo/calls/{caller.session}/join", json={"sdp": operator.localDescription.sdp, "type": "offer"},
                         headers=TOKEN)
    assert r.status == 200, await r.text()
    answer = await r.json()
    await operator.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    for _ in range(200):
        if channel.readyState == "open":
            break
        await asyncio.sleep(0.1)
    channel.send(json.dumps({"type": "say", "text": "Hello, I am a person from the support team."}))
    for _ in range(300):
        if any(e["type"] == "avatar" and "person from the support team" in e["text"] for e in caller.events):
            break
        await asyncio.sleep(0.1)
    assert any(e["type"] == "person" and e["status"] == "joined" for e in caller.events), caller.events
    assert any(e["type"] == "avatar" and "person from the support team" in e["text"] for e in caller.events), caller.events
    r = await front.post(f"/operator/demo/calls/{caller.session}/hand-back", headers=TOKEN)
    assert r.status == 200, await r.text()
    await operator.close()
    await caller.ask("How do I reset my password?", "forgot password")  # the assistant again
    assert (await front.post(f"/operator/demo/calls/{caller.session}/hand-back", headers=TOKEN)).status == 404


async def test_a_lost_node_ends_only_its_calls(front):
    hosts = await _hosts(front)
    # The worker node goes (its raylet killed, as if the machine died); the head node holds Ray's control store.
    victim = next(c for c in CALLERS if hosts[c.session] != _ray_head_node())
    survivor = next(c for c in CALLERS if c is not victim)
    raylet = _raylet_pid(victim.session)
    os.kill(raylet, signal.SIGKILL)
    for _ in range(600):
        health = await (await front.get("/healthz")).json()
        if len(health["nodes"]) == 1:
            break
        await asyncio.sleep(0.1)
    assert list(health["nodes"]) == [hosts[survivor.session]], health
    assert (await front.delete(f"/api/sessions/{victim.session}", headers=victim.hangup_headers())).status == 404
    metrics = await (await front.get("/metrics")).text()
    assert "avatar_cluster_node_losses_total 1.0" in metrics and "avatar_cluster_calls_dropped_total 1.0" in metrics

    await survivor.ask("How can I track my order?", "my orders")
    # The survivor's node is full; once its call ends, a new call lands there.
    newcomer = Caller()
    assert (await newcomer.call(front)).status == 503
    assert (await front.delete(f"/api/sessions/{survivor.session}", headers=survivor.hangup_headers())).status == 200
    for _ in range(100):
        if (await newcomer.call(front)).status == 200:
            break
        newcomer = Caller()
        await asyncio.sleep(0.2)
    assert newcomer.session is not None
    assert newcomer.node == hosts[survivor.session], "placed on the node that is left (the offer's answer names it)"
    await newcomer.ask("What is your return policy?", "thirty days")
    for caller in [*CALLERS, newcomer]:
        await caller.close()


def _ray_head_node() -> str:
    """The head's short node id."""
    import ray

    if not ray.is_initialized():
        ray.init(address="auto", configure_logging=False, log_to_driver=False)
    head = next(n for n in ray.nodes() if n["Alive"] and n.get("Resources", {}).get("node:__internal_head__"))
    return head["NodeID"][:12]


def _raylet_pid(session: str) -> int:
    """The raylet of the node hosting the session: the parent of its call host process."""
    import ray

    if not ray.is_initialized():
        ray.init(address="auto", configure_logging=False, log_to_driver=False)
    from agent.cluster.node import NAMESPACE

    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["namespace"] != NAMESPACE:
            continue
        handle = ray.get_actor(actor["name"], namespace=NAMESPACE)
        load = ray.get(handle.load.remote(), timeout=30)
        if session in load.sessions:
            return ray.get(handle.describe.remote(), timeout=30)["raylet_pid"]
    raise AssertionError(f"no node hosts {session}")
