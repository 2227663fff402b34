"""AwsBatchMonitor: list, inspect, read the logs of and end crew's AWS Batch jobs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from crew import validate
from crew.errors import SettingError
from crew.monitor import Monitor

from ._aws import _DESCRIBE_CHUNK, _chunks, _Connection, _unique
from ._options import _sanitise_name
from .launcher import ACTIVE_STATUSES, _end_jobs

__all__ = ["AwsBatchMonitor", "STATUSES"]

STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
"""AWS Batch job statuses, in the order a job goes through them."""
INACTIVE_STATUSES = ("SUCCEEDED", "FAILED")
_STATES = {
    "SUBMITTED": "pending",
    "PENDING": "pending",
    "RUNNABLE": "pending",
    "STARTING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "done",
    "FAILED": "failed",
}


class AwsBatchMonitor(Monitor):
    """Look at the crew worker jobs of one AWS Batch job queue.

    Arguments:
        job_queue: name or ARN of the queue.
        job_definition: name, ``name:revision`` or ARN of the workers' job definition; when given,
            only jobs of that definition are listed.
        job_name: only jobs whose names start with this prefix are listed (default ``crew``:
            every crew launcher's jobs).
        log_group: the CloudWatch Logs group of the job definition's awslogs driver.
        region, endpoint_url, aws_profile, aws_credentials, seconds_timeout: the AWS connection,
            as for :class:`crew_aws_batch.AwsBatchLauncher`.

    Each row of :meth:`jobs` has the keys of :data:`crew.monitor.JOB_COLUMNS`: ``id`` (the job id,
    ``parent:index`` for an array child), ``array_index``, ``name``, ``state`` (``pending``,
    ``running``, ``done``, ``failed`` or ``cancelled``), ``reason`` (AWS's statusReason), ``node``
    (the container's address or instance), ``start_time`` (a UTC datetime or None), ``raw_state``
    (AWS's status), plus ``array_id`` (the parent's id or None), ``exit_code`` and ``log_stream``.
    """

    def __init__(
        self,
        job_queue: str,
        job_definition: str | None = None,
        *,
        job_name: str = "crew",
        log_group: str = "/aws/batch/job",
        seconds_timeout: float = 60.0,
        region: str | None = None,
        endpoint_url: str | None = None,
        aws_profile: str | None = None,
        aws_credentials: Mapping[str, str] | None = None,
    ):
        self.job_queue = validate.text("job_queue", job_queue)
        self.job_definition = validate.text("job_definition", job_definition, allow_none=True)
        self.job_name = _sanitise_name(validate.text("job_name", job_name), strict=False)
        if not self.job_name:
            raise SettingError(f"job_name must contain a letter or digit, not {job_name!r}")
        self.log_group = validate.text("log_group", log_group)
        self.connection = _Connection(region=region, endpoint_url=endpoint_url, aws_profile=aws_profile,
                                      aws_credentials=aws_credentials, seconds_timeout=seconds_timeout)

    # ------------------------------------------------------------------ listing
    def jobs(self, status: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The crew jobs of the queue, array children listed one by one (parents stand for them).

        ``status``: None (all), or one or more AWS statuses (``"RUNNABLE"``, ``["RUNNING", "FAILED"]``).
        """
        wanted = _statuses(status)
        summaries = self.connection.pages(
            "batch",
            "list_jobs",
            "jobSummaryList",
            jobQueue=self.job_queue,
            filters=[{"name": "JOB_NAME", "values": [f"{self.job_name}*"]}],
        )
        summaries = [job for job in summaries if job.get("jobName", "").startswith(self.job_name)]
        summaries = [job for job in summaries if self._definition_matches(job.get("jobDefinition"))]
        details = self._describe(_unique(job["jobId"] for job in summaries))
        rows: list[dict[str, Any]] = []
        for job in details:
            summary = (job.get("arrayProperties") or {}).get("statusSummary")
            if summary is None:
                if job.get("status") in wanted:
                    rows.append(_row(job))
                continue
            child_ids: list[str] = []
            for state in wanted:
                if summary.get(state, 0):
                    listed = self.connection.pages(
                        "batch", "list_jobs", "jobSummaryList", arrayJobId=job["jobId"], jobStatus=state
                    )
                    child_ids.extend(child["jobId"] for child in listed)
            rows.extend(_row(child, job) for child in self._describe(_unique(child_ids)))
        rows.sort(key=lambda row: (row["array_id"] or row["id"], row["array_index"] or 0))
        return rows

    def submitted(self) -> list[dict[str, Any]]:
        """Jobs in SUBMITTED."""
        return self.jobs("SUBMITTED")

    def pending(self) -> list[dict[str, Any]]:
        """Jobs in PENDING."""
        return self.jobs("PENDING")

    def runnable(self) -> list[dict[str, Any]]:
        """Jobs in RUNNABLE (waiting for capacity)."""
        return self.jobs("RUNNABLE")

    def starting(self) -> list[dict[str, Any]]:
        """Jobs in STARTING."""
        return self.jobs("STARTING")

    def running(self) -> list[dict[str, Any]]:
        """Jobs in RUNNING."""
        return self.jobs("RUNNING")

    def succeeded(self) -> list[dict[str, Any]]:
        """Jobs in SUCCEEDED."""
        return self.jobs("SUCCEEDED")

    def failed(self) -> list[dict[str, Any]]:
        """Jobs in FAILED (including cancelled and terminated ones)."""
        return self.jobs("FAILED")

    def active(self) -> list[dict[str, Any]]:
        """Jobs that have not ended (SUBMITTED to RUNNING)."""
        return self.jobs(ACTIVE_STATUSES)

    def inactive(self) -> list[dict[str, Any]]:
        """Jobs that have ended (SUCCEEDED or FAILED)."""
        return self.jobs(INACTIVE_STATUSES)

    def status(self, ids: str | Sequence[str]) -> list[dict[str, Any]]:
        """Rows for the given job ids (describe_jobs, 100 ids per call), in the order found."""
        ids = validate.strings("ids", ids)
        return [_row(job) for job in self._describe(_unique(ids))]

    # ------------------------------------------------------------------ logs
    def log(self, id: str) -> str:
        """The text a worker job wrote to CloudWatch Logs (all pages), one line per event."""
        validate.text("id", id)
        found = self._describe([id])
        if not found:
            raise SettingError(f"no AWS Batch job with id {id!r}")
        job = found[0]
        stream = (job.get("container") or {}).get("logStreamName")
        if not stream:
            attempts = job.get("attempts") or []
            stream = attempts[-1].get("container", {}).get("logStreamName") if attempts else None
        if not stream:
            return ""
        lines: list[str] = []
        token = None
        while True:
            page = self.connection.call(
                "logs",
                "get_log_events",
                logGroupName=self.log_group,
                logStreamName=stream,
                startFromHead=True,
                **({"nextToken": token} if token else {}),
            )
            lines.extend(event["message"] for event in page.get("events", []))
            following = page.get("nextForwardToken")
            if not following or following == token:
                return "\n".join(lines)
            token = following

    # ------------------------------------------------------------------ ending jobs
    def terminate(
        self,
        ids: str | Sequence[str] | None = None,
        all: bool = False,
        reason: str = "crew: terminated by the monitor",
    ) -> list[str]:
        """Cancel and terminate the given jobs, or with ``all=True`` every active crew job of the queue.

        Returns the ids it asked AWS to end (array children that had started included).
        """
        reason = validate.text("reason", reason)
        all = validate.flag("all", all)
        if ids is None and not all:
            raise SettingError("give ids, or all=True to terminate every active crew job of the queue")
        if ids is not None:
            targets = _unique(validate.strings("ids", ids))
            details = {job["jobId"]: job for job in self._describe(targets)}
            arrays = [(details.get(job) or {}).get("arrayProperties", {}).get("statusSummary") is not None for job in targets]
        else:
            listed = []
            for state in ACTIVE_STATUSES:
                listed.extend(
                    self.connection.pages("batch", "list_jobs", "jobSummaryList", jobQueue=self.job_queue, jobStatus=state)
                )
            listed = [
                job
                for job in listed
                if job.get("jobName", "").startswith(self.job_name) and self._definition_matches(job.get("jobDefinition"))
            ]
            targets = _unique(job["jobId"] for job in listed)
            kinds = {job["jobId"]: (job.get("arrayProperties") or {}).get("size") is not None for job in listed}
            arrays = [kinds[job] for job in targets]
        return _end_jobs(self.connection, targets, arrays, reason)

    # ------------------------------------------------------------------ helpers
    def _describe(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for chunk in _chunks(list(ids), _DESCRIBE_CHUNK):
            found.extend(self.connection.call("batch", "describe_jobs", jobs=chunk).get("jobs", []))
        return found

    def _definition_matches(self, arn: str | None) -> bool:
        """Whether a job's definition ARN is the monitor's job definition (always, when none is set)."""
        if self.job_definition is None:
            return True
        if arn is None:
            return False
        if self.job_definition.startswith("arn:"):
            return arn == self.job_definition
        name_revision = arn.rpartition("job-definition/")[2]
        if ":" in self.job_definition:
            return name_revision == self.job_definition
        return name_revision.rpartition(":")[0] == self.job_definition

    def __repr__(self) -> str:
        return f"AwsBatchMonitor(job_queue={self.job_queue!r}, job_definition={self.job_definition!r})"


def _statuses(status: str | Iterable[str] | None) -> tuple[str, ...]:
    if status is None:
        return STATUSES
    chosen = validate.strings("status", status)
    normalised = tuple(validate.choice("status", item.upper(), STATUSES) for item in chosen)
    return tuple(state for state in STATUSES if state in normalised)


def _row(job: Mapping[str, Any], parent: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One monitor row from a describe_jobs (or list_jobs) entry."""
    status = job.get("status")
    state = _STATES.get(status or "", "pending")
    if status == "FAILED" and (job.get("isCancelled") or job.get("isTerminated")):
        state = "cancelled"
    container = job.get("container") or {}
    index = (job.get("arrayProperties") or {}).get("index")
    parent_id, colon, suffix = job["jobId"].rpartition(":")
    if index is None and colon and suffix.isdigit():
        index = int(suffix)
    if parent is None and colon:
        parent = {"jobId": parent_id}
    started = job.get("startedAt")
    return {
        "id": job["jobId"],
        "array_index": index,
        "name": job.get("jobName"),
        "state": state,
        "reason": job.get("statusReason"),
        "node": _node(container),
        "start_time": datetime.fromtimestamp(started / 1000, tz=timezone.utc) if started else None,
        "raw_state": status,
        "array_id": parent["jobId"] if parent else None,
        "exit_code": container.get("exitCode"),
        "log_stream": container.get("logStreamName"),
    }


def _node(container: Mapping[str, Any]) -> str | None:
    """Where a job's container runs: its private address, else its container instance."""
    for interface in container.get("networkInterfaces") or []:
        address = interface.get("privateIpv4Address") or interface.get("ipv6Address")
        if address:
            return address
    return container.get("containerInstanceArn")
