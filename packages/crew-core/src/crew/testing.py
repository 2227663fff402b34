"""A conformance kit for launcher plugins: the checks every crew launcher must pass.

Use it from a plugin's tests with a few lines::

    import crew.testing
    from crew_mine import mine_controller

    class TestMine(crew.testing.ControllerSuite):
        def make_controller(self, **options):
            return mine_controller(queue="test", **options)

pytest then runs the informal test, the load test, terminate-leaves-nothing, crash retry and the
bad-option checks against the plugin's own controller helper. :func:`informal_test` and
:func:`load_test` are also usable alone (the docs' plugin guide shows them).
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterable
from typing import Any, Callable

import psutil

from ._controller import Controller
from .errors import SettingError
from .results import Result

__all__ = ["ControllerSuite", "informal_test", "load_test", "where", "eventually", "pids_alive"]


def where() -> dict[str, Any]:
    """A task that reports where it ran: host, IP address, pid and the scheduler's job variables."""
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        address = None
    names = ("SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "JOB_ID", "SGE_TASK_ID", "LSB_JOBID", "LSB_JOBINDEX",
             "PBS_JOBID", "PBS_ARRAY_INDEX", "PBS_ARRAYID", "AWS_BATCH_JOB_ID", "AWS_BATCH_JOB_ARRAY_INDEX")
    return {
        "host": socket.gethostname(),
        "ip": address,
        "pid": os.getpid(),
        "environment": {name: os.environ[name] for name in names if name in os.environ},
    }


def eventually(predicate: Callable[[], Any], seconds: float = 30.0, interval: float = 0.1) -> Any:
    """Poll an outside system (a scheduler, the process table) until ``predicate()`` is truthy.

    For checking what lies outside crew, which sends no event; raises AssertionError on timeout.
    """
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds:g} s: {predicate}")
        time.sleep(interval)


def pids_alive(pids: Iterable[int]) -> list[int]:
    """The pids among ``pids`` whose process still runs (zombies count as ended)."""
    alive: list[int] = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def informal_test(controller: Controller, seconds_timeout: float = 120.0) -> Result:
    """Push one task that reports where it ran, wait, pop, and check the worker is the one the
    launcher started. Returns the task's result."""
    controller.start()
    controller.push(where, name="informal_test")
    assert controller.wait(seconds_timeout=seconds_timeout), "the task did not finish in time"
    result = controller.pop()
    assert result is not None and result.status == "success", result
    assert result.result["pid"] == result.pid, (result.result, result.pid)
    launched = [i for i in controller.launcher.instances if i.pid == result.pid]
    assert launched, f"pid {result.pid} is not among the launcher's instances {controller.launcher.instances}"
    return result


def load_test(controller: Controller, seconds_timeout: float = 300.0) -> list[Result]:
    """Push 100 tasks, wait for all, push 100 more, wait, collect: the results are exactly 1..200."""
    controller.start()
    for index in range(1, 101):
        controller.push("index", data={"index": index}, name=f"load_{index}")
    assert controller.wait(mode="all", seconds_timeout=seconds_timeout), "first 100 tasks did not finish"
    for index in range(101, 201):
        controller.push("index", data={"index": index}, name=f"load_{index}")
    assert controller.wait(mode="all", seconds_timeout=seconds_timeout), "second 100 tasks did not finish"
    results: list[Result] = controller.collect()
    assert all(result.status == "success" for result in results), [r for r in results if r.status != "success"][:3]
    assert sorted(result.result for result in results) == list(range(1, 201))
    summary = controller.summary()
    assert sum(row["tasks"] for row in summary) >= 200, summary
    return results


def _crash_once(marker: str, seconds: float) -> int:
    """First run: record its pid in ``marker`` and hang (to be killed); later runs return the pid."""
    if os.path.exists(marker):
        return os.getpid()
    with open(marker + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(marker + ".tmp", marker)
    time.sleep(seconds)
    return -1


def _hang(marker: str, seconds: float) -> None:
    with open(marker + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(marker + ".tmp", marker)
    time.sleep(seconds)


class ControllerSuite:
    """Conformance tests for a launcher plugin. Subclass it in a ``Test*`` class.

    Implement :meth:`make_controller`; override :meth:`kill_worker`, :meth:`remaining_workers`
    or :meth:`scratch_directory` where the platform needs it.
    """

    seconds_timeout: float = 120.0
    """How long one step may take on the platform (a cluster queue is slower than a laptop)."""

    def make_controller(self, **options: Any) -> Controller:
        """A new, unstarted controller from the plugin's helper, with ``options`` passed on."""
        raise NotImplementedError

    def kill_worker(self, pid: int) -> None:
        """Kill the worker process with this pid as a crash would (default: SIGKILL)."""
        os.kill(pid, signal.SIGKILL)

    def remaining_workers(self, controller: Controller, pids: list[int]) -> list[Any]:
        """What still runs of the controller's workers after ``terminate()`` (default: live pids)."""
        return pids_alive(pids)

    def scratch_directory(self) -> str:
        """A folder both the test and the workers can read and write (under ``./.crew/suite``,
        since cluster workers share the working directory, not /tmp)."""
        parent = os.path.join(os.getcwd(), ".crew", "suite")
        os.makedirs(parent, exist_ok=True)
        return tempfile.mkdtemp(prefix="crew-suite-", dir=parent)

    # ------------------------------------------------------------------ the checks
    def test_informal(self) -> None:
        controller = self.make_controller(workers=1)
        try:
            result = informal_test(controller, self.seconds_timeout)
        finally:
            controller.terminate()
        self._assert_gone(controller, [result.pid])

    def test_load(self) -> None:
        controller = self.make_controller(workers=2, seconds_idle=2)
        try:
            results = load_test(controller, self.seconds_timeout * 2)
        finally:
            controller.terminate()
        self._assert_gone(controller, {result.pid for result in results})

    def test_terminate_leaves_nothing(self) -> None:
        controller = self.make_controller(workers=2)
        marker = os.path.join(self.scratch_directory(), "hang")
        try:
            controller.start()
            controller.push(_hang, args=(marker, 600), name="hang")
            pid = int(eventually(lambda: os.path.exists(marker) and open(marker).read(), self.seconds_timeout))
        finally:
            controller.terminate()
        self._assert_gone(controller, [pid])
        result = controller.pop()
        assert result is not None and result.name == "hang" and result.status == "cancel", result

    def test_crash_retry(self) -> None:
        controller = self.make_controller(workers=1, crashes_max=2)
        marker = os.path.join(self.scratch_directory(), "crash")
        try:
            controller.start()
            controller.push(_crash_once, args=(marker, 600), name="crashy")
            pid = int(eventually(lambda: os.path.exists(marker) and open(marker).read(), self.seconds_timeout))
            self.kill_worker(pid)
            assert controller.wait(seconds_timeout=self.seconds_timeout * 2)
            result = controller.pop()
        finally:
            controller.terminate()
        assert result is not None and result.status == "success", result
        assert result.result != pid and result.result > 0
        assert sum(row["crashes"] for row in controller.summary()) == 1

    def test_bad_options(self) -> None:
        for name, value in (("workers", 0), ("seconds_idle", -1), ("crashes_max", "many")):
            try:
                self.make_controller(**{name: value})
            except SettingError as error:
                assert name in str(error), error
            else:
                raise AssertionError(f"{name}={value!r} was accepted")

    def _assert_gone(self, controller: Controller, pids: Iterable[int | None]) -> None:
        started: list[int] = [pid for pid in pids if pid]
        eventually(lambda: not self.remaining_workers(controller, started), self.seconds_timeout)
