"""The shared base of monitors for script-based batch schedulers (see :mod:`crew.cluster`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from . import validate
from ._cluster_common import DEFAULT_SCRIPT_DIRECTORY, LOG_FOLDER, _command_words, _machine, _run_command
from .errors import SettingError
from .monitor import JOB_COLUMNS, Monitor


class ClusterMonitor(Monitor):
    """List and cancel a scheduler's crew jobs, outside any controller.

    Arguments:
        job_name: only jobs whose name starts with this are crew's (default ``crew``, the prefix of
            the launchers' default job names).
        machine: the plumbum machine that runs the commands (default ``plumbum.local``).
        command_cancel: the cancel command (default the scheduler's).
        seconds_timeout: how long one scheduler command may take.
        script_directory: the launchers' ``script_directory``, where :meth:`log` finds the default
            log files (in ``logs/`` inside) of jobs the scheduler has forgotten.

    A subclass implements :meth:`jobs` (building rows with :meth:`_row`) and sets
    :attr:`default_cancel` and :attr:`states`.
    """

    default_cancel: ClassVar[str]
    states: ClassVar[Mapping[str, str]] = {}
    """The scheduler's raw job states (upper case) mapped to ``pending``, ``running``, ``done``,
    ``failed`` or ``cancelled``; a state not listed counts as ``running``."""

    def __init__(
        self,
        job_name: str = "crew",
        machine: Any = None,
        command_cancel: str | Sequence[str] | None = None,
        seconds_timeout: float = 60.0,
        script_directory: str | os.PathLike[str] | None = None,
    ):
        self.job_name = validate.text("job_name", job_name)
        self.machine = _machine(machine)
        self.command_cancel = _command_words("command_cancel", self.default_cancel if command_cancel is None else command_cancel)
        self.seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        directory = script_directory if script_directory is not None else DEFAULT_SCRIPT_DIRECTORY
        self.script_directory = validate.path("script_directory", directory)

    @property
    def log_directory(self) -> str:
        """The folder of the launchers' default worker logs."""
        return os.path.join(self.script_directory, LOG_FOLDER)

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one command on :attr:`machine`; the only place this monitor runs commands."""
        return _run_command(self.machine, argv, stdin, self.seconds_timeout)

    def _mine(self, name: str | None) -> bool:
        """Whether a job of this name is one of crew's (its name starts with :attr:`job_name`)."""
        return name is not None and name.startswith(self.job_name)  # job_name is never empty

    def _row(
        self,
        id: str,
        array_index: int | None,
        name: str | None,
        raw_state: str,
        reason: str | None = None,
        node: str | None = None,
        start_time: str | None = None,
    ) -> dict[str, Any]:
        """One row of :meth:`jobs` with the state normalised (an unknown state counts as running)."""
        state = self.states.get(raw_state.upper(), "running")
        row = {
            "id": id, "array_index": array_index, "name": name, "state": state, "reason": reason or None,
            "node": node or None, "start_time": start_time or None, "raw_state": raw_state,
        }
        assert tuple(row) == JOB_COLUMNS
        return row

    def _cancel_arguments(self, ids: Sequence[str]) -> list[str]:
        """The words after :attr:`command_cancel` that cancel all of ``ids`` in one call."""
        return list(ids)

    def terminate(self, ids: Sequence[Any] | None = None, all: bool = False) -> list[str]:
        """Cancel the jobs ``ids``, or with ``all=True`` every pending or running crew job; return the ids."""
        validate.flag("all", all)
        if all:
            chosen = [row["id"] for row in self.jobs() if row["state"] in ("pending", "running")]
        elif ids is None:
            raise SettingError("terminate() needs ids (a list of job ids) or all=True")
        else:
            chosen = [str(item) for item in ([ids] if isinstance(ids, (str, int)) else ids)]
        if chosen:
            self._run([*self.command_cancel, *self._cancel_arguments(chosen)])
        return chosen

    def _read(self, path: str) -> str:
        """The text of a file on :attr:`machine` ('' when it does not exist)."""
        target = self.machine.path(path)
        return target.read() if target.exists() else ""
