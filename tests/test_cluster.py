"""Calls over a real two-node Ray cluster (tests/cluster_cases.py), run in a network namespace with only loopback."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ray_cluster_places_calls_survives_node_loss_and_swaps_faq_versions(tmp_path):
    pytest.importorskip("ray", reason="Ray is the optional 'cluster' extra (WITH_CLUSTER=1 bash scripts/setup.sh)")
    assert shutil.which("unshare") and shutil.which("ip"), "the cluster test needs unshare (util-linux) and ip (iproute2)"
    namespace = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    log = tmp_path / "front.log"
    result = subprocess.run(
        [*namespace, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", str(ROOT / "tests" / "cluster_cases.py")],
        cwd=ROOT, env={**os.environ, "AVATAR_CLUSTER_NETNS": "1", "CLUSTER_TEST_LOG": str(log)},
        capture_output=True, text=True, timeout=1500,
    )
    front_log = log.read_text()[-4000:] if log.exists() else "(no front log)"
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-2000:]}\n--- front log ---\n{front_log}"
    assert "5 passed" in result.stdout, result.stdout[-3000:]
