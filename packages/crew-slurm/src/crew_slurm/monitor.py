"""SlurmMonitor: crew's SLURM jobs from ``squeue`` (and ``sacct``), cancelled with ``scancel``."""

from __future__ import annotations

import datetime
import inspect
import logging
import re
from typing import Any

from crew import SchedulerError, SettingError, validate
from crew.cluster import ClusterMonitor, array_indices

from .launcher import STATES

__all__ = ["SlurmMonitor", "parse_sacct", "parse_squeue"]

_logger = logging.getLogger("crew.slurm")

_SQUEUE_FORMAT = "%i|%K|%T|%r|%N|%S|%j"
_SACCT_FORMAT = "JobID,State,Reason,NodeList,Start,JobName"
_NO_VALUE = ("", "N/A", "None", "(null)", "Unknown", "None assigned")
_PENDING_ARRAY = re.compile(r"(\d+)_\[([^\]]+)\]")
_JOB_ID = re.compile(r"\d+(?:_\d+)?")


def _value(text: str) -> str | None:
    text = text.strip()
    return None if text in _NO_VALUE else text


def _time(text: str) -> datetime.datetime | None:
    text = text.strip()
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_squeue(output: str) -> list[dict[str, Any]]:
    """Rows from ``squeue --noheader --array --format=%i|%K|%T|%r|%N|%S|%j``.

    Keys: ``id`` (``123_4`` for array task 4 of job 123), ``array_index``, ``name``, ``raw_state``,
    ``reason``, ``node``, ``start_time`` (None while pending).
    """
    rows = []
    for line in output.splitlines():
        if not line.strip():
            continue
        # The name comes last and may itself hold the delimiter.
        job_id, index, state, reason, node, start, name = line.split("|", 6)
        pending = state.strip() == "PENDING"
        rows.append({
            "id": job_id.strip(),
            "array_index": int(index) if index.strip().isdigit() else None,
            "name": name.strip(),
            "raw_state": state.strip(),
            "reason": _value(reason),
            "node": None if pending else _value(node),
            "start_time": None if pending else _time(start),
        })
    return rows


def parse_sacct(output: str) -> list[dict[str, Any]]:
    """Rows, in :func:`parse_squeue`'s keys, from ``sacct -X -n -P -o JobID,State,Reason,NodeList,Start,JobName``.

    A pending array shown as ``123_[4-6]`` gives one row per task; a state such as
    ``CANCELLED by 0`` is reduced to ``CANCELLED``.
    """
    rows = []
    for line in output.splitlines():
        if not line.strip():
            continue
        job_id, state, reason, node, start, name = line.split("|", 5)
        raw_state = state.split()[0] if state.strip() else "UNKNOWN"
        pending = _PENDING_ARRAY.fullmatch(job_id.strip())
        if pending:
            ids: list[tuple[str, int | None]] = [
                (f"{pending.group(1)}_{index}", index) for index in array_indices(pending.group(2))
            ]
        else:
            index = job_id.strip().partition("_")[2]
            ids = [(job_id.strip(), int(index) if index.isdigit() else None)]
        for row_id, array_index in ids:
            rows.append({
                "id": row_id, "array_index": array_index, "name": name.strip(), "raw_state": raw_state,
                "reason": _value(reason), "node": _value(node), "start_time": _time(start),
            })
    return rows


class SlurmMonitor(ClusterMonitor):
    """List, cancel and read the logs of the user's crew jobs on SLURM.

    Arguments:
        job_name: the prefix of crew's job names (default ``crew``).
        machine: the plumbum machine that runs SLURM's commands (default ``plumbum.local``).
        command_cancel: the cancel command (default ``scancel``).
        seconds_timeout: how long one SLURM command may take.
        accounting: also list finished jobs from ``sacct``: True, False, or None (the default)
            to use it when SLURM's accounting is on.
        script_directory: the launchers' ``script_directory``, where :meth:`log` finds the
            default log files of jobs SLURM has forgotten.
    """

    default_cancel = "scancel"
    states = STATES

    def __init__(self, *args: Any, accounting: bool | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.accounting = None if accounting is None else validate.flag("accounting", accounting)

    # ClusterMonitor's arguments, then accounting: what help() and the site-default check see.
    __init__.__signature__ = (lambda base: base.replace(parameters=[  # type: ignore[attr-defined]
        *base.parameters.values(),
        inspect.Parameter("accounting", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="bool | None"),
    ]))(inspect.signature(ClusterMonitor.__init__))

    def jobs(self) -> list[dict[str, Any]]:
        """The user's crew jobs, one row per array task: in the queue, recently ended, and (with
        accounting) ended earlier today."""
        queue = self._run([
            "squeue", "--noheader", "--me", "--array", "--states=all", f"--format={_SQUEUE_FORMAT}",
        ])
        found = {row["id"]: row for row in parse_squeue(queue)}
        for row in self._accounted():
            found.setdefault(row["id"], row)
        return [self._row(**row) for row in found.values() if self._mine(row["name"])]

    def _accounted(self) -> list[dict[str, Any]]:
        """Rows from ``sacct`` (empty when accounting is off and not asked for)."""
        if self.accounting is False:
            return []
        try:
            return parse_sacct(self._run(["sacct", "-X", "-n", "-P", f"--format={_SACCT_FORMAT}"]))
        except SchedulerError as error:
            if self.accounting:
                raise
            _logger.debug("sacct unavailable, listing the queue only: %s", error)
            return []

    def log(self, id: Any) -> str:
        """What the worker of job ``id`` (e.g. ``123_4``) wrote to its output and error logs.

        Raises :class:`crew.SchedulerError` when SLURM does not know the job (or cannot be
        reached) and no log file of it is found under :attr:`log_directory`.
        """
        job_id = str(id).strip()
        if not _JOB_ID.fullmatch(job_id):
            raise SettingError(f"id must be a SLURM job id such as 123 or 123_4, not {id!r}")
        paths = self._log_paths(job_id)
        texts = [self._read(path) for path in dict.fromkeys(paths)]
        return "".join(text if text.endswith("\n") or not text else text + "\n" for text in texts)

    def _log_paths(self, job_id: str) -> list[str]:
        """The worker's log files: from ``scontrol show job``, or the default names if SLURM forgot it."""
        try:
            details = self._run(["scontrol", "show", "job", job_id])
            why = "no log file of it is known to SLURM"
        except SchedulerError as error:
            details = ""
            why = error.scheduler_message.strip().splitlines()[0] if error.scheduler_message.strip() else str(error)
        paths = re.findall(r"\bStd(?:Out|Err)=(\S+)", details)
        if paths:
            return paths
        job, _, index = job_id.partition("_")
        logs = self.machine.path(self.log_directory)
        pattern = f"*_{job}_{index or '*'}"
        found = [str(path) for suffix in ("out", "err") for path in sorted(logs // f"{pattern}.{suffix}")]
        if not found:
            raise SchedulerError(f"scontrol show job {job_id}",
                                 f"no log of job {job_id}: {why}, and no file {pattern}.out or .err "
                                 f"in {self.log_directory}")
        return found
