"""The dispatch board as a state machine (hypothesis, stateful), with simulated workers: no socket.

Random interleavings of pushes, workers joining, acknowledging, running, finishing, handing tasks
back, crashing and leaving, and cancels. After every step: each unresolved task is in exactly one
place on the board; no worker holds more than its limit; a task resolved or cancelled before it
started is never sent again; a crash charges only the task that was running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from crew import _protocol as P
from crew._controller import dispatch
from crew._controller.board import Board, Seat
from crew._controller.task import Task
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule


@dataclass
class SimWorker:
    """What a worker process would hold: tasks received in order, the one it runs."""

    seat: Seat
    inbox: list[int] = field(default_factory=list)  # task ids received, not started
    running: Optional[int] = None
    unanswered: list[P.Frame] = field(default_factory=list)  # frames it must acknowledge
    implied: Optional[int] = None  # came idle: this task's Started or result acknowledges its frame


class BoardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.board = Board(self.transmit, crashes_max=2)
        self.workers: dict[int, SimWorker] = {}
        self.next_key = 1
        self.next_id = 1
        self.resolved: set[int] = set()  # ids resolved (result, cancel, exhausted)
        self.cancel_asked: set[int] = set()  # ids cancelled while queued or not started
        self.started: set[int] = set()  # ids a worker began to run
        self.crashes: dict[int, int] = {}  # crashes the model expects each task to carry

    # ------------------------------------------------------------------ the fake wire
    def transmit(self, seat: Seat, data: bytes) -> bool:
        worker = self.workers.get(seat.key)
        if worker is None:
            return False
        frame = P.decode(data)
        assert not worker.unanswered and worker.implied is None, "a second frame before the first was acknowledged"
        if isinstance(frame, P.Tasks) and worker.running is None and not worker.inbox:
            worker.implied = frame.tasks[0].id  # an idle worker sends no Ack (see crew.worker)
        else:
            worker.unanswered.append(frame)
        if isinstance(frame, P.Tasks):
            for record in frame.tasks:
                assert record.id not in self.resolved, f"task {record.id} sent after it resolved"
                assert record.id not in self.cancel_asked or record.id not in self.started, record.id
                worker.inbox.append(record.id)
            # the limit in force when the batch was sent (the running task included)
            assert len(seat.outstanding) <= max(dispatch.ahead_limit(seat.average), 1)
        elif isinstance(frame, P.Cancel):  # unstarted tasks are handed back (see the `answer` rule)
            ids = set(frame.ids)
            worker.inbox[:] = [i for i in worker.inbox if i not in ids]
        return True

    # ------------------------------------------------------------------ rules
    @rule(count=st.integers(1, 6), size=st.integers(0, 3000))
    def push(self, count, size):
        for _ in range(count):
            task = Task(f"t{self.next_id}", "cmd", b"x" * size, None)
            task.id = self.next_id
            self.next_id += 1
            self.board.add(task)

    @rule()
    def join(self):
        key = self.next_key
        self.next_key += 1
        seat = Seat(key, None, f"w{key}", key, "host", None, float("inf"))
        self.workers[key] = SimWorker(seat)
        assert self.board.send(seat, P.encode(P.Welcome(seat.id, {})))
        self.board.join(seat)

    @rule()
    def dispatch(self):
        self.board.dispatch()
        board = self.board
        if any(task.id in board.tasks for task in board.queue):  # tasks are left: nobody could take one
            assert not [seat.id for seat in board.seats.values() if dispatch.ready(seat)]

    @precondition(lambda self: any(w.unanswered for w in self.workers.values()))
    @rule(data=st.data())
    def answer(self, data):
        """A worker acknowledges its frame (and answers a cancel with what it hands back)."""
        worker = data.draw(st.sampled_from([w for w in self.workers.values() if w.unanswered]))
        frame = worker.unanswered.pop()
        self.board.acknowledged(worker.seat)
        if isinstance(frame, P.Cancel):
            given = [i for i in frame.ids if i in worker.seat.outstanding and i != worker.running]
            if frame.interrupt:
                self.cancel_asked.update(given)
            self.board.returned(worker.seat, P.Returned(list(frame.ids), given))

    @precondition(lambda self: any(w.inbox and w.running is None for w in self.workers.values()))
    @rule(data=st.data(), report=st.booleans())
    def start(self, data, report):
        worker = data.draw(st.sampled_from([w for w in self.workers.values() if w.inbox and w.running is None]))
        task_id = worker.inbox.pop(0)
        if task_id not in worker.seat.outstanding:
            return  # handed back meanwhile
        assert task_id not in self.cancel_asked, f"task {task_id} started after its cancel"
        worker.running = task_id
        self.started.add(task_id)
        if report:
            if task_id == worker.implied:
                worker.implied = None  # its frame is acknowledged by this report
            self.board.started(worker.seat, task_id)

    @precondition(lambda self: any(w.running is not None for w in self.workers.values()))
    @rule(data=st.data(), seconds=st.floats(1e-6, 0.1))
    def finish(self, data, seconds):
        worker = data.draw(st.sampled_from([w for w in self.workers.values() if w.running is not None]))
        task_id, worker.running = worker.running, None
        record = P.ResultRecord(task_id, "success", None, None, None, None, seconds)
        if task_id == worker.implied:
            worker.implied = None  # its frame is acknowledged by this result
        done = self.board.results(worker.seat, [record])
        worker.seat.average = dispatch.next_average(worker.seat.average, seconds)  # as the loop does, after
        for task, _ in done:
            self.resolved.add(task.id)

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def crash(self, data):
        worker = data.draw(st.sampled_from(list(self.workers.values())))
        held = dict(worker.seat.outstanding)
        marked = worker.seat.marked if worker.seat.marked in held else None
        expected = marked if marked is not None else (next(iter(held)) if len(held) == 1 else None)
        before = {task_id: task.crashes for task_id, task in held.items()}
        del self.workers[worker.seat.key]
        self.board.lost(worker.seat.key)
        for task_id, task in held.items():
            charged = task.crashes - before[task_id]
            assert charged == (1 if task_id == expected else 0), (task_id, expected, charged)
        self._drain()

    @precondition(lambda self: self.workers)
    @rule(data=st.data())
    def goodbye(self, data):
        worker = data.draw(st.sampled_from(list(self.workers.values())))
        held = {task_id: task.crashes for task_id, task in worker.seat.outstanding.items()}
        self.board.goodbye(worker.seat, "seconds_idle")
        del self.workers[worker.seat.key]
        self.board.lost(worker.seat.key)
        assert all(self.board.tasks[i].crashes == c for i, c in held.items() if i in self.board.tasks)

    @precondition(lambda self: self.board.tasks)
    @rule(data=st.data())
    def cancel(self, data):
        names = set(data.draw(st.lists(st.sampled_from(sorted(t.name for t in self.board.tasks.values())),
                                       min_size=1, max_size=4)))
        queued = {t.id for t in list(self.board.queue) + list(self.board.suspects) if t.name in names}
        self.cancel_asked.update(queued)
        self.board.cancel(names)
        self._drain()

    def _drain(self):
        for task, _, _ in self.board.cancelled:
            self.resolved.add(task.id)
        self.board.cancelled.clear()
        for task, _ in self.board.exhausted:
            self.resolved.add(task.id)
        self.board.exhausted.clear()

    # ------------------------------------------------------------------ invariants
    @invariant()
    def each_task_in_exactly_one_place(self):
        self._drain()
        for task_id in self.board.tasks:
            places = self.board.where(task_id)
            assert len(places) == 1, (task_id, places)
            assert task_id not in self.resolved
        for task_id in self.resolved:
            assert self.board.where(task_id) == [], task_id
        for seat in self.board.seats.values():
            assert all(task_id in self.board.tasks for task_id in seat.outstanding)

    @invariant()
    def seats_are_filed_where_they_belong(self):
        """Every seat not touched since it was last filed is in ready/victims exactly when it should be."""
        board = self.board
        for key, seat in board.seats.items():
            if key not in board.touched:
                assert (key in board.ready) == dispatch.ready(seat), seat
                assert (key in board.victims) == dispatch.victim(seat), seat
        assert set(board.ready) <= set(board.seats) and set(board.victims) <= set(board.seats)

    @invariant()
    def a_suspect_runs_alone(self):
        for seat in self.board.seats.values():
            tasks = list(seat.outstanding.values())
            if any(task.suspect for task in tasks):
                assert len(tasks) == 1, tasks


TestBoard = BoardMachine.TestCase
TestBoard.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)


# ---------------------------------------------------------------------- the same properties, by hand
class Wire:
    """Frames a board sends, per worker, decoded; each acknowledged at once unless held."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, P.Frame]] = []
        self.board = Board(self.transmit, crashes_max=1)

    def transmit(self, seat: Seat, data: bytes) -> bool:
        self.sent.append((seat.key, P.decode(data)))
        return True

    def worker(self, key: int, average: Optional[float] = None) -> Seat:
        seat = Seat(key, None, f"w{key}", key, "h", None, float("inf"))
        seat.average = average
        self.board.join(seat)
        self.board.acknowledged(seat)  # its welcome
        return seat

    def push(self, *ids: int) -> None:
        for task_id in ids:
            task = Task(f"t{task_id}", "cmd", b"", None)
            task.id = task_id
            self.board.add(task)

    def tasks_sent(self, key: int) -> list[int]:
        return [r.id for k, f in self.sent if k == key and isinstance(f, P.Tasks) for r in f.tasks]


