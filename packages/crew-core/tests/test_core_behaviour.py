"""How a controller behaves with real workers, against two launchers.

``custom``: :class:`ProcessLauncher`, defined here (workers are child processes started with
subprocess), as a plugin author would write it; ``local``: crew-local's ``local_controller``.

Tasks are closures or strings: cloudpickle ships closures by value, because the workers cannot
import this test module. Each closure imports what it uses.
"""

from __future__ import annotations

import collections
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import warnings

import crew
import crew.testing
import psutil
import pytest
from crew.testing import eventually, pids_alive
from crew_local import LocalLauncher, LocalMonitor, local_controller

SECONDS = 30  # the most any one step may take


# ============================================================================ the custom launcher
class ProcessLauncher(crew.Launcher):
    """Workers as child processes of this one, started with subprocess.

    Takes the arguments of :class:`crew.Launcher`. ``rounds`` records ``n`` of every
    ``launch_workers`` call.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.rounds: list[int] = []

    def launch_workers(self, call: str, n: int) -> list[subprocess.Popen]:
        self.rounds.append(n)
        return super().launch_workers(call, n)

    def launch_worker(self, call: str) -> subprocess.Popen:
        return subprocess.Popen(
            shlex.split(call),
            env={**os.environ, **self.environment},  # the secret: in the environment, not the call
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def terminate_worker(self, handle: subprocess.Popen) -> None:
        if handle.poll() is None:
            handle.terminate()
            try:
                handle.wait(timeout=10)
            except subprocess.TimeoutExpired:
                handle.kill()
                handle.wait()

    def exit_status(self, handle: subprocess.Popen, timeout: float = 0.0) -> str | None:
        try:
            code = handle.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def build_controller(launcher_class: type[crew.Launcher] = ProcessLauncher, **options) -> crew.Controller:
    """A validated controller over ``launcher_class`` (workers here: on 127.0.0.1 by default)."""
    return crew.build_controller(launcher_class, **{"host": "127.0.0.1", **options})


class FirstLaunchDud:
    """Mixin for a launcher: its first launch starts a process that never dials in."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.duds: list[int] = []

    def launch_worker(self, call):
        if not self.duds:
            handle = super().launch_worker(shlex.join([sys.executable, "-c", "import time; time.sleep(600)"]))
            self.duds.append(handle.pid)
            return handle
        return super().launch_worker(call)


class DudProcessLauncher(FirstLaunchDud, ProcessLauncher):
    pass


class DudLocalLauncher(FirstLaunchDud, LocalLauncher):
    pass


# ============================================================================ fixtures and helpers
def worker_processes(controller: crew.Controller) -> list[psutil.Process]:
    """The live worker processes of ``controller`` among this process's descendants."""
    try:
        words = shlex.split(controller.launcher.call())
    except crew.CrewError:  # never started: no worker
        return []
    tag = words[words.index("--controller") + 1]
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if tag in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def finish(controller: crew.Controller) -> None:
    """Terminate ``controller``; assert none of its workers is left (killing any by pid)."""
    controller.terminate()
    strays = list(getattr(controller.launcher, "duds", []))
    try:
        eventually(lambda: not worker_processes(controller) and not pids_alive(strays), SECONDS)
    finally:
        for process in worker_processes(controller):
            process.kill()
        for pid in pids_alive(strays):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(params=["custom", "local"])
def kind(request) -> str:
    return request.param


@pytest.fixture
def make(kind):
    """Make controllers of this test's kind; every one is terminated and checked afterwards."""
    made = []

    def make(dud_first_launch: bool = False, **options) -> crew.Controller:
        if kind == "custom":
            controller = build_controller(DudProcessLauncher if dud_first_launch else ProcessLauncher, **options)
        elif dud_first_launch:
            controller = build_controller(DudLocalLauncher, **options)
        else:
            controller = local_controller(**options)
        made.append(controller)
        return controller

    yield make
    for controller in made:
        finish(controller)


def run(controller: crew.Controller, command, **options) -> crew.Result:
    """Push one task, wait for it, and pop its result."""
    name = controller.push(command, **options)
    assert controller.wait(seconds_timeout=SECONDS), f"task {name} did not finish"
    result = controller.pop()
    assert result is not None and result.name == name, result
    return result


