"""controller.executor(): a concurrent.futures.Executor, checked the way CPython checks its own
executors (submit, map ordering and errors, timeouts, chunks, cancel, shutdown, wait, as_completed,
stale references), plus crew's own statuses (timeout, crash, cancel by the controller).
CPython's own tests run against it in test_executor_contract.py."""

import concurrent.futures as cf
import gc
import operator
import os
import threading
import types
import weakref

import crew
import pytest
from crew.executor import Executor
from crew.testing import eventually
from crew_local import local_controller


def _tasks():
    """Task functions defined inside a function, so the workers get them by value (this test
    module is not importable in a worker)."""
    import time as _time

    def wait_file(path, started=None, value="released"):
        """Mark ``started``, then wait (bounded) until the test creates ``path``."""
        if started:
            open(started, "w").close()
        deadline = _time.monotonic() + 60
        while not os.path.exists(path):
            if _time.monotonic() > deadline:
                raise TimeoutError(path)
            _time.sleep(0.01)
        return value

    def touch(path):
        open(path, "w").close()
        return path

    def reciprocal(x):
        return 1 / x

    def crash():
        os._exit(3)

    def shuffled(x):
        """Later inputs finish first."""
        _time.sleep(0.002 * (10 - x))
        return x * x

    return types.SimpleNamespace(**{name: value for name, value in locals().items() if callable(value)})


T = _tasks()


@pytest.fixture(scope="module")
def controller():
    with local_controller(workers=2) as ctl:  # terminated on leaving
        yield ctl


@pytest.fixture
def single():
    """A controller with one worker, for tests that need to know where tasks go."""
    with local_controller(workers=1) as ctl:
        yield ctl


@pytest.fixture
def pool(controller):
    executor = controller.executor()
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- submit and map
def test_executor_is_a_concurrent_futures_executor(pool, controller):
    assert isinstance(pool, cf.Executor) and isinstance(pool, Executor)
    assert pool.controller is controller


def test_submit_returns_a_real_future(pool):
    future = pool.submit(pow, 2, 8)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=30) == 256
    assert future.done() and not future.cancelled() and future.exception() is None
    assert future.name.startswith("task_")


def test_submit_keyword(pool):
    future = pool.submit(operator.mul, 2, 8)
    assert future.result(timeout=30) == 16
    future = pool.submit(int, "ff", base=16)
    assert future.result(timeout=30) == 255


def test_map_keeps_the_input_order(pool):
    assert list(pool.map(T.shuffled, range(10), timeout=60)) == [x * x for x in range(10)]
    assert list(pool.map(pow, range(10), range(10))) == list(map(pow, range(10), range(10)))


def test_map_of_nothing(pool):
    assert list(pool.map(pow, [], [])) == []


@pytest.mark.parametrize("chunksize", [1, 3, 7, 200])
def test_map_chunksize(pool, chunksize):
    assert list(pool.map(pow, range(40), [2] * 40, chunksize=chunksize)) == [x ** 2 for x in range(40)]


@pytest.mark.parametrize("chunksize", [2, 5, 200])
def test_map_chunksize_one_iterable(pool, chunksize):
    """One iterable: each chunk's values travel bare; a value that is a tuple stays one argument."""
    values = [(1, 2), (3,), (), (4, 5, 6)] * 3
    assert list(pool.map(len, values, chunksize=chunksize)) == [len(value) for value in values]
    assert list(pool.map(abs, (x for x in range(-9, 9)), chunksize=chunksize)) == [abs(x) for x in range(-9, 9)]


def test_map_chunksize_must_be_positive(pool):
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(pow, range(3), range(3), chunksize=0)


def test_map_reraises_the_task_exception_with_the_remote_traceback(pool):
    values = pool.map(T.reciprocal, [1, 0, 2])
    assert next(values) == 1.0
    with pytest.raises(ZeroDivisionError) as caught:
        next(values)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "Remote traceback" in notes and "reciprocal" in notes


def test_map_timeout_raises_and_cancels_the_rest(single, tmp_path):
    pool = single.executor()
    release = tmp_path / "release"
    values = pool.map(T.wait_file, [str(release)] * 3, timeout=0.3)
    with pytest.raises(TimeoutError):
        next(values)
    release.touch()
    pool.shutdown(wait=True)
    assert single.unresolved() == 0


def test_submit_exception_keeps_its_type_and_traceback(pool):
    future = pool.submit(T.reciprocal, 0)
    error = future.exception(timeout=30)
    assert isinstance(error, ZeroDivisionError)
    assert any("reciprocal" in note for note in error.__notes__)
    with pytest.raises(ZeroDivisionError):
        future.result()


