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
from pathlib import Path

import psutil
import pytest
from _crewfaults import kill, pids_alive

HERE = Path(__file__).resolve().parent
LOWFD, SILENT = str(HERE / "_lowfd.py"), str(HERE / "_silent.py")
LIMIT, PEERS, TASKS = 256, 400, 20

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
    assert run["error"] is None, f"{run['error']}; log: {log}"
    assert sorted((status, result) for _, status, result in run["results"]) == [("success", 2 * x) for x in range(TASKS)]
    assert run["emfile"] == 0 and "Too many open files" not in log


def test_silent_peers_leave_descriptors_for_launching(workers, tmp_path):
    """400 peers complete NNG's handshake and say nothing while a controller with a limit of 256
    descriptors launches its 2 workers and runs 20 tasks: it never runs out of descriptors, and
    after the peers leave its descriptors come back down and it runs 20 more."""
    log = tmp_path / "controller.log"
    controller = Helper(workers.python(LOWFD, str(LIMIT), str(log)), log)
    spawned: set[int] = set()
    try:
        url = controller.line(30)["url"]
        resting = psutil.Process(controller.process.pid).num_fds()
        attack = Helper(workers.python(SILENT, url, str(PEERS), "sp"))
        try:
            held = attack.line(40)
            during = controller.ask(f"run {TASKS}", 60)
            spawned.update(during["workers"])
        finally:
            attack.end()
        _check(during, controller.tail())
        assert held["connected"] >= LIMIT, f"the attack did not exceed the limit: {held}"
        assert during["peak"] < LIMIT and during["seconds"] < 20, during
        after = _settle(controller.process.pid, resting + 16, 20)
        assert after <= resting + 16, f"{after} descriptors open after the peers left ({resting} before)"
        again = controller.ask(f"run {TASKS}", 60)
        _check(again, controller.tail())
        print(f"peers {held}; while held: {during['peak']} descriptors at most (limit {LIMIT}), "
              f"{TASKS} tasks in {during['seconds']:.1f} s; after: {after} open ({resting} at rest)")
    finally:
        spawned.update(controller.descendants())
        controller.end()
        deadline = time.monotonic() + 30
        while pids_alive(spawned) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = pids_alive(spawned)
        for pid in leftovers:
            kill(pid)
    assert not leftovers, f"workers still running after their controller ended: {leftovers}"
