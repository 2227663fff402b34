"""The conformance kit catches the mistakes that break plugins in production (issue #17): each test
plants one mistake in a throwaway launcher (or monitor) and shows the kit failing on it."""

from __future__ import annotations

import os
import subprocess
import threading
import types

import crew
import crew.testing
import pytest
from crew._build import controller_helper
from crew_local import LocalLauncher, LocalMonitor, local_controller

SECONDS = 10


class _Planted(crew.testing.ControllerSuite):
    """The kit run against one planted mistake; not collected (no ``Test`` prefix)."""

    seconds_timeout = SECONDS
    helper = staticmethod(local_controller)
    monitor_class: type = LocalMonitor

    def __init__(self):
        self.made: list[crew.Controller] = []

    def make_controller(self, **options):
        controller = self.helper(**options)
        self.made.append(controller)
        return controller

    def make_monitor(self):
        return self.monitor_class()

    def clean_up(self):
        """End every controller and whatever workers the mistake left behind."""
        for controller in self.made:
            controller.terminate()
            LocalMonitor().terminate(self.controller_workers(controller))
        assert all(not self.controller_workers(controller) for controller in self.made)


@pytest.fixture
def planted():
    made: list[_Planted] = []

    def plant(**attributes):
        suite = type("Planted", (_Planted,), attributes)()
        made.append(suite)
        return suite

    yield plant
    for suite in made:
        suite.clean_up()


# ---------------------------------------------------------------- 1. orphans of launches not dialled in
class WrapperLauncher(LocalLauncher):
    """Mistake: the handle is a shell that waits for the worker (no ``exec``), and terminating it
    leaves the worker, which retries its controller for ``seconds_timeout``. (The secret goes in
    the environment, as on a platform without the controller's file system: the worker does not
    stop when the controller removes its secret file.)"""

    shared_filesystem = False

    def launch_worker(self, call):
        process = subprocess.Popen(["sh", "-c", f"{call}; exit $?"], env={**os.environ, **self.environment},
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        threading.Thread(target=process.wait, daemon=True).start()
        return process


def test_kit_finds_orphans_of_launches_that_never_dialled_in(planted):
    suite = planted(helper=staticmethod(controller_helper(WrapperLauncher, name="wrapper_controller",
                                                          defaults={"host": "127.0.0.1"})))
    with pytest.raises(AssertionError, match="outlived terminate"):
        suite.test_terminate_while_launching()
    (controller,) = suite.made
    orphans = suite.controller_workers(controller)
    assert orphans and all(isinstance(pid, int) for pid in orphans)


# ---------------------------------------------------------------- 2. many workers at once
class CrowdedLauncher(LocalLauncher):
    """Mistake: like an sshd at its default MaxStartups, more than 10 launches at once fail."""

    def launch_workers(self, call, n):
        if n > 10:
            raise crew.LaunchError(f"kex_exchange_identification: Connection closed by remote host ({n} at once)")
        return super().launch_workers(call, n)


def test_kit_launches_a_realistic_round(planted):
    suite = planted(helper=staticmethod(controller_helper(CrowdedLauncher, name="crowded_controller",
                                                          defaults={"host": "127.0.0.1"})))
    suite.test_informal()  # the small checks pass
    with pytest.raises((AssertionError, crew.LaunchError)):
        suite.test_many_workers()


# ---------------------------------------------------------------- 3. idling and relaunching
class OnceLauncher(LocalLauncher):
    """Mistake: each round creates a file named for the controller that it never removes, with
    O_EXCL, so a second round (after the workers idled out) fails."""

    folder = ""

    def launch_workers(self, call, n):
        path = os.path.join(self.folder, f"round-{self.contact.controller_id}")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return super().launch_workers(call, n)


def test_kit_load_test_idles_out_and_relaunches(planted, tmp_path, monkeypatch):
    monkeypatch.setattr(OnceLauncher, "folder", str(tmp_path))
    helper = controller_helper(OnceLauncher, name="once_controller", defaults={"host": "127.0.0.1"})
    suite = planted(helper=staticmethod(helper))
    # Back-to-back rounds (the kit before #17) never launch again: the mistake passes.
    old = helper(workers=2, seconds_idle=2)
    suite.made.append(old)
    crew.testing.load_test(old, seconds_timeout=60, idle_out=False)
    assert sum(row["launches"] for row in old.summary()) == 2
    with pytest.raises((AssertionError, crew.LaunchError)):
        suite.test_load()


class SleeplessLauncher(LocalLauncher):
    """Mistake: the worker's command line loses ``--seconds-idle``, so workers never idle out."""

    def call(self, launch=None, secret_file=None):
        words = super().call(launch=launch, secret_file=secret_file).split()
        at = words.index("--seconds-idle")
        return " ".join(words[:at] + words[at + 2:])


def test_load_test_fails_when_workers_never_idle_out():
    helper = controller_helper(SleeplessLauncher, name="sleepless_controller", defaults={"host": "127.0.0.1"})
    controller = helper(workers=1, seconds_idle=1)
    try:
        with pytest.raises(AssertionError, match="did not idle out"):
            crew.testing.load_test(controller, seconds_timeout=5)
    finally:
        controller.terminate()


# ---------------------------------------------------------------- 4. no local assumptions
class DeafMonitor(LocalMonitor):
    """Mistake: the monitor says it ended workers but does not."""

    def terminate(self, ids=None, all=False):
        return list(ids or [])


def test_kit_kills_through_the_monitor(planted):
    suite = planted(monitor_class=DeafMonitor)
    with pytest.raises(AssertionError, match="not retried"):
        suite.test_crash_retry()


class _FarMonitor(crew.Monitor):
    """A worker on another machine, pid 4242 there."""

    def __init__(self, controller_id):
        self.controller_id = controller_id
        self.ended = []

    def jobs(self):
        return [{"id": "far-host/4242", "array_index": None, "name": self.controller_id, "state": "running",
                 "reason": None, "node": "far-host", "start_time": None, "raw_state": "R"}]

    def terminate(self, ids=None, all=False):
        self.ended += ids
        return ids


def test_kit_defaults_never_touch_local_processes(monkeypatch):
    monitor = _FarMonitor("c0ffee")
    suite = type("Far", (crew.testing.ControllerSuite,), {"make_monitor": lambda self: monitor})()
    contact = crew.Contact("tcp://127.0.0.1:1", "c0ffee", "secret")
    controller = types.SimpleNamespace(launcher=types.SimpleNamespace(contact=contact))

    def no_local_signal(pid, signum):
        raise AssertionError(f"the kit signalled local pid {pid}")

    monkeypatch.setattr(os, "kill", no_local_signal)
    assert suite.remaining_workers(controller, [4242]) == ["far-host/4242"]
    suite.kill_worker(controller, 4242)
    assert monitor.ended == ["far-host/4242"]


def test_kit_needs_the_plugins_monitor():
    suite = type("NoMonitor", (crew.testing.ControllerSuite,), {})()
    with pytest.raises(NotImplementedError, match="make_monitor"):
        suite.make_monitor()
