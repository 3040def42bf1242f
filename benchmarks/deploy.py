"""docs/deploy.md on one machine, for the deployment test and `python -m benchmarks.browser --relay`.

Two network namespaces joined by a veth pair stand for the internet: the server's (198.18.43.1) runs what
deploy/ ships: Caddy with deploy/Caddyfile (its internal CA instead of a public one), coturn with
deploy/coturn/turnserver.conf, `avatar-agent serve` with deploy/agent.yaml; the customer's (198.18.43.2) runs
headless Chromium, which trusts Caddy's CA (an NSS database of its own) and finds the two site names on the
server's address (--host-resolver-rules). Nothing touches the machine's own network, so Debian's caddy or
coturn services, if running, are no obstacle. 198.18.0.0/15 (RFC 2544) is neither a private range to Caddy
(/metrics is refused as from the internet) nor a peer coturn relays to by default: only the agent's address is
allowed, with the one line docs/deploy.md says to add when the agent is at a private address.

Needs root (ip netns), caddy, coturn (turnserver), certutil and chromium: `missing()` says what is not there.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
LOGS = ROOT / "tests" / "artifacts"
SERVER_IP, CLIENT_IP = "198.18.43.1", "198.18.43.2"
DOMAIN, SITE = "avatar.test", "shop.test"  # the agent's domain, and the company's website that embeds the widget
TENANT = "shop"  # deploy/agent.yaml's tenant
AGENT_PORT = 8080  # where deploy/Caddyfile proxies to
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PREFIX = "avatar-deploy"
T = TypeVar("T")


def missing() -> str | None:
    """Why the deployment cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "needs root for its network namespaces (ip netns)"
    for tool, package in (("ip", "iproute2"), ("caddy", "caddy"), ("turnserver", "coturn"), ("certutil", "libnss3-tools")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package}; WITH_TEST_TOOLS=1 bash scripts/setup.sh)"
    if CHROMIUM is None:
        return "Debian chromium is not installed"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if result.returncode != 0:
        return f"this machine does not allow network namespaces ({result.stderr.strip()})"
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    command = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


def _forget_stale_namespaces() -> None:
    """Namespaces left by a run that was killed (their process id is gone)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in listed:
        if name.startswith(PREFIX + "-") and name.rsplit("-", 1)[-1].isdigit():
            pid = int(name.rsplit("-", 1)[-1])
            if not Path(f"/proc/{pid}").exists():
                subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def namespaces():
    """(server, client): two namespaces and the veth pair between them; always removed again."""
    _forget_stale_namespaces()
    pid = os.getpid()
    server, client = f"{PREFIX}-srv-{pid}", f"{PREFIX}-cli-{pid}"
    try:
        for ns in (server, client):
            _ip("netns", "add", ns)
            _ip("link", "set", "lo", "up", ns=ns)
        _ip("link", "add", f"avd{pid}s", "type", "veth", "peer", "name", f"avd{pid}c")
        for end, ns, address in ((f"avd{pid}s", server, SERVER_IP), (f"avd{pid}c", client, CLIENT_IP)):
            _ip("link", "set", end, "netns", ns)
            _ip("addr", "add", f"{address}/24", "dev", end, ns=ns)
            _ip("link", "set", end, "up", ns=ns)
        yield server, client
    finally:
        for ns in (server, client):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes its end of the veth pair with it
        subprocess.run(["ip", "link", "del", f"avd{pid}s"], capture_output=True)  # if it never moved


_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def in_namespace(ns: str, work: Callable[[], T]) -> T:
    """`work()` in a thread of its own that has entered namespace `ns` (setns changes only the calling thread), so
    the sockets it opens are in there: this process's other threads stay where they are."""
    outcome: dict = {}

    def run() -> None:
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _LIBC.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {ns}")
        finally:
            os.close(fd)
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"in-{ns}")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Deployment:
    tmp: Path
    server_ns: str
    client_ns: str
    ca: Path  # Caddy's root certificate
    chromium_home: Path  # HOME for Chromium: its NSS database trusts `ca`
    agent_log: Path
    turn_log: Path
    caddy_log: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    domain_url = f"https://{DOMAIN}"
    site_url = f"https://{SITE}"
    agent_url = f"http://127.0.0.1:{AGENT_PORT}"  # inside the server's namespace only

    def get(self, url: str, headers: dict | None = None, ns: str | None = None) -> Response:
        """A GET from the customer's side (or `ns`), trusting only Caddy's CA; an HTTP error is a Response too."""
        host, _, _ = url.split("://", 1)[1].partition("/")
        context = ssl.create_default_context(cafile=str(self.ca))

        def fetch() -> Response:
            import http.client

            if url.startswith("https://"):
                # SNI, the certificate's name and Host are the site's; the TCP connection goes to the server's address
                connection = _ResolvedHTTPS(host, SERVER_IP, context)
            else:
                connection = http.client.HTTPConnection(host, timeout=10)
            path = "/" + url.split("://", 1)[1].partition("/")[2]
            connection.request("GET", path, headers=headers or {})
            r = connection.getresponse()
            out = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode(errors="replace"))
            connection.close()
            return out

        return in_namespace(ns or self.client_ns, fetch)

    def chromium(self, ns: str | None = None) -> str:
        """An executable that runs Chromium in the customer's namespace (or `ns`), for Playwright's launch."""
        ns = ns or self.client_ns
        wrapper = self.tmp / f"chromium-in-{ns}"
        wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} \"$@\"\n")
        wrapper.chmod(0o755)
        return str(wrapper)

    def chromium_env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.chromium_home)}

    @staticmethod
    def resolver_args() -> list[str]:
        return [f"--host-resolver-rules=MAP {DOMAIN} {SERVER_IP}, MAP {SITE} {SERVER_IP}"]

    def write_page(self, name: str, body: str) -> str:
        """A page of the company's website (https://shop.test/<name>); its URL."""
        (self.tmp / "site" / name).write_text(body)
        return f"{self.site_url}/{name}"


