"""The dispatch policy: which worker gets how many queued tasks, and what an idle worker steals.

Pure functions over plain state: they read workers' attributes and return a plan; the dispatch
board (:mod:`crew._controller.board`) carries it out. Tested without sockets.

A worker gets tasks ahead of the one it runs so that it never waits for the controller. How many
adapts to its recent task times: about ``AHEAD_SECONDS`` of work, at most ``MAX_AHEAD`` tasks and,
per frame, about ``MAX_BATCH_BYTES``. Queued tasks are shared out evenly, least-loaded worker
first. A worker that holds a suspect task (see :mod:`crew._controller.recovery`) gets nothing
else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Protocol, TypeVar

__all__ = ["MAX_AHEAD", "AHEAD_SECONDS", "MAX_BATCH_BYTES", "ahead_limit", "next_average", "ready",
           "allot", "takers_of_suspects", "plan_steal"]

MAX_AHEAD = 256
AHEAD_SECONDS = 0.02
MAX_BATCH_BYTES = 4 * 2**20


class SeatLike(Protocol):
    outstanding: dict[int, Any]
    stealing: set[int]
    average: Optional[float]
    leaving: Optional[str]
    budget: float
    inflight: bool


S = TypeVar("S", bound=SeatLike)


def ahead_limit(average: Optional[float]) -> int:
    """How many tasks a worker may hold (the running one included), from its mean task time."""
    if average is None:
        return 1
    return max(1, min(MAX_AHEAD, int(AHEAD_SECONDS / max(average, 1e-7))))


def next_average(average: Optional[float], batch_mean: float) -> float:
    """The worker's mean task time after a batch of results (an exponential average)."""
    return batch_mean if average is None else 0.5 * average + 0.5 * batch_mean


def holds_suspect(seat: SeatLike) -> bool:
    return bool(seat.outstanding) and next(iter(seat.outstanding.values())).suspect


def ready(seat: SeatLike) -> bool:
    """Whether a worker can be sent queued tasks now."""
    return (seat.leaving is None and not seat.inflight and seat.budget > 0
            and len(seat.outstanding) < ahead_limit(seat.average) and not holds_suspect(seat))


def allot(queued: int, seats: Iterable[S]) -> list[tuple[S, int]]:
    """How many of ``queued`` tasks each ready worker gets, least-loaded first.

    Each gets at most its room (limit minus held), its budget and an even share of the queue.
    """
    if queued <= 0:
        return []
    candidates = sorted((seat for seat in seats if ready(seat)), key=lambda seat: len(seat.outstanding))
    if not candidates:
        return []
    share = -(-queued // len(candidates))
    plan = []
    for seat in candidates:
        if queued <= 0:
            break
        room = int(min(ahead_limit(seat.average) - len(seat.outstanding), seat.budget, share, queued))
        if room > 0:
            plan.append((seat, room))
            queued -= room
    return plan


def takers_of_suspects(count: int, seats: Iterable[S]) -> list[S]:
    """Workers that may each run one suspect task alone: connected, free and holding nothing."""
    takers: list[S] = []
    for seat in seats:
        if len(takers) >= count:
            break
        if seat.leaving is None and not seat.inflight and seat.budget > 0 and not seat.outstanding:
            takers.append(seat)
    return takers


def plan_steal(seats: Sequence[S], idle: int) -> list[tuple[S, list[int]]]:
    """Unstarted tasks to ask back from busy workers, one request per idle worker.

    Nothing while an earlier request is unanswered. A busy worker keeps its first task (it may be
    running) and gives back the later half of the rest (the one waiting task when only one waits).
    """
    if idle <= 0 or any(seat.stealing for seat in seats):
        return []
    plan: list[tuple[S, list[int]]] = []
    for victim in sorted(seats, key=lambda seat: -len(seat.outstanding)):
        if len(plan) >= idle:
            break
        spare = [task_id for task_id in list(victim.outstanding)[1:] if task_id not in victim.stealing]
        if not spare:
            break
        plan.append((victim, spare[len(spare) // 2:] if len(spare) > 1 else spare))
    return plan
