"""The record of one finished task."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Result", "STATUSES"]

STATUSES = ("success", "error", "timeout", "crash", "cancel")


@dataclass
class Result:
    """What became of one task.

    ``status`` is ``"success"``, ``"error"`` (the task raised; ``error`` and ``traceback`` say
    what), ``"timeout"`` (it ran past its ``seconds_timeout``), ``"crash"`` (its worker died
    more often than ``crashes_max`` allows) or ``"cancel"``.
    """

    name: str
    command: str
    result: Any = None
    status: str = "success"
    error: str | None = None
    traceback: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    seed: int | None = None
    worker: str | None = None
    pid: int | None = None
    host: str | None = None
    controller: str | None = None
    exception: BaseException | None = field(default=None, repr=False)
    """The exception the task raised, when it could be carried back (else None)."""

    @property
    def ok(self) -> bool:
        """True when the task succeeded."""
        return self.status == "success"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (without the exception object)."""
        return {item.name: getattr(self, item.name) for item in fields(self) if item.name != "exception"}
