"""Grid Engine (Son of Grid Engine, Univa/Altair GE, Open Cluster Scheduler): launcher, monitor, controller.

Each auto-scaling round submits one array job (``#$ -t 1-n``) with ``qsub -terse``; the monitor
reads ``qstat -xml`` for queued and running jobs and ``qacct -j`` for finished ones.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree

from crew import Queued, SchedulerError, validate
from crew._build import CLUSTER_DEFAULTS, controller_helper
from crew.cluster import DIRECTIVE_VALUE, array_indices

from ._common import _AsksAboutJobs, _megabytes, _parse_ctime, _SchedulerLauncher, _SchedulerMonitor, _sibling

__all__ = ["SgeLauncher", "SgeMonitor", "parse_job_id", "parse_qacct", "parse_qstat_xml", "sge_controller"]

_TERSE = re.compile(r"(\d+)(?:\.\S+)?")
_VERBOSE = re.compile(r"Your job(?:-array)? (\d+)")


def parse_job_id(output: str) -> str:
    """The job id in what ``qsub`` prints: ``7.1-3:1`` (``-terse``, array), ``7``, or the long form
    ``Your job-array 7.1-3:1 ("name") has been submitted``."""
    for line in output.splitlines():
        match = _TERSE.fullmatch(line.strip()) or _VERBOSE.search(line)
        if match:
            return match.group(1)
    raise ValueError(f"no job id in {output!r}")


def _text(element: ElementTree.Element, tag: str) -> str:
    found = element.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _pending_reason(state: str) -> str | None:
    if "qw" not in state:
        return None
    if "E" in state:
        return "error state (qstat -j <id> tells why; qmod -cj <id> clears it)"
    if "h" in state:
        return "on hold"
    return "queued and waiting"


def parse_qstat_xml(output: str) -> list[dict[str, Any]]:
    """One row per array task from ``qstat -xml`` (a pending range such as ``2-4:1`` is expanded).

    Keys: ``id`` (``7.2``: task 2 of job 7; ``7`` for a job without tasks), ``job``,
    ``array_index``, ``name``, ``raw_state`` (``qw``, ``hqw``, ``Eqw``, ``r``, ``t``, ``dr`` ...),
    ``reason``, ``node`` and ``start_time`` (a datetime, None while pending).
    """
    if not output.strip():
        return []
    rows = []
    for entry in ElementTree.fromstring(output).iter("job_list"):
        job = _text(entry, "JB_job_number")
        state = _text(entry, "state")
        tasks = _text(entry, "tasks")
        started = _text(entry, "JAT_start_time")
        queue = _text(entry, "queue_name")
        for index in array_indices(tasks) if tasks else [None]:
            rows.append({
                "id": job if index is None else f"{job}.{index}",
                "job": job,
                "array_index": index,
                "name": _text(entry, "JB_name"),
                "raw_state": state,
                "reason": _pending_reason(state),
                "node": queue.partition("@")[2] or None,
                "start_time": datetime.datetime.fromisoformat(started) if started else None,
            })
    return rows


def parse_qacct(output: str) -> list[dict[str, Any]]:
    """One row per finished array task from ``qacct -j``, in :func:`parse_qstat_xml`'s keys.

    ``raw_state`` is ``z`` (Grid Engine's "finished"); ``state`` is ``done`` (exit 0), ``cancelled``
    (removed by ``qdel``: qacct's ``failed 100`` with exit status 137) or ``failed``.
    """
    rows = []
    for block in re.split(r"^=+\s*$", output, flags=re.MULTILINE):
        fields = {}
        for line in block.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                fields[key] = value.strip()
        if "jobnumber" not in fields:
            continue
        task = fields.get("taskid", "undefined")
        index = int(task) if task.isdigit() else None
        failed = fields.get("failed", "0").split()[0]
        exit_status = fields.get("exit_status", "0").split()[0]
        if failed == "0" and exit_status == "0":
            state = "done"
        elif failed == "100" and exit_status == "137":
            state = "cancelled"
        else:
            state = "failed"
        rows.append({
            "id": fields["jobnumber"] if index is None else f"{fields['jobnumber']}.{index}",
            "job": fields["jobnumber"],
            "array_index": index,
            "name": fields.get("jobname"),
            "raw_state": "z",
            "state": state,
            "reason": None if state == "done" else f"failed {fields.get('failed', '?')}, exit status {exit_status}",
            "node": fields.get("hostname"),
            "start_time": _parse_ctime(fields.get("start_time")),
        })
    return rows


def _monitor_state(raw: str) -> str:
    """Grid Engine's job state letters as crew's state."""
    if "d" in raw:
        return "cancelled"
    if "qw" in raw:
        return "pending"
    return "running"  # r, t, R (restarted), s/S/T (suspended)


class SgeLauncher(_AsksAboutJobs, _SchedulerLauncher):
    """Launch crew workers on Grid Engine: one ``qsub -terse`` of a ``#$ -t 1-n`` array job per round.

    Arguments (all optional):
        cwd: ``True`` (default) runs the workers in the directory the controller submits from
            (``-cwd``); a path runs them there (``-wd``); ``False`` leaves Grid Engine's default
            (the home directory).
        envvars: ``True`` exports the controller's environment variables to the workers (``-V``).
        log_join: ``True`` writes standard error into the output log (``-j y``).
        memory_gigabytes_limit: hard memory limit per worker in GB (``-l h_rss=<MB>M``).
        memory_gigabytes_required: memory a worker needs, in GB (``-l m_mem_free=<MB>M``, the
            consumable of Univa/Altair Grid Engine).
        cores: CPU cores per worker (``-pe smp <cores>``; a parallel environment named ``smp``).
        gpu: GPUs per worker (``-l gpu=<n>``).
        queue: ``-q``.
        project: ``-P``.

    and those of :class:`crew.cluster.ClusterLauncher` (``script_directory``, ``script_lines``,
    ``extra_directives``, ``log_output``, ``log_error``, ``job_name``, ``command_submit``,
    ``command_cancel``, ``machine``, ``seconds_status``) and :class:`crew.Launcher`. By default
    each worker logs to ``<script_directory>/logs/<job name>_<job id>.<task id>.out`` (and
    ``.err``). Queued tasks are read with the ``qstat`` next to ``command_submit``.
    """

    directive_prefix = "#$"
    default_submit = "qsub"
    default_cancel = "qdel"
    log_pattern = "$JOB_ID.$TASK_ID"
    ended_pattern = re.compile(r"does not exist|is already in deletion")
    memory_gigabytes_limit: float | None
    project: str | None
    gpu: int | None

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        cwd: bool | str = True,
        envvars: bool = False,
        log_join: bool = False,
        memory_gigabytes_limit: float | None = None,
        memory_gigabytes_required: float | None = None,
        cores: int | None = None,
        gpu: int | None = None,
        queue: str | None = None,
        project: str | None = None,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, **options)
        self.cwd: bool | str = cwd if isinstance(cwd, bool) else validate.text("cwd", cwd, pattern=DIRECTIVE_VALUE)
        self.envvars = validate.flag("envvars", envvars)
        self._set_log_join(log_join)
        self._set_options(memory_gigabytes_limit=memory_gigabytes_limit, memory_gigabytes_required=memory_gigabytes_required,
                          cores=cores, gpu=gpu, queue=queue, project=project)  # fmt: skip

    def _directives(self, n: int) -> list[str]:
        """``#$`` options for an array of ``n`` workers (tasks 1..n)."""
        lines = [f"-N {self.job_name}", f"-t 1-{n}", f"-S {self.shell}", f"-o {self.log_path('output')}"]
        lines.append("-j y" if self.log_join else f"-e {self.log_path('error')}")
        if self.cwd is True:
            lines.append("-cwd")
        elif self.cwd:
            lines.append(f"-wd {self.cwd}")
        if self.envvars:
            lines.append("-V")
        return lines + self._flagged(
            ("-q {}", self.queue),
            ("-P {}", self.project),
            ("-pe smp {}", self.cores),
            ("-l h_rss={}M", _megabytes(self.memory_gigabytes_limit)),
            ("-l m_mem_free={}M", _megabytes(self.memory_gigabytes_required)),
            ("-l gpu={}", self.gpu),
        )

    def _submit_arguments(self, script: str) -> list[str]:
        return ["-terse", script]

    def _parse_job_id(self, output: str) -> str:
        return parse_job_id(output)

    def _status_arguments(self, job_ids: Sequence[str]) -> list[str]:
        self._remember(job_ids)
        return [_sibling(self.command_submit, "qstat"), "-xml"]

    def _parse_status(self, output: str) -> dict[str, Queued]:
        """Tasks still waiting per job; a task in the error state (``Eqw``) will not start by itself,
        so it does not count (``seconds_launch`` then gives up on it)."""
        waiting: dict[str, list[str]] = {}
        for row in parse_qstat_xml(output):
            if "qw" in row["raw_state"] and "E" not in row["raw_state"]:
                waiting.setdefault(row["job"], []).append(row["reason"])
        return {job: Queued(len(reasons), max(set(reasons), key=reasons.count)) for job, reasons in waiting.items()}

    def _parse_ended(self, output: str) -> dict[str, str]:
        """Jobs asked about that ``qstat`` no longer lists (they ended), or whose every task is in
        the error state (it will not start by itself)."""
        states: dict[str, list[str]] = {}
        for row in parse_qstat_xml(output):
            states.setdefault(row["job"], []).append(row["raw_state"])
        ended = {}
        for job in self._asked():
            if job not in states:
                ended[job] = f"Grid Engine job {job} left the queue; qacct -j {job} tells how it ended"
            elif all("E" in state for state in states[job]):
                ended[job] = f"Grid Engine job {job} is in the error state; qstat -j {job} tells why"
        return ended


class SgeMonitor(_SchedulerMonitor):
    """List, delete and read the logs of the user's crew jobs on Grid Engine.

    Arguments: those of :class:`crew.cluster.ClusterMonitor` (the delete command ``command_cancel``
    defaults to ``qdel``; ``qstat`` and ``qacct`` are taken from its folder when it is a path), and
        accounting: also list finished jobs from ``qacct``: True, False, or None (the default) to
            use it when it answers.
    """

    default_cancel = "qdel"
    ended_pattern = SgeLauncher.ended_pattern

    def __init__(self, *args: Any, accounting: bool | None = None, **options: Any):
        super().__init__(*args, **options)
        self.accounting = None if accounting is None else validate.flag("accounting", accounting)

    def jobs(self) -> list[dict[str, Any]]:
        """The user's crew jobs, one row per array task: queued and running (``qstat -xml``), then
        finished (``qacct -j``)."""
        found: dict[str, dict[str, Any]] = {}
        for row in parse_qstat_xml(self._run([self._command("qstat"), "-xml"])):
            found[row["id"]] = dict(row, state=_monitor_state(row["raw_state"]))
        for row in self._accounted():
            found.setdefault(row["id"], row)
        return self._rows(found.values())

    def _accounted(self) -> list[dict[str, Any]]:
        if self.accounting is False:
            return []
        try:
            return parse_qacct(self._run([self._command("qacct"), "-j", f"{self.job_name}*"]))
        except SchedulerError as error:
            if "not found" in error.scheduler_message:  # no finished crew job yet
                return []
            if self.accounting:
                raise
            return []

    def _log_paths(self, id: str) -> list[str]:
        """The task's log files (``7.2``: task 2 of job 7) from ``qstat -j`` with Grid Engine's
        ``$JOB_ID`` ... filled in, or the launchers' default names once the job left the queue."""
        job, _, task = id.partition(".")
        task = task or "undefined"
        try:
            details = self._run([self._command("qstat"), "-j", job])
        except SchedulerError:
            details = ""
        fields = {
            key.strip(): value.strip()
            for key, _, value in (line.partition(":") for line in details.splitlines())
            if value
        }
        paths = []
        for key, letter in (("stdout_path_list", "o"), ("stderr_path_list", "e")):
            if key in fields:
                path = fields[key].split(",")[0].rsplit(":", 1)[-1]
                name = fields.get("job_name", "")
                filled = {"$JOB_ID": job, "$TASK_ID": task, "$JOB_NAME": name, "$USER": fields.get("owner", "")}
                for variable, value in filled.items():
                    path = path.replace(variable, value)
                if self.machine.path(path).is_dir():
                    path = os.path.join(path, f"{name}.{letter}{job}.{task}")
                paths.append(path)
        return paths or self._default_logs(f"*_{job}.{task}.*")


sge_controller = controller_helper(
    SgeLauncher,
    name="sge_controller",
    defaults=CLUSTER_DEFAULTS,
    doc="""A validated controller (not started) whose workers run as Grid Engine array jobs.

    ``host`` is the address the workers dial back to (default: this machine's first address that
    is not loopback; the compute nodes must reach it). The first arguments are those of
    ``crew_local.local_controller``; the Grid Engine options, keyword-only, are those of
    :class:`crew_sge.SgeLauncher`. Start it with ``controller.start()`` or a ``with`` block.
    """,
)
