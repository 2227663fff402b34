"""A task that kills its worker resolves as "crash", with the signal or exit code in its error;
a task that runs out of memory inside Python resolves as "error" and its worker lives on."""

import pytest
from _crewfaults import eventually, kill, pids_alive, slow_python

CRASHES = {
    "abort": ("import os\nos.abort()", "signal SIGABRT"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "signal SIGSEGV"),
    "killed": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "signal SIGKILL"),  # as the OOM killer does
    "exit": ("import os\nos._exit(7)", "exit code 7"),
}


@pytest.mark.parametrize("kind", sorted(CRASHES))
def test_crash_names_the_signal(workers, kind):
    command, expected = CRASHES[kind]
    controller = workers.controller(workers=1, crashes_max=0, seconds_interval=0.1)
    with controller:
        controller.push(command, name="doomed")
        controller.push("'still here'", name="after")
        assert controller.wait(seconds_timeout=30)
        results = {result.name: result for result in controller.collect()}
    doomed = results["doomed"]
    assert doomed.status == "crash", doomed
    assert expected in doomed.error and "crashes_max=0" in doomed.error, doomed.error
    assert results["after"].status == "success" and results["after"].result == "still here"
    assert results["after"].pid != doomed.pid
    assert sum(row["crashes"] for row in controller.summary()) == 1
    eventually(lambda: not pids_alive([doomed.pid]), 10)


def test_crash_retries_up_to_crashes_max(workers):
    controller = workers.controller(workers=1, crashes_max=2, seconds_interval=0.1)
    with controller:
        controller.push(CRASHES["abort"][0], name="doomed")
        assert controller.wait(seconds_timeout=30)
        doomed = controller.pop()
    assert doomed.status == "crash" and "3 times" in doomed.error, doomed.error
    assert sum(row["crashes"] for row in controller.summary()) == 3
    assert sum(row["launches"] for row in controller.summary()) == 3


EXHAUST = """
import resource, psutil
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
used = psutil.Process().memory_info().vms
resource.setrlimit(resource.RLIMIT_AS, (used + 2**28, hard))
try:
    block = bytearray(2**31)
finally:
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
"""


def test_memory_error_is_an_error_and_the_worker_lives_on(workers):
    controller = workers.controller(workers=1)
    with controller:
        controller.push(EXHAUST, name="greedy")
        controller.push("import os\nos.getpid()", name="after")
        assert controller.wait(seconds_timeout=30)
        results = {result.name: result for result in controller.collect()}
    greedy, after = results["greedy"], results["after"]
    assert greedy.status == "error" and greedy.error.startswith("MemoryError"), greedy
    assert after.status == "success" and after.result == greedy.pid == after.pid


POISON = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"


def test_crash_is_charged_to_the_task_that_was_running(workers):
    """A task that kills its worker takes the blame; the tasks sent with it do not."""
    controller = workers.controller(workers=1, crashes_max=0, seconds_interval=0.1)
    with controller:
        controller.walk("index", {"index": list(range(100))})
        controller.push(POISON, name="poison")
        controller.walk("index", {"index": list(range(100, 200))})
        first_crash = None
        while first_crash is None:
            assert controller.wait(mode="one", seconds_timeout=30) and not controller.empty()
            result = controller.pop()
            if result is not None and result.status == "crash":
                first_crash = result
        assert first_crash.name == "poison", first_crash
        assert controller.wait(seconds_timeout=30)
        assert all(result.status == "success" for result in controller.collect())


def test_worker_lost_before_dialling_in_is_replaced_quickly(workers, tmp_path):
    python = slow_python(tmp_path, delay=1)
    controller = workers.controller(workers=1, seconds_launch=60, seconds_interval=0.1, python=python)
    with controller:
        controller.push("'done'", name="task")
        first = eventually(lambda: workers.pids, 10, interval=0.01)[0]
        kill(first)  # still in its 1 s sleep: it never dialled in
        assert controller.wait(seconds_timeout=8), "the lost launch was not replaced before seconds_launch"
        result = controller.pop()
    assert result.status == "success" and result.pid != first