def results_by_name(controller: crew.Controller) -> dict[str, crew.Result]:
    assert controller.wait(seconds_timeout=SECONDS), "tasks did not finish"
    return {result.name: result for result in controller.collect()}


def launches(controller: crew.Controller) -> int:
    return sum(row["launches"] for row in controller.summary())


def hang_task(marker: str):
    """A task that writes its worker's pid to ``marker`` and then runs for ten minutes.

    It writes the marker after 50 ms, by when its worker has told the controller which task it
    runs (a worker reports any task running over a millisecond), so a crash is charged exactly.
    """

    def hang():
        import os
        import time

        time.sleep(0.05)
        with open(marker + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(marker + ".tmp", marker)
        time.sleep(600)

    return hang


def crash_once_task(marker: str):
    """Like :func:`hang_task` the first time; afterwards it returns its worker's pid at once."""
    hang = hang_task(marker)

    def crash_once():
        import os

        if os.path.exists(marker):
            return os.getpid()
        return hang()

    return crash_once


def touch_task(path: str):
    """A task that creates ``path``: proof that it ran."""

    def touch():
        open(path, "w").close()

    return touch


def started(marker: str) -> int:
    """The pid a :func:`hang_task` wrote once it started."""
    return int(eventually(lambda: os.path.exists(marker) and open(marker).read(), SECONDS))


# ============================================================================ auto-scaling
def test_start_launches_no_worker_and_one_task_launches_one(make):
    controller = make(workers=3)
    controller.start()
    assert controller.launcher.instances == [] and launches(controller) == 0
    result = run(controller, os.getpid)
    assert result.status == "success" and result.result == result.pid
    assert launches(controller) == 1
    assert [instance.pid for instance in controller.launcher.instances] == [result.pid]


def test_push_without_scaling_then_scale_launches_one_round(make):
    controller = make(workers=2)
    names = [controller.push(os.getpid, scale=False) for _ in range(5)]
    assert controller.wait(seconds_timeout=0.5, scale=False) is False  # no worker: nothing runs
    assert controller.launcher.instances == []
    assert controller.scale() == 2  # a backlog of 5 launches `workers` workers, in one round
    assert len({instance.launch for instance in controller.launcher.instances}) == 1
    if isinstance(controller.launcher, ProcessLauncher):
        assert controller.launcher.rounds == [2]
    results = results_by_name(controller)
    assert sorted(results) == sorted(names)
    assert all(result.status == "success" for result in results.values())
    assert launches(controller) == 2
    assert controller.scale() == 0  # nothing left to do


def test_backlog_launches_up_to_workers(make):
    controller = make(workers=2)
    names = controller.walk("index", {"index": list(range(20))})
    results = results_by_name(controller)
    assert [results[name].result for name in names] == list(range(20))
    assert launches(controller) == 2


def test_idle_worker_exits_and_is_relaunched_on_demand(make):
    controller = make(seconds_idle=0.5)
    first = run(controller, os.getpid).pid
    eventually(lambda: not pids_alive([first]), SECONDS)
    eventually(lambda: controller.launcher.instances == [], SECONDS)
    assert controller.summary()[0]["state"] == "ended"
    second = run(controller, os.getpid)
    assert second.status == "success" and second.pid != first
    assert launches(controller) == 2


def test_tasks_max_ends_workers_and_new_ones_finish_the_work(make):
    controller = make(workers=1, tasks_max=2)
    controller.walk("__import__('os').getpid()", {"index": list(range(5))})
    results = results_by_name(controller)
    assert all(result.status == "success" for result in results.values())
    per_worker = collections.Counter(result.pid for result in results.values())
    assert max(per_worker.values()) <= 2 and len(per_worker) >= 3, per_worker
    assert all(result.result == result.pid for result in results.values())
    assert sum(row["tasks"] for row in controller.summary()) == 5


def test_seconds_wall_ends_workers_and_new_ones_finish_the_work(make):
    controller = make(workers=1, seconds_wall=0.5)
    controller.walk("import time, os\ntime.sleep(0.2)\nos.getpid()", {"index": list(range(6))})
    results = results_by_name(controller)
    assert all(result.status == "success" for result in results.values())
    assert len({result.pid for result in results.values()}) >= 2
    assert launches(controller) >= 2


def test_a_launch_that_never_dials_in_fails_and_is_relaunched(make):
    controller = make(dud_first_launch=True, seconds_launch=2, seconds_interval=0.1)
    result = run(controller, os.getpid)
    assert result.status == "success"
    (row,) = controller.summary()
    # At least the dud failed (a busy machine may start a real worker slowly too), each failure was
    # relaunched, and the last launch is the worker that ran the task.
    assert row["failed_launches"] >= 1 and row["launches"] == row["failed_launches"] + 1, row
    # The failed launch's process is ended by the controller, not left behind.
    eventually(lambda: not pids_alive(controller.launcher.duds), SECONDS)


# ============================================================================ crashes
def test_a_crashed_task_runs_again_on_a_new_worker(make, tmp_path):
    controller = make(crashes_max=1)
    marker = str(tmp_path / "crash")
    controller.push(crash_once_task(marker), name="crashy")
    pid = started(marker)
    os.kill(pid, signal.SIGKILL)
    result = results_by_name(controller)["crashy"]
    assert result.status == "success" and result.result == result.pid and result.pid != pid
    assert sum(row["crashes"] for row in controller.summary()) == 1


def test_only_the_running_task_is_charged_for_a_crash(make, tmp_path):
    controller = make(workers=1, crashes_max=0)
    warm = run(controller, os.getpid).pid  # its timing lets the controller send tasks ahead
    marker = str(tmp_path / "hang")
    controller.push(hang_task(marker), name="running")
    ahead = [controller.push(os.getpid, name=f"ahead_{index}") for index in range(3)]
    assert started(marker) == warm
    os.kill(warm, signal.SIGKILL)
    results = results_by_name(controller)
    crashed = results.pop("running")
    assert crashed.status == "crash" and crashed.pid == warm
    assert "crashes_max=0" in crashed.error and f"pid {warm}" in crashed.error
    assert sorted(results) == ahead
    assert all(result.status == "success" and result.pid != warm for result in results.values())
    assert sum(row["crashes"] for row in controller.summary()) == 1


def test_a_task_that_crashes_too_often_moves_to_the_backup(make, tmp_path):
    backup = make(name="backup")
    controller = make(name="main", crashes_max=0, backup=backup)
    marker = str(tmp_path / "crash")
    controller.push(crash_once_task(marker), name="crashy")
    pid = started(marker)
    os.kill(pid, signal.SIGKILL)
    assert controller.wait(seconds_timeout=SECONDS)
    assert controller.collect() == [] and controller.unresolved() == 0
    result = results_by_name(backup)["crashy"]
    assert result.status == "success" and result.controller == "backup" and result.pid != pid


# ============================================================================ cancel
def test_cancel_a_queued_task_and_a_running_one(make, tmp_path):
    controller = make(workers=1)
    marker, ran = str(tmp_path / "hang"), str(tmp_path / "ran")
    controller.push(hang_task(marker), name="running")
    pid = started(marker)
    controller.push(touch_task(ran), name="queued")
    controller.cancel("queued")
    assert controller.wait(mode="one", seconds_timeout=SECONDS)
    queued = controller.pop()
    assert (queued.name, queued.status, queued.error) == ("queued", "cancel", "cancelled before it started")
    controller.cancel(all=True)
    assert controller.wait(seconds_timeout=SECONDS)
    running = controller.pop()
    assert (running.name, running.status, running.error) == ("running", "cancel", "cancelled while running")
    assert run(controller, os.getpid).pid == pid  # the interrupted worker carries on
    assert not os.path.exists(ran)


def test_cancel_a_task_sent_ahead_before_it_starts(make, tmp_path):
    controller = make(workers=1)
    warm = run(controller, os.getpid).pid
    marker, ran = str(tmp_path / "hang"), str(tmp_path / "ran")
    controller.push(hang_task(marker), name="running")
    controller.push(touch_task(ran), name="ahead")
    started(marker)
    controller.cancel(["ahead", "running"])
    results = results_by_name(controller)
    assert (results["ahead"].status, results["ahead"].error) == ("cancel", "cancelled before it started")
    assert results["running"].status == "cancel"
    assert run(controller, os.getpid).pid == warm
    assert not os.path.exists(ran)


def test_cancel_needs_names_or_all():
    controller = local_controller()
    with pytest.raises(crew.SettingError, match="cancel needs names or all=True"):
        controller.cancel()


# ============================================================================ controller groups
def test_controller_group_pushes_to_members_and_collects_across():
    group = crew.ControllerGroup([local_controller(name="here"), build_controller(name="there")])
    try:
        with group:
            group.push("'first'", name="a")
            group.push("'second'", name="b", controller="there")
            mapped = group.map("index * 10", {"index": [1, 2, 3]}, controller="there")
            assert [result.result for result in mapped] == [10, 20, 30]
            assert {result.controller for result in mapped} == {"there"}
            assert group.wait(seconds_timeout=SECONDS)
            results = {result.name: (result.result, result.controller) for result in group.collect()}
            assert results == {"a": ("first", "here"), "b": ("second", "there")}
            assert group.empty() and group.unresolved() == 0
            assert {row["controller"] for row in group.summary()} == {"here", "there"}
            with pytest.raises(crew.SettingError, match="^controller must be one of 'here', 'there'"):
                group.push("1", controller="elsewhere")
    finally:
        for member in group.controllers.values():
            finish(member)


def test_controller_group_needs_distinct_controllers():
    with pytest.raises(crew.SettingError, match="distinct names"):
        crew.ControllerGroup([local_controller(name="same"), local_controller(name="same")])
    with pytest.raises(crew.SettingError, match="non-empty"):
        crew.ControllerGroup([])


# ============================================================================ bad input
@pytest.fixture
def controller():
    """One started local controller."""
    controller = local_controller()
    controller.start()
    yield controller
    finish(controller)


_LOCK = threading.Lock()  # cannot be pickled


@pytest.mark.parametrize("argument, options", [
    ("command", {"command": lambda: _LOCK}),
    ("args", {"command": os.getpid, "args": (_LOCK,)}),
    ("kwargs", {"command": os.getpid, "kwargs": {"lock": _LOCK}}),
    ("data", {"command": "lock", "data": {"lock": _LOCK}}),
    ("globals", {"command": "lock", "globals": {"lock": _LOCK}}),
    ("data", {"command": os.getpid, "data": {"x": 1}}),  # data goes with string commands only
    ("data", {"command": "x", "data": {1: "x"}}),
    ("args", {"command": os.getpid, "args": 5}),
    ("command", {"command": 5}),
    ("command", {"command": "  "}),
    ("seconds_timeout", {"command": "1", "seconds_timeout": -1}),
    ("seconds_timeout", {"command": "1", "seconds_timeout": "soon"}),
    ("seed", {"command": "1", "seed": "42"}),
    ("name", {"command": "1", "name": 3}),
])
def test_bad_push_is_rejected_naming_the_argument_and_loses_nothing(controller, argument, options):
    kept = controller.push("'kept'", name="kept")
    with pytest.raises(crew.SettingError) as caught:
        controller.push(options.pop("command"), **options)
    assert str(caught.value).startswith(argument), caught.value
    result = results_by_name(controller)
    assert list(result) == [kept] and result[kept].result == "kept"


def test_duplicate_task_name_is_rejected_until_the_first_is_popped(controller):
    controller.push("1", name="twin")
    with pytest.raises(crew.SettingError, match="^name 'twin' is already used"):
        controller.push("2", name="twin")
    assert controller.wait(seconds_timeout=SECONDS)
    with pytest.raises(crew.SettingError, match="twin"):
        controller.walk("x", {"x": [1]}, names=["twin"])
    assert controller.pop().result == 1
    assert run(controller, "2", name="twin").result == 2


@pytest.mark.parametrize("option, value", [
    ("workers", 0), ("workers", "2"), ("seconds_idle", -1), ("seconds_idle", "1"), ("seconds_wall", 0),
    ("seconds_launch", -3), ("seconds_interval", 0), ("seconds_timeout", "60"), ("tasks_max", 0),
    ("tasks_timers", -1), ("crashes_max", -1), ("crashes_max", 1.5), ("port", -1), ("reset_globals", "yes"),
])
@pytest.mark.parametrize("factory", [local_controller, build_controller], ids=["local", "custom"])
def test_bad_settings_are_rejected_naming_the_setting(factory, option, value):
    with pytest.raises(crew.SettingError, match=f"^{option} must"):
        factory(**{option: value})


def test_backup_must_be_another_controller():
    with pytest.raises(crew.SettingError, match="^backup must be"):
        local_controller(backup="elsewhere")


def test_a_terminated_controller_takes_no_tasks():
    controller = local_controller()
    controller.terminate()
    with pytest.raises(crew.CrewError, match="terminated"):
        controller.push("1")
    with pytest.raises(crew.CrewError, match="terminated"):
        controller.start()


# ============================================================================ seeds and globals
def random_numbers_task():
    """A task that draws from Python's and (when installed) NumPy's global generators."""

    def random_numbers():
        import random

        try:
            import numpy
        except ImportError:
            return random.random(), None
        return random.random(), float(numpy.random.random())

    return random_numbers


def test_same_seed_gives_the_same_numbers(controller):
    results = [run(controller, random_numbers_task(), seed=seed) for seed in (42, 42, 43)]
    assert [result.seed for result in results] == [42, 42, 43]
    assert results[0].result == results[1].result
    assert results[0].result[0] != results[2].result[0]
    if results[0].result[1] is not None:
        assert results[0].result[1] != results[2].result[1]


def test_walk_seeds_tasks_in_turn(controller):
    controller.walk("import random\nrandom.random()", {"index": [0, 1]}, seed=7, names=["a", "b"])
    results = results_by_name(controller)
    assert (results["a"].seed, results["b"].seed) == (7, 8)
    assert results["a"].result == run(controller, "import random\nrandom.random()", seed=7).result


def rendezvous_task(folder: str, count: int):
    """A task that waits until ``count`` tasks run at once (on different workers), then returns
    its worker's pid and its unseeded random numbers."""

    def rendezvous():
        import os
        import random
        import time

        open(os.path.join(folder, str(os.getpid())), "w").close()
        deadline = time.monotonic() + 30
        while len(os.listdir(folder)) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            import numpy
        except ImportError:
            return os.getpid(), random.getrandbits(64), None
        return os.getpid(), random.getrandbits(64), int(numpy.random.randint(2**62))

    return rendezvous


def test_workers_launched_together_have_their_own_random_streams(make, tmp_path):
    controller = make(workers=2)
    controller.push(rendezvous_task(str(tmp_path), 2), scale=False)
    controller.push(rendezvous_task(str(tmp_path), 2), scale=False)
    assert controller.scale() == 2
    assert len({instance.launch for instance in controller.launcher.instances}) == 1
    (pid_a, bits_a, numpy_a), (pid_b, bits_b, numpy_b) = [r.result for r in results_by_name(controller).values()]
    assert pid_a != pid_b
    assert bits_a != bits_b
    assert numpy_a != numpy_b or numpy_a is None


@pytest.mark.parametrize("reset_globals", [True, False])
def test_reset_globals_controls_whether_globals_outlive_their_task(make, reset_globals):
    controller = make(reset_globals=reset_globals)
    assert run(controller, "g + 1", globals={"g": 41}).result == 42
    assert run(controller, "counter = 5").status == "success"
    for name, value in (("g", 41), ("counter", 5)):
        later = run(controller, name)
        if reset_globals:
            assert later.status == "error" and later.error == f"NameError: name {name!r} is not defined"
        else:
            assert (later.status, later.result) == ("success", value)


def test_globals_reach_a_callable_for_its_task_only(controller):
    def read():
        return GLOBAL_SETTING  # noqa: F821 - set by the task's globals

    assert run(controller, read, globals={"GLOBAL_SETTING": 7}).result == 7
    later = run(controller, read)
    assert later.status == "error" and "GLOBAL_SETTING" in later.error


# ============================================================================ string commands
def test_string_command_value_is_its_last_expression(controller):
    assert run(controller, "x = a + 1\nx * 2", data={"a": 1}).result == 4
    assert run(controller, "import math\nmath.sqrt(n)", data={"n": 16.0}).result == 4.0
    assert run(controller, "y = 1").result is None  # no expression last: no value
    assert run(controller, "index", data={"index": 1}, name="task_1").result == 1


def test_string_command_sees_data_and_globals_and_leaves_no_trace(controller):
    assert run(controller, "a + b", data={"a": 1}, globals={"b": 2}).result == 3
    assert run(controller, "'a' in dir() or 'b' in dir()").result is False


def test_string_command_errors_carry_the_remote_traceback(controller):
    failed = run(controller, "def f():\n    raise KeyError('gone')\nf()")
    assert failed.status == "error" and failed.error == "KeyError: 'gone'"
    assert "<crew task>" in failed.traceback and "KeyError: 'gone'" in failed.traceback
    broken = run(controller, "1 +")
    assert broken.status == "error" and broken.error.startswith("SyntaxError")


# ============================================================================ map and walk
def test_map_returns_results_in_order_whatever_order_they_finish(make):
    controller = make(workers=2)
    results = controller.map("import time\ntime.sleep(delay)\ndelay", {"delay": [0.3, 0.2, 0.1, 0.0]},
                             names=["a", "b", "c", "d"])
    assert [(result.name, result.result) for result in results] == [("a", 0.3), ("b", 0.2), ("c", 0.1), ("d", 0.0)]
    assert controller.empty()  # map took its results; nothing is left to pop


def test_map_calls_a_callable_with_keyword_arguments(controller):
    results = controller.map(lambda x, y: x - y, {"x": [5, 6], "y": [1, 2]})
    assert [result.result for result in results] == [4, 4]


def test_map_data_is_shared_by_every_task(controller):
    results = controller.map("x * factor", {"x": [1, 2, 3]}, data={"factor": 10})
    assert [result.result for result in results] == [10, 20, 30]


def test_map_error_stop_raises_with_the_remote_traceback(controller):
    with pytest.raises(crew.TaskError) as caught:
        controller.map(lambda x: 1 / x, {"x": [1, 0, 2]}, names=["one", "zero", "two"])
    assert caught.value.result.name == "zero"
    assert "ZeroDivisionError" in str(caught.value) and "Remote traceback" in str(caught.value)
    assert controller.empty()


def test_map_error_warn_and_silent(controller):
    with pytest.warns(UserWarning, match="1 of 3 tasks did not succeed; first: ZeroDivisionError"):
        results = controller.map(lambda x: 1 / x, {"x": [1, 0, 2]}, error="warn")
    assert [result.status for result in results] == ["success", "error", "success"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = controller.map(lambda x: 1 / x, {"x": [0]}, error="silent")
    assert results[0].status == "error"
    with pytest.raises(crew.SettingError, match="^error must be one of"):
        controller.map(lambda x: x, {"x": [1]}, error="ignore")


def test_walk_pushes_without_waiting(controller, tmp_path):
    marker = str(tmp_path / "hang")
    controller.push(hang_task(marker), name="blocker")
    started(marker)
    names = controller.walk("x + 1", {"x": [1, 2]})
    assert controller.unresolved() == 3  # walk returned while its tasks wait behind the blocker
    controller.cancel("blocker")
    results = results_by_name(controller)
    assert [results[name].result for name in names] == [2, 3]


def test_walk_checks_its_lists(controller):
    with pytest.raises(crew.SettingError, match="^iterate must hold lists of one length"):
        controller.walk("x", {"x": [1, 2], "y": [1]})
    with pytest.raises(crew.SettingError, match="^names must be 2 distinct strings"):
        controller.walk("x", {"x": [1, 2]}, names=["a", "a"])
    with pytest.raises(crew.SettingError, match="^iterate must be"):
        controller.walk("x", [1, 2])
    assert controller.unresolved() == 0


# ============================================================================ results
def test_result_fields(controller):
    def careful(x):
        import warnings

        warnings.warn("careful", stacklevel=1)
        return x

    result = run(controller, careful, args=(3,), name="careful")
    assert (result.name, result.result, result.status, result.error, result.traceback) == ("careful", 3, "success", None, None)
    assert result.warnings == ["UserWarning: careful"]
    assert result.command.endswith("careful")
    assert result.pid in [process.pid for process in worker_processes(controller)]
    assert result.host == socket.gethostname()
    assert result.controller == controller.name and result.worker.startswith(f"{controller.name}/1/")
    assert 0 <= result.seconds < SECONDS and result.seed is None and result.ok
    assert set(result.to_dict()) == {"name", "command", "result", "status", "error", "traceback", "warnings",
                                     "seconds", "seed", "worker", "pid", "host", "controller"}
    row = controller.summary()[0]
    assert (row["tasks"], row["errors"], row["warnings"], row["pid"]) == (1, 0, 1, result.pid)


def test_an_error_is_a_result_and_the_worker_lives_on(controller):
    def fail():
        raise ValueError("boom")

    failed = run(controller, fail)
    assert failed.status == "error" and failed.error == "ValueError: boom" and not failed.ok
    assert "in fail\n" in failed.traceback and failed.traceback.endswith("ValueError: boom\n")
    assert isinstance(failed.exception, ValueError)
    assert run(controller, os.getpid).pid == failed.pid
    assert controller.summary()[0]["errors"] == 1


def test_a_task_past_its_timeout_resolves_as_timeout(controller):
    slow = run(controller, "import time\ntime.sleep(60)", seconds_timeout=0.3)
    assert slow.status == "timeout" and "seconds_timeout of 0.3 s" in slow.error
    after = run(controller, os.getpid)
    assert after.status == "success" and after.pid != slow.pid  # the overrun worker left


def test_pop_collect_and_counts(controller):
    assert controller.pop() is None and controller.collect() == [] and controller.empty()
    controller.walk("x", {"x": [1, 2, 3]})
    assert controller.unresolved() + controller.resolved() == 3
    assert controller.saturated()  # 3 tasks for 1 worker
    assert controller.wait(mode="one", seconds_timeout=SECONDS)
    first = controller.pop()
    assert first is not None
    assert controller.wait(seconds_timeout=SECONDS) and controller.resolved() == 3
    assert sorted(result.result for result in controller.collect()) == sorted({1, 2, 3} - {first.result})
    assert controller.empty()


# ============================================================================ terminate
def test_terminate_ends_every_worker_and_is_idempotent(make, tmp_path):
    controller = make(workers=2)
    markers = [str(tmp_path / "a"), str(tmp_path / "b")]
    for index, marker in enumerate(markers):
        controller.push(hang_task(marker), name=f"hang_{index}")
    pids = [started(marker) for marker in markers]
    assert sorted(pids) == sorted(process.pid for process in worker_processes(controller))
    controller.terminate()
    assert not worker_processes(controller)
    eventually(lambda: not pids_alive(pids), SECONDS)
    controller.terminate()
    statuses = {result.name: result.status for result in controller.collect()}
    assert statuses == {"hang_0": "cancel", "hang_1": "cancel"}
    assert not controller.client.started


def test_with_block_terminates(kind):
    factory = build_controller if kind == "custom" else local_controller
    with factory() as controller:
        pid = run(controller, os.getpid).pid
    assert not pids_alive([pid]) and not worker_processes(controller)


def test_interpreter_exit_ends_the_workers(tmp_path):
    script = (
        "import os, crew_local\n"
        "controller = crew_local.local_controller()\n"
        "controller.push(os.getpid, name='pid')\n"
        "controller.wait()\n"
        "print(controller.pop().result, flush=True)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=SECONDS, check=False)
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout)
    try:
        eventually(lambda: not pids_alive([pid]), SECONDS)
    finally:
        for stray in pids_alive([pid]):
            os.kill(stray, signal.SIGKILL)


# ============================================================================ serialization
def test_functions_registered_by_value_run_where_their_module_is_missing(controller, tmp_path, monkeypatch):
    import cloudpickle

    (tmp_path / "crew_only_here.py").write_text("import os\n\ndef where():\n    return os.getpid()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import crew_only_here

    cloudpickle.register_pickle_by_value(crew_only_here)
    try:
        result = run(controller, crew_only_here.where)
    finally:
        cloudpickle.unregister_pickle_by_value(crew_only_here)
        sys.modules.pop("crew_only_here", None)
    assert result.status == "success", result.error


# ============================================================================ the conformance kit
class TestCustomLauncherConformance(crew.testing.ControllerSuite):
    """The custom launcher passes the checks every launcher plugin runs."""

    seconds_timeout = SECONDS

    @pytest.fixture(autouse=True)
    def _scratch(self, tmp_path):
        self._tmp_path = tmp_path

    def scratch_directory(self) -> str:
        return str(self._tmp_path)

    def make_controller(self, **options):
        return build_controller(**options)

    def make_monitor(self) -> crew.Monitor:
        """The workers are processes of this machine: crew-local's monitor lists and ends them
        by pid (the kit picks this controller's by the ``--controller`` id on their command line)."""
        return LocalMonitor()
