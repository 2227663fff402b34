"""The controller of test_faults_between_hosts, run on host a: ``ip netns exec A python this.py CONFIG``.

CONFIG (JSON): ``address`` (a's address, where the controller listens, TLS automatic),
``namespace`` (host b, where workers start: ``ip netns exec B <call>``), ``seconds_timeout``,
``workers``, ``rate`` (tasks pushed per second), ``log`` (a file each task execution appends
``index pid`` to). It prints ``{"ready": ...}`` once a worker has connected, pushes tasks until a
line ``stop`` (or the end) of its standard input, waits for every result, and prints one JSON
report: what was pushed, every result, when each worker connected and when the controller let it
go (wall-clock times), and how often a push met a ``crew.LaunchError``.
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from typing import Any

import crew
from crew_local import LocalLauncher

TASK = """
import os, random, time
fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, f"{index} {os.getpid()}\\n".encode())
os.close(fd)
time.sleep(random.random() * 0.02)
(index * index, os.getpid())
"""


class NetnsLauncher(LocalLauncher):
    """Local workers started in another network namespace: another host, as the network sees it."""

    def __init__(self, namespace: str, **options: Any):
        super().__init__(**options)
        self.namespace = namespace

    def launch_worker(self, call: str) -> Any:
        # `ip netns exec` execs the call: the handle's pid is the worker's; the secret travels in
        # the environment LocalLauncher passes, never on this command line.
        return super().launch_worker(f"ip netns exec {shlex.quote(self.namespace)} {call}")


class Watch:
    """When each worker (by pid) was first seen connected, and when it left the fleet."""

    def __init__(self, controller: crew.Controller):
        self.controller = controller
        self.workers: dict[int, list[float | None]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.02):
            now = time.time()
            connected = {i.pid for i in list(self.controller.launcher.instances) if i.state == "connected" and i.pid}
            for pid in connected:
                self.workers.setdefault(pid, [now, None])
            for pid, times in self.workers.items():
                if times[1] is None and pid not in connected:
                    times[1] = now

    def stop(self) -> dict[str, list[float | None]]:
        self.done.set()
        self.thread.join()
        return {str(pid): times for pid, times in self.workers.items()}


def push_until_stopped(controller: crew.Controller, config: dict[str, Any], stop: threading.Event) -> dict[str, int]:
    """Push tasks ``t0, t1, ...`` at ``rate`` per second until ``stop``; return the counts."""
    counts = {"pushed": 0, "launch_errors": 0}
    period = 1.0 / config["rate"]
    start = time.monotonic()
    while not stop.is_set():
        index = counts["pushed"]
        try:
            controller.push(TASK, data={"index": index, "log": config["log"]}, name=f"t{index}")
        except crew.LaunchError:
            counts["launch_errors"] += 1  # reported once; the task was not pushed: push it again
            continue
        counts["pushed"] += 1
        stop.wait(max(0.0, start + counts["pushed"] * period - time.monotonic()))
    return counts


def wait_all(controller: crew.Controller, counts: dict[str, int]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if controller.wait(seconds_timeout=1):
                return
        except crew.LaunchError:
            counts["launch_errors"] += 1


def main(config: dict[str, Any]) -> None:
    timeout = config["seconds_timeout"]
    client = crew.Client(host=config["address"], tls=crew.TLS(mode="automatic"), seconds_timeout=timeout)
    launcher = NetnsLauncher(config["namespace"], workers=config["workers"], seconds_timeout=timeout,
                             seconds_launch=3 * timeout)
    controller = crew.Controller(client, launcher, crashes_max=10_000)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    with controller:
        watch = Watch(controller)
        controller.push("0", name="first")
        controller.wait(seconds_timeout=60)
        first = controller.collect()
        print(json.dumps({"ready": [r.status for r in first], "url": controller.client.url}), flush=True)
        counts = push_until_stopped(controller, config, stop)
        wait_all(controller, counts)
        results = [[r.name, r.status, r.result if r.status == "success" else r.error] for r in controller.collect()]
        report = {**counts, "results": results, "unresolved": controller.unresolved(), "workers": watch.stop()}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
