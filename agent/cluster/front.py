"""The cluster front: places each call on a node with room, and notices nodes that die.

One `CallNode` actor per Ray node that offers `cluster.node_resource`; the
actors are named and detached, so a front that restarts finds them (and their
calls) again. The nodes own their calls; the front's `CallDirectory` is its one
record of which call runs on which node, made true to each node's own list at
every poll (`CallDirectory.reconcile`).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass, field

import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from .. import metrics
from ..answer.registry import marked_active
from ..config import AgentConfig, ConfigError
from ..calls.contract import BUSY_MESSAGE, CallsBusy, CallsLimited, NodeLoad, NoSuchCall, OfferRefused, OpenedCall, check_caps, live_view
from ..calls.directory import CallDirectory
from .node import NAMESPACE, CallNode, short_node_id

log = logging.getLogger(__name__)


@dataclass
class Node:
    """The front's view of one node: its actor and its last reported load."""

    ray_id: str
    actor: ray.actor.ActorHandle
    ready: bool = False
    load: NodeLoad | None = None
    opening: int = 0  # offers on their way to it, counted before its next report
    unreachable_since: float | None = None  # when its actor first failed to answer (it may be a network blip)
    starting: asyncio.Task | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return short_node_id(self.ray_id)



class ClusterUnavailable(ConfigError):
    """The Ray cluster in cluster.address cannot be joined; the message says what to do."""