class _ResolvedHTTPS:
    """http.client's HTTPS connection to `address` for the name `host` (SNI, certificate check, Host header)."""

    def __init__(self, host: str, address: str, context: ssl.SSLContext) -> None:
        import http.client
        import socket

        self._connection = http.client.HTTPSConnection(host, 443, timeout=10, context=context)

        def connect() -> None:
            raw = socket.create_connection((address, 443), timeout=10)
            self._connection.sock = context.wrap_socket(raw, server_hostname=host)

        self._connection.connect = connect

    def __getattr__(self, name):
        return getattr(self._connection, name)


def widget_page(policy: str = "relay") -> str:
    """The company's page as docs/deploy.md tells it to embed the widget (inline, so tests read its elements)."""
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Example shop</title></head><body><h1>Example shop</h1>"
            "<div id='avatar-widget'></div>"
            f"<script src='https://{DOMAIN}/client/avatar-widget.js' data-server='https://{DOMAIN}' data-tenant='{TENANT}' "
            f"data-mode='inline' data-target='#avatar-widget' data-ice-transport-policy='{policy}'></script></body></html>")


# Keeps every RTCPeerConnection the page makes, so the test can read how its media went.
KEEP_PEERS_JS = """(() => {
  const Original = window.RTCPeerConnection;
  window.peers = [];
  window.RTCPeerConnection = class extends Original { constructor(...args) { super(...args); window.peers.push(this); } };
})();"""

# The call's selected candidate pair, every local candidate's type, and the audio received.
CALL_STATS_JS = """async () => {
  const pc = window.peers[window.peers.length - 1];
  const stats = await pc.getStats();
  const byId = new Map();
  stats.forEach((s) => byId.set(s.id, s));
  let pair = null, audio = null;
  const locals = [];
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = byId.get(s.selectedCandidatePairId);
    if (s.type === 'local-candidate') locals.push(s.candidateType);
    if (s.type === 'inbound-rtp' && s.kind === 'audio') audio = s;
  });
  const local = pair && byId.get(pair.localCandidateId), remote = pair && byId.get(pair.remoteCandidateId);
  return {
    policy: pc.getConfiguration().iceTransportPolicy, state: pc.connectionState, locals,
    local: local && { type: local.candidateType, address: local.address, relayProtocol: local.relayProtocol },
    remote: remote && { type: remote.candidateType, address: remote.address, port: remote.port },
    audio: audio && { energy: audio.totalAudioEnergy || 0, samples: audio.totalSamplesReceived || 0 },
  };
}"""


def _coturn_config(secret: str, log: Path) -> str:
    """deploy/coturn/turnserver.conf with the lines an operator changes (CHANGE-ME) set, and its log in `log`."""
    text = (DEPLOY / "coturn" / "turnserver.conf").read_text()
    lines = text.splitlines()
    changes = {"static-auth-secret": secret, "realm": DOMAIN, "log-file": str(log)}
    for key, value in changes.items():
        at = [i for i, line in enumerate(lines) if line.startswith(key + "=")]
        assert len(at) == 1, f"deploy/coturn/turnserver.conf should set {key} once: {at}"
        lines[at[0]] = f"{key}={value}"
    return "\n".join(lines) + "\n"


