"""The result store: task names in use, counts, results waiting to be popped, and their waiters.

Owner: every piece of state here is guarded by one lock (:attr:`ResultStore.changed`, a
condition). Callers' threads reserve names (push) and take results (pop, collect, map); the loop
thread publishes results; waiters sleep on the condition and are woken when results arrive or an
error is reported. Listeners (e.g. a controller group) are called after each change, outside the
lock.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any, Callable, Optional

from ..errors import SettingError
from ..results import Result

__all__ = ["ResultStore"]

Listener = Callable[[], None]


class ResultStore:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # plain lock: the push path takes it without Condition's wrapper
        self.changed = threading.Condition(self._lock)
        self._done: dict[str, Result] = {}  # resolved, not popped: insertion order is resolution order
        self._names: set[str] = set()  # names of tasks pushed and not yet popped (or handed to a callback)
        self._next_id = 1
        self.pushed = 0
        self.resolved = 0
        self.statuses: Counter[str] = Counter()  # resolved tasks by status
        self._seconds = 0.0  # run time of the resolved tasks
        self._warned = 0  # resolved tasks that warned
        self._crashes: dict[str, int] = {}  # tasks that lost a worker: how many times
        self.error: Optional[BaseException] = None  # raised to the next caller (read without the lock as a hint)
        self._listeners: list[Listener] = []

    # ------------------------------------------------------------------ names
    def reserve(self, name: Optional[str]) -> tuple[int, str]:
        """A fresh task id and the task's name (``task_<id>`` when None); counts the push.

        Raises :class:`crew.SettingError` when ``name`` is in use by a task not yet popped.
        """
        with self._lock:
            task_id = self._next_id
            if name is None:
                name = f"task_{task_id}"
                while name in self._names:
                    name = f"task_{task_id}_{secrets.token_hex(2)}"
            elif name in self._names:
                raise SettingError(f"name {name!r} is already used by a task that is queued, running or not yet popped")
            self._next_id += 1
            self._names.add(name)
            self.pushed += 1
            return task_id, name

    def taken(self, names: Iterable[str]) -> list[str]:
        """Which of ``names`` are in use."""
        with self.changed:
            return [name for name in names if name in self._names]

    # ------------------------------------------------------------------ results in (the loop thread)
    def publish(self, results: list[Result], released: Iterable[tuple[str, Optional[Result]]] = ()) -> None:
        """Store results for pop(), and count the tasks ``released``: resolved without a result
        for pop() (a callback took the result; or, with None, a backup controller took the
        task), whose names are freed."""
        with self.changed:
            done, statuses = self._done, self.statuses
            seconds = 0.0
            warned = 0
            for result in results:
                done[result.name] = result
                statuses[result.status] += 1
                seconds += result.seconds
                warned += bool(result.warnings)
            self._seconds += seconds
            self._warned += warned
            count = len(results)
            for name, taken in released:
                self._names.discard(name)
                if taken is not None:
                    self._count(taken)
                count += 1
            self.resolved += count
            self.changed.notify_all()
        self._tell()

    def fail(self, error: BaseException) -> None:
        """Report an error (e.g. workers cannot launch) to the next caller, and wake waiters."""
        with self.changed:
            self.error = error
            self.changed.notify_all()
        self._tell()

    def _count(self, result: Result) -> None:
        self.statuses[result.status] += 1
        self._seconds += result.seconds
        self._warned += bool(result.warnings)

    def crashed(self, name: str, crashes: int) -> None:
        """The loop charged a crash to the task ``name`` (``crashes`` in all)."""
        with self.changed:
            self._crashes[name] = crashes

    def crashes(self, name: str) -> int:
        with self.changed:
            return self._crashes.get(name, 0)

    def totals(self, controller: str) -> dict[str, Any]:
        """One summary row for the controller, with R crew's columns."""
        with self.changed:
            row: dict[str, Any] = {"controller": controller, "tasks": sum(self.statuses.values()),
                                   "seconds": round(self._seconds, 6)}
            row.update({status: self.statuses.get(status, 0) for status in ("success", "error", "crash", "cancel",
                                                                                 "timeout")})
            row["warning"] = self._warned
            return row

    def raise_error(self) -> None:
        """Raise the error reported by :meth:`fail`, once."""
        if self.error is None:
            return
        with self.changed:
            error, self.error = self.error, None
        if error is not None:
            raise error

    # ------------------------------------------------------------------ results out (callers)
    def pop(self) -> Optional[Result]:
        with self.changed:
            if not self._done:
                return None
            name = next(iter(self._done))
            self._names.discard(name)
            return self._done.pop(name)

    def collect(self) -> list[Result]:
        with self.changed:
            results = list(self._done.values())
            self._names.difference_update(self._done)  # the keys are the names
            self._done.clear()
            return results

    def take(self, names: list[str]) -> list[Result]:
        """The results of ``names``, in that order (each must have resolved)."""
        with self.changed:
            results = [self._done.pop(name) for name in names]
            self._names.difference_update(names)
            return results

    def ready(self) -> int:
        """How many results wait to be popped."""
        return len(self._done)

    def unresolved(self) -> int:
        return self.pushed - self.resolved

    # ------------------------------------------------------------------ waiting
    def wait(self, ready: Callable[[], bool], seconds_timeout: Optional[float], interval: float,
             on_wake: Callable[[], None] = lambda: None) -> bool:
        """Block until ``ready()`` (checked under the lock); False if ``seconds_timeout`` passed.

        Wakes on every change, and at least every ``interval`` seconds to run ``on_wake`` (which
        may raise, e.g. a launch error).
        """
        deadline = math.inf if seconds_timeout is None else time.monotonic() + seconds_timeout
        with self.changed:
            while True:
                self._raise_locked()
                on_wake()
                if ready():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, interval))

    def wait_for(self, names: list[str], seconds_timeout: Optional[float], interval: float) -> bool:
        return self.wait(lambda: all(name in self._done for name in names), seconds_timeout, interval)

    def _raise_locked(self) -> None:
        error, self.error = self.error, None
        if error is not None:
            raise error

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> None:
        with self.changed:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self.changed:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _tell(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a listener never breaks the loop
                pass
