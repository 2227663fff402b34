"""AwsBatchLauncher: each scaling round submits one AWS Batch array job of crew workers."""

from __future__ import annotations

import math
import shlex
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crew import validate
from crew.errors import SchedulerError
from crew.launcher import Launcher, Queued

from ._aws import _DESCRIBE_CHUNK, _chunks, _Connection, _unique
from ._ended import ENDED_STATUSES, describe_end
from ._options import (
    _environment,
    _job_name,
    _job_name_option,
    _job_settings,
    _Options,
    _overrides,
    _split,
    _submit_request,
)

__all__ = ["AwsBatchLauncher", "AwsBatchHandle", "WAITING_STATUSES", "ACTIVE_STATUSES"]

WAITING_STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING")
"""Statuses of a job whose worker has not started yet (counted as queued)."""
ACTIVE_STATUSES = WAITING_STATUSES + ("RUNNING",)
"""Statuses of a job that has not ended."""
_TERMINATE_REASON = "crew: terminated by the controller"


@dataclass(frozen=True)
class AwsBatchHandle:
    """The AWS Batch jobs of one scaling round: usually one array job (or one plain job).

    ``job_ids[i]`` runs ``sizes[i]`` workers; a size of 1 is a plain job, larger sizes are arrays
    whose children are ``f"{job_id}:{index}"``. Rounds above 10,000 workers hold several arrays.
    """

    launch: str
    job_ids: tuple[str, ...]
    sizes: tuple[int, ...]

    @property
    def workers(self) -> int:
        """How many workers the round asked for."""
        return sum(self.sizes)

    @property
    def arrays(self) -> tuple[str, ...]:
        """The ids of the round's array (parent) jobs."""
        return tuple(job for job, size in zip(self.job_ids, self.sizes) if size > 1)