def _agent_config(folder: Path) -> Path:
    """deploy/agent.yaml with this deployment's names: the site, the TURN server's address, versions in `folder`."""
    raw = yaml.safe_load((DEPLOY / "agent.yaml").read_text())
    raw["server"]["turn"]["urls"] = [f"turn:{SERVER_IP}:3478?transport=udp", f"turn:{SERVER_IP}:3478?transport=tcp"]
    raw["answer"]["versions_dir"] = str(folder / "versions")
    raw["tenants"][TENANT]["allowed_origins"] = [f"https://{SITE}"]
    shutil.copy(ROOT / "configs" / "faq" / "demo.csv", folder / "faq.csv")
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _wait(what: str, ready: Callable[[], bool], process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited ({process.returncode}):\n{log.read_text()[-4000:] if log.exists() else ''}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{log.read_text()[-4000:] if log.exists() else ''}")
        time.sleep(0.25)


def _stop(process: subprocess.Popen, grace: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.contextmanager
def deployment(tmp: Path, name: str = "e2e-deploy", agent_timeout: float = 300.0):
    """Everything docs/deploy.md sets up, in two namespaces; logs in tests/artifacts/<name>-{server,turn,caddy}.log."""
    reason = missing()
    if reason:
        raise RuntimeError(f"cannot run the deployment here: {reason}")
    tmp.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    (tmp / "site").mkdir(exist_ok=True)
    with namespaces() as (server, client), contextlib.ExitStack() as stack:
        d = Deployment(tmp, server, client, ca=tmp / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt",
                       chromium_home=tmp / "chromium-home", agent_log=LOGS / f"{name}-server.log",
                       turn_log=LOGS / f"{name}-turn.log", caddy_log=LOGS / f"{name}-caddy.log")
        for log in (d.agent_log, d.turn_log, d.caddy_log):
            log.unlink(missing_ok=True)

        def start(what: str, command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
            out = open(log, "ab")
            stack.callback(out.close)
            process = subprocess.Popen(["ip", "netns", "exec", server, *command], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                       env=env or os.environ.copy())
            d.processes[what] = process
            stack.callback(_stop, process)
            return process

        # coturn: the shipped file, with its secret, realm and log set; the agent's (198.18.x) address allowed as a peer
        turn_secret = secrets.token_urlsafe(32)
        (tmp / "turnserver.conf").write_text(_coturn_config(turn_secret, d.turn_log))
        turn = start("coturn", ["turnserver", "-c", str(tmp / "turnserver.conf"), f"--listening-ip={SERVER_IP}",
                                f"--relay-ip={SERVER_IP}", f"--allowed-peer-ip={SERVER_IP}",
                                f"--pidfile={tmp / 'turnserver.pid'}", f"--userdb={tmp / 'turndb'}"], tmp / "turnserver.out")
        # Caddy: the shipped Caddyfile, imported as it is, beside the company's website
        (tmp / "Caddyfile").write_text(f"import {DEPLOY / 'Caddyfile'}\n\n{SITE} {{\n\ttls internal\n\troot * {tmp / 'site'}\n\tfile_server\n}}\n")
        caddy_env = {**os.environ, "AVATAR_DOMAIN": DOMAIN, "AVATAR_TLS": "internal", "HOME": str(tmp),
                     "XDG_DATA_HOME": str(tmp / "caddy-data"), "XDG_CONFIG_HOME": str(tmp / "caddy-config")}
        caddy = start("caddy", ["caddy", "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"], d.caddy_log, caddy_env)
        # the agent: deploy/agent.yaml, its secrets in the environment as the unit's EnvironmentFile gives them
        agent_env = {**os.environ, "PYTHONUNBUFFERED": "1", "AVATAR_TURN_SECRET": turn_secret,
                     "AVATAR_OPERATOR_TOKEN_SHOP": secrets.token_urlsafe(32)}
        agent = start("agent", [sys.executable, "-m", "agent.cli", "serve", "--config", str(_agent_config(tmp))], d.agent_log, agent_env)

        _wait("coturn", lambda: d.turn_log.exists() and "Total General servers" in d.turn_log.read_text(), turn, d.turn_log, 60)
        _wait("Caddy's CA", d.ca.exists, caddy, d.caddy_log, 60)
        d.chromium_home.mkdir(exist_ok=True)
        nssdb = d.chromium_home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True, exist_ok=True)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True, capture_output=True)
        subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "Caddy test CA", "-i", str(d.ca)],
                       check=True, capture_output=True)

        def healthy() -> bool:
            try:
                return d.get(f"{d.domain_url}/healthz").status == 200  # the agent, through Caddy
            except OSError:
                return False

        _wait("the agent behind Caddy", healthy, agent, d.agent_log, agent_timeout)
        yield d
