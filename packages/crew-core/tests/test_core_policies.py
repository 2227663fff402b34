"""The controller's policies as pure functions: dispatch, crash recovery, scaling. No socket, no process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from crew._controller import dispatch, scaling
from crew._controller.recovery import recover
from hypothesis import given, settings
from hypothesis import strategies as st


@dataclass
class FakeTask:
    id: int
    crashes: int = 0
    suspect: bool = False


@dataclass
class FakeSeat:
    outstanding: dict[int, Any] = field(default_factory=dict)
    stealing: set[int] = field(default_factory=set)
    average: Optional[float] = None
    leaving: Optional[str] = None
    budget: float = float("inf")
    inflight: bool = False


seats_strategy = st.lists(
    st.builds(
        lambda held, average, leaving, budget, inflight: FakeSeat(
            {i: FakeTask(i) for i in range(held)}, set(), average, "idle" if leaving else None, budget, inflight),
        st.integers(0, 300), st.one_of(st.none(), st.floats(1e-9, 10.0)), st.booleans(),
        st.sampled_from([0, 1, 5, float("inf")]), st.booleans()),
    max_size=12)


ready_seats_strategy = st.lists(  # many workers free to take tasks, most of them fast
    st.builds(lambda held, average, budget: FakeSeat({i: FakeTask(i) for i in range(held)}, set(), average, None, budget),
              st.integers(0, 20), st.one_of(st.none(), st.floats(0.0, 0.01)), st.sampled_from([1, 5, 1000, float("inf")])),
    max_size=40)


# ---------------------------------------------------------------------- dispatch
def test_ahead_limit_follows_task_times():
    assert dispatch.ahead_limit(None) == 1  # unknown speed: one task at a time
    assert dispatch.ahead_limit(1.0) == 1
    assert dispatch.ahead_limit(0.001) == 20
    assert dispatch.ahead_limit(1e-9) == dispatch.MAX_AHEAD


@given(queued=st.integers(0, 5000), seats=st.one_of(seats_strategy, ready_seats_strategy))
def test_allot_never_sends_more_than_a_worker_may_hold_or_than_is_queued(queued, seats):
    plan = dispatch.allot(queued, seats)
    assert sum(room for _, room in plan) <= queued
    for seat, room in plan:
        assert room >= 1
        assert dispatch.ready(seat)
        assert len(seat.outstanding) + room <= dispatch.ahead_limit(seat.average)
        assert room <= seat.budget
    assert len({id(seat) for seat, _ in plan}) == len(plan)  # one batch per worker


@given(queued=st.integers(1, 5000), seats=st.one_of(seats_strategy, ready_seats_strategy))
def test_allot_uses_every_ready_worker_while_tasks_last(queued, seats):
    plan = dispatch.allot(queued, seats)
    ready = [seat for seat in seats if dispatch.ready(seat)]
    if ready:
        assert plan  # something is sent whenever a worker can take it
    sent = sum(room for _, room in plan)
    if sent < queued:  # whoever got nothing, or less than its room, was limited by its share
        for seat in ready:
            assert any(s is seat for s, _ in plan) or sent >= queued


def test_a_worker_holding_a_suspect_gets_nothing_else():
    suspect = FakeSeat({1: FakeTask(1, suspect=True)}, average=1e-6)
    assert not dispatch.ready(suspect)
    assert dispatch.allot(10, [suspect]) == []
    free = FakeSeat()
    assert dispatch.takers_of_suspects(1, [suspect, free]) == [free]


@given(seats=seats_strategy, idle=st.integers(0, 5))
def test_steal_keeps_the_first_task_and_asks_nothing_twice(seats, idle):
    plan = dispatch.plan_steal(seats, idle)
    assert len(plan) <= idle
    if any(seat.stealing for seat in seats):
        assert plan == []
    for victim, ids in plan:
        held = list(victim.outstanding)
        assert ids and held[0] not in ids and set(ids) <= set(held)


def test_min_batch_is_about_a_quarter_of_the_time_ahead():
    assert dispatch.min_batch(None) == 1  # unknown speed: one task a frame
    assert dispatch.min_batch(0.005) == dispatch.min_batch(1.0) == 1
    assert dispatch.min_batch(0.001) == 5 and dispatch.ahead_limit(0.001) == 20
    assert dispatch.min_batch(0.0) == dispatch.min_batch(1e-9) == dispatch.MAX_AHEAD


@given(queued=st.integers(1, 5000), seats=st.one_of(seats_strategy, ready_seats_strategy))
def test_allot_sends_no_frame_smaller_than_a_batch_unless_the_worker_or_the_queue_is_short(queued, seats):
    plan = dispatch.allot(queued, seats)
    left = queued
    for seat, room in plan:
        free = dispatch.ahead_limit(seat.average) - len(seat.outstanding)
        assert room >= min(dispatch.min_batch(seat.average), free, seat.budget, left)
        left -= room


def test_short_tasks_fill_few_workers_instead_of_one_task_to_each():
    fast = [FakeSeat(average=0.0) for _ in range(1000)]
    most = dispatch.MAX_AHEAD
    plan = dispatch.allot(3 * most + 100, fast)
    assert [room for _, room in plan] == [most, most, most, 100]
    slow = [FakeSeat(average=0.01) for _ in range(10)]  # 10 ms tasks: one a worker, spread out
    assert [room for _, room in dispatch.allot(10, slow)] == [1] * 10
    fresh = [FakeSeat() for _ in range(10)]  # speed unknown: one each
    assert [room for _, room in dispatch.allot(5, fresh)] == [1] * 5


@given(seats=seats_strategy, idle=st.integers(0, 5))
def test_steal_asks_only_for_tasks_worth_a_frame(seats, idle):
    victims = [seat for seat in seats if dispatch.victim(seat)]
    plan = dispatch.plan_steal(victims, idle)
    assert plan == dispatch.plan_steal(seats, idle)  # the seats that are no victim never matter
    for seat, ids in plan:
        assert len(seat.outstanding) - 1 >= dispatch.min_batch(seat.average)
        assert ids == list(seat.outstanding)[-len(ids):]  # the last ones, which run last


def test_a_worker_with_few_short_tasks_left_is_not_stolen_from():
    busy = FakeSeat({i: FakeTask(i) for i in range(10)}, average=1e-4)  # 9 spare, 50 worth a frame
    assert dispatch.plan_steal([busy], 1) == []
    busy.average = 0.01
    assert dispatch.plan_steal([busy], 1) == [(busy, [5, 6, 7, 8, 9])]


def test_next_average_is_an_exponential_mean():
    assert dispatch.next_average(None, 2.0) == 2.0
    assert dispatch.next_average(2.0, 4.0) == 3.0


# ---------------------------------------------------------------------- crash recovery
held_strategy = st.lists(st.builds(FakeTask, st.integers(0, 10**6), st.integers(0, 6), st.booleans()),
                         max_size=8, unique_by=lambda task: task.id)


@given(held=held_strategy, marked=st.one_of(st.none(), st.integers(0, 10**6)), crashes_max=st.integers(0, 5))
def test_a_crash_charges_only_the_task_that_was_running(held, marked, crashes_max):
    plan = recover(held, marked, crashed=True, crashes_max=crashes_max)
    running = next((task for task in held if task.id == marked), None)
    if running is not None:
        assert plan.culprit is running
    elif len(held) == 1:
        assert plan.culprit is held[0]  # held nothing else: it was running
    else:
        assert plan.culprit is None and plan.suspects == held  # unknown: each runs alone next
    # every task held has exactly one fate
    fates = plan.requeue + plan.suspects + ([plan.culprit] if plan.exhausted else [])
    assert sorted(id(t) for t in fates) == sorted(id(t) for t in held)
    if plan.culprit is not None:
        assert plan.exhausted == (plan.culprit.crashes + 1 > crashes_max)
        assert (plan.culprit in plan.requeue) != plan.exhausted
        if not plan.exhausted:
            assert plan.requeue[0] is plan.culprit  # it retries first


@given(held=held_strategy)
def test_a_peaceful_departure_charges_nobody(held):
    plan = recover(held, None, crashed=False, crashes_max=0)
    assert plan.culprit is None and not plan.exhausted
    assert plan.requeue + plan.suspects == [t for t in held if not t.suspect] + [t for t in held if t.suspect]


def test_recover_changes_nothing():
    task = FakeTask(1, crashes=2)
    recover([task], 1, crashed=True, crashes_max=5)
    assert task.crashes == 2 and not task.suspect


# ---------------------------------------------------------------------- scaling
@given(workers=st.integers(1, 100), unresolved=st.integers(0, 10**6), active=st.integers(0, 100))
def test_demand_never_exceeds_the_workers_allowed(workers, unresolved, active):
    want = scaling.demand(workers, unresolved, active)
    assert 0 <= want
    assert active + want <= max(workers, active)
    assert want <= unresolved
    if active < workers and unresolved > active:
        assert want >= 1


@given(interval=st.floats(0.01, 100.0), failed=st.integers(0, 10**6))
def test_backoff_grows_and_is_bounded(interval, failed):
    wait = scaling.backoff(interval, failed)
    assert interval <= wait <= max(interval, 60.0)
    assert scaling.backoff(interval, failed + 1) >= wait


@settings(max_examples=50)
@given(before=st.integers(0, 100), more=st.integers(0, 20))
def test_a_launch_error_is_reported_once_per_five_failures(before, more):
    crossed = (before + more) // scaling.LAUNCH_FAILURES_MAX - before // scaling.LAUNCH_FAILURES_MAX
    assert scaling.report_due(before, before + more) == (crossed > 0)


@pytest.mark.parametrize(("state", "queued", "launched", "ended", "now", "due"), [
    ("launching", False, 0.0, None, 10.0, False),
    ("launching", False, 0.0, None, 61.0, True),
    ("launching", True, 0.0, None, 1e6, False),  # the platform still queues it
    ("launching", True, 0.0, "exit code 1", 1.0, True),  # it ended: failed at once
    ("connected", False, 0.0, "exit code 1", 1e6, False),
])
def test_overdue(state, queued, launched, ended, now, due):
    assert scaling.overdue(state, queued, launched, ended, now, 60.0) is due


def test_wanted():
    assert scaling.wanted(workers=2, unresolved=5, connected=1)
    assert not scaling.wanted(workers=2, unresolved=5, connected=2)
    assert not scaling.wanted(workers=4, unresolved=1, connected=1)
