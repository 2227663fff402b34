"""Silent peers cannot take the descriptors a controller needs to launch its workers (issue #15, item 5).

The controller runs in its own process (``_lowfd.py``) with a soft descriptor limit of 256; the
silent peers run in another (``_silent.py``) with the normal limit. Before the gate kept a
reserve, 400 peers that completed NNG's handshake and said nothing held 249 of the controller's
256 descriptors and its launcher failed with ``Too many open files``.
"""

import json
import queue
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from _crewfaults import kill, pids_alive

HERE = Path(__file__).resolve().parent
LOWFD, SILENT = str(HERE / "_lowfd.py"), str(HERE / "_silent.py")
LIMIT, PEERS, TASKS = 256, 400, 20
HELD = 16 + 8  # strangers_max(256) silent peers, and a few descriptors of NNG and the workers

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="sets RLIMIT_NOFILE and counts descriptors in /proc (Linux)")


class Helper:
    """A helper process that answers in JSON lines, read by a thread so that every wait has a deadline."""

    def __init__(self, process, log: Path | None = None):
        self.process, self.log = process, log
        self.lines: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._read, name=f"read-{process.pid}", daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, ""):
            self.lines.put(line)
        self.lines.put("")

    def line(self, seconds: float) -> dict:
        try:
            line = self.lines.get(timeout=seconds)
        except queue.Empty:
            line = ""
        assert line, f"pid {self.process.pid} said nothing within {seconds} s; log: {self.tail()}"
        return json.loads(line)

    def ask(self, text: str, seconds: float) -> dict:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        return self.line(seconds)

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""

    def descendants(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def end(self, seconds: float = 30.0) -> None:
        """Close its stdin (it then exits) and wait for it, at most ``seconds``; kill it by pid after."""
        if not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            kill(self.process.pid)
            self.process.wait(timeout=10)


def _settle(pid: int, most: int, seconds: float) -> int:
    """Wait (at most ``seconds``) until process ``pid`` has at most ``most`` descriptors open; return the count."""
    deadline, count = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        count = psutil.Process(pid).num_fds()
        if count <= most:
            break
        time.sleep(0.05)  # descriptors close in NNG's threads; no event says when
    return count


def _check(run: dict, log: str) -> None:
    """The run raised nothing, its TASKS tasks all succeeded and the log never said "Too many open files"."""
    assert run["error"] is None, f"{run['error']}; log: {log}"
    want = [("success", 2 * x) for x in range(TASKS)]
    assert sorted((status, result) for _, status, result in run["results"]) == want, run["results"]
    assert run["emfile"] == 0 and "Too many open files" not in log


@contextmanager
def _low_limit_controller(workers, tmp_path, transport: str = "nng"):
    """A Helper for ``_lowfd.py`` (limit LIMIT); afterwards it and every worker it launched have ended (by pid)."""
    log = tmp_path / "controller.log"
    controller = Helper(workers.python(LOWFD, str(LIMIT), str(log), transport), log)
    controller.spawned = set()
    try:
        yield controller
    finally:
        controller.spawned.update(controller.descendants())
        controller.end()
        deadline = time.monotonic() + 30
        while pids_alive(controller.spawned) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = pids_alive(controller.spawned)
        for pid in leftovers:
            kill(pid)
    assert not leftovers, f"workers still running after their controller ended: {leftovers}"


@pytest.mark.parametrize("transport, kind", [("nng", "sp"), ("unix", "unix")])
def test_silent_peers_leave_descriptors_for_launching(workers, tmp_path, transport, kind):
    """400 peers complete the transport's handshake (NNG's; or the ``unix`` transport's greeting)
    and say nothing: a controller with a limit of 256 descriptors holds at most 16 of them
    (strangers_max) and cuts the rest off; while they are held it launches its 2 workers and runs
    20 tasks without running out of descriptors, and after the peers leave its descriptors come
    back down and it runs 20 more."""
    with _low_limit_controller(workers, tmp_path, transport) as controller:
        url = controller.line(30)["url"]
        resting = psutil.Process(controller.process.pid).num_fds()
        attack = Helper(workers.python(SILENT, url, str(PEERS), kind))
        try:
            held = attack.line(40)
            holding = _settle(controller.process.pid, resting + HELD, 20)
            burst = controller.ask("peak", 10)["peak"]
            during = controller.ask(f"run {TASKS}", 60)
            controller.spawned.update(during["workers"])
        finally:
            attack.end()
        _check(during, controller.tail())
        assert held["connected"] >= LIMIT, f"the attack did not exceed the limit: {held}"
        assert holding <= resting + HELD, f"{holding} descriptors held by silent peers ({resting} at rest)"
        assert during["peak"] < LIMIT and during["seconds"] < 20, during
        after = _settle(controller.process.pid, resting + 8, 20)
        assert after <= resting + 8, f"{after} descriptors open after the peers left ({resting} at rest)"
        _check(controller.ask(f"run {TASKS}", 60), controller.tail())
        print(f"peers {held}; {burst} descriptors at most in their burst (limit {LIMIT}), {holding} open once "
              f"it settled ({resting} at rest); while held: {during['peak']} at most, {TASKS} tasks in "
              f"{during['seconds']:.1f} s; after they left: {after} open")


def test_plain_tcp_connections_the_gate_cannot_see_leave_no_lasting_harm(workers, tmp_path):
    """The limit of this design (docs/security.md): 300 plain TCP connections that never start
    NNG's handshake are held by NNG (up to its 10 s negotiation timeout) where the gate cannot
    see them, and may take every descriptor; tasks pushed meanwhile may fail to launch. Once they
    close, the controller's descriptors come back down and it runs those tasks and more."""
    with _low_limit_controller(workers, tmp_path) as controller:
        url = controller.line(30)["url"]
        resting = psutil.Process(controller.process.pid).num_fds()
        attack = Helper(workers.python(SILENT, url, "300", "tcp"))
        try:
            held = attack.line(40)
            during = controller.ask(f"run {TASKS}", 60)
            controller.spawned.update(during["workers"])
        finally:
            attack.end()
        after = _settle(controller.process.pid, resting + 8, 20)
        assert after <= resting + 8, f"{after} descriptors open after the connections closed ({resting} before)"
        again = controller.ask(f"run {TASKS}", 60)
        assert again["error"] is None, f"{again['error']}; log: {controller.tail()}"
        every = sorted((name, status, result) for name, status, result in during["results"] + again["results"])
        pushed = [(f"run0_{x}", "success", 2 * x) for x in range(during["pushed"])]  # a push may raise LaunchError
        assert every == sorted(pushed + [(f"run1_{x}", "success", 2 * x) for x in range(TASKS)]), every
        print(f"connections {held}; while held: {during['peak']} descriptors at most (limit {LIMIT}), "
              f"error {during['error']!r}; after: {after} open ({resting} at rest)")
