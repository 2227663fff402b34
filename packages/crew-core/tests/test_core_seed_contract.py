"""The seed's contract: a launcher that just runs ``call`` is complete, and a failed launch says why."""

from __future__ import annotations

import concurrent.futures
import os
import shlex
import subprocess
import sys
import time

import crew
import psutil
import pytest
from crew.testing import pids_alive


class CustomLauncher(crew.Launcher):  # R crew's vignette launcher, translated line for line
    def launch_worker(self, call):
        return subprocess.Popen(shlex.split(call))


def _ended(pids, seconds=30.0):
    deadline = time.monotonic() + seconds
    while pids_alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pids_alive(pids)


def test_the_minimal_launcher_runs_tasks_as_written():
    controller = crew.Controller(crew.Client(host="127.0.0.1"), CustomLauncher(workers=2))
    controller.validate()
    controller.start()
    try:
        controller.push("1 + 1")
        assert controller.wait(seconds_timeout=60)
        result = controller.pop()
        assert (result.status, result.result) == ("success", 2)
        handles = [instance.handle for instance in controller.launcher.instances]
        assert result.pid in [handle.pid for handle in handles]
    finally:
        controller.terminate()
    assert _ended([handle.pid for handle in handles])


def test_the_minimal_launcher_passes_the_load_test():
    """200 tasks in two rounds, workers idling out between them; results exactly 1..200."""
    launcher = CustomLauncher(workers=2, seconds_idle=2)
    controller = crew.Controller(crew.Client(host="127.0.0.1"), launcher)
    pids = set()
    try:
        for round_ in range(2):
            names = controller.walk("x + 1", {"x": list(range(100 * round_, 100 * (round_ + 1)))})
            assert controller.wait(seconds_timeout=120)
            results = {result.name: result for result in controller.collect()}
            assert sorted(results) == sorted(names)
            pids |= {result.pid for result in results.values()}
            values = sorted(result.result for result in results.values())
            assert values == list(range(100 * round_ + 1, 100 * (round_ + 1) + 1))
            if round_ == 0:  # the workers idle out: the second round relaunches
                assert _ended(pids, 30)
        launches = sum(row["launches"] for row in controller.summary())
        assert launches >= 3, controller.summary()
    finally:
        controller.terminate()
    assert _ended(pids)
    assert not os.path.exists(os.path.join(crew._secret_file.root(), controller._id))


def test_the_secret_is_in_a_private_file_not_on_the_command_line():
    launcher = CustomLauncher(workers=1)
    controller = crew.Controller(crew.Client(host="127.0.0.1"), launcher).start()
    try:
        call = launcher.call()
        secret_file = shlex.split(call)[-1]
        assert launcher.contact.secret not in call
        assert os.stat(secret_file).st_mode & 0o777 == 0o600
    finally:
        controller.terminate()
    assert not os.path.exists(secret_file)


def test_a_worker_that_cannot_start_fails_its_launch_quickly_and_says_why():
    class Broken(CustomLauncher):
        def launch_worker(self, call):  # the worker is pointed at a secret file that does not exist
            words = shlex.split(call)
            words[-1] = os.path.join(os.path.dirname(words[-1]), "missing")
            return subprocess.Popen(words, stderr=subprocess.DEVNULL)

    controller = crew.Controller(crew.Client(host="127.0.0.1"), Broken(workers=2))
    try:
        controller.push("1 + 1")
        start = time.monotonic()
        with pytest.raises(crew.LaunchError, match="cannot read the secret file") as caught:
            controller.wait(seconds_timeout=60)
        assert time.monotonic() - start < 15
        assert "exit code 2" in str(caught.value)
        reasons = [row["reason"] for row in controller.summary() if row["reason"]]
        assert reasons and "cannot read the secret file" in reasons[0]
    finally:
        controller.terminate()


def test_a_wrong_python_makes_wait_raise_a_launch_error_naming_it():
    controller = crew.Controller(crew.Client(host="127.0.0.1"), CustomLauncher(workers=2, python="/nonexistent/python"))
    try:
        controller.push("1 + 1")
        start = time.monotonic()
        with pytest.raises(crew.LaunchError, match="/nonexistent/python"):
            controller.wait(seconds_timeout=60)
        assert time.monotonic() - start < 15
    finally:
        controller.terminate()


def test_pop_raises_the_launch_error_too():
    controller = crew.Controller(crew.Client(host="127.0.0.1"), CustomLauncher(workers=1, python="/bin/false"))
    try:
        controller.push("1 + 1")
        deadline = time.monotonic() + 15
        with pytest.raises(crew.LaunchError, match="exit code 1"):
            while time.monotonic() < deadline:
                controller.pop()
                time.sleep(0.05)
    finally:
        controller.terminate()


# ---------------------------------------------------------------------- handles the default understands
def test_exit_status_of_a_popen_with_its_stderr_tail():
    launcher = CustomLauncher()
    process = subprocess.Popen([sys.executable, "-c", "import sys; print('first', file=sys.stderr); sys.exit('boom')"],
                               stderr=subprocess.PIPE)
    assert launcher.exit_status(process, timeout=30) == "exit code 1: first | boom"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert launcher.exit_status(sleeper) is None
    finally:
        launcher.terminate_worker(sleeper)
    assert launcher.exit_status(sleeper) == "signal SIGTERM"


def test_exit_status_of_a_psutil_process_and_a_future():
    launcher = CustomLauncher()
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    handle = psutil.Process(process.pid)
    assert launcher.exit_status(handle, timeout=30) in ("exit code 3", "ended")
    process.wait()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(lambda: 1 / 0)
        assert launcher.exit_status(future, timeout=30) == "raised ZeroDivisionError: division by zero"
    assert launcher.exit_status(object()) is None
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    launcher.terminate_worker(psutil.Process(sleeper.pid))  # terminated and reaped by psutil
    assert not pids_alive([sleeper.pid])
    sleeper.wait(timeout=30)


def test_the_secret_file_keeps_a_multi_line_certificate_whole(tmp_path):
    from crew._worker_setup import parser as _parser
    from crew._worker_setup import read_secret as _read_secret

    pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nQQ==\n-----END CERTIFICATE-----"
    path = tmp_path / "secret"
    path.write_text(f"CREW_SECRET=s3cr3t\nCREW_TLS_CERTIFICATE={pem}\n")
    options = _parser().parse_args(["tcp://127.0.0.1:1", "--controller", "c", "--secret-file", str(path)])
    assert _read_secret(options) == ("s3cr3t", pem)


def test_exit_status_and_terminate_of_plumbum_popen_objects():
    from plumbum import local

    launcher = CustomLauncher()
    ended = local[sys.executable]["-c", "import sys; sys.exit(4)"].popen()
    assert launcher.exit_status(ended, timeout=30) == "exit code 4"
    sleeper = local[sys.executable]["-c", "import time; time.sleep(60)"].popen()
    assert launcher.exit_status(sleeper) is None
    launcher.terminate_worker(sleeper)
    assert launcher.exit_status(sleeper, timeout=30) == "signal SIGTERM"
