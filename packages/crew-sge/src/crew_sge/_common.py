"""What the Grid Engine, LSF and PBS launchers and monitors share, written once.

Script rendering, submission, cancelling and the secret file come from :mod:`crew.cluster`;
this module adds the pieces these three schedulers have in common on top of it: the options
their launchers check alike, the status command found next to the submit command, cancels that
tolerate jobs which already ended, the monitors' rows and logs, and time formats.
"""

from __future__ import annotations

import datetime
import math
import posixpath
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, cast

from crew import SchedulerError, SettingError, validate
from crew.cluster import DIRECTIVE_VALUE, ClusterLauncher, ClusterMonitor, megabytes

__all__: list[str] = []


def _hms(hours: float) -> str:
    """``HH:MM:SS`` for a possibly fractional number of hours (whole seconds, rounded up)."""
    seconds = math.ceil(round(hours * 3600, 6))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _sibling(command: Sequence[str], name: str) -> str:
    """The scheduler command ``name`` from the folder of ``command`` when that is given as a path.

    A submit command given as ``/opt/pbs/bin/qsub`` has its ``qstat`` in ``/opt/pbs/bin``; a bare
    ``qsub`` means ``qstat`` is on the PATH as well.
    """
    program = command[0]
    return posixpath.join(posixpath.dirname(program), name) if "/" in program else name


def _is_gone(message: str, pattern: re.Pattern) -> bool:
    """True when every complaint in a cancel command's message says the job had already ended."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    complaints = [line for line in lines if not re.search(r"has (registered|deleted)|is being terminated", line)]
    return bool(complaints) and all(pattern.search(line) for line in complaints)


class _ToleratesEnded:
    """Mixin for launchers and monitors: cancelling a job that already ended is not an error.

    Grid Engine's ``qdel``, LSF's ``bkill`` and PBS's ``qdel`` exit non-zero when a job they are
    asked to cancel has finished meanwhile (the other jobs of the same call are cancelled all the
    same); that is the outcome the caller wanted, so only other complaints raise.
    """

    ended_pattern: ClassVar[re.Pattern]
    """Matches the cancel command's complaint about a job that no longer runs."""

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        try:
            return super()._run(argv, stdin)  # type: ignore[misc]
        except SchedulerError as error:
            cancel = list(self.command_cancel)  # type: ignore[attr-defined]
            if list(argv[: len(cancel)]) == cancel and _is_gone(error.scheduler_message, self.ended_pattern):
                return error.scheduler_message
            raise


class _AsksAboutJobs:
    """Mixin for launchers whose queue listing is not limited to the jobs asked about (``qstat``).

    Remembers, per thread, the job ids of the last status query, so that the parsers of its
    output can tell which of them the scheduler no longer lists (they ended).
    """

    def _remember(self, job_ids: Sequence[str]) -> None:
        local = self.__dict__.setdefault("_asked_jobs", threading.local())
        local.ids = list(job_ids)

    def _asked(self) -> list[str]:
        local = self.__dict__.get("_asked_jobs")
        return list(getattr(local, "ids", [])) if local is not None else []


def _positive(name: str, value: Any) -> float | None:
    return validate.number(name, value, exclusive_minimum=True, allow_none=True)


def _count(name: str, value: Any) -> int | None:
    return cast("int | None", validate.integer(name, value, minimum=1, allow_none=True))


def _word(name: str, value: Any) -> str | None:
    return validate.text(name, value, allow_none=True, pattern=DIRECTIVE_VALUE)


_CHECKS = {
    "memory_gigabytes_limit": _positive,
    "memory_gigabytes_required": _positive,
    "walltime_hours": _positive,
    "cores": _count,
    "gpu": _count,
    "cwd": _word,
    "queue": _word,
    "project": _word,
    "account": _word,
}
"""How each launcher option is checked: a positive number, a whole number of at least 1, or one
word that may go unquoted into a directive; None (the default) is always accepted."""


class _SchedulerLauncher(_ToleratesEnded, ClusterLauncher):
    """The launchers' common part: the options they check alike, and directive lines from them."""

    memory_gigabytes_required: float | None
    cores: int | None
    queue: str | None
    log_join: bool = False

    def _set_options(self, **values: Any) -> None:
        """Check each option (in the order given) as :data:`_CHECKS` says and keep it as an attribute."""
        for name, value in values.items():
            setattr(self, name, _CHECKS[name](name, value))

    def _set_log_join(self, log_join: Any) -> None:
        """``log_join``: standard error goes into the output log, so a separate ``log_error`` is an error."""
        self.log_join = validate.flag("log_join", log_join)
        if self.log_join and self.log_error is not None:
            raise SettingError("log_error and log_join=True exclude each other: with log_join the errors go to log_output")

    @staticmethod
    def _flagged(*pairs: tuple[str, Any]) -> list[str]:
        """The directive ``template.format(value)`` of each ``(template, value)`` whose value is given."""
        return [template.format(value) for template, value in pairs if value is not None]


def _megabytes(gigabytes: float | None) -> int | None:
    """Whole megabytes in ``gigabytes`` (None for None)."""
    return None if gigabytes is None else megabytes(gigabytes)


class _SchedulerMonitor(_ToleratesEnded, ClusterMonitor):
    """The monitors' common part: rows in crew's columns, logs, and the launchers' log folder.

    Arguments: those of :class:`crew.cluster.ClusterMonitor` (``job_name``, ``machine``,
    ``command_cancel``, ``seconds_timeout``, ``script_directory``); the scheduler's other
    commands are taken from the folder of ``command_cancel`` when that is a path.

    A subclass implements ``jobs()`` (passing its parsed rows, which carry their own ``state``, to
    :meth:`_rows`) and ``_log_paths(id)``.
    """

    def _command(self, name: str) -> str:
        """Another command of the scheduler: next to ``command_cancel`` when that is a path."""
        return _sibling(self.command_cancel, name)

    def _rows(self, found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Crew's rows (by job name) in the columns every monitor returns."""
        rows = []
        for row in found:
            if self._mine(row["name"]):
                normal = self._row(row["id"], row["array_index"], row["name"], row["raw_state"],
                                   row["reason"], row["node"], row["start_time"])  # fmt: skip
                normal["state"] = row["state"]
                rows.append(normal)
        return rows

    def log(self, id: Any) -> str:
        """What the worker of job ``id`` (an id as :meth:`jobs` lists it) wrote to its logs."""
        texts = [self._read(path) for path in dict.fromkeys(self._log_paths(str(id).strip()))]
        return "".join(text if text.endswith("\n") or not text else text + "\n" for text in texts)

    def _log_paths(self, id: str) -> list[str]:
        raise NotImplementedError

    def _default_logs(self, pattern: str) -> list[str]:
        """Files in the launchers' default log folder (``<script_directory>/logs``) matching ``pattern``."""
        return sorted(str(path) for path in self.machine.path(self.log_directory) // pattern)


def _parse_ctime(text: str | None) -> datetime.datetime | None:
    """A time written like C's ``ctime()``: ``Tue Nov 24 18:20:53 2026`` (Grid Engine's qacct, PBS)."""
    if not text or not text.strip():
        return None
    try:
        return datetime.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