class AwsBatchLauncher(Launcher):
    """Launch crew workers as AWS Batch jobs: one array job per scaling round (a plain job for one worker).

    The container runs the worker's command (``containerOverrides.command``, split into words);
    the controller's secret reaches it through ``containerOverrides.environment`` only.

    Every option is declared here, once, and validated here, once; ``aws_batch_controller`` takes
    them all. Arguments: the common launcher arguments of :class:`crew.Launcher` (``python`` is
    the interpreter inside the container, default ``python3``) and, keyword-only:
        job_queue, job_definition: name or ARN of the queue and of the job definition (required).
        region, endpoint_url: the AWS region and an optional endpoint (default: boto3's own lookup).
        aws_profile: a profile of the AWS config files; aws_credentials: a dict with
            ``aws_access_key_id``, ``aws_secret_access_key`` and optionally ``aws_session_token``.
        cpus, gpus, memory_gigabytes (1 GB = 1024 MiB), memory_mebibytes: resource requirements
            (VCPU, GPU, MEMORY) overriding the job definition's.
        environment: extra variables for the workers.
        tags, propagate_tags, share_identifier, scheduling_priority_override, parameters,
            retry_strategy (a number of attempts or AWS's dict), timeout (seconds per attempt, >= 60):
            the submit_job fields of the same names.
        container_overrides, node_overrides, eks_properties_override: AWS's override structures;
            crew adds the command and environment to them (give at most one).
        job_name: prefix of the job names (default ``crew-<controller name>``), sanitised to
            ``[A-Za-z0-9_-]`` and at most 128 characters with the round's id.
        seconds_status: the least time between two ``describe_jobs`` queries (AWS throttles
            them); one query covers every round still launching, for :meth:`queued` and
            :meth:`exit_status` alike. Default 2; ``seconds_interval`` if that is longer.
    """

    shared_filesystem = False  # a container sees none of the controller's files: the secret goes in its environment

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        job_queue: str,
        job_definition: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        aws_profile: str | None = None,
        aws_credentials: Mapping[str, str] | None = None,
        cpus: float | None = None,
        gpus: int | None = None,
        memory_gigabytes: float | None = None,
        memory_mebibytes: int | None = None,
        environment: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        propagate_tags: bool | None = None,
        share_identifier: str | None = None,
        scheduling_priority_override: int | None = None,
        parameters: Mapping[str, str] | None = None,
        retry_strategy: int | Mapping[str, Any] | None = None,
        timeout: int | None = None,
        container_overrides: Mapping[str, Any] | None = None,
        node_overrides: Mapping[str, Any] | None = None,
        eks_properties_override: Mapping[str, Any] | None = None,
        job_name: str | None = None,
        seconds_status: float = 2.0,
        python: str | None = None,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, python="python3" if python is None else python, **options)
        self.options = _Options(
            job_queue=validate.text("job_queue", job_queue),
            job_definition=validate.text("job_definition", job_definition),
            job_name=_job_name_option(job_name),
            environment=_environment(environment),
            **_job_settings(
                cpus=cpus, gpus=gpus, memory_gigabytes=memory_gigabytes, memory_mebibytes=memory_mebibytes, tags=tags,
                propagate_tags=propagate_tags, share_identifier=share_identifier,
                scheduling_priority_override=scheduling_priority_override, parameters=parameters,
                retry_strategy=retry_strategy, timeout=timeout),
            **_overrides(container_overrides, node_overrides, eks_properties_override),
        )
        self.seconds_status = validate.number("seconds_status", seconds_status, minimum=0)
        self.connection = _Connection(
            region=region, endpoint_url=endpoint_url, aws_profile=aws_profile, aws_credentials=aws_credentials,
            seconds_timeout=self.seconds_timeout,
        )  # fmt: skip
        self.jobs: dict[str, AwsBatchHandle] = {}
        """The jobs submitted so far, by scaling round (launch id)."""
        self._lock = threading.Lock()
        self._described_at = -math.inf
        self._described: dict[str, dict[str, Any]] = {}
        self._asked: frozenset[str] = frozenset()
        self._describe_lock = threading.Lock()
        self._endings: dict[str, str] = {}
        self._ended: set[str] = set()

    # ------------------------------------------------------------------ names and requests
    @property
    def job_name_prefix(self) -> str:
        """The prefix of this launcher's job names."""
        return self.options.job_name or f"crew-{self.name or 'crew'}"

    def requests(self, call: str, n: int, launch: str | None = None) -> list[dict[str, Any]]:
        """The ``submit_job`` requests that launching ``n`` workers running ``call`` makes (a dry run).

        They hold the worker's secret in the container environment: do not log them.
        """
        command = shlex.split(call)
        launch = launch if launch is not None else _launch_of(command)
        sizes = _split(n)
        secret = self.environment
        return [
            _submit_request(
                self.options,
                _job_name(self.job_name_prefix, str(launch), part if len(sizes) > 1 else None),  # "None": no --launch
                command,
                secret,
                size,
            )
            for part, size in enumerate(sizes)
        ]

    # ------------------------------------------------------------------ the launcher contract
    def launch_workers(self, call: str, n: int) -> AwsBatchHandle:
        """Submit one job for the ``n`` workers of a round (more only above 10,000 workers)."""
        command = shlex.split(call)
        launch = _launch_of(command) or self.next_launch()
        requests = self.requests(call, n, launch=launch)
        job_ids: list[str] = []
        try:
            for request in requests:
                reply = self.connection.call("batch", "submit_job", **request)
                job_ids.append(reply["jobId"])
        except SchedulerError:
            if job_ids:  # a later part failed: do not leave the earlier ones running unmanaged
                self._end(job_ids, [request.get("arrayProperties", {}).get("size", 1) for request in requests], _TERMINATE_REASON)
            raise
        handle = AwsBatchHandle(
            launch=launch,
            job_ids=tuple(job_ids),
            sizes=tuple(request.get("arrayProperties", {}).get("size", 1) for request in requests),
        )
        with self._lock:
            self.jobs[launch] = handle
        return handle

    def terminate_worker(self, handle: AwsBatchHandle) -> None:
        """Cancel and terminate the job(s) of one round, array children included."""
        self.terminate_workers([handle])

    def terminate_workers(self, handles: Sequence[AwsBatchHandle]) -> None:
        """Cancel and terminate the jobs of several rounds, array children included.

        When the controller has no worker left (it is terminating, or every launch expired), the
        jobs of earlier rounds that are still active are ended too, so nothing keeps running.
        """
        handles = _unique(handles)
        with self._lock:
            final = not self.instances
            others = [handle for handle in self.jobs.values() if handle not in handles and handle.launch not in self._ended]
        if final and others:
            handles += self._still_active(others)
        try:
            self._end(
                [job for handle in handles for job in handle.job_ids],
                [size for handle in handles for size in handle.sizes],
                _TERMINATE_REASON,
            )
        finally:
            with self._lock:
                self._ended.update(handle.launch for handle in handles)
                if final:
                    self._ended.update(handle.launch for handle in others)

    def terminate_all(self) -> None:
        """Cancel and terminate every job this launcher submitted."""
        with self._lock:
            handles = list(self.jobs.values())
        self.terminate_workers(handles)

    def queued(self, handles: Sequence[AwsBatchHandle]) -> list[Queued | None]:
        """Per handle, how many of its workers have not started yet, and AWS's reason.

        Asks ``describe_jobs`` (100 ids per call) at most every ``seconds_status`` seconds.
        """
        details = self._details(_unique(job for handle in handles for job in handle.job_ids))
        return [_queued(handle, details) for handle in handles]

    def exit_status(self, handle: Any, timeout: float = 0.0) -> str | None:
        """How the jobs of a round ended, once every one of them has (None while one is active).

        ``"FAILED: <AWS's statusReason> (exit code N); log: <the container's last log lines>"``
        (for an array, of a failed child), or ``"SUCCEEDED: ..."``. The controller calls it for
        rounds whose workers have not dialled in: a round that ended fails its launch at once.
        It reads the status :meth:`queued` fetched (one batched ``describe_jobs`` per
        ``seconds_status``) and never waits (``timeout`` is ignored).
        """
        if not isinstance(handle, AwsBatchHandle):
            return None
        with self._lock:
            if handle.launch in self._endings:
                return self._endings[handle.launch]
        details = self._details(list(handle.job_ids))
        jobs = [details.get(job_id) for job_id in handle.job_ids]
        if not all(job is not None and job.get("status") in ENDED_STATUSES for job in jobs):
            return None
        ending = describe_end(self.connection, [job for job in jobs if job is not None], handle.sizes)
        with self._lock:
            self._endings[handle.launch] = ending
        return ending

    # ------------------------------------------------------------------ helpers
    def _details(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """describe_jobs of ``ids`` and of every round still launching, at most once per
        ``seconds_status`` (sooner only for ids not asked about yet)."""
        with self._describe_lock:
            now = time.monotonic()
            fresh = now - self._described_at < max(self.seconds_interval, self.seconds_status)
            if fresh and set(ids) <= self._asked:
                return self._described
            launching = [
                job for instance in self.instances if instance.state == "launching"
                and isinstance(instance.handle, AwsBatchHandle) for job in instance.handle.job_ids
            ]  # fmt: skip
            wanted = _unique([*ids, *launching])
            details: dict[str, dict[str, Any]] = {}
            for chunk in _chunks(wanted, _DESCRIBE_CHUNK):
                for job in self.connection.call("batch", "describe_jobs", jobs=chunk).get("jobs", []):
                    details[job["jobId"]] = job
            self._described, self._asked, self._described_at = details, frozenset(wanted), now
            return details

    def _still_active(self, handles: Sequence[AwsBatchHandle]) -> list[AwsBatchHandle]:
        """The rounds of which some job may still run (describe_jobs, 100 ids per call)."""
        ids = _unique(job for handle in handles for job in handle.job_ids)
        found: dict[str, str] = {}
        for chunk in _chunks(ids, _DESCRIBE_CHUNK):
            for job in self.connection.call("batch", "describe_jobs", jobs=chunk).get("jobs", []):
                found[job["jobId"]] = job.get("status")
        return [
            handle for handle in handles if any(found.get(job, "RUNNING") in ACTIVE_STATUSES for job in handle.job_ids)
        ]

    def _end(self, job_ids: Sequence[str], sizes: Sequence[int], reason: str) -> None:
        _end_jobs(self.connection, job_ids, [size > 1 for size in sizes], reason)

    def __repr__(self) -> str:
        return (
            f"AwsBatchLauncher(name={self.name!r}, workers={self.workers}, "
            f"job_queue={self.options.job_queue!r}, job_definition={self.options.job_definition!r})"
        )


def _launch_of(command: Sequence[str]) -> str | None:
    """The scaling round's id from a worker command (the word after ``--launch``)."""
    for position, word in enumerate(command[:-1]):
        if word == "--launch":
            return command[position + 1]
    return None


def _queued(handle: AwsBatchHandle, details: Mapping[str, Mapping[str, Any]]) -> Queued:
    """How many of a round's workers wait, from the describe_jobs details of its jobs."""
    count = 0
    reasons: list[str] = []
    for job_id, size in zip(handle.job_ids, handle.sizes):
        job = details.get(job_id)
        if job is None:
            continue
        status = job.get("status")
        if size > 1:
            summary = (job.get("arrayProperties") or {}).get("statusSummary") or {}
            waiting = {state: summary.get(state, 0) for state in WAITING_STATUSES if summary.get(state, 0)}
            if not summary and status in WAITING_STATUSES:
                waiting = {status: size}  # children not created yet
            count += sum(waiting.values())
            if waiting:
                reasons.append(job.get("statusReason") or max(waiting, key=lambda state: waiting[state]))
        elif status in WAITING_STATUSES:
            count += 1
            reasons.append(job.get("statusReason") or status)
    return Queued(count, "; ".join(_unique(reasons)) if count else None)


def _end_jobs(connection: _Connection, job_ids: Sequence[str], arrays: Sequence[bool], reason: str) -> list[str]:
    """Cancel and terminate jobs; for array parents also terminate children that already started.

    Tries every job, then raises the first AWS error, if any. Returns the ids it ended.
    """
    errors: list[SchedulerError] = []
    ended: list[str] = []
    for job_id, is_array in zip(job_ids, arrays):
        try:
            connection.call("batch", "cancel_job", jobId=job_id, reason=reason)
            connection.call("batch", "terminate_job", jobId=job_id, reason=reason)
            ended.append(job_id)
            if is_array:
                for status in ("STARTING", "RUNNING"):
                    children = connection.pages("batch", "list_jobs", "jobSummaryList", arrayJobId=job_id, jobStatus=status)
                    for child in children:
                        connection.call("batch", "terminate_job", jobId=child["jobId"], reason=reason)
                        ended.append(child["jobId"])
        except SchedulerError as error:
            errors.append(error)
    if errors:
        raise errors[0]
    return ended
