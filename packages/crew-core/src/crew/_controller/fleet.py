"""The fleet registry: the workers launched and not yet ended, and the places of the summary.

Owner: one lock guards everything here. The scaler thread adds and expires launches; the loop
thread binds a worker's hello to its launch, ends instances and counts results and crashes;
callers read the summary; launchers read :meth:`Fleet.snapshot` (as ``launcher.instances``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Optional

from ..launcher import Instance

__all__ = ["Fleet", "Slot", "distinct"]


class Slot:
    """Statistics of one worker place in the summary, across relaunches."""

    __slots__ = ("index", "tasks", "seconds", "errors", "warnings", "crashes", "launches", "failed_launches",
                 "instance")

    def __init__(self, index: int):
        self.index = index
        self.tasks = 0
        self.seconds = 0.0
        self.errors = 0
        self.warnings = 0
        self.crashes = 0
        self.launches = 0
        self.failed_launches = 0
        self.instance: Optional[Instance] = None


class Fleet:
    """See the module docstring. ``workers`` is the launcher's maximum."""

    def __init__(self, workers: int):
        self.lock = threading.Lock()
        self.slots = [Slot(index) for index in range(1, workers + 1)]
        self._instances: list[Instance] = []
        self.failed_in_row = 0  # launches that failed since a worker last dialled in

    def snapshot(self) -> list[Instance]:
        """The instances launched and not yet ended, as a new list."""
        with self.lock:
            return list(self._instances)

    def active(self) -> int:
        with self.lock:
            return sum(1 for i in self._instances if i.state in ("launching", "connected"))

    def connected(self) -> int:
        with self.lock:
            return sum(1 for i in self._instances if i.state == "connected")

    # ------------------------------------------------------------------ launches (the scaler thread)
    def reserve(self, want: int, launch: str) -> list[Instance]:
        """Up to ``want`` new instances of one launch, each in a free place of the summary."""
        with self.lock:
            used = {i.slot for i in self._instances if i.state in ("launching", "connected")}
            fresh = []
            for slot in [slot for slot in self.slots if slot.index not in used][:max(want, 0)]:
                instance = Instance(launch=launch, slot=slot.index)
                slot.instance = instance
                slot.launches += 1
                fresh.append(instance)
                self._instances.append(instance)
            return fresh

    def unreserve(self, fresh: Iterable[Instance]) -> None:
        """The launch of ``fresh`` raised: forget it."""
        with self.lock:
            for instance in fresh:
                instance.state = "failed"
                if instance in self._instances:
                    self._instances.remove(instance)
                self._slot(instance).launches -= 1

    def waiting(self) -> list[Instance]:
        """Instances launched and not dialled in yet."""
        with self.lock:
            return [i for i in self._instances if i.state == "launching"]

    def expire(self, instances: Iterable[Instance]) -> tuple[list[Instance], set[int]]:
        """Count launches that never dialled in as failed. Returns those still launching (now
        failed), and the ids of the handles still in use by other instances."""
        expired = []
        with self.lock:
            for instance in instances:
                if instance.state == "launching":
                    instance.state = "failed"
                    self._slot(instance).failed_launches += 1
                    self._instances.remove(instance)
                    expired.append(instance)
            self.failed_in_row += len(expired)
            return expired, {id(i.handle) for i in self._instances}

    # ------------------------------------------------------------------ workers (the loop thread)
    def bind(self, launch: str, pid: Optional[int], host: str) -> Optional[Instance]:
        """The instance a worker that said hello belongs to (a late worker of a failed launch
        gets a free place; None when there is none)."""
        with self.lock:
            candidates = [i for i in self._instances if i.launch == launch and i.state == "launching"]
            if not candidates:
                used = {i.slot for i in self._instances if i.state in ("launching", "connected")}
                free = [slot for slot in self.slots if slot.index not in used]
                if not free:
                    return None
                candidates = [Instance(launch=launch, slot=free[0].index)]
                self._instances.append(candidates[0])
            chosen = next((i for i in candidates if getattr(i.handle, "pid", None) == pid), candidates[0])
            chosen.state = "connected"
            chosen.pid, chosen.host, chosen.queued, chosen.reason = pid, host, False, None
            self._slot(chosen).instance = chosen
            self.failed_in_row = 0
            return chosen

    def end(self, instance: Optional[Instance], state: str = "ended") -> None:
        with self.lock:
            if instance is None or instance.state == state:
                return
            instance.state = state
            if instance in self._instances:
                self._instances.remove(instance)

    def count_results(self, instance: Optional[Instance], tasks: int, seconds: float, errors: int,
                      warnings: int) -> None:
        if instance is None:
            return
        with self.lock:
            slot = self._slot(instance)
            slot.tasks += tasks
            slot.seconds += seconds
            slot.errors += errors
            slot.warnings += warnings

    def count_crash(self, instance: Optional[Instance]) -> None:
        if instance is not None:
            with self.lock:
                self._slot(instance).crashes += 1

    # ------------------------------------------------------------------ the end
    def clear(self) -> list[Any]:
        """Forget every instance (the controller is terminating); return their distinct handles."""
        with self.lock:
            handles = distinct(i.handle for i in self._instances if i.handle is not None)
            for instance in self._instances:
                instance.state = "ended" if instance.state == "connected" else instance.state
            self._instances.clear()
            return handles

    def rows(self, controller: str) -> list[dict[str, Any]]:
        """One summary row per place."""
        with self.lock:
            return [_row(controller, slot) for slot in self.slots]

    def _slot(self, instance: Instance) -> Slot:
        return self.slots[(instance.slot or 1) - 1]


def _row(controller: str, slot: Slot) -> dict[str, Any]:
    instance = slot.instance
    return {
        "controller": controller,
        "worker": slot.index,
        "tasks": slot.tasks,
        "seconds": round(slot.seconds, 6),
        "errors": slot.errors,
        "warnings": slot.warnings,
        "crashes": slot.crashes,
        "launches": slot.launches,
        "failed_launches": slot.failed_launches,
        "state": instance.state if instance else "none",
        "pid": instance.pid if instance else None,
        "host": instance.host if instance else None,
        "reason": instance.reason if instance else None,
    }


def distinct(handles: Iterable[Any]) -> list[Any]:
    """Handles without repeats (by identity: an array job's handle stands for several workers)."""
    seen: dict[int, Any] = {}
    for handle in handles:
        seen.setdefault(id(handle), handle)
    return list(seen.values())
