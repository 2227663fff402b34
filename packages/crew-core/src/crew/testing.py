"""A conformance kit for launcher plugins: the checks every crew launcher must pass.

Use it from a plugin's tests with a few lines::

    import crew.testing
    from crew_mine import MineMonitor, mine_controller

    class TestMine(crew.testing.ControllerSuite):
        def make_controller(self, **options):
            return mine_controller(queue="test", **options)

        def make_monitor(self):
            return MineMonitor()

pytest then runs, against the plugin's own controller helper and monitor: the informal test, the
load test (whose workers idle out between its two rounds and are launched again), a round of
:attr:`ControllerSuite.workers_many` workers at once, ``terminate()`` leaving nothing (also while
workers are still launching), crash retry, and the bad-option checks. The kit kills workers and
looks for what is left through the plugin's monitor, never through local process ids, so it works
for workers on other machines. :func:`informal_test` and :func:`load_test` are also usable alone;
the plugin guide (docs/launcher-plugins.md) shows both.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from typing import Any, Callable

import psutil

from ._controller import Controller
from .errors import SettingError
from .monitor import Monitor
from .results import Result

__all__ = ["ControllerSuite", "informal_test", "load_test", "where", "eventually", "pids_alive", "controller_id"]

LIVE_STATES = ("pending", "running")
"""The monitor states of a worker that still exists on the platform."""


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
    """The pids among ``pids`` whose process still runs on this machine (zombies count as ended)."""
    alive: list[int] = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def controller_id(controller: Controller) -> str | None:
    """The id a started controller gives its workers (``--controller`` on their command line), or
    None before it starts."""
    contact = controller.launcher.contact
    return contact.controller_id if contact is not None else None


def informal_test(controller: Controller, seconds_timeout: float = 120.0) -> Result:
    """Push one task that reports where it ran, wait, pop, and check that the worker is one the
    launcher started (its pid is an instance's ``pid``, whatever the launch handle is).
    Returns the task's result."""
    controller.start()
    controller.push(where, name="informal_test")
    assert controller.wait(seconds_timeout=seconds_timeout), "the task did not finish in time"
    result = controller.pop()
    assert result is not None and result.status == "success", result
    assert result.result["pid"] == result.pid, (result.result, result.pid)
    launched = [i for i in controller.launcher.instances if i.pid == result.pid]
    assert launched, f"pid {result.pid} is not among the launcher's instances {controller.launcher.instances}"
    return result


def load_test(controller: Controller, seconds_timeout: float = 300.0, idle_out: bool = True) -> list[Result]:
    """Push 100 tasks, wait for all, push 100 more, wait, collect: the results are exactly 1..200.

    With ``idle_out`` (and a finite ``seconds_idle``), the workers of the first round must idle out
    before the second round, which must then launch workers again.
    """
    controller.start()
    _push_indices(controller, range(1, 101))
    assert controller.wait(mode="all", seconds_timeout=seconds_timeout), "first 100 tasks did not finish"
    launches = _launches(controller)
    idled = idle_out and not math.isinf(controller.launcher.seconds_idle)
    if idled:
        limit = controller.launcher.seconds_idle + seconds_timeout
        _wait_for(lambda: not controller.launcher.instances, limit,
                  lambda: f"the first round's workers did not idle out: {controller.launcher.instances}")
    _push_indices(controller, range(101, 201))
    assert controller.wait(mode="all", seconds_timeout=seconds_timeout), "second 100 tasks did not finish"
    results: list[Result] = controller.collect()
    assert all(result.status == "success" for result in results), [r for r in results if r.status != "success"][:3]
    assert sorted(result.result for result in results) == list(range(1, 201))
    summary = controller.summary()
    assert sum(row["tasks"] for row in summary) >= 200, summary
    if idled:
        assert _launches(controller) > launches, f"no worker was launched again after idling out: {summary}"
    return results


def _push_indices(controller: Controller, indices: Iterable[int]) -> None:
    for index in indices:
        controller.push("index", data={"index": index}, name=f"load_{index}")


def _launches(controller: Controller) -> int:
    return sum(int(row["launches"]) for row in controller.summary())


def _wait_for(predicate: Callable[[], Any], seconds: float, message: Callable[[], str]) -> Any:
    """``eventually``, failing with ``message()`` (made at the end, so it tells the last state)."""
    try:
        return eventually(predicate, seconds)
    except AssertionError:
        raise AssertionError(f"{message()} (waited {seconds:g} s)") from None


def _connected(controller: Controller) -> int:
    return sum(1 for instance in controller.launcher.instances if instance.state == "connected")


def _crash_once(marker: str, seconds: float) -> int:
    """First run: record its pid in ``marker`` and hang (to be killed); later runs return the pid."""
    if os.path.exists(marker):
        return os.getpid()
    _write_pid(marker)
    time.sleep(seconds)
    return -1


def _hang(marker: str, seconds: float) -> None:
    _write_pid(marker)
    time.sleep(seconds)


def _hold(go: str, seconds: float) -> int:
    """Hold the worker until the file ``go`` exists (the test creates it); return the pid."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid()


def _write_pid(marker: str) -> None:
    with open(marker + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(marker + ".tmp", marker)


def _read_pid(marker: str) -> int | None:
    try:
        with open(marker) as handle:
            return int(handle.read())
    except (FileNotFoundError, ValueError):
        return None


class ControllerSuite:
    """Conformance tests for a launcher plugin. Subclass it in a ``Test*`` class.

    Implement :meth:`make_controller` and :meth:`make_monitor`. The kit kills workers and finds
    what is left through the monitor (:meth:`kill_worker`, :meth:`remaining_workers`), so it never
    signals a local process for a worker that runs elsewhere. Override :meth:`owns`,
    :meth:`kill_worker`, :meth:`remaining_workers` or :meth:`scratch_directory` where the platform
    needs it.
    """

    seconds_timeout: float = 120.0
    """How long one step may take on the platform (a cluster queue is slower than a laptop)."""
    workers_many: int = 24
    """How many workers :meth:`test_many_workers` launches in one round. Lower it only to what the
    test platform can run at once."""

    def make_controller(self, **options: Any) -> Controller:
        """A new, unstarted controller from the plugin's helper, with ``options`` passed on."""
        raise NotImplementedError

    def make_monitor(self) -> Monitor:
        """The plugin's monitor, seeing the platform the controllers' workers run on."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_monitor(): the kit finds and kills workers "
            "through the plugin's monitor"
        )

    def owns(self, controller: Controller, row: dict[str, Any]) -> bool | None:
        """Whether the monitor's ``row`` is a worker of ``controller``: True, False, or None when
        the row does not tell (then it counts if it is new since the check began).

        Default: True when the controller's id is in the row's ``name``; for a row whose ``id`` is
        a pid of this machine (``node`` is this host), whether its command line names the
        controller; otherwise None.
        """
        identity = controller_id(controller)
        if identity is None:
            return None
        if identity in str(row.get("name")):
            return True
        if isinstance(row.get("id"), int) and row.get("node") in (socket.gethostname(), os.uname().nodename):
            try:
                return identity in psutil.Process(row["id"]).cmdline()
            except psutil.Error:
                return False
        return None

    def controller_workers(self, controller: Controller) -> list[Any]:
        """The monitor's ids of every pending or running worker of ``controller``, including
        launches that never dialled in."""
        baseline = getattr(self, "_baselines", {}).get(id(controller), set())
        found = []
        for row in self.make_monitor().jobs():
            if row["state"] not in LIVE_STATES:
                continue
            owned = self.owns(controller, row)
            if owned or (owned is None and row["id"] not in baseline):
                found.append(row["id"])
        return found

    def kill_worker(self, controller: Controller, pid: int) -> None:
        """Kill the worker that runs with ``pid`` as a crash would, through the monitor: its row
        whose id is ``pid`` (or ends in ``/pid``), else the controller's only live worker."""
        ids = self.controller_workers(controller)
        chosen = [i for i in ids if i == pid or str(i).rsplit("/", 1)[-1] == str(pid)]
        if not chosen and len(ids) == 1:
            chosen = ids
        assert chosen, f"the monitor lists no worker of the controller with pid {pid} (it lists {ids})"
        self.make_monitor().terminate(chosen)

    def remaining_workers(self, controller: Controller, pids: list[int]) -> list[Any]:
        """What is left of the controller's workers after ``terminate()``. Default: every pending
        or running worker of the controller the monitor lists (``pids``, those that ran tasks, are
        for overrides)."""
        return self.controller_workers(controller)

    def scratch_directory(self) -> str:
        """A folder both the test and the workers can read and write (under ``./.crew/suite``,
        since cluster workers share the working directory, not /tmp); removed after the test,
        with ``.crew/suite`` and ``.crew`` when nothing else is left in them."""
        parent = os.path.join(os.getcwd(), ".crew", "suite")
        os.makedirs(parent, exist_ok=True)
        folder = tempfile.mkdtemp(prefix="crew-suite-", dir=parent)
        self.__dict__.setdefault("_scratch_made", []).append(folder)
        return folder

    def teardown_method(self, method: Any = None) -> None:
        """pytest calls it after each test: remove the folders :meth:`scratch_directory` made."""
        for folder in self.__dict__.pop("_scratch_made", []):
            shutil.rmtree(folder, ignore_errors=True)
            for parent in (os.path.dirname(folder), os.path.dirname(os.path.dirname(folder))):
                try:
                    os.rmdir(parent)  # only when empty
                except OSError:
                    break

    def controller(self, **options: Any) -> Controller:
        """:meth:`make_controller`, noting which workers the monitor lists before it starts."""
        made = self.make_controller(**options)
        baselines = self.__dict__.setdefault("_baselines", {})
        baselines[id(made)] = {row["id"] for row in self.make_monitor().jobs() if row["state"] in LIVE_STATES}
        return made

    # ------------------------------------------------------------------ the checks
    def test_informal(self) -> None:
        controller = self.controller(workers=1)
        try:
            result = informal_test(controller, self.seconds_timeout)
        finally:
            controller.terminate()
        self._assert_gone(controller, [result.pid])

    def test_load(self) -> None:
        controller = self.controller(workers=2, seconds_idle=2)
        try:
            results = load_test(controller, self.seconds_timeout * 2)
        finally:
            controller.terminate()
        self._assert_gone(controller, {result.pid for result in results})

    def test_many_workers(self) -> None:
        """:attr:`workers_many` workers launched in one round all dial in and run a task each."""
        n = self.workers_many
        controller = self.controller(workers=n)
        go = os.path.join(self.scratch_directory(), "go")
        try:
            controller.start()
            for index in range(n):
                controller.push(_hold, args=(go, 600), name=f"many_{index}")
            _wait_for(lambda: _connected(controller) >= n, self.seconds_timeout * 2,
                      lambda: f"not all {n} workers of one round dialled in ({_connected(controller)} did)")
            open(go, "w").close()
            assert controller.wait(mode="all", seconds_timeout=self.seconds_timeout), "the held tasks did not finish"
            results = controller.collect()
        finally:
            controller.terminate()
        assert [r for r in results if r.status != "success"] == [], results
        self._assert_gone(controller, {result.pid for result in results if result.pid})

    def test_terminate_leaves_nothing(self) -> None:
        controller = self.controller(workers=2)
        marker = os.path.join(self.scratch_directory(), "hang")
        try:
            controller.start()
            controller.push(_hang, args=(marker, 600), name="hang")
            pid = int(eventually(lambda: _read_pid(marker), self.seconds_timeout))
        finally:
            controller.terminate()
        self._assert_gone(controller, [pid])
        result = controller.pop()
        assert result is not None and result.name == "hang" and result.status == "cancel", result

    def test_terminate_while_launching(self) -> None:
        """``terminate()`` right after a launch, before the workers dial in, leaves none of them
        (they would otherwise retry for ``seconds_timeout``, longer than this check waits)."""
        controller = self.controller(workers=4, seconds_timeout=self.seconds_timeout * 4)
        try:
            controller.start()
            for index in range(4):
                controller.push("index", data={"index": index}, name=f"early_{index}")
            eventually(lambda: any(i.handle is not None for i in controller.launcher.instances),
                       self.seconds_timeout, interval=0.005)
        finally:
            controller.terminate()
        self._assert_gone(controller, [])

    def test_crash_retry(self) -> None:
        controller = self.controller(workers=1, crashes_max=2)
        marker = os.path.join(self.scratch_directory(), "crash")
        try:
            controller.start()
            controller.push(_crash_once, args=(marker, 600), name="crashy")
            pid = int(eventually(lambda: _read_pid(marker), self.seconds_timeout))
            self.kill_worker(controller, pid)
            assert controller.wait(seconds_timeout=self.seconds_timeout * 2), "the task was not retried after a crash"
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
        _wait_for(lambda: not self.remaining_workers(controller, started), self.seconds_timeout,
                  lambda: f"workers outlived terminate(): {self.remaining_workers(controller, started)}")
