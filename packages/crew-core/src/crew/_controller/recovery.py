"""The crash-recovery policy: which task is charged when a worker dies holding several.

A worker reports a task as started once it has run for a millisecond, and sends a reported
task's result before it starts the next one. So when a worker dies, the task it reported last
(if it still holds it), or the only task it held, is the one that was running: that task alone
is charged a crash. Otherwise the worker may have died in any task it held (quick tasks finish
before they are reported, and their results can die with the worker): none is charged, and each
becomes a *suspect* that next runs alone on a worker, where a crash is exact.

A task charged more than ``crashes_max`` crashes is *exhausted*: the controller resolves it with
status ``"crash"`` or hands it to its backup controller.

Pure functions over plain state, tested without sockets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Optional, Protocol, TypeVar

__all__ = ["Recovery", "recover"]


class TaskLike(Protocol):
    id: int
    crashes: int


T = TypeVar("T", bound=TaskLike)


@dataclass
class Recovery(Generic[T]):
    """What to do with the tasks a departed worker held."""

    culprit: Optional[T] = None
    """The task charged a crash (None when it cannot be known, or the worker left in peace)."""
    exhausted: bool = False
    """The culprit has now crashed more than crashes_max times: it does not run again."""
    requeue: list[T] = field(default_factory=list)
    """Tasks to run again, in order, at the front of the queue (the culprit first if it retries)."""
    suspects: list[T] = field(default_factory=list)
    """Tasks that each run alone next."""


def recover(held: Sequence[T], marked: Optional[int], crashed: bool, crashes_max: int) -> Recovery[T]:
    """Decide the fate of the tasks ``held`` by a worker that left (``crashed``: it died).

    ``marked`` is the id of the task the worker last reported as started. The function changes
    nothing: the caller adds one to the culprit's ``crashes``.
    """
    if not crashed:
        return Recovery(requeue=[task for task in held if not getattr(task, "suspect", False)],
                        suspects=[task for task in held if getattr(task, "suspect", False)])
    culprit = next((task for task in held if task.id == marked), None)
    if culprit is None and len(held) == 1:
        culprit = held[0]
    if culprit is None:
        return Recovery(suspects=list(held))
    others = [task for task in held if task is not culprit]
    exhausted = culprit.crashes + 1 > crashes_max
    requeue = others if exhausted else [culprit, *others]
    return Recovery(culprit=culprit, exhausted=exhausted,
                    requeue=[task for task in requeue if task is culprit or not getattr(task, "suspect", False)],
                    suspects=[task for task in others if getattr(task, "suspect", False)])
