"""What the local agent and the patched moto share: statuses, the record of a started process,
and the small operations on a moto job (finish it, stop its process, copy its output to logs)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

TERMINAL_STATUSES = ("SUCCEEDED", "FAILED")
_WAITING = ("SUBMITTED", "PENDING", "RUNNABLE")
_LOG_GROUP = "/aws/batch/job"
_POLL = 0.02
"""How often a job's thread looks at its process and at termination requests (seconds)."""


@dataclass
class Launched:
    """One process the agent started for a job."""

    job_id: str
    argv: list[str]
    environment: dict[str, str]
    pid: int



class _LogWriter:
    """Copies a process's output lines into the job's CloudWatch Logs stream."""

    def __init__(self, job: Any):
        self.job = job
        options = ((job.job_definition.container_properties or {}).get("logConfiguration") or {}).get("options") or {}
        self.group = options.get("awslogs-group", _LOG_GROUP)

    def copy(self, stream: Any) -> None:
        logs = self.job._log_backend
        logs.ensure_log_group(self.group)
        logs.ensure_log_stream(self.group, self.job.log_stream_name)
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            logs.put_log_events(
                self.group,
                self.job.log_stream_name,
                [{"timestamp": int(time.time() * 1000), "message": line}],
            )
        stream.close()


def _finish(job: Any, success: bool, exit_code: int | None = None) -> None:
    """Mark a job SUCCEEDED or FAILED (once), with its exit code."""
    if exit_code is not None:
        job.exit_code = exit_code
    job._mark_stopped(success=success)


def _set_parent_reason(child: Any, old: str | None, new: str | None) -> None:
    parent_id, colon, _ = child.job_id.rpartition(":")
    parent = child.all_jobs.get(parent_id) if colon else None
    if parent is not None and not parent.job_stopped and not parent.stop and parent.job_stopped_reason == old:
        parent.job_stopped_reason = new


def _stop(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group, then SIGKILL it after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _job_environment(job: Any) -> list[dict[str, str]]:
    """The job definition's environment with the submit's overrides on top, without moto's growth."""
    merged = {entry["name"]: entry["value"] for entry in (job.job_definition.container_properties or {}).get("environment", [])}
    merged.update({entry["name"]: entry["value"] for entry in job.container_overrides.get("environment", [])})
    return [{"name": name, "value": value} for name, value in merged.items()]

