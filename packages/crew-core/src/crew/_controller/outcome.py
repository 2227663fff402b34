"""Results from what workers report: a worker's result record becomes a :class:`crew.Result`."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

from .._protocol import ResultRecord
from ..errors import TaskError
from ..results import Result
from .board import Seat
from .task import Task

__all__ = ["from_record", "from_records", "Totals", "plain", "check", "ERROR_MODES"]

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


class Totals:
    """What a batch of results adds to its worker's counts."""

    __slots__ = ("tasks", "seconds", "errors", "warnings")

    def __init__(self) -> None:
        self.tasks = 0
        self.seconds = 0.0  # run time
        self.errors = 0  # results other than success
        self.warnings = 0  # warnings raised


def from_records(done: list[tuple[Task, ResultRecord]], seat: Seat, controller: str,
                 loads: Callable[[bytes], Any]) -> tuple[list[tuple[Task, Result]], Totals]:
    """:func:`from_record` for a batch of one worker's results (the loop's hot path: a success
    with a value is built here, anything else by :func:`from_record`), and their totals."""
    worker, pid, host = seat.id, seat.pid, seat.host
    totals = Totals()
    out = []
    for task, record in done:
        status, payload, warned, seconds = record[1], record[2], record[5], record[6]
        if status == "success" and payload is not None and not warned:
            try:
                value = loads(payload)
            except BaseException:  # worker data may raise anything, SystemExit too
                result = from_record(task, record, seat, controller, loads)
            else:
                result = Result(task.name or "", task.command, value, status, None, None, [], seconds, task.seed,
                                worker, pid, host, controller, None)
        else:
            result = from_record(task, record, seat, controller, loads)
        totals.seconds += seconds
        if result.status != "success":
            totals.errors += 1
        if warned:
            totals.warnings += len(warned)
        out.append((task, result))
    totals.tasks = len(out)
    return out, totals


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
