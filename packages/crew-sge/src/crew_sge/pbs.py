"""PBS Professional / OpenPBS and TORQUE: launcher, monitor and controller.

Each auto-scaling round submits one job: an array ``#PBS -J 1-n`` on PBS Pro (a plain job for a
single worker, since PBS Pro rejects ``-J 1-1``) or ``#PBS -t 1-n`` on TORQUE. The monitor reads
``qstat -f -F json`` (PBS Pro) or ``qstat -f`` text (TORQUE).
"""

from __future__ import annotations

import collections
import json
import re
from collections.abc import Sequence
from typing import Any

from crew import Queued, SchedulerError, validate
from crew._build import CLUSTER_DEFAULTS, controller_helper

from ._common import _AsksAboutJobs, _hms, _megabytes, _parse_ctime, _SchedulerLauncher, _SchedulerMonitor, _sibling

__all__ = ["PbsLauncher", "PbsMonitor", "job_rows", "parse_job_id", "parse_qstat_full", "parse_qstat_json", "pbs_controller"]

_JOB_ID = re.compile(r"\d+(?:\[\])?(?:\.[\w.-]+)?")
_NUMBER = re.compile(r"^(\d+)")
_BRACKET = re.compile(r"\[(\d+)\]")
_PENDING = {"Q", "H", "W", "T", "U", "M"}
_FINISHED = {"F", "X", "C"}


def parse_job_id(output: str) -> str:
    """The job id in what ``qsub`` prints: ``123.server``, or ``123[].server`` for an array."""
    for line in output.splitlines():
        if _JOB_ID.fullmatch(line.strip()):
            return line.strip()
    raise ValueError(f"no job id in {output!r}")


def parse_qstat_json(output: str) -> dict[str, dict[str, Any]]:
    """Job id -> attributes from PBS Pro's ``qstat -f -F json`` (empty when no job is listed)."""
    if not output.strip():
        return {}
    return dict(json.loads(output).get("Jobs") or {})


def parse_qstat_full(output: str) -> dict[str, dict[str, Any]]:
    """Job id -> attributes from the text of ``qstat -f`` (TORQUE, or PBS Pro without ``-F``).

    ``Resource_List.mem = 1gb`` becomes ``{"Resource_List": {"mem": "1gb"}}``; lines wrapped by
    qstat (a continuation without `` = ``) are joined to the value above.
    """
    jobs: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    last: tuple[dict[str, Any], str] | None = None
    for line in output.splitlines():
        if line.startswith("Job Id:"):
            current = jobs.setdefault(line.split(":", 1)[1].strip(), {})
            last = None
            continue
        if current is None or not line.strip():
            continue
        if " = " in line:
            key, _, value = line.strip().partition(" = ")
            target = current
            if "." in key:
                group, _, key = key.partition(".")
                target = current.setdefault(group, {})
            target[key] = value.strip()
            last = (target, key)
        elif last is not None:
            target, key = last
            target[key] += line.strip()
    return jobs


