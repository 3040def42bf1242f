"""Calls over a real two-node Ray cluster (tests/cluster_cases.py), run in a network namespace with only loopback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.cluster
def test_ray_cluster_places_calls_survives_node_loss_and_swaps_faq_versions(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra (WITH_CLUSTER=1 bash scripts/setup.sh)")
    assert shutil.which("unshare") and shutil.which("ip"), "the cluster test needs unshare (util-linux) and ip (iproute2)"
    from agent.cluster.loopback import private_network_command

    namespace = private_network_command()
    probe = subprocess.run([*namespace, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this machine does not allow a network namespace ({probe.stderr.strip()}); Ray would bind to its network address")
    log = tmp_path / "front.log"
    result = subprocess.run(
        [*namespace, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", str(ROOT / "tests" / "cluster_cases.py")],
        cwd=ROOT, env={**os.environ, "AVATAR_CLUSTER_NETNS": "1", "CLUSTER_TEST_LOG": str(log)},
        capture_output=True, text=True, timeout=1500,
    )
    front_log = log.read_text()[-4000:] if log.exists() else "(no front log)"
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}\n--- front log ---\n{front_log}"
    assert "7 passed" in result.stdout, result.stdout[-3000:]


def test_admission_holds_the_frame_rate_and_cpu_not_only_the_count():
    from agent.config import LoadLimit
    from agent.calls.contract import NodeLoad

    limit = LoadLimit(min_fps_ratio=0.96, max_cpu_percent=85)

    def load(calls, min_fps=None, cpu=10.0, capacity=3):
        return NodeLoad("n1", calls, capacity, min_fps, cpu)

    assert load(0).refusal(limit, 25) is None
    assert load(1, min_fps=25.0, cpu=60).refusal(limit, 25) is None
    assert "3 of 3 calls" in load(3, min_fps=25.0).refusal(limit, 25)
    assert "23.0 fps" in load(1, min_fps=23.0).refusal(limit, 25)  # below 0.96 x 25 = 24
    assert "CPU at 90%" in load(1, min_fps=25.0, cpu=90).refusal(limit, 25)
    assert load(0, cpu=100).refusal(limit, 25) is None, "an idle node always takes one call (its own warm-up yields)"
    assert load(2, min_fps=10.0, cpu=100).refusal(None, 25) is None, "one box without a load limit counts calls only"
    assert load(1, min_fps=None, cpu=50).refusal(limit, 25) is None, "calls too new to have a frame rate do not refuse"

    from agent.calls.contract import CallInfo

    def mixed(video, drawn):  # max_sessions 3 (video), max_browser_sessions 10 (page-drawn): one room shared
        calls = [CallInfo(f"v{i}", "demo", 5.0, 25.0) for i in range(video)] + [CallInfo(f"b{i}", "demo", 5.0, None, "browser") for i in range(drawn)]
        return NodeLoad("n1", video + drawn, 3, 25.0, 10.0, tuple(calls), browser_capacity=10)

    assert mixed(0, 9).refusal(None, 25, "browser") is None and mixed(0, 10).refusal(None, 25, "browser") is not None
    assert mixed(2, 2).refusal(None, 25, "browser") is None, "2/3 + 2/10 + 1/10 of the room"
    assert mixed(2, 3).refusal(None, 25, "browser") is not None, "2/3 + 3/10 + 1/10: over"
    assert "no room for another server call" in mixed(2, 2).refusal(None, 25, "server")
    assert mixed(3, 0).refusal(None, 25, "browser") is not None


def test_an_unreachable_cluster_is_a_clear_start_up_error(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra")
    from benchmarks.cluster import free_port, loopback_config

    config = loopback_config(tmp_path, f"127.0.0.1:{free_port()}")  # nothing listens there
    result = subprocess.run([sys.executable, "-m", "agent.cli", "serve", "--config", str(config)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot reach the Ray cluster at cluster.address" in result.stderr and "Traceback" not in result.stderr
