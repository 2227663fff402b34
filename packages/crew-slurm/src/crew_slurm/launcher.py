"""SlurmLauncher: each auto-scaling round submits one ``sbatch --array=1-n`` job."""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Sequence
from typing import Any

from crew import Queued, SettingError, validate
from crew.cluster import DIRECTIVE_VALUE, ClusterLauncher, megabytes

__all__ = ["STATES", "SlurmLauncher", "parse_ended", "parse_job_id", "parse_pending"]

_JOB_ID = re.compile(r"(\d+)(?:;\S+)?")

STATES = {
    "PENDING": "pending", "REQUEUED": "pending", "REQUEUE_FED": "pending", "REQUEUE_HOLD": "pending",
    "RESV_DEL_HOLD": "pending", "CONFIGURING": "pending", "POWER_UP_NODE": "pending",
    "RUNNING": "running", "COMPLETING": "running", "SUSPENDED": "running", "STOPPED": "running",
    "SIGNALING": "running", "STAGE_OUT": "running", "RESIZING": "running",
    "COMPLETED": "done",
    "CANCELLED": "cancelled", "REVOKED": "cancelled",
    "FAILED": "failed", "TIMEOUT": "failed", "NODE_FAIL": "failed", "PREEMPTED": "failed",
    "BOOT_FAIL": "failed", "DEADLINE": "failed", "OUT_OF_MEMORY": "failed", "SPECIAL_EXIT": "failed",
}
"""SLURM's job states (``squeue -o %T`` / ``sacct -o State``) and what crew calls them."""
_ENDED = frozenset(state for state, kind in STATES.items() if kind in ("done", "failed", "cancelled"))


def parse_job_id(output: str) -> str:
    """The job id in the output of ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    for line in output.splitlines():
        match = _JOB_ID.fullmatch(line.strip())
        if match:
            return match.group(1)
    raise ValueError(f"no job id in {output!r}")


def _tasks(output: str) -> dict[str, list[tuple[str, str]]]:
    """Per job id, its array tasks' (state, reason) from ``squeue --array --format=%F|%T|%r``."""
    tasks: dict[str, list[tuple[str, str]]] = {}
    for line in output.splitlines():
        if line.strip():
            job_id, state, reason = (part.strip() for part in line.strip().split("|", 2))
            tasks.setdefault(job_id, []).append((state, reason))
    return tasks


def parse_pending(output: str) -> dict[str, Queued]:
    """Per job id in ``squeue --array --format=%F|%T|%r`` output: its pending tasks and SLURM's
    reason (the one most of them share)."""
    queued = {}
    for job_id, tasks in _tasks(output).items():
        reasons = collections.Counter(reason for state, reason in tasks if state == "PENDING")
        top = reasons.most_common(1)[0][0] if reasons else ""
        queued[job_id] = Queued(sum(reasons.values()), _reason(top))
    return queued


def parse_ended(output: str) -> dict[str, str]:
    """Per job id in ``squeue --array --format=%F|%T|%r`` output none of whose tasks waits or
    runs: its tasks' final states (``COMPLETED``, ``FAILED, CANCELLED``, ...)."""
    return {
        job_id: ", ".join(dict.fromkeys(state for state, _ in tasks))
        for job_id, tasks in _tasks(output).items()
        if all(state in _ENDED for state, _ in tasks)
    }


def _reason(text: str) -> str | None:
    return None if text in ("", "None", "(null)") else text


