"""The local compute agent: runs moto's AWS Batch container jobs as local processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from ._jobs import _POLL, TERMINAL_STATUSES, Launched, _finish, _job_environment, _LogWriter, _set_parent_reason, _stop


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
        process = self._spawn(job, command, environment)
        if process is None:
            return
        reader = threading.Thread(target=_LogWriter(job).copy, args=(process.stdout,), daemon=True)
        reader.start()
        job.status = "RUNNING"
        self._parent_follows(job)
        reason = self._supervise(job, process)
        reader.join(timeout=10)
        with self._lock:
            self._processes.pop(job.job_id, None)
        if reason is None and process.returncode != 0:
            reason = "Essential container in task exited"
        if reason is not None:
            job.job_stopped_reason = reason
        _finish(job, success=reason is None, exit_code=process.returncode)

    def _spawn(self, job: Any, command: list[str], environment: dict[str, str]) -> subprocess.Popen | None:
        """Start the job's command in a new session; None (and FAILED, exit code 127) if it cannot start."""
        if not command:
            job.job_stopped_reason = "CannotStartContainerError: the job has no command"
            _finish(job, success=False, exit_code=127)
            return None
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
            return None
        with self._lock:
            self._processes[job.job_id] = process
            self.launched.append(Launched(job.job_id, list(command), environment, process.pid))
        return process

    def _supervise(self, job: Any, process: subprocess.Popen) -> str | None:
        """Wait for the process; stop it when the job is terminated or times out, and say why (None: it exited)."""
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
        return reason

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

