"""asyncio: ``await controller.push_async(...)``, ``run_in_executor`` and ``wrap_future``, with the
event loop asleep while it waits (no polling)."""

import asyncio
import selectors
import threading

import crew
import pytest
from crew.testing import eventually
from crew_local import local_controller


@pytest.fixture(scope="module")
def controller():
    with local_controller(workers=2) as ctl:
        yield ctl


def _blocking_task():
    """A task that waits (bounded) for a file, built inside a function so workers get it by value."""

    def wait_file(path, seconds=60.0):
        import os
        import time

        deadline = time.monotonic() + seconds
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                return "gave up"
            time.sleep(0.01)
        return "released"

    return wait_file


wait_file = _blocking_task()


class _CountingSelector(selectors.DefaultSelector):
    """Counts how often the event loop asks the operating system for events."""

    calls = 0

    def select(self, timeout=None):
        type(self).calls += 1
        return super().select(timeout)


def _run(coroutine):
    """Run a coroutine on a fresh event loop whose selector counts its wake-ups."""
    _CountingSelector.calls = 0
    loop = asyncio.SelectorEventLoop(_CountingSelector())
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_push_async_returns_the_result(controller):
    result = _run(controller.push_async(pow, args=(2, 10), name="async_pow"))
    assert isinstance(result, crew.Result)
    assert (result.name, result.status, result.result) == ("async_pow", "success", 1024)
    assert controller.pop() is None  # awaited results are not popped again


def test_push_async_string_command_and_error(controller):
    async def both():
        return await asyncio.gather(
            controller.push_async("x * 2", data={"x": 21}),
            controller.push_async("1 / 0"),
        )

    good, bad = _run(both())
    assert good.result == 42
    assert bad.status == "error" and "ZeroDivisionError" in bad.error


def test_gather_many_keeps_order(controller):
    async def many():
        return await asyncio.gather(*(controller.push_async(pow, args=(x, 2)) for x in range(100)))

    assert [result.result for result in _run(many())] == [x * x for x in range(100)]


def test_the_loop_sleeps_while_it_awaits(controller, tmp_path):
    release = tmp_path / "release"

    # Half a second of nothing to do for the loop: a timer thread releases the task.
    timer = threading.Timer(0.5, release.touch)
    timer.start()
    try:
        result = _run(controller.push_async(wait_file, args=(str(release),)))
    finally:
        timer.cancel()
    assert result.result == "released"
    # An event-driven wait wakes the selector a handful of times; a polling one, hundreds.
    assert _CountingSelector.calls < 20, _CountingSelector.calls


def test_cancelling_the_awaiting_task_cancels_the_crew_task(controller, tmp_path):
    async def scenario():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(controller.push_async(wait_file, args=(str(tmp_path / "never"),)), 0.3)

    _run(scenario())
    eventually(lambda: controller.unresolved() == 0, 30)  # cancelled, not left running for 60 s


def test_run_in_executor(controller):
    executor = controller.executor()

    async def scenario():
        loop = asyncio.get_running_loop()
        return await asyncio.gather(*(loop.run_in_executor(executor, pow, x, 3) for x in range(10)))

    assert _run(scenario()) == [x ** 3 for x in range(10)]
    executor.shutdown()


def test_wrap_future_raises_the_remote_exception(controller):
    executor = controller.executor()

    async def scenario():
        return await asyncio.wrap_future(executor.submit(int, "not a number"))

    with pytest.raises(ValueError, match="not a number") as caught:
        _run(scenario())
    assert any("Remote traceback" in note for note in caught.value.__notes__)
    executor.shutdown()


def test_push_async_checks_its_options(controller):
    with pytest.raises(crew.SettingError, match="unknown push options"):
        _run(controller.push_async(pow, args=(1, 1), colour="red"))
