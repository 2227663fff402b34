"""A task inside the controller, from push to resolution."""

from __future__ import annotations

from typing import Callable, Optional

from .._protocol import OutOfBand, TaskRecord
from ..results import Result

_new = tuple.__new__  # a named tuple from its fields, without its slower constructor

__all__ = ["Task", "ResultCallback", "StartCallback"]

ResultCallback = Callable[[Result], None]
StartCallback = Callable[[], None]


class Task:
    """One pushed task: what the worker needs (``record()``) and what the controller tracks.

    Built by the caller's thread (intake); from then on it belongs to the dispatch board (see
    :mod:`crew._controller.board`) until it resolves.
    """

    __slots__ = ("id", "name", "command", "blob", "rest", "seed", "timeout", "crashes", "callback", "on_start", "suspect",
                 "size")

    def __init__(self, name: Optional[str], command: str, blob: bytes, rest: Optional[bytes | OutOfBand],
                 seed: Optional[int] = None, timeout: Optional[float] = None):
        self.id = 0  # set when the result store reserves the task's name
        self.name = name
        self.command = command  # what the user pushed, as shown in results
        self.blob = blob  # the serialized command
        self.rest = rest  # the serialized (args, kwargs, data, globals), or None
        self.seed = seed
        self.timeout = timeout
        self.crashes = 0  # how many times the task lost its worker
        self.callback: Optional[ResultCallback] = None  # set: the result goes here, not to pop()
        self.on_start: Optional[StartCallback] = None  # called when a worker reports the task started
        self.suspect = False  # its worker died holding it and others: it runs alone next
        self.size = len(blob) + (len(rest) if rest else 0)  # bytes on the wire (roughly)

    def record(self) -> TaskRecord:
        return _new(TaskRecord, (self.id, self.blob, self.rest, self.seed, self.timeout))  # (hot path)

    def copy(self) -> Task:
        """A fresh task with the same name, command, data and callback (for a backup controller)."""
        moved = Task(self.name, self.command, self.blob, self.rest, self.seed, self.timeout)
        moved.callback = self.callback
        moved.on_start = self.on_start
        return moved

    def __repr__(self) -> str:
        return f"Task({self.id}, {self.name!r})"