class SlurmLauncher(ClusterLauncher):
    """Launch crew workers as SLURM array jobs: one ``sbatch --parsable --array=1-n`` per round.

    Arguments (all optional; None leaves SLURM's default):
        partition: ``--partition``.
        account: ``--account``.
        qos: ``--qos``.
        time_minutes: ``--time`` in minutes (a fraction is rounded up).
        n_tasks: ``--ntasks``, the tasks (processes) SLURM allocates to each worker's job; the
            worker itself runs once, so this reserves room for what tasks start themselves
            (``srun``, MPI).
        cpus_per_task: ``--cpus-per-task``.
        memory_gigabytes_required: ``--mem`` per worker, in GB (fractions become whole MB).
        memory_gigabytes_per_cpu: ``--mem-per-cpu``, in GB (not together with the above).
        gpus: ``--gres``: a number of GPUs (``2`` gives ``gpu:2``) or a GRES text (``"a100:2"``
            gives ``gpu:a100:2``; ``"gpu:a100:2"`` is kept).
        constraint: ``--constraint``.

    and those of :class:`crew.cluster.ClusterLauncher` (``script_directory``, ``script_lines``,
    ``extra_directives``, ``log_output``, ``log_error``, ``job_name``, ``command_submit``,
    ``command_cancel``, ``machine``, ``seconds_status``) and :class:`crew.Launcher` (``name``,
    ``workers``, ``seconds_*``, ``tasks_*``, ``python``, ...). By default each worker logs to
    ``<script_directory>/logs/<job name>_<job id>_<array index>.out`` (and ``.err``).
    """

    directive_prefix = "#SBATCH"
    default_submit = "sbatch"
    default_cancel = "scancel"
    log_pattern = "%A_%a"
    command_status = "squeue"
    """The command that lists the queue (on the same machine)."""

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        time_minutes: float | None = None,
        n_tasks: int | None = None,
        cpus_per_task: int | None = None,
        memory_gigabytes_required: float | None = None,
        memory_gigabytes_per_cpu: float | None = None,
        gpus: int | str | None = None,
        constraint: str | None = None,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, **options)
        self.partition = validate.text("partition", partition, allow_none=True, pattern=DIRECTIVE_VALUE)
        self.account = validate.text("account", account, allow_none=True, pattern=DIRECTIVE_VALUE)
        self.qos = validate.text("qos", qos, allow_none=True, pattern=DIRECTIVE_VALUE)
        self.time_minutes = validate.number("time_minutes", time_minutes, exclusive_minimum=True, allow_none=True)
        self.n_tasks = validate.integer("n_tasks", n_tasks, minimum=1, allow_none=True)
        self.cpus_per_task = validate.integer("cpus_per_task", cpus_per_task, minimum=1, allow_none=True)
        self.memory_gigabytes_required = validate.number(
            "memory_gigabytes_required", memory_gigabytes_required, exclusive_minimum=True, allow_none=True
        )
        self.memory_gigabytes_per_cpu = validate.number(
            "memory_gigabytes_per_cpu", memory_gigabytes_per_cpu, exclusive_minimum=True, allow_none=True
        )
        if self.memory_gigabytes_required is not None and self.memory_gigabytes_per_cpu is not None:
            raise SettingError(
                "memory_gigabytes_required and memory_gigabytes_per_cpu exclude each other "
                "(SLURM's --mem and --mem-per-cpu): give one of them"
            )
        if isinstance(gpus, str):
            self.gpus: int | str | None = validate.text("gpus", gpus, pattern=DIRECTIVE_VALUE)
        else:
            self.gpus = validate.integer("gpus", gpus, minimum=1, allow_none=True)
        self.constraint = validate.text("constraint", constraint, allow_none=True, pattern=DIRECTIVE_VALUE)

    def _directives(self, n: int) -> list[str]:
        """``#SBATCH`` options for an array of ``n`` workers (an array of 1 for a single worker)."""
        lines = [
            f"--job-name={self.job_name}",
            f"--array=1-{n}",
            f"--output={self.log_path('output')}",
            f"--error={self.log_path('error')}",
        ]
        options = (
            ("partition", self.partition),
            ("account", self.account),
            ("qos", self.qos),
            ("time", None if self.time_minutes is None else math.ceil(self.time_minutes)),
            ("ntasks", self.n_tasks),
            ("cpus-per-task", self.cpus_per_task),
            ("mem", None if self.memory_gigabytes_required is None else f"{megabytes(self.memory_gigabytes_required)}M"),
            ("mem-per-cpu", None if self.memory_gigabytes_per_cpu is None else f"{megabytes(self.memory_gigabytes_per_cpu)}M"),
            ("gres", self._gres()),
            ("constraint", self.constraint),
        )
        lines += [f"--{option}={value}" for option, value in options if value is not None]
        return lines

    def _gres(self) -> str | None:
        if self.gpus is None:
            return None
        if isinstance(self.gpus, str) and self.gpus.startswith("gpu"):
            return self.gpus
        return f"gpu:{self.gpus}"

    def _submit_arguments(self, script: str) -> list[str]:
        return ["--parsable", script]

    def _parse_job_id(self, output: str) -> str:
        return parse_job_id(output)

    def _status_arguments(self, job_ids: Sequence[str]) -> list[str]:
        return [
            self.command_status, "--noheader", "--array", "--states=all",
            f"--jobs={','.join(job_ids)}", "--format=%F|%T|%r",
        ]

    def _parse_status(self, output: str) -> dict[str, Queued]:
        return parse_pending(output)

    def _parse_ended(self, output: str) -> dict[str, str]:
        return {job_id: f"SLURM job {job_id} {states}" for job_id, states in parse_ended(output).items()}
