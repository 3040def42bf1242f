"""Operator jobs (fine-tuning) as Ray tasks, on whichever node has a CPU free; the version store is shared by all nodes."""
from __future__ import annotations

import ctypes
import signal
import subprocess
from pathlib import Path

import ray
from ray.exceptions import RayError

from ..calls.jobs import cli_command

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """A job's process ends with the Ray worker that runs it: a cancelled task leaves nothing behind."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_cli(cli_args: list[str], log_path: str) -> int:
    with open(log_path, "wb") as log_file:
        return subprocess.run(cli_command(cli_args), stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent).returncode


class RayJob:
    def __init__(self, ref: ray.ObjectRef) -> None:
        self.ref = ref
        self._returncode: int | None = None

    @property
    def returncode(self) -> int | None:
        if self._returncode is None:
            done, _ = ray.wait([self.ref], timeout=0)
            if done:
                try:
                    self._returncode = ray.get(self.ref)
                except RayError:  # its node was lost, or it was cancelled
                    self._returncode = -1
        return self._returncode

    async def stop(self) -> None:
        if self.returncode is None:
            ray.cancel(self.ref, force=True)
            self._returncode = -1


class RayJobs:
    """Each job needs one CPU of a node's Ray CPUs (`ray start --num-cpus`); call hosts take none."""

    async def start(self, cli_args: list[str], log_path: Path) -> RayJob:
        task = ray.remote(run_cli).options(num_cpus=1, max_retries=0)
        return RayJob(task.remote(cli_args, str(log_path)))
