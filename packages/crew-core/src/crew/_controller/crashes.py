"""What becomes of a task that lost its worker more than ``crashes_max`` times (the loop thread)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

from ..launcher import Launcher
from ..results import Result
from .board import Seat
from .outcome import plain
from .task import Task

if TYPE_CHECKING:  # pragma: no cover
    from .controller import Controller

__all__ = ["crash_result"]

log = logging.getLogger("crew")


def crash_result(task: Task, seat: Seat, launcher: Launcher, crashes_max: int, controller: str,
                 backup: Optional[Controller]) -> Optional[Result]:
    """The task's ``"crash"`` result, naming how its worker ended; or None when the backup
    controller adopted it (the hand-off never blocks on the backup's loop)."""
    status = None
    instance = seat.instance
    if instance is not None and instance.handle is not None:
        try:
            status = launcher.exit_status(instance.handle, timeout=1.0)
        except Exception:
            status = None
    message = (f"the worker (pid {seat.pid} on {seat.host}) exited while running the task"
               + (f" ({status})" if status else "")
               + f"; the task lost its worker {task.crashes} times, more than crashes_max={crashes_max}")
    if backup is not None and not backup.terminated:
        try:
            backup.adopt(task.copy())
            log.warning("%s: %s; moved it to backup controller %s", controller, message, backup.name)
            return None
        except Exception as error:
            message += f"; moving it to the backup failed: {error}"
    return plain(task, "crash", message, seat, controller)
