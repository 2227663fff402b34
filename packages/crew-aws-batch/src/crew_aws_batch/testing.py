"""A local AWS Batch for tests: moto's real HTTP API on 127.0.0.1 plus crew's own compute agent.

Needs the ``[test]`` extra (``moto[server,batch]``). Nothing here reaches beyond 127.0.0.1.

moto answers every AWS Batch, CloudWatch Logs and IAM call over HTTP, parsed and checked by
botocore against the real service model. moto cannot run a job without Docker, so
:class:`LocalBatchAgent` takes its place: each container job's command runs as a local process
(the image is ignored) with the AWS Batch environment (``AWS_BATCH_JOB_ID``,
``AWS_BATCH_JOB_ARRAY_INDEX``, ``AWS_BATCH_JOB_ATTEMPT``, ``AWS_BATCH_JQ_NAME``,
``AWS_BATCH_CE_NAME``); the job goes SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING →
SUCCEEDED or FAILED; its output goes to CloudWatch Logs under the stream ``describe_jobs``
names; its exit code is recorded; ``terminate_job`` kills it (an array parent ends its children);
and :meth:`LocalBatchAgent.hold` keeps new jobs in RUNNABLE, like a queue without capacity.

While the agent is installed it also makes moto answer like AWS where moto differs:
``describe_jobs`` reports ``container.exitCode``, ``isCancelled``/``isTerminated``, the array
index of children and a stable environment (moto's grows on each call); ``list_jobs`` without a
status or filter lists RUNNING jobs only, a queue listing leaves out array children, and its
summaries carry ``arrayProperties``; array parents follow their children (moto leaves them
SUBMITTED); cancelling or terminating a parent reaches its children.

Use :func:`local_aws_batch` (a context manager) or the ``aws_batch`` pytest fixture::

    from crew_aws_batch.testing import local_aws_batch

    with local_aws_batch(slots=2) as batch:
        controller = aws_batch_controller(host="127.0.0.1", **batch.options())

The agent changes moto's classes for the whole process while it is installed: run one local
AWS Batch at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.batch import models as _batch_models

__all__ = ["LocalBatchAgent", "LocalAwsBatch", "Launched", "local_aws_batch", "aws_batch", "TERMINAL_STATUSES"]

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


class LocalBatchAgent:
    """Runs moto's AWS Batch container jobs as local processes.

    Arguments:
        slots: how many jobs run at once (more wait in RUNNABLE).
        seconds_step: time spent in each status before RUNNING (so that tests can see them).
        seconds_kill: grace between SIGTERM and SIGKILL when a job is terminated or times out.
        environment: the base environment of the processes (default: this process's environment
            when the local AWS Batch starts).
        cwd: the processes' working directory (default: the current one).
    """

    def __init__(
        self,
        slots: int = 4,
        seconds_step: float = 0.05,
        seconds_kill: float = 2.0,
        environment: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ):
        if slots < 1:
            raise ValueError(f"slots must be >= 1, not {slots}")
        self.slots = slots
        self.seconds_step = seconds_step
        self.seconds_kill = seconds_kill
        self.environment: dict[str, str] | None = dict(environment) if environment is not None else None
        self.cwd = cwd
        self.launched: list[Launched] = []
        """Every process started, in order."""
        self.jobs: list[Any] = []
        """Every moto job handed to the agent."""
        self._free = threading.Semaphore(slots)
        self._open = threading.Event()
        self._open.set()
        self._hold_reason: str | None = None
        self._lock = threading.RLock()
        self._processes: dict[str, subprocess.Popen] = {}

    # ------------------------------------------------------------------ controls for tests
    def hold(self, reason: str = "crew local agent: holding jobs (no capacity)") -> None:
        """Keep jobs that reach RUNNABLE there (with ``reason`` as their statusReason) until release()."""
        self._hold_reason = reason
        self._open.clear()

    def release(self) -> None:
        """Let held jobs start again."""
        self._hold_reason = None
        self._open.set()

    @contextlib.contextmanager
    def held(self, reason: str = "crew local agent: holding jobs (no capacity)") -> Iterator[LocalBatchAgent]:
        """hold() for the duration of a ``with`` block."""
        self.hold(reason)
        try:
            yield self
        finally:
            self.release()

    def process(self, job_id: str) -> subprocess.Popen | None:
        """The process of a job while it runs (None before and after)."""
        with self._lock:
            return self._processes.get(job_id)

    def running(self) -> dict[str, int]:
        """Job id → pid of every process running now."""
        with self._lock:
            return {job_id: process.pid for job_id, process in self._processes.items() if process.poll() is None}

    def crash(self, job_id: str) -> None:
        """Kill a running job's processes at once (SIGKILL), as if its container died."""
        process = self.process(job_id)
        if process is None:
            raise LookupError(f"job {job_id} has no running process")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ one job (runs in moto's job thread)
    def _run(self, job: Any) -> None:
        with self._lock:
            self.jobs.append(job)
        try:
            self._walk(job)
        except Exception as error:  # never leave a job unfinished because of the agent
            job.job_stopped_reason = f"crew local agent: {type(error).__name__}: {error}"
            _finish(job, success=False)
        finally:
            self._parent_follows(job)

    def _walk(self, job: Any) -> None:
        properties = job.job_definition.container_properties
        if properties is None or job.job_definition.eks_properties is not None:
            job.job_stopped_reason = "crew local agent: only container jobs run locally"
            _finish(job, success=False)
            return
        if not self._step(job, "PENDING"):
            return
        if not self._dependencies_met(job):
            return
        waiting_reason = self._note_hold(job, None)  # the reason shows as soon as the status does
        if not self._step(job, "RUNNABLE"):
            return
        if not self._acquire(job, waiting_reason):
            return
        try:
            if not self._step(job, "STARTING"):
                return
            self._execute(job)
        finally:
            self._free.release()

    def _step(self, job: Any, status: str) -> bool:
        """Enter ``status`` and stay there a moment; False (and FAILED) if the job was ended."""
        if job.stop:
            _finish(job, success=False)
            return False
        job.status = status
        self._parent_follows(job)
        deadline = time.monotonic() + self.seconds_step
        while time.monotonic() < deadline:
            if job.stop:
                _finish(job, success=False)
                return False
            time.sleep(min(_POLL, self.seconds_step))
        return True

    def _dependencies_met(self, job: Any) -> bool:
        for dependency in job.depends_on or []:
            while True:
                other = job.all_jobs.get(dependency["jobId"])
                status = other.status if other is not None else "FAILED"
                if status == "SUCCEEDED":
                    break
                if status == "FAILED" or job.stop:
                    job.job_stopped_reason = job.job_stopped_reason or "Dependent Job failed"
                    _finish(job, success=False)
                    return False
                time.sleep(_POLL)
        return True

    def _note_hold(self, job: Any, waiting_reason: str | None) -> str | None:
        """While jobs are held, give the job (and its array parent) the hold's reason once."""
        reason = self._hold_reason
        if waiting_reason is None and reason and not self._open.is_set():
            job.job_stopped_reason = reason
            _set_parent_reason(job, None, reason)
            return reason
        return waiting_reason

    def _acquire(self, job: Any, waiting_reason: str | None) -> bool:
        """Wait in RUNNABLE for an open queue and a free slot; False (and FAILED) if the job was ended."""
        while True:
            if job.stop:
                _finish(job, success=False)
                return False
            if self._open.is_set() and self._free.acquire(timeout=_POLL):
                if waiting_reason is not None and job.job_stopped_reason == waiting_reason:
                    job.job_stopped_reason = None
                    _set_parent_reason(job, waiting_reason, None)
                return True
            waiting_reason = self._note_hold(job, waiting_reason)
            time.sleep(_POLL)

    def _execute(self, job: Any) -> None:
        job.job_started_at = datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        command = job._add_parameters_to_command(job._get_container_property("command", []))
        environment = self._environment_of(job)
        log = _LogWriter(job)
        if not command:
            job.job_stopped_reason = "CannotStartContainerError: the job has no command"
            _finish(job, success=False, exit_code=127)
            return
        try:
            process = subprocess.Popen(
                command,
                env=environment,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            job.job_stopped_reason = f"CannotStartContainerError: {error}"
            _finish(job, success=False, exit_code=127)
            return
        with self._lock:
            self._processes[job.job_id] = process
            self.launched.append(Launched(job.job_id, list(command), environment, process.pid))
        reader = threading.Thread(target=log.copy, args=(process.stdout,), daemon=True)
        reader.start()
        job.status = "RUNNING"
        self._parent_follows(job)
        limit = job._get_attempt_duration()
        deadline = time.monotonic() + limit if limit else None
        reason = None
        while process.poll() is None:
            if job.stop:
                reason = job.job_stopped_reason or "Terminated"
            elif deadline is not None and time.monotonic() > deadline:
                reason = "Job attempt duration exceeded timeout"
            if reason is not None:
                _stop(process, self.seconds_kill)
                break
            time.sleep(_POLL)
        process.wait()
        reader.join(timeout=10)
        with self._lock:
            self._processes.pop(job.job_id, None)
        if reason is None and process.returncode != 0:
            reason = "Essential container in task exited"
        if reason is not None:
            job.job_stopped_reason = reason
        _finish(job, success=reason is None, exit_code=process.returncode)

    def _environment_of(self, job: Any) -> dict[str, str]:
        environment = dict(self.environment if self.environment is not None else os.environ)
        for entry in _job_environment(job):
            environment[entry["name"]] = entry["value"]
        environment["AWS_BATCH_JOB_ID"] = job.job_id
        environment["AWS_BATCH_JOB_ATTEMPT"] = str(max(len(job.attempts), 1))
        environment["AWS_BATCH_JQ_NAME"] = job.job_queue.name
        if job.job_queue.environments:
            environment["AWS_BATCH_CE_NAME"] = job.job_queue.environments[0].name
        index = job.array_properties.get("index")
        if index is not None:
            environment["AWS_BATCH_JOB_ARRAY_INDEX"] = str(index)
        return environment

    def _parent_follows(self, child: Any) -> None:
        """AWS's array parent: PENDING once a child is RUNNABLE, then SUCCEEDED/FAILED with the last child."""
        parent_id, colon, _ = child.job_id.rpartition(":")
        parent = child.all_jobs.get(parent_id) if colon else None
        if parent is None or not parent._child_jobs:
            return
        with self._lock:
            if parent.job_stopped:
                return
            statuses = [item._status for item in parent._child_jobs]
            if all(status in TERMINAL_STATUSES for status in statuses):
                parent.job_stopped_reason = parent.job_stopped_reason if parent.stop else None
                _finish(parent, success=all(status == "SUCCEEDED" for status in statuses))
            elif parent._status == "SUBMITTED" and any(status not in ("SUBMITTED", "PENDING") for status in statuses):
                parent.status = "PENDING"
            if parent.job_started_at == datetime(1970, 1, 1) and any(
                status in ("RUNNING", "SUCCEEDED") for status in statuses
            ):
                parent.job_started_at = datetime.now()

    def _stop_all(self) -> None:
        """End every job still going (at shutdown) and wait for their threads."""
        for job in list(self.jobs):
            if not job.job_stopped:
                job.terminate("crew local agent: shutting down")
        self.release()
        for job in list(self.jobs):
            job.join(timeout=self.seconds_kill + 10)


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


# ---------------------------------------------------------------------- moto, made to answer like AWS
@contextlib.contextmanager
def _installed(agent: LocalBatchAgent) -> Iterator[None]:
    """Replace moto's job runner with the agent and fix moto's answers; undo it afterwards."""
    Job, Backend = _batch_models.Job, _batch_models.BatchBackend
    saved = {
        (Job, "run"): Job.run,
        (Job, "describe"): Job.describe,
        (Job, "describe_short"): Job.describe_short,
        (Job, "_container_details"): Job._container_details,
        (Job, "_get_container_property"): Job._get_container_property,
        (Backend, "cancel_job"): Backend.cancel_job,
        (Backend, "terminate_job"): Backend.terminate_job,
        (Backend, "list_jobs"): Backend.list_jobs,
    }
    original = {name: function for (_, name), function in saved.items()}

    def run(self: Any) -> None:
        agent._run(self)

    def get_container_property(self: Any, name: str, default: Any) -> Any:
        if name == "environment":
            return _job_environment(self)
        return original["_get_container_property"](self, name, default)

    def container_details(self: Any) -> dict[str, Any]:
        details = original["_container_details"](self)
        if self.exit_code is not None:
            details["exitCode"] = self.exit_code
        if self.job_stopped and self.job_stopped_reason:
            details.setdefault("reason", self.job_stopped_reason)
        if self.log_stream_name:
            details["networkInterfaces"] = [{"privateIpv4Address": "127.0.0.1"}]
        return details

    def array_properties(self: Any) -> dict[str, Any] | None:
        if self._child_jobs:
            return {"size": len(self._child_jobs)}
        if self.array_properties.get("index") is not None:
            return {"index": self.array_properties["index"]}
        return None

    def describe(self: Any) -> dict[str, Any]:
        result = original["describe"](self)
        if getattr(self, "_crew_cancelled", False):
            result["isCancelled"] = True
        if getattr(self, "_crew_terminated", False):
            result["isTerminated"] = True
        extra = array_properties(self)
        if extra is not None:
            result["arrayProperties"] = {**extra, **result.get("arrayProperties", {})}
        return result

    def describe_short(self: Any) -> dict[str, Any]:
        result = original["describe_short"](self)
        extra = array_properties(self)
        if extra is not None:
            result["arrayProperties"] = extra
        return result

    def cancel_job(self: Any, job_id: str, reason: str) -> None:
        original["cancel_job"](self, job_id, reason)
        job = self.get_job_by_id(job_id)
        if job is None:
            return
        for item in [job, *(job._child_jobs or [])]:
            if item._status in _WAITING:
                item.terminate(reason)
                item._crew_cancelled = True

    def terminate_job(self: Any, job_id: str, reason: str) -> None:
        original["terminate_job"](self, job_id, reason)
        job = self.get_job_by_id(job_id)
        if job is None:
            return
        for item in [job, *(job._child_jobs or [])]:
            if item._status not in TERMINAL_STATUSES:
                item.terminate(reason)
                item._crew_terminated = True

    def list_jobs(self: Any, job_queue_name: Any, array_job_id: Any, job_status: Any = None, filters: Any = None) -> Any:
        if job_status is None and not filters:
            job_status = "RUNNING"  # AWS's default
        jobs = original["list_jobs"](self, job_queue_name, array_job_id, job_status, filters)
        if job_queue_name and not array_job_id:
            jobs = [job for job in jobs if job.array_properties.get("index") is None]
        return jobs

    replacements = {
        "run": run,
        "describe": describe,
        "describe_short": describe_short,
        "_container_details": container_details,
        "_get_container_property": get_container_property,
        "cancel_job": cancel_job,
        "terminate_job": terminate_job,
        "list_jobs": list_jobs,
    }
    for (owner, name) in saved:
        setattr(owner, name, replacements[name])
    try:
        yield
    finally:
        for (owner, name), function in saved.items():
            setattr(owner, name, function)


# ---------------------------------------------------------------------- the local AWS Batch
@dataclass
class LocalAwsBatch:
    """A running local AWS Batch: endpoint, agent, and the queue and definition made for tests."""

    endpoint: str
    agent: LocalBatchAgent
    region: str
    job_queue: str
    job_definition: str
    compute_environment: str
    log_group: str = _LOG_GROUP
    environment: dict[str, str] = field(default_factory=dict)
    """The variables set for the duration (endpoint, region, dummy credentials)."""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint (one per service, reused)."""
        import boto3

        with self._lock:
            if service not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
                )
                self._clients[service] = session.client(service, endpoint_url=self.endpoint)
            return self._clients[service]

    def options(self) -> dict[str, str]:
        """Keyword arguments that point a launcher, controller or monitor at this AWS Batch."""
        return {
            "job_queue": self.job_queue,
            "job_definition": self.job_definition,
            "region": self.region,
            "endpoint_url": self.endpoint,
        }

    def wait(self, job_ids: Sequence[str], statuses: Sequence[str] = TERMINAL_STATUSES, seconds: float = 30) -> dict[str, str]:
        """Poll describe_jobs until every job is in one of ``statuses``; return id → status."""
        batch = self.client("batch")
        deadline = time.monotonic() + seconds
        while True:
            found = {job["jobId"]: job["status"] for job in batch.describe_jobs(jobs=list(job_ids))["jobs"]}
            if len(found) == len(set(job_ids)) and all(status in statuses for status in found.values()):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not in {statuses} after {seconds} s: {found}")
            time.sleep(0.05)


_ENVIRONMENT_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


@contextlib.contextmanager
def _environment(values: Mapping[str, str], cleared: Sequence[str]) -> Iterator[None]:
    """Set and clear environment variables for the duration; restore them exactly afterwards."""
    names = list(values) + list(cleared)
    before = {name: os.environ.get(name) for name in names}
    try:
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def local_aws_batch(
    agent: LocalBatchAgent | None = None,
    *,
    slots: int = 4,
    region: str = "us-east-1",
    name: str = "crew-test",
    image: str = "crew-worker:local",
) -> Iterator[LocalAwsBatch]:
    """Start moto on 127.0.0.1 (a free port) with the agent, make an UNMANAGED compute environment,
    a queue and a job definition, and point boto3 at it with dummy credentials for the duration.

    On exit every job is ended, the server stops, moto's state is reset and the environment is restored.
    """
    from moto.moto_api._internal.models import moto_api_backend
    from moto.server import ThreadedMotoServer

    agent = agent if agent is not None else LocalBatchAgent(slots=slots)
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_api_backend.reset()
    with _installed(agent):
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            values = {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": region,
                "AWS_REGION": region,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
            with _environment(values, _ENVIRONMENT_CLEARED):
                if agent.environment is None:
                    agent.environment = dict(os.environ)
                else:
                    agent.environment.update(values)
                batch = LocalAwsBatch(endpoint, agent, region, "", "", "", environment=values)
                batch.job_queue, batch.job_definition, batch.compute_environment = _create_queue(batch, name, image)
                try:
                    yield batch
                finally:
                    agent._stop_all()
        finally:
            server.stop()
            moto_api_backend.reset()
            quiet.setLevel(level)


def _create_queue(batch: LocalAwsBatch, name: str, image: str) -> tuple[str, str, str]:
    """An IAM service role, an UNMANAGED compute environment, a queue and a job definition."""
    iam = batch.client("iam")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=f"{name}-service", AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]
    client = batch.client("batch")
    environment = client.create_compute_environment(
        computeEnvironmentName=f"{name}-environment", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    client.create_job_queue(
        jobQueueName=f"{name}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    client.register_job_definition(
        jobDefinitionName=f"{name}-worker",
        type="container",
        containerProperties={
            "image": image,
            "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    return f"{name}-queue", f"{name}-worker", environment["computeEnvironmentArn"]


try:
    import pytest as _pytest
except ImportError:  # pragma: no cover - pytest is part of the [test] extra
    _pytest = None

if _pytest is not None:

    @_pytest.fixture
    def aws_batch() -> Iterator[LocalAwsBatch]:
        """A :class:`LocalAwsBatch` with two slots, for one test (``pytest_plugins = ["crew_aws_batch.testing"]``)."""
        with local_aws_batch(slots=2) as batch:
            yield batch