def test_results_do_not_come_out_of_pop(controller, pool):
    controller.push("40 + 2", name="pushed")
    assert pool.submit(pow, 3, 2).result(timeout=30) == 9
    assert controller.wait(seconds_timeout=30)
    assert [result.name for result in controller.collect()] == ["pushed"]


def test_done_callbacks_run_outside_the_controller_threads(pool):
    seen = []
    done = threading.Event()
    future = pool.submit(pow, 2, 2)
    future.add_done_callback(lambda f: (seen.append(threading.current_thread().name), done.set()))
    assert done.wait(30)
    assert not seen[0].startswith(("crew-loop", "crew-receive", "crew-scale")), seen


def test_submit_from_many_threads(pool):
    with cf.ThreadPoolExecutor(8) as threads:
        futures = list(threads.map(lambda x: pool.submit(pow, x, 2), range(200)))
    assert [future.result(timeout=60) for future in futures] == [x * x for x in range(200)]


def test_no_stale_references(pool):
    collected = threading.Event()
    future = pool.submit(pow, 2, 3)
    assert future.result(timeout=30) == 8
    reference = weakref.ref(future, lambda _: collected.set())
    del future
    gc.collect()
    assert collected.wait(30), reference()


# ---------------------------------------------------------------------- wait and as_completed
def test_wait_first_completed_and_all_completed(controller, tmp_path):
    pool = controller.executor()  # two workers: the fast call need not wait for the slow one
    release = tmp_path / "release"
    slow = pool.submit(T.wait_file, str(release))
    fast = pool.submit(pow, 2, 5)
    done, not_done = cf.wait([slow, fast], timeout=30, return_when=cf.FIRST_COMPLETED)
    assert done == {fast} and not_done == {slow}
    release.touch()
    done, not_done = cf.wait([slow, fast], timeout=30, return_when=cf.ALL_COMPLETED)
    assert done == {slow, fast} and not not_done
    pool.shutdown()


def test_wait_first_exception(pool):
    futures = [pool.submit(T.reciprocal, x) for x in (1, 0)]
    done, _ = cf.wait(futures, timeout=30, return_when=cf.FIRST_EXCEPTION)
    assert futures[1] in done


def test_as_completed_yields_every_future_once(pool):
    futures = [pool.submit(pow, x, 2) for x in range(20)]
    futures.append(futures[0])  # a duplicate is yielded once
    finished = list(cf.as_completed(futures, timeout=60))
    assert len(finished) == 20 and set(finished) == set(futures)


def test_as_completed_and_wait_see_a_cancelled_future_at_once(single, tmp_path):
    pool = single.executor()
    release = tmp_path / "release"
    blocker = pool.submit(T.wait_file, str(release))
    queued = pool.submit(pow, 2, 2)
    assert queued.cancel() and queued.cancelled()
    done, _ = cf.wait([queued], timeout=0)
    assert done == {queued}
    assert next(cf.as_completed([queued], timeout=0)) is queued
    with pytest.raises(cf.CancelledError):
        queued.result()
    release.touch()
    assert blocker.result(timeout=30) == "released"
    pool.shutdown()


# ---------------------------------------------------------------------- cancel
def _outstanding_names(controller):
    try:
        return {task.name for seat in list(controller._board.seats.values()) for task in list(seat.outstanding.values())}
    except RuntimeError:  # changed while read; ask again
        return set()


def test_cancel_a_task_sent_ahead_to_a_worker_but_not_started(single, tmp_path):
    pool = single.executor()
    list(pool.map(pow, range(50), range(50)))  # the worker is fast: tasks are now sent ahead
    release, started, ran = tmp_path / "release", tmp_path / "started", tmp_path / "ran"
    blocker = pool.submit(T.wait_file, str(release), str(started))
    victim = pool.submit(T.touch, str(ran))
    eventually(started.exists, 30)
    eventually(lambda: victim.name in _outstanding_names(single), 30)
    assert victim.cancel() is True
    assert victim.cancelled() and victim.done()
    assert cf.wait([victim], timeout=0).done == {victim}
    eventually(lambda: single.unresolved() == 1, 30)  # the worker gave the task back, cancelled
    release.touch()
    assert blocker.result(timeout=30) == "released"  # the running task was not disturbed
    pool.shutdown(wait=True)
    assert not ran.exists()


def test_cancel_a_finished_future_fails(pool):
    future = pool.submit(pow, 2, 2)
    future.result(timeout=30)
    assert future.cancel() is False and not future.cancelled()


