"""A cluster node that drains (`avatar-agent drain-node`, before its machine is stopped) takes no new calls, and the front
places them on the other nodes; its calls in progress are told the line will be back. Without Ray: the front's placement
with stand-in node actors, and a node's own LocalCalls."""
from __future__ import annotations

import pytest

from agent.calls.contract import CallsBusy, NodeLoad, OpenedCall
from agent.calls.local import LocalCalls
from agent.transport.webrtc import WebRtcCall

from .fakes import FakeEngines, FakeTranscriber

ray = pytest.importorskip("ray", reason="the cluster front needs Ray (WITH_CLUSTER=1 bash scripts/setup.sh)")


class _Remote:
    def __init__(self, fn) -> None:
        self.remote = fn


class StandInHost:
    """What the front awaits of a node's actor: `open.remote(...)`."""

    def __init__(self, name: str) -> None:
        self.name, self.opened = name, []

        async def open_(sdp, tenant, caller, page=None, address="?"):
            self.opened.append(sdp)
            return OpenedCall(f"{name}-{len(self.opened)}", "answer", "answer", name, hangup_token="t")

        self.open = _Remote(open_)


async def test_the_front_places_a_new_call_on_a_node_that_is_not_draining(config):
    from agent.cluster.front import Node, RayCalls

    front = RayCalls(config)
    hosts = {name: StandInHost(name) for name in ("quiet", "draining")}
    for name, host in hosts.items():
        node = Node(f"{name}-ray-id", host, ready=True)
        # the draining node is also the emptier one: the front would pick it first if it did not look
        node.load = NodeLoad(name, 0 if name == "draining" else 1, 3, None, 5.0, draining=name == "draining")
        front.nodes[node.ray_id] = node
    for _ in range(2):
        opened = await front.open("offer", "demo", "a caller")
        assert opened.node == "quiet"
    assert hosts["draining"].opened == [], "no offer reaches the draining node"
    assert "restarting" in NodeLoad("n", 0, 3, None, 5.0, draining=True).refusal(None, 25)


async def test_a_draining_node_refuses_calls_itself(config):
    engines = FakeEngines(FakeTranscriber(""))
    try:
        calls = LocalCalls(engines, config, WebRtcCall, config.cluster.admission, node="n1")
        await calls.drain(0)
        assert calls.load().draining
        with pytest.raises(CallsBusy):
            await calls.open("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "demo", "a caller")
    finally:
        engines.close()