def test_a_task_cancelled_on_its_worker_before_it_started_never_runs():
    wire = Wire()
    seat = wire.worker(1, average=0.001)  # fast: it may hold several
    wire.push(1, 2, 3)
    wire.board.dispatch()
    assert wire.tasks_sent(1) == [1, 2, 3]
    wire.board.acknowledged(seat)
    wire.board.cancel({"t3"})
    assert wire.sent[-1] == (1, P.Cancel([3], True))
    wire.board.acknowledged(seat)
    wire.board.returned(seat, P.Returned([3], [3]))  # handed back unstarted
    assert [(task.name, why) for task, why, _ in wire.board.cancelled] == [("t3", "cancelled before it started")]
    wire.worker(2)
    wire.board.dispatch()
    assert 3 not in wire.tasks_sent(2) and wire.board.where(3) == []


def test_a_crash_charges_the_reported_task_and_requeues_the_rest_first():
    wire = Wire()
    seat = wire.worker(1, average=0.001)
    wire.push(1, 2, 3)
    wire.board.dispatch()
    wire.board.started(seat, 1)
    tasks = dict(seat.outstanding)
    _, crashed = wire.board.lost(1)
    assert crashed
    assert [tasks[i].crashes for i in (1, 2, 3)] == [1, 0, 0]
    assert [task.id for task in wire.board.queue] == [1, 2, 3] and not wire.board.suspects


