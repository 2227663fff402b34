"""What the Grid Engine, LSF and PBS launchers and monitors share, written once.

Script rendering, submission, cancelling and the secret file come from :mod:`crew.cluster`;
this module adds the pieces these three schedulers have in common on top of it: unit
conversions, array-index ranges, the status command found next to the submit command, cancels
that tolerate jobs which already ended, and the body of the ``*_controller`` helpers.
"""

from __future__ import annotations

import datetime
import math
import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from crew import SchedulerError, validate
from crew.cluster import DEFAULT_SCRIPT_DIRECTORY, ClusterMonitor, cluster_controller

__all__: list[str] = []

_CONTROLLER_ONLY = (
    "host", "port", "serializer", "profile", "reset_globals", "reset_modules",
    "garbage_collection", "crashes_max", "backup",
)  # fmt: skip
_SHARED = ("tls", "seconds_interval", "seconds_timeout")


def _build_controller(launcher_class: type, arguments: Mapping[str, Any]):
    """A validated controller (not started) from one ``*_controller`` helper's arguments.

    The Client and Controller arguments go to :func:`crew.cluster.cluster_controller`, every other
    one to ``launcher_class``; ``tls`` and the ``seconds_*`` timing go to both.
    """
    options = dict(arguments)
    controller_options = {key: options.pop(key) for key in _CONTROLLER_ONLY}
    controller_options.update({key: options[key] for key in _SHARED})
    return cluster_controller(launcher_class(**options), **controller_options)


def _megabytes(gigabytes: float) -> int:
    """Whole megabytes (rounded up) in a possibly fractional number of gigabytes."""
    return math.ceil(round(gigabytes * 1024, 6))


def _hms(hours: float) -> str:
    """``HH:MM:SS`` for a possibly fractional number of hours (whole seconds, rounded up)."""
    seconds = math.ceil(round(hours * 3600, 6))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _indices(spec: str) -> list[int]:
    """Array indices in the schedulers' range notation: ``1-5:2,8`` (a ``%`` limit is dropped)."""
    found: list[int] = []
    for part in spec.split("%")[0].split(","):
        part = part.strip()
        if not part:
            continue
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        found += range(int(first), int(last or first) + 1, int(step or 1))
    return found


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


class _SchedulerMonitor(_ToleratesEnded, ClusterMonitor):
    """The monitors' common part: rows in crew's columns, logs, and the launchers' log folder.

    A subclass implements ``jobs()`` (passing its parsed rows, which carry their own ``state``, to
    :meth:`_rows`) and ``_log_paths(id)``.
    """

    def __init__(
        self,
        job_name: str = "crew",
        machine: Any = None,
        command_cancel: str | Sequence[str] | None = None,
        seconds_timeout: float = 60.0,
        script_directory: str | os.PathLike | None = None,
    ):
        super().__init__(job_name=job_name, machine=machine, command_cancel=command_cancel, seconds_timeout=seconds_timeout)
        directory = script_directory if script_directory is not None else DEFAULT_SCRIPT_DIRECTORY
        self.script_directory = validate.path("script_directory", directory)

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
        logs = self.machine.path(os.path.join(self.script_directory, "logs"))
        return sorted(str(path) for path in logs // pattern)


def _parse_ctime(text: str | None) -> datetime.datetime | None:
    """A time written like C's ``ctime()``: ``Tue Nov 24 18:20:53 2026`` (Grid Engine's qacct, PBS)."""
    if not text or not text.strip():
        return None
    try:
        return datetime.datetime.strptime(" ".join(text.split()), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
