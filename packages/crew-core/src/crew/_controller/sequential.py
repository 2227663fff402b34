"""``crew.sequential_controller()``: every task runs in the calling process, when it is pushed.

For debugging (pdb, profilers, print) with the API and the Result fields of any controller: a
task is serialized and run exactly as a worker would run it (same namespace rules, seeds and
warnings), only in this process and thread. Nothing is launched and no socket is opened.
"""

from __future__ import annotations

import os
import socket
import warnings
from typing import Any, Optional

from .._execute import Runner
from .._protocol import ResultRecord
from ..client import Client
from ..launcher import Launcher
from .board import Seat
from .controller import Controller
from .outcome import from_record
from .task import Task

__all__ = ["SequentialController", "sequential_controller"]


class _NoLauncher(Launcher):
    """Launches nothing: the sequential controller runs tasks itself."""

    def launch_worker(self, call: str) -> None:  # pragma: no cover - never called
        raise AssertionError("a sequential controller launches no worker")


class SequentialController(Controller):
    """A controller that runs each task in the calling process when it is pushed.

    ``seconds_timeout`` cannot stop a task running in the caller's own thread: a task that ran
    longer resolves as ``"timeout"`` once it returns (its value is dropped). ``cancel`` has
    nothing to cancel: every task has already run.
    """

    def __init__(self, name: Optional[str] = None, reset_globals: bool = True, reset_modules: bool = False,
                 garbage_collection: bool = False, serializer: Optional[str] = None):
        super().__init__(Client(host="127.0.0.1", serializer=serializer, profile=name), _NoLauncher(name=name),
                         reset_globals=reset_globals, reset_modules=reset_modules,
                         garbage_collection=garbage_collection)
        settings = {"reset_globals": reset_globals, "reset_modules": reset_modules,
                    "garbage_collection": garbage_collection}
        self._runner = Runner(self._serializer, settings, lambda task_id, seconds: None, lambda: None)
        self._seat = Seat(0, None, f"{self.name}/sequential/{os.getpid()}", os.getpid(), socket.gethostname(),
                          None, float("inf"))

    def start(self) -> Controller:
        if self._terminated:
            return super().start()  # raises: terminated
        self._started = True
        return self

    def terminate(self) -> None:
        self._terminated = True

    def _submit(self, task: Task) -> None:
        task.id, task.name = self._store.reserve(task.name)
        with warnings.catch_warnings():  # the task's warnings go to its result, as on a worker
            warnings.simplefilter("always")
            warnings.showwarning = self._runner.on_warning
            record = self._runner.run(task.record())
        if task.timeout is not None and record.seconds > task.timeout:
            error = f"the task ran longer than its seconds_timeout of {task.timeout:g} s"
            record = ResultRecord(record.id, "timeout", None, error, None, record.warnings, record.seconds)
        result = from_record(task, record, self._seat, self.name, self._serializer.loads)
        if task.callback is None:
            self._store.publish([result])
        else:
            self._store.publish([], [(task.name, result)])
            task.callback(result)

    def cancel(self, names: Any = None, all: bool = False) -> None:
        """Nothing to cancel: every task ran when it was pushed."""

    def scale(self) -> int:
        return 0

    def launch(self, n: int = 1) -> int:
        return 0

    def _want_scale(self) -> None:
        pass


def sequential_controller(name: Optional[str] = None, reset_globals: bool = True, reset_modules: bool = False,
                          garbage_collection: bool = False, serializer: Optional[str] = None) -> SequentialController:
    """A controller that runs each task in this process when it is pushed (for pdb and
    profilers), with the same API and the same :class:`crew.Result` fields as any controller."""
    return SequentialController(name, reset_globals, reset_modules, garbage_collection, serializer)
