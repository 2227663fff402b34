"""The dispatch policy: which worker gets how many queued tasks, and what an idle worker steals.

Pure functions over plain state: they read workers' attributes and return a plan; the dispatch
board (:mod:`crew._controller.board`) carries it out. Tested without sockets.

A worker gets tasks ahead of the one it runs so that it never waits for the controller. How many
adapts to its recent task times: about ``AHEAD_SECONDS`` of work, at most ``MAX_AHEAD`` tasks and,
per frame, about ``MAX_BATCH_BYTES``. Queued tasks are shared out evenly, least-loaded worker
first, but a frame carries at least about ``BATCH_SECONDS`` of work (``min_batch``): a frame
costs the controller far more than a trivial task, so with many workers and short tasks the
queue fills fewer workers instead of sending each of them one task a frame. A worker that holds
a suspect task (see :mod:`crew._controller.recovery`) gets nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional, Protocol, TypeVar

__all__ = ["MAX_AHEAD", "AHEAD_SECONDS", "BATCH_SECONDS", "MAX_BATCH_BYTES", "ahead_limit", "min_batch",
           "next_average", "ready", "allot", "takers_of_suspects", "victim", "plan_steal"]

MAX_AHEAD = 1024
AHEAD_SECONDS = 0.02
BATCH_SECONDS = AHEAD_SECONDS / 4
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


def min_batch(average: Optional[float]) -> int:
    """The fewest tasks worth a frame to a worker (when that many are queued), from its mean task
    time: about ``BATCH_SECONDS`` of work, so one task a frame for tasks of 5 ms or more."""
    if average is None:
        return 1
    return max(1, min(MAX_AHEAD, int(BATCH_SECONDS / max(average, 1e-7))))


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

    Each gets at most its room (limit minus held) and its budget, and an even share of the queue
    or its ``min_batch``, whichever is more: the queue runs out before every worker gets some
    when the workers are many and their tasks short.
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
        average = seat.average
        room = int(min(ahead_limit(average) - len(seat.outstanding), seat.budget,
                       max(share, min_batch(average)), queued))
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


def victim(seat: SeatLike) -> bool:
    """Whether a worker may be asked for tasks back (it holds a spare one), or is being asked."""
    return len(seat.outstanding) > 1 or bool(seat.stealing)


def plan_steal(seats: Iterable[S], idle: int) -> list[tuple[S, list[int]]]:
    """Unstarted tasks to ask back from busy workers, one request per idle worker.

    ``seats`` needs to hold only the ``victim`` ones. Nothing while an earlier request is
    unanswered. A busy worker keeps its first task (it may be running) and gives back the later
    half of the rest (the one waiting task when only one waits), if those spare tasks are worth a
    frame (at least its ``min_batch``; a worker runs fewer of its short tasks sooner than they
    could move).
    """
    if idle <= 0:
        return []
    victims = []
    for seat in seats:
        if seat.stealing:
            return []
        if len(seat.outstanding) - 1 >= min_batch(seat.average):
            victims.append(seat)
    plan: list[tuple[S, list[int]]] = []
    for seat in sorted(victims, key=lambda seat: -len(seat.outstanding)):
        if len(plan) >= idle:
            break
        spare = list(seat.outstanding)[1:]
        plan.append((seat, spare[len(spare) // 2:] if len(spare) > 1 else spare))
    return plan