def _exit_status(attributes: dict[str, Any]) -> int | None:
    value = attributes.get("Exit_status", attributes.get("exit_status"))
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def job_rows(jobs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Monitor rows, one per worker (plain jobs and array subjobs; array parents are left out).

    Keys: ``id`` (``12[3].server`` or ``12.server``), ``job`` (``12``), ``parent`` (the array's id
    ``12[].server``, or the job's own id), ``array_index``, ``name``, ``raw_state``, ``state``,
    ``reason``, ``node``, ``start_time``. A finished job is ``done`` with exit status 0,
    ``cancelled`` when it never ran or was killed by a signal (``qdel``: exit status above 256),
    else ``failed``.
    """
    rows = []
    for job_id, attributes in jobs.items():
        if attributes.get("array") in (True, "True", "true") or "[]" in job_id:
            continue  # an array's parent: its subjobs are the workers
        raw_state = str(attributes.get("job_state", "")).strip()
        index_text = str(attributes.get("array_index", attributes.get("job_array_id")) or "")
        bracket = _BRACKET.search(job_id)
        array_index = int(index_text) if index_text.isdigit() else (int(bracket.group(1)) if bracket else None)
        exit_status = _exit_status(attributes)
        if raw_state in _PENDING:
            state = "pending"
        elif raw_state in _FINISHED:
            if exit_status == 0:
                state = "done"
            elif exit_status is None or exit_status > 256 or exit_status == -3:
                state = "cancelled"
            else:
                state = "failed"
        else:
            state = "running"  # R, E (exiting), S (suspended), B
        number = _NUMBER.match(job_id)
        host = str(attributes.get("exec_host") or "").split("+")[0].split("/")[0] or None
        comment = str(attributes.get("comment") or "").strip() or None
        reason = comment if state == "pending" else (f"exit status {exit_status}" if state == "failed" else None)
        parent = attributes.get("array_id") or (re.sub(r"\[\d+\]", "[]", job_id) if bracket else job_id)
        rows.append({
            "id": job_id,
            "job": number.group(1) if number else job_id,
            "parent": parent,
            "array_index": array_index,
            "name": attributes.get("Job_Name"),
            "raw_state": raw_state,
            "state": state,
            "reason": reason,
            "node": None if state == "pending" else host,
            "start_time": _parse_ctime(attributes.get("stime") or attributes.get("start_time")),
        })
    return rows


class PbsLauncher(_AsksAboutJobs, _SchedulerLauncher):
    """Launch crew workers on PBS Pro / OpenPBS or TORQUE: one ``qsub`` of an array job per round.

    Arguments (all optional):
        log_join: ``True`` writes standard error into the output log (``-j oe``).
        memory_gigabytes_required: memory per worker in GB (``mem=<MB>mb``).
        cores: CPU cores per worker (``ncpus``; TORQUE: ``nodes=1:ppn=<cores>``).
        walltime_hours: the most time a worker's job may run (``-l walltime=HH:MM:SS``).
        queue: ``-q``.
        account: ``-A``.
        torque: ``True`` for TORQUE: arrays are ``-t 1-n`` (also for one worker), resources are
            ``-l nodes=1:ppn=...,mem=...``. Default PBS Pro: ``-J 1-n``, and a plain job for a
            single worker (PBS Pro rejects ``-J 1-1``); resources ``-l select=1:ncpus=...:mem=...``.

    and those of :class:`crew.cluster.ClusterLauncher` (``script_directory``, ``script_lines``,
    ``extra_directives``, ``log_output``, ``log_error``, ``job_name``, ``command_submit``,
    ``command_cancel``, ``machine``, ``seconds_status``) and :class:`crew.Launcher`. By default
    the logs go to ``<script_directory>/logs/``, one file per subjob under PBS's own names
    (``<job name>.o<job number>.<index>``; TORQUE ``...o<job number>-<index>``). PBS starts the
    workers in the home directory (add ``script_lines='cd "$PBS_O_WORKDIR"'`` to change that).
    Queued subjobs are read with the ``qstat`` next to ``command_submit``.
    """

    directive_prefix = "#PBS"
    default_submit = "qsub"
    default_cancel = "qdel"
    ended_pattern = re.compile(r"Job has finished|Unknown Job Id")
    walltime_hours: float | None
    account: str | None

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        log_join: bool = False,
        memory_gigabytes_required: float | None = None,
        cores: int | None = None,
        walltime_hours: float | None = None,
        queue: str | None = None,
        account: str | None = None,
        torque: bool = False,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, **options)
        self._set_log_join(log_join)
        self._set_options(memory_gigabytes_required=memory_gigabytes_required, cores=cores,
                          walltime_hours=walltime_hours, queue=queue, account=account)  # fmt: skip
        self.torque = validate.flag("torque", torque)

    def log_path(self, stream: str) -> str:
        """The given log path, or by default the log folder (PBS then names one file per subjob)."""
        given = {"output": self.log_output, "error": self.log_error}[stream]
        return given if given is not None else self.log_directory + "/"

    def _directives(self, n: int) -> list[str]:
        """``#PBS`` options for ``n`` workers."""
        lines = [f"-N {self.job_name}"]
        if self.torque:
            lines.append(f"-t 1-{n}")
        elif n > 1:
            lines.append(f"-J 1-{n}")
        lines += [f"-S {self.shell}", f"-o {self.log_path('output')}"]
        lines.append("-j oe" if self.log_join else f"-e {self.log_path('error')}")
        lines += self._flagged(("-q {}", self.queue), ("-A {}", self.account))
        memory = _megabytes(self.memory_gigabytes_required)
        if self.torque:
            lines += self._flagged(("-l nodes=1:ppn={}", self.cores), ("-l mem={}mb", memory))
        elif self.cores is not None or memory is not None:
            chunk = "1" + "".join(self._flagged((":ncpus={}", self.cores), (":mem={}mb", memory)))
            lines.append(f"-l select={chunk}")
        walltime = None if self.walltime_hours is None else _hms(self.walltime_hours)
        return lines + self._flagged(("-l walltime={}", walltime))

    def _parse_job_id(self, output: str) -> str:
        return parse_job_id(output)

    def _status_arguments(self, job_ids: Sequence[str]) -> list[str]:
        self._remember(job_ids)
        qstat = _sibling(self.command_submit, "qstat")
        return [qstat, "-f", "-t"] if self.torque else [qstat, "-f", "-F", "json", "-t"]

    def _rows_by_job(self, output: str) -> dict[str, list[dict[str, Any]]]:
        """The workers' rows per job id asked about (matched by job number: ``12[].server`` is 12)."""
        jobs = parse_qstat_full(output) if self.torque else parse_qstat_json(output)
        by_number = {number.group(1): job_id for job_id in self._asked() if (number := _NUMBER.match(job_id))}
        found: dict[str, list[dict[str, Any]]] = {job_id: [] for job_id in by_number.values()}
        for row in job_rows(jobs):
            if row["job"] in by_number:
                found[by_number[row["job"]]].append(row)
        return found

    def _parse_status(self, output: str) -> dict[str, Queued]:
        """Waiting subjobs (or the waiting plain job) per submitted job, with PBS's comment as reason."""
        queued = {}
        for job, rows in self._rows_by_job(output).items():
            reasons = collections.Counter(row["reason"] for row in rows if row["state"] == "pending")
            if reasons:
                queued[job] = Queued(sum(reasons.values()), reasons.most_common(1)[0][0])
        return queued

    def _parse_ended(self, output: str) -> dict[str, str]:
        """Jobs ``qstat`` no longer lists, or whose every subjob finished (TORQUE's ``C``)."""
        ended = {}
        for job, rows in self._rows_by_job(output).items():
            if not rows:
                ended[job] = f"PBS job {job} left the queue"
            elif all(row["raw_state"] in _FINISHED for row in rows):
                ended[job] = f"PBS job {job} ended: " + ", ".join(dict.fromkeys(row["reason"] or row["state"] for row in rows))
        return ended


class PbsMonitor(_SchedulerMonitor):
    """List, delete and read the logs of the user's crew jobs on PBS Pro / OpenPBS or TORQUE.

    Arguments: those of :class:`crew.cluster.ClusterMonitor` (the delete command ``command_cancel``
    defaults to ``qdel``; ``qstat`` is taken from its folder when it is a path), and
        torque: read TORQUE's ``qstat -f`` text instead of PBS Pro's JSON.
        history: PBS Pro only: also list finished jobs (``qstat -x``; needs the server's job history).
    """

    default_cancel = "qdel"
    ended_pattern = PbsLauncher.ended_pattern

    def __init__(self, *args: Any, torque: bool = False, history: bool = True, **options: Any):
        super().__init__(*args, **options)
        self.torque = validate.flag("torque", torque)
        self.history = validate.flag("history", history)

    def _query(self, *ids: str) -> dict[str, dict[str, Any]]:
        if self.torque:
            return parse_qstat_full(self._run([self._command("qstat"), "-f", "-t", *ids]))
        history = ["-x"] if self.history else []
        return parse_qstat_json(self._run([self._command("qstat"), "-f", "-F", "json", "-t", *history, *ids]))

    def jobs(self) -> list[dict[str, Any]]:
        """The user's crew jobs, one row per worker (plain jobs and array subjobs)."""
        return self._rows(job_rows(self._query()))

    def _log_paths(self, id: str) -> list[str]:
        """Output_Path and Error_Path from ``qstat -f`` (host prefix dropped, ``^array_index^``
        filled in), or PBS's default names in the launchers' log folder."""
        try:
            attributes = next(iter(self._query(id).values()), {})
        except SchedulerError:
            attributes = {}
        bracket = _BRACKET.search(id)
        index = bracket.group(1) if bracket else ""
        paths = []
        for key in ("Output_Path", "Error_Path"):
            value = str(attributes.get(key) or "")
            if value:
                path = value.split(":", 1)[1] if re.match(r"^[\w.-]+:/", value) else value
                if path.endswith("/"):
                    continue  # a folder: PBS's own name inside it is found below
                paths.append(path.replace("^array_index^", index))
        if paths:
            return paths
        number = _NUMBER.match(id)
        tail = (f"-{index}" if self.torque else f".{index}") if index else ""
        return self._default_logs(f"*.[oe]{number.group(1) if number else id}{tail}")


pbs_controller = controller_helper(
    PbsLauncher,
    name="pbs_controller",
    defaults=CLUSTER_DEFAULTS,
    doc="""A validated controller (not started) whose workers run as PBS Pro / OpenPBS or TORQUE jobs.

    ``host`` is the address the workers dial back to (default: this machine's first address that
    is not loopback; the compute nodes must reach it). The first arguments are those of
    ``crew_local.local_controller``; the PBS options, keyword-only, are those of
    :class:`crew_sge.PbsLauncher`. Start it with ``controller.start()`` or a ``with`` block.
    """,
)
