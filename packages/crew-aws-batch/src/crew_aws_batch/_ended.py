"""How a round's AWS Batch jobs ended, in one line: AWS's status and reason, the exit code and the
last lines the container wrote to CloudWatch Logs (what ``AwsBatchLauncher.exit_status`` says)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crew.errors import SchedulerError

from ._aws import _Connection

__all__ = ["ENDED_STATUSES", "LOG_GROUP", "LOG_LINES", "describe_end", "log_tail"]

ENDED_STATUSES = ("SUCCEEDED", "FAILED")
LOG_GROUP = "/aws/batch/job"
"""AWS Batch's default log group (used when the job's log configuration names none)."""
LOG_LINES = 5
"""How many of the container's last log lines the end's description quotes."""
_LINE_MAX = 300


def describe_end(connection: _Connection, jobs: Sequence[Mapping[str, Any]], sizes: Sequence[int]) -> str:
    """One line on how a round's jobs (all ended, as describe_jobs reports them) ended.

    ``"FAILED: <statusReason> (exit code N); log: <last lines>"`` for the first failed job (for
    an array, its first failed child), or ``"SUCCEEDED: ..."`` when every job succeeded.
    """
    failed = [(job, size) for job, size in zip(jobs, sizes) if job.get("status") == "FAILED"]
    if not failed:
        return "SUCCEEDED: the job exited with code 0 before its worker dialled in"
    job, size = failed[0]
    if size > 1:
        job = _failed_child(connection, job) or job
    text = f"FAILED: {job.get('statusReason') or 'no reason given'}"
    code = (job.get("container") or {}).get("exitCode")
    if code is not None:
        text += f" (exit code {code})"
    tail = log_tail(connection, job)
    return text + (f"; log: {tail}" if tail else "")


def _failed_child(connection: _Connection, parent: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The description of an array job's first failed child (None when AWS lists none)."""
    try:
        children = connection.call("batch", "list_jobs", arrayJobId=parent["jobId"], jobStatus="FAILED")
        summaries = children.get("jobSummaryList") or []
        if not summaries:
            return None
        found = connection.call("batch", "describe_jobs", jobs=[summaries[0]["jobId"]]).get("jobs") or []
    except SchedulerError:
        return None
    return found[0] if found else None


def log_tail(connection: _Connection, job: Mapping[str, Any], lines: int = LOG_LINES) -> str:
    """The last ``lines`` lines of a job's CloudWatch log stream, joined by `` | `` ('' if none)."""
    container = job.get("container") or {}
    stream = container.get("logStreamName")
    if not stream:
        attempts = job.get("attempts") or []
        stream = (attempts[-1].get("container") or {}).get("logStreamName") if attempts else None
    if not stream:
        return ""
    try:
        page = connection.call(
            "logs", "get_log_events", logGroupName=_log_group(connection, job),
            logStreamName=stream, limit=lines, startFromHead=False,
        )  # fmt: skip
    except SchedulerError:
        return ""  # no log (yet), or no permission to read it: the status alone must do
    messages = [str(event.get("message", "")).strip() for event in page.get("events") or []]
    return " | ".join(message[:_LINE_MAX] for message in messages[-lines:] if message)


def _log_group(connection: _Connection, job: Mapping[str, Any]) -> str:
    """The job's awslogs group: from describe_jobs, else from its job definition, else AWS's default."""
    options = ((job.get("container") or {}).get("logConfiguration") or {}).get("options") or {}
    if options.get("awslogs-group"):
        return str(options["awslogs-group"])
    if job.get("jobDefinition"):
        found = connection.call("batch", "describe_job_definitions", jobDefinitions=[job["jobDefinition"]])
        for definition in found.get("jobDefinitions") or []:
            configuration = (definition.get("containerProperties") or {}).get("logConfiguration") or {}
            group = (configuration.get("options") or {}).get("awslogs-group")
            if group:
                return str(group)
    return LOG_GROUP
