"""Where operator jobs (fine-tuning) run: a child process here, or a Ray task on a cluster node (`agent.cluster.jobs`)."""
from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Protocol


class Job(Protocol):
    @property
    def returncode(self) -> int | None:
        """None while the job runs, then its exit status."""

    async def stop(self) -> None: ...


class JobRunner(Protocol):
    async def start(self, cli_args: list[str], log_path: Path) -> Job:
        """Runs `avatar-agent <cli_args>` with its output written to log_path."""


def write_job_status(path: Path, status: dict) -> None:
    """Replaces a job's status file whole: its readers (the operator API) never see half a file, whoever writes it."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False) as tmp:
        tmp.write(json.dumps(status))
    Path(tmp.name).replace(path)


def cli_command(cli_args: list[str]) -> list[str]:
    """The agent's command line in this Python, whichever machine runs it."""
    return [sys.executable, "-m", "agent.cli", *cli_args]


class ProcessJob:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


class LocalJobs:
    """Jobs as child processes of the server, so calls keep their CPU time and a crash cannot take the server down."""

    async def start(self, cli_args: list[str], log_path: Path) -> ProcessJob:
        # The output goes to a file: a pipe nobody reads fills up and blocks the job on its own progress bar.
        with open(log_path, "wb") as log_file:
            process = await asyncio.create_subprocess_exec(*cli_command(cli_args), stdout=log_file, stderr=asyncio.subprocess.STDOUT)
        return ProcessJob(process)
