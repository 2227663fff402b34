"""The scaling policy: how many workers to launch, how fast to retry, when a launch has failed.

Pure functions over plain numbers and instances, tested without sockets or processes. The
scaler thread (:mod:`crew._controller.scaler`) calls them.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["LAUNCH_FAILURES_MAX", "demand", "backoff", "overdue", "report_due", "wanted", "queue_counts"]

LAUNCH_FAILURES_MAX = 5
"""Failed launches in a row that are reported to the user as a crew.LaunchError."""


def demand(workers: int, unresolved: int, active: int) -> int:
    """Workers to launch now: one per unresolved task, up to ``workers`` alive at once."""
    return max(0, min(workers, unresolved) - active)


def wanted(workers: int, unresolved: int, connected: int) -> bool:
    """Whether unresolved tasks may need more workers than are connected (wake the scaler)."""
    return connected < workers and unresolved > connected


def backoff(interval: float, failed_in_row: int) -> float:
    """Seconds between launch rounds: ``interval``, doubled per failed launch in a row, at most a
    minute (or ``interval`` if that is longer)."""
    factor: int = 2 ** min(failed_in_row, 16)  # typeshed: int ** int is Any (negative exponents)
    return min(interval * factor, max(interval, 60.0))


def overdue(state: str, queued: bool, launched: float, ended: Optional[str], now: float,
            seconds_launch: float) -> bool:
    """Whether a launch that has not dialled in counts as failed: its worker ended, or it left
    the platform's queue more than ``seconds_launch`` ago."""
    if state != "launching":
        return False
    return bool(ended) or (not queued and now - launched > seconds_launch)


def report_due(failed_before: int, failed_after: int) -> bool:
    """Whether the failures since a worker last dialled in crossed a multiple of LAUNCH_FAILURES_MAX."""
    return failed_after // LAUNCH_FAILURES_MAX > failed_before // LAUNCH_FAILURES_MAX


def queue_counts(handles: list[Any], report: list[Any]) -> dict[int, tuple[int, Optional[str]]]:
    """Per handle (by identity), how many of its workers the platform still queues, and why."""
    return {id(handle): ((status.count if status else 0), (status.reason if status else None))
            for handle, status in zip(handles, report)}