def test_an_unknown_culprit_makes_every_task_a_suspect_that_runs_alone():
    wire = Wire()
    wire.worker(1, average=0.001)
    wire.push(1, 2)
    wire.board.dispatch()
    wire.board.lost(1)
    assert [task.id for task in wire.board.suspects] == [1, 2] and not wire.board.queue
    assert all(task.crashes == 0 for task in wire.board.suspects)
    wire.worker(2, average=0.001)
    wire.worker(3, average=0.001)
    wire.board.dispatch()
    assert wire.tasks_sent(2) == [1] and wire.tasks_sent(3) == [2]


def test_a_task_that_crashes_more_than_crashes_max_is_exhausted():
    wire = Wire()  # crashes_max=1
    for key in (1, 2):
        wire.worker(key)
        if key == 1:
            wire.push(7)
        wire.board.dispatch()
        wire.board.lost(key)
    assert [(task.id, task.crashes) for task, _ in wire.board.exhausted] == [(7, 2)]
    assert wire.board.where(7) == [] and 7 not in wire.board.tasks


def test_no_worker_is_sent_more_than_its_limit():
    wire = Wire()
    slow = wire.worker(1, average=1.0)
    fast = wire.worker(2, average=0.002)
    wire.push(*range(1, 101))
    wire.board.dispatch()
    assert len(slow.outstanding) == dispatch.ahead_limit(1.0) == 1
    assert len(fast.outstanding) == dispatch.ahead_limit(0.002) == 10


def test_a_task_goes_back_when_its_send_fails():
    board = Board(lambda seat, frame: False, crashes_max=1)
    seat = Seat(1, None, "w1", 1, "h", None, float("inf"))
    board.join(seat)
    board.idle[1] = seat
    task = Task("t", "cmd", b"", None)
    task.id = 1
    board.send_at_once(task)
    assert board.where(1) == ["queue"] and seat.outstanding == {} and seat.budget == float("inf")


def test_the_first_tasks_started_or_result_acknowledges_its_frame():
    """A worker idle when a Tasks frame comes sends no Ack; the frame's first task answers for it."""
    wire = Wire()
    seat = wire.worker(1, average=0.001)
    wire.push(1)
    wire.board.dispatch()
    assert seat.inflight and seat.implied == 1
    wire.board.acknowledged(seat)  # a busy worker's Ack
    assert not seat.inflight and seat.implied is None
    wire.push(2, 3)
    wire.board.dispatch()
    assert wire.tasks_sent(1) == [1, 2, 3] and seat.implied == 2
    wire.board.results(seat, [P.ResultRecord(1, "success", None, None, None, None, 0.001)])
    assert seat.inflight  # a result of an earlier frame's task proves nothing of this frame
    wire.board.started(seat, 3)
    assert seat.inflight  # nor does another task of the frame: the first runs first
    wire.push(4)
    wire.board.dispatch()
    assert wire.tasks_sent(1) == [1, 2, 3]  # held until the acknowledgement
    wire.board.results(seat, [P.ResultRecord(2, "success", None, None, None, None, 0.001)])
    assert seat.implied is None
    wire.board.dispatch()
    assert wire.tasks_sent(1) == [1, 2, 3, 4]


def test_a_frame_held_for_an_ack_is_sent_when_the_first_task_reports_started():
    wire = Wire()
    seat = wire.worker(1)
    wire.push(1)
    wire.board.dispatch()
    wire.board.cancel({"t1"})  # a Cancel frame waits behind the Tasks frame in flight
    assert [type(f).__name__ for _, f in wire.sent] == ["Tasks"]
    wire.board.started(seat, 1)
    assert [type(f).__name__ for _, f in wire.sent] == ["Tasks", "Cancel"] and seat.inflight and seat.implied is None
