"""Helpers shared by the reliability and security tests.

:class:`Workers` builds local controllers and remembers every worker process they (or the test)
start, so that a test can end them all by pid and check that none is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable

import crew
from crew.testing import eventually, pids_alive
from crew_local import local_controller
from plumbum import local

__all__ = ["Workers", "tracked_workers", "slow_python", "connected_pids", "kill", "eventually", "pids_alive"]


def connected_pids(controller: crew.Controller) -> list[int]:
    """Pids of the workers now connected to ``controller``."""
    return [i.pid for i in list(controller.launcher.instances) if i.state == "connected" and i.pid]


def kill(pid: int, signum: int = signal.SIGKILL) -> bool:
    """Send ``signum`` to one process by pid; False if it was already gone."""
    try:
        os.kill(pid, signum)
        return True
    except ProcessLookupError:
        return False


_SLOW_PYTHON = """#!{python}
import os, sys, time
time.sleep({delay!r})
deadline = time.monotonic() + 120
while {gate!r} and not os.path.exists({gate!r}) and time.monotonic() < deadline:
    time.sleep(0.02)
os.execv(sys.executable, [sys.executable] + sys.argv[1:])
"""


def slow_python(folder: str | os.PathLike, delay: float = 0.0, gate: str | os.PathLike | None = None) -> str:
    """Write an interpreter for launchers' ``python`` option that waits ``delay`` seconds, then
    until the file ``gate`` exists (at most 120 s), before it becomes this Python; return its path."""
    path = os.path.join(os.fspath(folder), "slow-python")
    with open(path, "w") as handle:
        handle.write(_SLOW_PYTHON.format(python=sys.executable, delay=float(delay), gate=os.fspath(gate or "")))
    os.chmod(path, 0o755)
    return path


class Workers:
    """Local controllers whose worker processes are tracked by pid, and ended by pid."""

    def __init__(self) -> None:
        self.controllers: list[crew.Controller] = []
        self.processes: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def controller(self, **options: Any) -> crew.Controller:
        """``crew_local.local_controller(**options)``, watched."""
        return self.watch(local_controller(**options))

    def watch(self, controller: crew.Controller) -> crew.Controller:
        """Record every worker process the controller's launcher starts from now on."""
        launcher = controller.launcher
        original: Callable[[str], subprocess.Popen] = launcher.launch_worker

        def launch_worker(call: str) -> subprocess.Popen:
            process = original(call)
            with self._lock:
                self.processes.append(process)
            return process

        launcher.launch_worker = launch_worker  # type: ignore[method-assign]
        self.controllers.append(controller)
        return controller

    def spawn(self, call: str, environment: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Start one worker by hand from a call line (no secret unless ``environment`` has it)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("CREW_")}
        env.update(environment or {})
        process = local["sh"]["-c", f"exec {call}"].popen(
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with self._lock:
            self.processes.append(process)
        return process

    def python(self, script: str, *args: str) -> subprocess.Popen:
        """Start ``python script args...`` (a helper process of the test), tracked like a worker."""
        process = local[sys.executable][(script, *args)].popen(
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        with self._lock:
            self.processes.append(process)
        return process

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [process.pid for process in self.processes]

    def close(self, seconds: float = 30.0) -> list[int]:
        """Terminate every controller, wait for every process to end; kill (by pid) and return
        those still running after ``seconds``."""
        for controller in self.controllers:
            controller.terminate()
        for process in list(self.processes):
            if process.stdin is not None:
                process.stdin.close()  # helper processes stop when their input closes
        deadline = time.monotonic() + seconds
        while pids_alive(self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftovers = pids_alive(self.pids)
        for pid in leftovers:
            kill(pid)
        for process in list(self.processes):
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return leftovers


def tracked_workers():
    """The ``workers`` fixture: a :class:`Workers`; afterwards checks that none of its processes is left."""
    tracker = Workers()
    yield tracker
    leftovers = tracker.close()
    assert not leftovers, f"processes still running after terminate(): {leftovers}"
