"""Exceptions raised by crew."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .results import Result

__all__ = ["CrewError", "SettingError", "LaunchError", "TaskError", "SchedulerError"]


class CrewError(Exception):
    """Base class of every error crew raises on purpose."""


class SettingError(CrewError, ValueError):
    """A setting or argument has a value that is not allowed; the message names it."""


class LaunchError(CrewError):
    """A launcher could not start workers; the message carries the platform's own words."""


class SchedulerError(LaunchError):
    """A scheduler command (sbatch, qsub, bsub, an AWS call ...) failed."""

    def __init__(self, command: str, message: str, returncode: int | None = None) -> None:
        self.command = command
        self.returncode = returncode
        self.scheduler_message = message
        code = "" if returncode is None else f" (exit code {returncode})"
        super().__init__(f"{command} failed{code}: {message.strip()}")


class TaskError(CrewError):
    """A task ended in error and the caller asked for errors to stop the run."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(
            f"task {result.name!r} ended with status {result.status!r}: {result.error}"
            + (f"\n\nRemote traceback:\n{result.traceback}" if result.traceback else "")
        )
