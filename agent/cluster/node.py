"""One cluster node: a Ray actor that loads the models once and hosts several calls.

The actor runs the same `LocalCalls` as a single box, inside Ray's asyncio loop:
it creates each call's aiortc peer connection and returns the SDP answer, so
media flows between the browser and this node directly, never through the front.
"""
from __future__ import annotations

import os

from ..logs import setup_logging
from models.devices import use_models_offline

from ..config import load_config
from ..engines import Engines
from ..calls.contract import NodeLoad, OpenedCall
from ..calls.local import LocalCalls
from ..transport.tracks import use_video_bitrate
from ..transport.webrtc import WebRtcCall

NAMESPACE = "avatar-agent"  # the Ray namespace of the nodes' named actors, so a restarted front finds them


def short_node_id(node_id: str) -> str:
    """Ray's 56-hex node id, cut to what people read in logs, metrics and /healthz."""
    return node_id[:12]


class CallNode:
    """Wrapped with `ray.remote` by the front; every method runs on the actor's event loop."""

    def __init__(self, config_path: str, node_id: str) -> None:
        setup_logging("INFO")
        config = load_config(config_path)
        use_models_offline(config.threads)
        use_video_bitrate(config.render.video_kbps)
        self.engines = Engines.load(config)
        self.engines.warm_speech_in_background([config.tenant(t) for t in config.tenants])
        self.calls = LocalCalls(self.engines, config, WebRtcCall, config.cluster.admission, node=short_node_id(node_id))

    async def describe(self) -> dict:
        """Which node and process this is (the raylet is the worker's parent)."""
        return {"node": self.calls.node, "pid": os.getpid(), "raylet_pid": os.getppid()}

    async def load(self) -> NodeLoad:
        return self.calls.load()

    async def open(self, sdp: str, tenant: str, caller: str, page: dict | None = None, address: str = "?") -> OpenedCall:
        return await self.calls.open(sdp, tenant, caller, page, address)

    async def hang_up(self, session: str, tenant: str, token: str) -> bool:
        return await self.calls.hang_up(session, tenant, token)

    async def drain(self, seconds: float) -> None:
        await self.calls.drain(seconds)

    async def activate_faq(self, tenant: str, version: str) -> str:
        return await self.calls.activate_faq(tenant, version)

    async def take_over(self, session: str, tenant: str, sdp: str, who: str) -> tuple[str, str]:
        return await self.calls.take_over(session, tenant, sdp, who)

    async def hand_back(self, session: str, tenant: str) -> bool:
        return await self.calls.hand_back(session, tenant)

    async def metrics_text(self) -> bytes:
        return await self.calls.node_metrics(self.calls.node)