def test_cancel_twice(single, tmp_path):
    pool = single.executor()
    release = tmp_path / "release"
    pool.submit(T.wait_file, str(release))
    queued = pool.submit(pow, 1, 1)
    assert queued.cancel() and queued.cancel()
    release.touch()
    pool.shutdown(wait=True)


def test_leaving_map_early_cancels_the_calls_not_started(single, tmp_path):
    pool = single.executor()
    release, second, started = tmp_path / "release", tmp_path / "second", tmp_path / "started"
    never = [str(tmp_path / "never")] * 4
    values = pool.map(T.wait_file, [str(release), str(second), *never], [None, str(started), *never])
    release.touch()
    assert next(values) == "released"
    eventually(started.exists, 30)  # the second call runs: it is left to finish, as in the standard
    values.close()
    second.touch()
    pool.shutdown(wait=True)  # would hang if the four calls not started were not cancelled
    assert single.unresolved() == 0
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------------- shutdown
def test_no_submit_after_shutdown(controller):
    pool = controller.executor()
    pool.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(pow, 2, 2)
    pool.shutdown()  # twice is fine


def test_context_manager_waits_for_every_future(controller):
    with controller.executor() as pool:
        futures = [pool.submit(T.shuffled, x) for x in range(10)]
    assert all(future.done() for future in futures)
    assert [future.result() for future in futures] == [x * x for x in range(10)]


def test_shutdown_cancel_futures(single, tmp_path):
    pool = single.executor()
    ran = [tmp_path / f"ran-{index}" for index in range(20)]
    release = tmp_path / "release"
    first = pool.submit(T.wait_file, str(release), str(tmp_path / "started"))
    futures = [pool.submit(T.touch, str(path)) for path in ran]
    eventually(first.running, 30)
    pool.shutdown(wait=False, cancel_futures=True)  # the running call is left to finish
    assert all(future.cancelled() for future in futures) and not first.cancelled()
    release.touch()
    pool.shutdown(wait=True)
    assert first.result() == "released"
    assert not any(path.exists() for path in ran)
    assert single.unresolved() == 0


def test_shutdown_without_wait_still_delivers(single):
    pool = single.executor()
    futures = [pool.submit(pow, x, 3) for x in range(5)]
    pool.shutdown(wait=False)
    assert [future.result(timeout=30) for future in futures] == [x ** 3 for x in range(5)]


def test_terminate_option_ends_the_controller():
    ctl = local_controller(workers=1)
    try:
        with ctl.executor(terminate=True) as pool:
            assert pool.submit(pow, 2, 2).result(timeout=30) == 4
        with pytest.raises(crew.CrewError, match="terminated"):
            ctl.push("1")
    finally:
        ctl.terminate()


# ---------------------------------------------------------------------- crew's own statuses
def test_timeout_raises_task_error():
    ctl = local_controller(workers=1)
    try:
        pool = ctl.executor(seconds_timeout=0.2)
        future = pool.submit(T.wait_file, "/nonexistent/never")
        error = future.exception(timeout=30)
        assert isinstance(error, crew.TaskError) and error.result.status == "timeout"
        pool.shutdown()
    finally:
        ctl.terminate()


def test_crash_raises_task_error():
    ctl = local_controller(workers=1, crashes_max=0)
    try:
        with ctl.executor() as pool:
            error = pool.submit(T.crash).exception(timeout=60)
        assert isinstance(error, crew.TaskError) and error.result.status == "crash"
    finally:
        ctl.terminate()


def test_cancel_by_the_controller_raises_task_error(single, tmp_path):
    pool = single.executor()
    started = tmp_path / "started"
    future = pool.submit(T.wait_file, str(tmp_path / "never"), str(started))
    eventually(started.exists, 30)
    single.cancel(all=True)
    error = future.exception(timeout=30)
    assert isinstance(error, crew.TaskError) and error.result.status == "cancel"
    assert not future.cancelled()
    pool.shutdown()


def test_terminating_the_controller_resolves_every_future(tmp_path):
    ctl = local_controller(workers=1)
    pool = ctl.executor()
    started = tmp_path / "started"
    future = pool.submit(T.wait_file, str(tmp_path / "never"), str(started))
    eventually(started.exists, 30)
    ctl.terminate()
    assert isinstance(future.exception(timeout=30), crew.TaskError)
    pool.shutdown(wait=True)


def test_bad_options(controller):
    with pytest.raises(crew.SettingError, match="seconds_timeout"):
        controller.executor(seconds_timeout=-1)
    with pytest.raises(crew.SettingError, match="controller"):
        Executor("not a controller")
    with pytest.raises(crew.SettingError, match="terminate"):
        controller.executor(terminate="yes")
