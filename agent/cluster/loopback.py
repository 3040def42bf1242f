"""A Ray cluster of several nodes on this machine's loopback, for tests, demos and the cluster benchmark.

Ray binds to the machine's interface address even when told 127.0.0.1, so the
caller runs inside a network namespace that has only loopback (`unshare --net`;
`in_private_network()` checks). 127.0.0.2 is added because aiortc never offers
an ICE candidate on 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def in_private_network() -> bool:
    """True inside a network namespace with loopback only (as `unshare --net` makes)."""
    return [name for _, name in socket.if_nameindex()] == ["lo"]  # /sys/class/net shows the namespace sysfs was mounted in


def private_network_command() -> list[str]:
    """The command prefix that runs a program in a new network namespace with loopback only (root or not)."""
    return ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]


def _ray(*args: str) -> None:
    result = subprocess.run([RAY, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"ray {args[0]} failed (exit {result.returncode}):\n{result.stdout[-3000:]}")


def start(nodes: int, port: int, cpus_per_node: int = 1, node_resource: str = "avatar_node") -> str:
    """Starts a head and nodes-1 workers, each hosting calls; returns the cluster's address.

    The cluster uses Ray's token authentication with a fresh token, put in this
    process's environment (RAY_AUTH_MODE, RAY_AUTH_TOKEN) so that what it starts
    afterwards (the front, drivers) joins with it; a token left in ~/.ray by
    another Ray session cannot get in the way.
    """
    if not in_private_network():
        raise RuntimeError("run loopback clusters inside `unshare --net` (Ray would bind to this machine's network address)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "replace", "127.0.0.2/32", "dev", "lo"], check=True)
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", f"--resources={json.dumps({node_resource: 1})}",
              "--disable-usage-stats"]
    try:
        _ray("start", "--head", f"--port={port}", "--include-dashboard=false", *common)
        for _ in range(nodes - 1):
            _ray("start", f"--address=127.0.0.1:{port}", *common)
    except BaseException:
        stop()  # a half-started cluster would outlive its namespace
        raise
    return f"127.0.0.1:{port}"


def stop() -> None:
    _ray("stop", "--force")
