"""Results that cannot travel resolve as errors that say why; output is the worker's, not the
controller's; the worker lives on through all of it."""

import os

import crew
import pytest
from crew_local import LocalLauncher

PID = "import os\nos.getpid()"

BAD = {
    # The worker cannot pickle the value.
    "unpicklable": ("import threading\nthreading.Lock()", "could not be serialized"),
    # The worker pickles it; the controller cannot unpickle it.
    "unloadable": (
        "class Bomb:\n"
        "    def __reduce__(self):\n"
        "        return (int, ('not a number',))\n"
        "Bomb()",
        "could not be deserialized",
    ),
    # The task raises an exception that cannot be pickled: the message still arrives.
    "unpicklable exception": (
        "import threading\n"
        "class Odd(Exception):\n"
        "    pass\n"
        "error = Odd('odd failure')\n"
        "error.lock = threading.Lock()\n"
        "raise error",
        "Odd: odd failure",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_result_is_an_error_and_the_worker_lives_on(workers, kind):
    command, expected = BAD[kind]
    controller = workers.controller(workers=1)
    with controller:
        controller.push(PID, name="before")
        controller.push(command, name="bad")
        controller.push(PID, name="after")
        assert controller.wait(seconds_timeout=30)
        results = {result.name: result for result in controller.collect()}
    bad = results["bad"]
    assert bad.status == "error" and expected in bad.error, bad
    assert results["before"].result == results["after"].result == bad.pid
    assert sum(row["crashes"] for row in controller.summary()) == 0


PRINT = """
import sys
chunk = 'x' * 1023 + '\\n'
for _ in range(megabytes * 1024):
    sys.stdout.write(chunk)
    sys.stderr.write(chunk)
sys.stdout.flush()
megabytes
"""


def test_printing_megabytes_goes_to_the_worker_log(workers, tmp_path):
    """Output is not sent to the controller: it lands in the worker's log (or nowhere)."""
    client = crew.Client(host="127.0.0.1")
    launcher = LocalLauncher(workers=1, log_directory=tmp_path / "logs")
    controller = workers.watch(crew.Controller(client, launcher))
    with controller:
        controller.push(PRINT, data={"megabytes": 8}, name="chatty")
        controller.push(PID, name="after")
        assert controller.wait(seconds_timeout=60)
        results = {result.name: result for result in controller.collect()}
    chatty = results["chatty"]
    assert chatty.status == "success" and chatty.result == 8, chatty
    assert results["after"].result == chatty.pid
    (log,) = os.listdir(tmp_path / "logs")
    assert os.path.getsize(tmp_path / "logs" / log) >= 16 * 2**20


def test_printing_megabytes_without_a_log(workers):
    controller = workers.controller(workers=1)
    with controller:
        controller.push(PRINT, data={"megabytes": 8}, name="chatty")
        controller.push(PID, name="after")
        assert controller.wait(seconds_timeout=60)
        results = {result.name: result for result in controller.collect()}
    assert results["chatty"].status == "success" and results["after"].result == results["chatty"].pid


def test_result_larger_than_the_frame_limit_is_an_error(workers):
    client = crew.Client(host="127.0.0.1", max_frame_bytes=2**20)
    launcher = LocalLauncher(workers=1, seconds_interval=0.1)
    controller = workers.watch(crew.Controller(client, launcher, crashes_max=1))
    with controller:
        controller.push(PID, name="before")
        controller.push("b'x' * 2**21", name="huge")
        controller.push(PID, name="after")
        assert controller.wait(seconds_timeout=30)
        results = {result.name: result for result in controller.collect()}
    huge = results["huge"]
    assert huge.status == "error" and "max_frame_bytes" in huge.error, huge
    assert results["before"].result == results["after"].result == huge.pid
