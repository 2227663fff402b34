"""The scaler: the ``crew-scale`` thread that launches workers and watches their launches.

Owner: the scaler's own state (the time of the last round and of the last queue check, the
auto-scaling switch) belongs to whoever holds :attr:`Scaler.round_lock`: the ``crew-scale``
thread, or a caller of ``controller.scale()``. Launch rounds run here because launching can take
seconds on a cluster. Instances live in the fleet registry (:mod:`crew._controller.fleet`); the
decisions are the pure functions of :mod:`crew._controller.scaling`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Optional

from ..errors import LaunchError
from ..launcher import Instance, Launcher
from . import scaling
from .fleet import Fleet, distinct

__all__ = ["Scaler"]

log = logging.getLogger("crew")


class Scaler:
    """Launches the workers that ``unresolved()`` tasks need, at most ``launcher.workers``."""

    def __init__(self, name: str, launcher: Launcher, fleet: Fleet, unresolved: Callable[[], int],
                 report: Callable[[BaseException], None], notes: Callable[[str], list[str]] = lambda launch: []):
        self.name = name
        self.launcher = launcher
        self.fleet = fleet
        self.unresolved = unresolved
        self.report = report  # hands an error to the user's next call
        self.notes = notes  # what workers of a launch wrote before they failed
        self.round_lock = threading.RLock()
        self.wanted = threading.Event()  # set: run a round soon
        self.autoscaling = True
        self.halted = threading.Event()  # set once by stop()
        self._last_round = -math.inf
        self._last_queue_check = -math.inf

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        """The ``crew-scale`` thread: a round when asked, and every interval while tasks wait."""
        interval = self.launcher.seconds_interval
        while not self.halted.is_set():
            busy = self.unresolved() > 0
            self.wanted.wait(interval if (busy and self.autoscaling) else None)
            if self.halted.is_set():
                return
            if self._backoff(interval):
                return
            try:
                if self.autoscaling:
                    self.round()
                else:  # scale() and launch() still launch, from their callers' threads
                    with self.round_lock:
                        self.check_launches()
            except BaseException as error:  # surfaced on the user's next call
                self.report(error)

    def _backoff(self, interval: float) -> bool:
        """Wait out the launch backoff; True once halted. It is re-checked whenever ``wanted`` is
        set: a worker that dials in resets the failures in a row, and so ends the backoff."""
        while True:
            self.wanted.clear()
            wait = self._last_round + scaling.backoff(interval, self.fleet.failed_in_row) - time.monotonic()
            if wait <= 0 or self.halted.is_set():
                return self.halted.is_set()
            self.wanted.wait(wait)

    def stop(self) -> None:
        self.halted.set()
        self.wanted.set()

    # ------------------------------------------------------------------ one round
    def round(self, want: Optional[int] = None) -> int:
        """Check launches, then launch what the unresolved tasks need (or ``want`` workers, up to
        ``workers`` alive); return how many."""
        with self.round_lock:
            if self.halted.is_set():
                return 0
            self.check_launches()
            active = self.fleet.active()
            if want is None:
                want = scaling.demand(self.launcher.workers, self.unresolved(), active)
            else:
                want = min(want, self.launcher.workers - active)
            if want <= 0:
                return 0
            launch = self.launcher.next_launch()
            fresh = self.fleet.reserve(want, launch)
            if not fresh:
                return 0
            self._last_round = time.monotonic()
            self._launch(launch, fresh)
            log.debug("%s launched %d worker(s) in round %s", self.name, len(fresh), launch)
            return len(fresh)

    def _launch(self, launch: str, fresh: list[Instance]) -> None:
        try:
            handles = self.launcher.launch_workers(self.launcher.call(launch=launch), len(fresh))
        except Exception as error:
            self.fleet.unreserve(fresh)
            if isinstance(error, LaunchError):
                raise
            raise LaunchError(f"{type(self.launcher).__name__} could not launch {len(fresh)} worker(s): "
                              f"{type(error).__name__}: {error}") from error
        if isinstance(handles, list) and len(handles) == len(fresh):
            for instance, handle in zip(fresh, handles):
                instance.handle = handle
        else:
            for instance in fresh:
                instance.handle = handles

    # ------------------------------------------------------------------ launches that never dialled in
    def check_launches(self) -> None:
        """Count launches that never dialled in as failed, unless the platform still queues them."""
        waiting = self.fleet.waiting()
        if not waiting:
            return
        now = time.monotonic()
        if now - self._last_queue_check >= self.launcher.seconds_interval:
            self._last_queue_check = now
            self._ask_queue(waiting, now)
        exits = self._exits(waiting)
        for instance in waiting:
            ended = exits.get(id(instance.handle))
            if ended and instance.state == "launching":
                said = "; ".join(self.notes(instance.launch))
                instance.reason = f"ended before it dialled in ({ended})" + (f": {said}" if said else "")
                log.warning("%s: a launched worker %s", self.name, instance.reason)
        due = [i for i in waiting if scaling.overdue(i.state, i.queued, i.launched, exits.get(id(i.handle)), now,
                                                     self.launcher.seconds_launch)]
        before = self.fleet.failed_in_row
        expired, live = self.fleet.expire(due)
        dead = distinct(i.handle for i in expired if i.handle is not None and id(i.handle) not in live)
        if dead:
            self.launcher.terminate_workers(dead)
        self._complain(expired, before)

    def _ask_queue(self, waiting: list[Instance], now: float) -> None:
        handles = distinct(i.handle for i in waiting if i.handle is not None)
        try:
            report = self.launcher.queued(handles)
        except Exception as error:  # the platform's status is advice, not a requirement
            log.warning("%s: could not ask the platform about queued workers: %s", self.name, error)
            report = None
        if report is None:
            return
        counts = scaling.queue_counts(handles, list(report))
        left = {key: count for key, (count, _) in counts.items()}
        for instance in waiting:
            key = id(instance.handle)
            instance.queued = left.get(key, 0) > 0
            if instance.queued:
                left[key] -= 1
                instance.launched = now  # seconds_launch counts from when it leaves the queue
            instance.reason = counts[key][1] if (key in counts and instance.queued) else None

    def _exits(self, waiting: list[Instance]) -> dict[int, Any]:
        exits: dict[int, Any] = {}
        for handle in distinct(i.handle for i in waiting if i.handle is not None):
            try:
                exits[id(handle)] = self.launcher.exit_status(handle)
            except Exception:
                exits[id(handle)] = None
        return exits

    def _complain(self, expired: list[Instance], before: int) -> None:
        late = [i for i in expired if not i.reason]
        if late:
            log.warning("%s: %d launched worker(s) did not dial in within seconds_launch=%g s",
                        self.name, len(late), self.launcher.seconds_launch)
        failed = self.fleet.failed_in_row
        if expired and scaling.report_due(before, failed):
            reasons = {i.reason for i in expired if i.reason}
            reasons = reasons or {f"no dial-in within seconds_launch={self.launcher.seconds_launch:g} s"}
            raise LaunchError(
                f"{failed} launches in a row failed before their workers dialled in "
                f"({'; '.join(sorted(r for r in reasons if r))}). Check the workers' logs and the launcher's "
                "options. This error ends the call that raised it; in the background the controller keeps "
                f"launching, more slowly, and reports again after {scaling.LAUNCH_FAILURES_MAX} more failures."
            )
