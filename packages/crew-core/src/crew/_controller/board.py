"""The dispatch board: unresolved tasks, connected workers, and the frames that move tasks.

Every task the controller has not resolved is in exactly one place on the board: the queue, the
suspects' queue, or the ``outstanding`` set of one connected worker (a *seat*). The board applies
the dispatch policy (:mod:`crew._controller.dispatch`) and the crash-recovery policy
(:mod:`crew._controller.recovery`), and sends frames through the ``transmit`` function it is
given; it opens no socket itself, so it is tested without one.

Owner: the board belongs to whoever holds :attr:`Board.lock`. The loop thread holds it whenever
it works; a pushing caller takes it only when it is free, to send a task straight to an idle
worker (the fast lane, which saves a thread hand-off). No other thread touches the board.

Dispatch touches only the seats that can take part: :attr:`Board.ready` (seats that can be sent
queued tasks now, ``dispatch.ready``) and :attr:`Board.victims` (seats holding a spare task,
``dispatch.victim``). Every change to a seat marks it *touched*; :meth:`Board.dispatch` first
re-files the touched seats (so a turn costs what changed, not the number of workers; and the
loop has updated a seat's mean task time by then).

What the board resolves (cancelled tasks, tasks that crashed too often) it lists in
:attr:`Board.cancelled` and :attr:`Board.exhausted`; the loop drains both and publishes the
results, so the board never calls out to user code.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any, Callable, Optional

from .. import _protocol as P
from .._channel import Wire
from . import dispatch
from .recovery import recover
from .task import Task

__all__ = ["Seat", "Board"]


class Seat:
    """A connected, authenticated worker, as the board sees it."""

    __slots__ = ("key", "pipe", "id", "pid", "host", "instance", "outstanding", "stealing", "average", "leaving",
                 "budget", "marked", "heard", "inflight", "implied", "pending", "session")

    def __init__(self, key: int, pipe: Any, id: str, pid: Optional[int], host: str, instance: Any,
                 budget: float, now: float = 0.0):
        self.key = key  # the NNG pipe id
        self.pipe = pipe
        self.id = id  # "<controller>/<slot>/<pid>", as shown in results
        self.pid = pid
        self.host = host
        self.instance = instance  # its crew.Instance in the fleet registry, or None
        self.outstanding: dict[int, Task] = {}  # tasks sent and not resolved, in the order sent
        self.stealing: set[int] = set()  # ids asked back and not answered yet
        self.average: Optional[float] = None  # its mean task time, for dispatch.ahead_limit
        self.leaving: Optional[str] = None  # the reason it said goodbye
        self.budget = budget  # tasks it may still be sent (tasks_max)
        self.marked: Optional[int] = None  # the task it last reported as started
        self.heard = now  # when it last sent a frame
        self.inflight = False  # a frame sent to it and not yet acknowledged
        # The first task of the Tasks frame in flight: a worker that was idle when the frame came
        # starts that task at once and sends no acknowledgement; its Started or result for the
        # task acknowledges the frame (it saves the worker a send before the task runs).
        self.implied: Optional[int] = None
        self.pending: collections.deque[tuple[Wire, Optional[int]]] = collections.deque()  # frames waiting for the ack
        self.session: Any = None  # its crew._channel.Session: seals what it is sent, opens what it sends

    def __repr__(self) -> str:
        return f"Seat({self.id!r}, holds={len(self.outstanding)})"


Transmit = Callable[[Seat, Wire], bool]


class Board:
    """Tasks and connected workers; see the module docstring for who owns it."""

    def __init__(self, transmit: Transmit, crashes_max: int):
        import threading

        self.lock = threading.Lock()
        self.transmit = transmit
        self.crashes_max = crashes_max
        self.queue: collections.deque[Task] = collections.deque()
        self.suspects: collections.deque[Task] = collections.deque()
        self.tasks: dict[int, Task] = {}  # every unresolved task on the board, by id
        self.seats: dict[int, Seat] = {}
        self.idle: dict[int, Seat] = {}  # seats that hold nothing and can be sent a task now
        self.ready: dict[int, Seat] = {}  # seats dispatch.ready() was true of when last re-filed
        self.victims: dict[int, Seat] = {}  # seats dispatch.victim() was true of when last re-filed
        self.touched: dict[int, Seat] = {}  # seats changed since they were last re-filed
        self.cancelling: set[int] = set()  # ids of tasks asked to stop on their worker
        self.cancelled: list[tuple[Task, str, Optional[Seat]]] = []  # resolved here, for the loop
        self.exhausted: list[tuple[Task, Seat]] = []  # crashed too often, for the loop
        self.charged: list[Task] = []  # tasks charged a crash, for the loop (crashes(name))

    # ------------------------------------------------------------------ tasks in
    def add(self, task: Task) -> None:
        self.tasks[task.id] = task
        self.queue.append(task)

    def can_send_at_once(self) -> bool:
        """Whether a new task would go straight to an idle worker (the fast lane's test)."""
        return bool(self.idle) and not self.queue and not self.suspects

    def send_at_once(self, task: Task) -> None:
        """Send a new task to an idle worker (or queue it if none is left)."""
        self.tasks[task.id] = task
        seat = next(iter(self.idle.values()), None)
        if seat is None:
            self.queue.append(task)
        else:
            self._send_tasks(seat, [task], self.queue)

    # ------------------------------------------------------------------ sending
    def send(self, seat: Seat, frame: Wire, first: Optional[int] = None) -> bool:
        """Send a frame (bytes, or pieces), or hold it until the worker acknowledges the one in
        flight (NNG's polyamorous pair drops a frame sent to a pipe that is still busy). ``first``:
        a Tasks frame's first task, whose Started or result also acknowledges the frame."""
        if seat.inflight:
            seat.pending.append((frame, first))
            return True
        session = seat.session
        if session is not None:
            frame = session.seal(frame) if type(frame) is bytes else session.seal_pieces(frame)
        if not self.transmit(seat, frame):
            return False
        seat.inflight = True
        seat.implied = first
        self.idle.pop(seat.key, None)
        self.ready.pop(seat.key, None)
        self.touched[seat.key] = seat
        return True

    def acknowledged(self, seat: Seat) -> None:
        seat.inflight = False
        seat.implied = None
        self.touched[seat.key] = seat
        if seat.pending:
            self.send(seat, *seat.pending.popleft())
        else:
            self._mark_idle(seat)

    def _send_tasks(self, seat: Seat, batch: list[Task], source: collections.deque[Task]) -> None:
        frame = P.encode(P.Tasks([task.record() for task in batch]))
        outstanding = seat.outstanding
        for task in batch:
            outstanding[task.id] = task
        seat.budget -= len(batch)
        self.idle.pop(seat.key, None)
        self.touched[seat.key] = seat
        if not self.send(seat, frame, batch[0].id):
            for task in batch:
                outstanding.pop(task.id, None)
            seat.budget += len(batch)
            source.extendleft(reversed(batch))
            self._mark_idle(seat)

    def _mark_idle(self, seat: Seat) -> None:
        if (not seat.outstanding and not seat.inflight and seat.leaving is None and seat.budget > 0
                and seat.key in self.seats):
            self.idle[seat.key] = seat

    # ------------------------------------------------------------------ dispatch
    def dispatch(self) -> None:
        """Send queued tasks to ready workers; with nothing queued, let idle workers steal."""
        if self.touched:
            self._refile()
        if self.suspects:
            self._dispatch_suspects()
            self._refile()
        if not self.queue:
            self._steal()
            return
        if not self.ready:
            return
        for seat, room in dispatch.allot(len(self.queue), list(self.ready.values())):
            batch = self._fill(room)
            if batch:
                self._send_tasks(seat, batch, self.queue)

    def _refile(self) -> None:
        """File each touched seat in (or out of) :attr:`ready` and :attr:`victims`."""
        seats, ready, victims = self.seats, self.ready, self.victims
        for key, seat in self.touched.items():
            if seats.get(key) is not seat:
                ready.pop(key, None)
                victims.pop(key, None)
                continue
            if dispatch.ready(seat):
                ready[key] = seat
            else:
                ready.pop(key, None)
            if dispatch.victim(seat):
                victims[key] = seat
            else:
                victims.pop(key, None)
        self.touched.clear()

    def _fill(self, room: int) -> list[Task]:
        """Up to ``room`` queued tasks, about dispatch.MAX_BATCH_BYTES at most (never none)."""
        queue, tasks = self.queue, self.tasks
        batch: list[Task] = []
        size = 0
        while queue and len(batch) < room and (size < dispatch.MAX_BATCH_BYTES or not batch):
            task = queue.popleft()
            if task.id in tasks:  # else resolved meanwhile (cancelled)
                batch.append(task)
                size += task.size
        return batch

    def _dispatch_suspects(self) -> None:
        for seat in dispatch.takers_of_suspects(len(self.suspects), list(self.ready.values())):
            while self.suspects:
                task = self.suspects.popleft()
                if task.id in self.tasks:
                    self._send_tasks(seat, [task], self.suspects)
                    break

    def _steal(self) -> None:
        if not self.idle or not self.victims:
            return
        for victim, ids in dispatch.plan_steal(list(self.victims.values()), len(self.idle)):
            victim.stealing.update(ids)
            self.send(victim, P.encode(P.Cancel(ids, False)))

    # ------------------------------------------------------------------ workers
    def join(self, seat: Seat) -> None:
        """A worker said hello; it gets tasks once it acknowledges its welcome."""
        self.seats[seat.key] = seat
        self.touched[seat.key] = seat

    def goodbye(self, seat: Seat, reason: str) -> None:
        """A worker is leaving in peace: its unstarted tasks go back to the queue, uncharged."""
        self.idle.pop(seat.key, None)
        self.touched[seat.key] = seat
        seat.leaving = reason
        self._requeue(seat, crashed=False)

    def lost(self, key: int) -> tuple[Optional[Seat], bool]:
        """A worker's connection is gone: charge the task it was running (unless it said goodbye)
        and give the others back. Returns its seat (None for a pipe that never said hello) and
        whether it died holding tasks (a crash)."""
        self.idle.pop(key, None)
        self.ready.pop(key, None)
        self.victims.pop(key, None)
        self.touched.pop(key, None)
        seat = self.seats.pop(key, None)
        crashed = seat is not None and seat.leaving is None and bool(seat.outstanding)
        if crashed:
            self._requeue(seat, crashed=True)  # type: ignore[arg-type]
        return seat, crashed

    def _requeue(self, seat: Seat, crashed: bool) -> None:
        held = list(seat.outstanding.values())
        if not held:
            return
        seat.outstanding.clear()
        seat.stealing.clear()
        self.touched[seat.key] = seat
        plan = recover(held, seat.marked, crashed, self.crashes_max)
        if plan.culprit is not None:
            plan.culprit.crashes += 1
            plan.culprit.suspect = False
            self.charged.append(plan.culprit)
            if plan.exhausted:
                self.tasks.pop(plan.culprit.id, None)
                self.cancelling.discard(plan.culprit.id)
                self.exhausted.append((plan.culprit, seat))
        elif crashed:
            for task in plan.suspects:
                task.suspect = True
        kept = [task for task in plan.requeue if not self._cancel_now(task, "cancelled", seat)]
        self.queue.extendleft(reversed(kept))
        self.suspects.extendleft(reversed([t for t in plan.suspects if not self._cancel_now(t, "cancelled", seat)]))

    def _cancel_now(self, task: Task, why: str, seat: Optional[Seat]) -> bool:
        """Resolve ``task`` as cancelled if a cancel for it is pending; return whether it was."""
        if task.id not in self.cancelling:
            return False
        self.cancelling.discard(task.id)
        self._resolve_cancelled(task, why, seat)
        return True

    def _resolve_cancelled(self, task: Task, why: str, seat: Optional[Seat]) -> None:
        self.tasks.pop(task.id, None)
        self.cancelling.discard(task.id)
        self.cancelled.append((task, why, seat))

    # ------------------------------------------------------------------ frames from workers
    def started(self, seat: Seat, task_id: int) -> Optional[Task]:
        """A worker reports a task running; return the task if it wants to hear of it."""
        seat.marked = task_id
        if task_id == seat.implied:
            self.acknowledged(seat)
        task = seat.outstanding.get(task_id)
        return task if task is not None and task.on_start is not None else None

    def results(self, seat: Seat, records: Iterable[P.ResultRecord]) -> list[tuple[Task, P.ResultRecord]]:
        """Take resolved tasks off the worker; return them with their records, in order.

        Records of tasks the worker does not hold (e.g. given back meanwhile) are dropped.
        """
        outstanding, stealing, cancelling, tasks = seat.outstanding, seat.stealing, self.cancelling, self.tasks
        implied, came = seat.implied, False
        done = []
        for record in records:
            if record.id == implied:
                came = True  # the frame in flight came: acknowledge it below
            task = outstanding.pop(record.id, None)
            if task is None:
                continue
            if stealing:
                stealing.discard(record.id)
            if cancelling:
                cancelling.discard(record.id)
            del tasks[record.id]
            done.append((task, record))
        self.touched[seat.key] = seat
        if came:
            self.acknowledged(seat)  # marks it idle, or sends the frame held for the ack
        else:
            self._mark_idle(seat)
        return done

    def returned(self, seat: Seat, frame: P.Returned) -> None:
        """A worker handed back unstarted tasks (a steal or a cancel)."""
        seat.stealing.difference_update(frame.requested)
        for task_id in reversed(frame.returned):
            task = seat.outstanding.pop(task_id, None)
            if task is None or self._cancel_now(task, "cancelled before it started", seat):
                continue
            (self.suspects if task.suspect else self.queue).appendleft(task)
        self.touched[seat.key] = seat
        self._mark_idle(seat)

    # ------------------------------------------------------------------ cancel and shutdown
    def cancel(self, names: Optional[set[str]]) -> None:
        """Cancel tasks by name (all when ``names`` is None): queued ones resolve now, those on
        a worker are asked back (and interrupted if running)."""
        def wanted(task: Task) -> bool:
            return names is None or task.name in names

        for source in (self.queue, self.suspects):
            kept = [task for task in source if task.id in self.tasks and not wanted(task)]
            for task in source:
                if task.id in self.tasks and wanted(task):
                    self._resolve_cancelled(task, "cancelled before it started", None)
            source.clear()
            source.extend(kept)
        for seat in self.seats.values():
            ids = [task_id for task_id, task in seat.outstanding.items() if wanted(task)]
            if ids:
                self.cancelling.update(ids)
                self.send(seat, P.encode(P.Cancel(ids, True)))

    def clear(self) -> list[Task]:
        """Forget every worker and return every unresolved task (the controller is terminating)."""
        unresolved = list(self.tasks.values())
        self.queue.clear()
        self.suspects.clear()
        self.tasks.clear()
        for seat in self.seats.values():
            seat.outstanding.clear()
        self.seats.clear()
        self.idle.clear()
        self.ready.clear()
        self.victims.clear()
        self.touched.clear()
        self.cancelling.clear()
        return unresolved

    def where(self, task_id: int) -> list[str]:
        """The places that hold a task (for tests and debugging): a correct board gives one."""
        places = [name for name, source in (("queue", self.queue), ("suspects", self.suspects))
                  if any(task.id == task_id for task in source) and task_id in self.tasks]
        places += [f"seat {seat.id}" for seat in self.seats.values() if task_id in seat.outstanding]
        return places
