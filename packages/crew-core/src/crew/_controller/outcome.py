"""Results from what workers report: a worker's result record becomes a :class:`crew.Result`."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

from .._protocol import ResultRecord
from ..errors import TaskError
from ..results import Result
from .board import Seat
from .task import Task

__all__ = ["from_record", "plain", "check", "ERROR_MODES"]

ERROR_MODES = ("silent", "warn", "stop")


def from_record(task: Task, record: ResultRecord, seat: Seat, controller: str,
                loads: Callable[[bytes], Any]) -> Result:
    """The result of a task that ran; ``loads`` deserializes its value or exception."""
    _, status, payload, error, trace, warned, seconds = record
    value = exception = None
    if payload is not None:
        try:
            if status == "success":
                value = loads(payload)
            else:
                exception = loads(payload)
        except BaseException as caught:  # worker data may raise anything, SystemExit too
            if status == "success":
                status = "error"
                error = f"the task's result could not be deserialized here: {type(caught).__name__}: {caught}"
    if exception is not None and trace and hasattr(exception, "add_note"):
        try:
            exception.add_note(f"Remote traceback (worker {seat.id}):\n{trace}")
        except Exception:
            pass
    return Result(task.name or "", task.command, value, status, error, trace, warned or [], seconds, task.seed,
                  seat.id, seat.pid, seat.host, controller, exception if isinstance(exception, BaseException) else None)


def plain(task: Task, status: str, error: Optional[str], seat: Optional[Seat], controller: str) -> Result:
    """The result of a task resolved without running to its end (cancel, crash)."""
    return Result(task.name or "", task.command, None, status, error, None, [], 0.0, task.seed,
                  seat.id if seat else None, seat.pid if seat else None, seat.host if seat else None, controller)


def check(results: list[Result], error: str) -> list[Result]:
    """Apply an ``error`` mode to results already taken out of the controller: ``"stop"`` raises
    :class:`crew.TaskError` for the first that did not succeed, ``"warn"`` warns once,
    ``"silent"`` says nothing."""
    failed = [result for result in results if result.status != "success"]
    if failed and error == "stop":
        raise TaskError(failed[0])
    if failed and error == "warn":
        warnings.warn(f"{len(failed)} of {len(results)} tasks did not succeed; first: {failed[0].error} "
                      f"(task {failed[0].name!r})", stacklevel=3)
    return results