def ray_authenticates(address: str) -> bool:
    """Whether joining `address` is safe: a Ray on this machine ('auto', loopback), or token authentication on."""
    host = address.rpartition(":")[0].strip("[]") if address != "auto" else "127.0.0.1"
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    return local or (os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
                     and bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")))


def remote_cause(exc: BaseException) -> BaseException:
    """What a node raised, without Ray's remote traceback around it (which must not reach a browser)."""
    return getattr(exc, "cause", None) or exc


class RayCalls:
    """`Calls` over a Ray cluster (see agent.transport.calls)."""

    RESTART_AFTER_S = 30.0  # a node that lost its call host (process killed) gets a new one after this, if Ray still lists it

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.settings = config.cluster
        self.nodes: dict[str, Node] = {}  # by Ray node id
        self.directory = CallDirectory()  # which call runs on which node (by Ray node id)
        self._could_not_activate: set[tuple[str, str, str]] = set()
        self._activating = 0  # activations in progress: the nodes' versions are in flux meanwhile
        self._not_before: dict[str, float] = {}  # Ray node id -> when a lost node's call host may be started again
        self._watcher: asyncio.Task | None = None

    @property
    def _patience(self) -> float:
        """How long a node may leave a load report unanswered, or stay unreachable, before the front gives up on it."""
        return max(5.0, 3 * self.settings.poll_s)

    def _count_ready(self) -> None:
        metrics.CLUSTER_NODES.set(sum(node.ready for node in self.nodes.values()))

    def join(self) -> None:
        """Connects this process to the Ray cluster, or says clearly why it cannot (Ray itself would retry for minutes)."""
        address = self.settings.address
        if address != "auto":
            host, _, port = address.rpartition(":")
            try:
                socket.create_connection((host, int(port)), timeout=5).close()
            except (OSError, ValueError) as exc:
                raise ClusterUnavailable(f"cannot reach the Ray cluster at cluster.address {address!r} ({exc}); "
                                         "start it with `ray start --head` (README, \"Beyond one machine\")") from None
        if not ray_authenticates(address):
            raise ClusterUnavailable(
                f"cluster.address {address!r} is another machine, and Ray's token authentication is off: anyone who reaches "
                "its ports could run code on every node. Start every Ray process with RAY_AUTH_MODE=token and the same "
                "RAY_AUTH_TOKEN (docs/cluster.md), then start the front with them too")
        try:
            ray.init(address=address, namespace=NAMESPACE, configure_logging=False, log_to_driver=True)
        except ConnectionError as exc:
            raise ClusterUnavailable(f"cannot join the Ray cluster at cluster.address {address!r}: {exc}") from None

    async def start(self) -> None:
        """Starts a call host on every node that has none, and keeps watching (after join())."""
        await self.refresh()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="cluster-watch")

    # ---- nodes -------------------------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Adds nodes that joined, forgets nodes that left, updates every ready node's load."""
        listing = await asyncio.get_running_loop().run_in_executor(None, ray.nodes)
        hosting = {n["NodeID"] for n in listing if n["Alive"] and n["Resources"].get(self.settings.node_resource, 0) >= 1}
        for ray_id in list(self.nodes):
            if ray_id not in hosting:
                self._lose(ray_id, "Ray reports the node gone")
        now = time.monotonic()
        for ray_id in hosting - set(self.nodes):
            if self._not_before.get(ray_id, 0) <= now:  # Ray takes a while to notice a dead machine
                self._add(ray_id)
        await asyncio.gather(*(self._poll(node) for node in list(self.nodes.values()) if node.ready))
        self._count_ready()

    def _add(self, ray_id: str) -> None:
        actor = ray.remote(CallNode).options(
            name=f"calls-{ray_id}", namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
            num_cpus=0, resources={self.settings.node_resource: 1}, max_restarts=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(ray_id, soft=False),
        ).remote(str(self.config.source), ray_id)
        node = Node(ray_id, actor)
        node.starting = asyncio.get_running_loop().create_task(self._until_ready(node), name=f"node-start-{node.name}")
        self.nodes[ray_id] = node
        log.info("node %s: starting its call host (loading models)", node.name)

    async def _until_ready(self, node: Node) -> None:
        try:
            described = await asyncio.wait_for(node.actor.describe.remote(), self.settings.node_start_timeout_s)
            await self._poll(node)
        except (RayActorError, asyncio.TimeoutError) as exc:
            log.error("node %s: its call host did not start (%s)", node.name, exc)
            self._lose(node.ray_id, "its call host did not start")
            return
        if node.load is None or self.nodes.get(node.ray_id) is not node:
            return  # its first load report failed: the watcher has dealt with it
        node.ready = True
        self._count_ready()
        log.info("node %s: ready (pid %d, %d calls)", node.name, described["pid"], node.load.calls)

    async def _poll(self, node: Node) -> None:
        asked = time.monotonic()
        try:
            load = await asyncio.wait_for(node.actor.load.remote(), timeout=self._patience)
        except RayActorError as exc:
            self._failed(node, exc)
            return
        except (asyncio.TimeoutError, GetTimeoutError):
            log.warning("node %s: no load report in time; keeping its last one", node.name)
            return
        self.directory.reconcile(node.ray_id, [(c.session, c.tenant) for c in load.call_info], asked)
        node.load, node.unreachable_since = load, None
        metrics.CLUSTER_NODE_CALLS.labels(node.name).set(self.directory.count(node.ray_id))
        if not self._activating:
            await self._catch_up(node, load)

    async def _catch_up(self, node: Node, load: NodeLoad) -> None:
        """A node that missed an activation (unreachable at the time) loads the store's active version now."""
        for tenant, version in load.faq_versions:
            wanted = marked_active(self.config.answer.versions_dir, tenant)
            if version != wanted and (node.ray_id, tenant, wanted) not in self._could_not_activate:
                log.warning("node %s answers tenant %s with FAQ version %s, not %s: activating it there", node.name, tenant, version, wanted)
                try:
                    await node.actor.activate_faq.remote(tenant, wanted)
                except Exception as exc:  # a broken version: the operator sees it on activation; not tried again
                    self._could_not_activate.add((node.ray_id, tenant, wanted))
                    log.error("node %s: could not activate %s for tenant %s (%s)", node.name, wanted, tenant, exc)

    def _failed(self, node: Node, exc: RayActorError) -> None:
        """A node's actor did not answer: lost now if it died, after a while if it is only unreachable."""
        if not isinstance(exc, ActorUnavailableError):
            self._lose(node.ray_id, f"its call host died ({type(exc).__name__})")
            return
        node.unreachable_since = node.unreachable_since or time.monotonic()
        if time.monotonic() - node.unreachable_since > self._patience:
            self._lose(node.ray_id, f"unreachable for {self._patience:.0f} s")

    def _lose(self, ray_id: str, reason: str) -> None:
        node = self.nodes.pop(ray_id, None)
        if node is None:
            return
        self._not_before[ray_id] = time.monotonic() + self.RESTART_AFTER_S
        if node.starting is not None and node.starting is not asyncio.current_task():
            node.starting.cancel()
        dropped = self.directory.drop_node(ray_id)
        if node.ready:
            metrics.CLUSTER_NODE_LOSSES.inc()
            metrics.CLUSTER_CALLS_DROPPED.inc(len(dropped))
            log.error("node %s lost: %s; %d calls dropped (%s)", node.name, reason, len(dropped), ", ".join(dropped) or "none")
        try:
            metrics.CLUSTER_NODE_CALLS.remove(node.name)
        except KeyError:
            pass
        self._count_ready()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            try:
                await self.refresh()
            except Exception:  # the GCS briefly unreachable, say: the next poll tries again
                log.exception("could not refresh the cluster's nodes")

    def _node_of(self, name: str) -> Node | None:
        return next((node for node in self.nodes.values() if node.ready and node.name == name), None)

    async def node_metrics(self, name: str) -> bytes | None:
        """A node's own Prometheus metrics (its calls' stages), or None for an unknown node."""
        node = self._node_of(name)
        if node is None:
            return None
        try:
            return await node.actor.metrics_text.remote()
        except RayActorError as exc:
            self._failed(node, exc)
            return None

    # ---- calls (the Calls contract) ----------------------------------------------------------------------------

    def _used(self, node: Node) -> float:
        """The share of the node's room in use: the directory's calls (fresher than the node's last report: hang-ups and
        placements since), page-drawn where the report says so, the rest and those opening counted as video."""
        here = {r.session for r in self.directory.records(node.ray_id)}
        drawn = node.load.drawn(here)
        return node.load.share(len(here) - drawn + node.opening, drawn)

    def _room(self, node: Node) -> tuple[float, float]:
        """Sort key: the least loaded node first."""
        return (self._used(node), node.load.cpu_percent)

    async def open(self, sdp: str, tenant: str, caller: str, page: dict | None = None, address: str = "?") -> OpenedCall:
        check_caps(self.directory, self.config, tenant, address)  # across the cluster; each node checks its own too
        target_fps = self.config.render.fps
        candidates = sorted((n for n in self.nodes.values() if n.ready and n.load is not None and not n.load.draining), key=self._room)
        for node in candidates:
            if self._used(node) >= 1 - 1e-9:
                continue  # known full: no round trip (the node decides for a page-drawn call that might fit)
            node.opening += 1
            try:
                call = await node.actor.open.remote(sdp, tenant, caller, page, address)
            except CallsLimited as exc:
                raise CallsLimited(str(remote_cause(exc))) from None
            except CallsBusy:  # the node's own, fresher view: too loaded to hold another call's frame rate
                metrics.CLUSTER_REFUSALS.labels(node.name).inc()
                continue
            except OfferRefused as exc:
                raise OfferRefused(str(remote_cause(exc))) from None
            except RayActorError as exc:
                self._failed(node, exc)
                continue
            finally:
                node.opening -= 1
            self.directory.add(call.session, tenant, node.ray_id, address=address)
            metrics.CLUSTER_ADMISSIONS.labels(node.name).inc()
            metrics.CLUSTER_NODE_CALLS.labels(node.name).set(self.directory.count(node.ray_id))
            log.info("call %s placed on node %s (%s)", call.session, node.name, caller)
            return call
        refusals = {n.name: n.load.refusal(self.settings.admission, target_fps) for n in candidates}
        log.info("refused a call from %s: no node has room (%s)", caller, refusals or "no node ready")
        metrics.SESSIONS_REJECTED.labels("busy").inc()
        raise CallsBusy(BUSY_MESSAGE)

    async def hang_up(self, session: str, tenant: str, token: str) -> bool:
        record = self.directory.get(session)
        node = self.nodes.get(record.node) if record is not None else None
        if node is None:
            return False
        try:
            closed = await node.actor.hang_up.remote(session, tenant, token)
        except RayActorError as exc:
            self._failed(node, exc)
            return False
        if closed:  # its room is free now, not only after the next poll
            self.directory.remove(session)
        return closed

    async def health(self) -> dict:
        ready = [n for n in self.nodes.values() if n.ready and n.load is not None]
        return {
            "status": "ok" if ready else "no nodes ready",
            "sessions": sum(self.directory.count(n.ray_id) for n in ready),
            "nodes": {n.name: {"calls": self.directory.count(n.ray_id), "capacity": n.load.capacity, "min_fps": n.load.min_fps,
                               "cpu_percent": n.load.cpu_percent, "draining": n.load.draining}
                      for n in ready},  # no call ids: whoever reads /healthz must not get a handle on anyone's call
            "starting": sorted(n.name for n in self.nodes.values() if not n.ready),
        }

    async def drain(self, seconds: float) -> None:
        """The front holds no calls: its nodes keep theirs while it restarts (their actors are detached)."""
        log.info("the front drains: its nodes keep their calls")

    async def live(self, tenant: str) -> dict:
        """From each ready node's last report (at most cluster.poll_s old)."""
        return live_view(tenant, [n.load for n in self.nodes.values() if n.ready and n.load is not None])

    async def take_over(self, session: str, tenant: str, sdp: str, who: str) -> tuple[str, str]:
        """The operator's offer goes to the node that hosts the call; its answer comes back the same way."""
        record = self.directory.get(session)
        node = self.nodes.get(record.node) if record is not None and record.tenant == tenant else None
        if node is None:
            raise NoSuchCall(f"no call {session!r} in progress for tenant {tenant!r}")
        try:
            return await node.actor.take_over.remote(session, tenant, sdp, who)
        except RayActorError as exc:
            self._failed(node, exc)
            raise NoSuchCall(f"the node hosting call {session!r} is gone") from None
        except Exception as exc:  # NoSuchCall, PersonTaken, a bad offer: raised on the node
            raise remote_cause(exc) from None

    async def hand_back(self, session: str, tenant: str) -> bool:
        record = self.directory.get(session)
        node = self.nodes.get(record.node) if record is not None and record.tenant == tenant else None
        if node is None:
            return False
        try:
            return await node.actor.hand_back.remote(session, tenant)
        except RayActorError as exc:
            self._failed(node, exc)
            return False

    async def active_faq_version(self, tenant: str) -> str:
        return marked_active(self.config.answer.versions_dir, tenant)  # the store every node reads at start

    async def activate_faq(self, tenant: str, version: str) -> str:
        """Loads the version on every ready node before answering; a node that starts later restores it from the store."""
        previous = marked_active(self.config.answer.versions_dir, tenant)
        nodes = [n for n in self.nodes.values() if n.ready]
        self._activating += 1
        try:
            results = await asyncio.gather(*(n.actor.activate_faq.remote(tenant, version) for n in nodes), return_exceptions=True)
        finally:
            self._activating -= 1
        for node, result in zip(nodes, results):
            if isinstance(result, RayActorError):
                self._failed(node, result)
            elif isinstance(result, BaseException):
                raise remote_cause(result) from None
        log.info("tenant %s: FAQ version %s active on %d nodes", tenant, version, len(nodes))
        return previous

    async def close(self) -> None:
        """Stops watching; the calls go on on their nodes, and a front started again finds them."""
        if self._watcher is not None:
            self._watcher.cancel()
        for node in self.nodes.values():
            if node.starting is not None:
                node.starting.cancel()
        ray.shutdown()


def drain_this_node(config) -> int:
    """Drains the call host of the Ray node this runs on (before the machine is stopped or updated): it takes no new
    calls, so the front places them on other nodes, and its calls are told the line will be back and may go on up
    to `server.drain_s`. Returns how many calls it still had when it was asked."""
    RayCalls(config).join()
    node_id = ray.get_runtime_context().get_node_id()
    try:
        host = ray.get_actor(f"calls-{node_id}", namespace=NAMESPACE)
    except ValueError:
        raise RuntimeError(f"node {short_node_id(node_id)} hosts no calls (no call host runs on it)") from None
    calls = ray.get(host.load.remote(), timeout=60).calls
    ray.get(host.drain.remote(config.server.drain_s), timeout=config.server.drain_s + 60)
    return calls
