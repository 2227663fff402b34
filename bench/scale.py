"""Scale of the controller itself: pushing many tasks with no worker, and dispatching to many
simulated workers (``sim_workers.py``)."""

from __future__ import annotations

import gc
import math
import shlex
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

import crew
import psutil
from bench_tasks import inc
from common import HERE, clock, end, environment, rate

SIM = str(HERE / "sim_workers.py")


class NullLauncher(crew.Launcher):
    """Starts nothing: a controller with it never has a worker, whatever it asks for."""

    def launch_workers(self, call: str, n: int) -> list[None]:
        return [None] * n


def _idle_controller() -> crew.Controller:
    launcher = NullLauncher(workers=1, seconds_launch=math.inf)
    controller = crew.Controller(crew.Client(host="127.0.0.1"), launcher)
    controller.start()
    controller.autoscale(False)
    return controller


def _drained(controller, seconds: float = 600.0) -> None:
    """Wait until the controller's loop thread has taken every pushed task off its inbox."""
    inbox = controller._loop.events  # the loop's inbox (private; this is a benchmark)
    deadline = time.monotonic() + seconds
    while not inbox.empty():
        if time.monotonic() > deadline:
            raise TimeoutError("the controller loop did not absorb the pushed tasks")
        time.sleep(0.01)
    time.sleep(0.05)


def push(tasks: int) -> dict[str, Any]:
    """Push ``tasks`` trivial tasks with ``scale=False`` and no worker: seconds per push and the
    growth of this process's resident memory per queued task. Leaves the controller running
    (the caller's process exits right after)."""
    controller = _idle_controller()
    controller.push(inc, args=(0,), scale=False)  # warm the command cache
    _drained(controller)
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    push_ = controller.push
    start = clock()
    for i in range(tasks):
        push_(inc, args=(i,), scale=False)
    seconds = clock() - start
    _drained(controller)
    after = process.memory_info().rss
    return {
        "tasks": tasks, "seconds": seconds, "seconds_per_push": seconds / tasks,
        "rss_bytes": after - before, "rss_bytes_per_task": (after - before) / tasks,
    }


def push_main(tasks: int, rounds: int, main_function) -> dict[str, Any]:
    """µs per ``push`` of a function defined in ``__main__`` (shipped by value) against one pickled
    by reference, ``tasks`` pushes of each in turn, ``rounds`` times, no worker; the best round of each.
    Both functions were pushed once before (crew serializes a by-value function once and again
    only when it changes), so this is the steady state of a script's loop."""
    if main_function.__module__ != "__main__":
        raise AssertionError(f"{main_function!r} is not defined in __main__")
    controller = _idle_controller()
    push_ = controller.push
    best = {"reference": math.inf, "main": math.inf}
    for function in (inc, main_function):
        push_(function, args=(0,), scale=False)
    _drained(controller)
    for _ in range(rounds):
        for key, function in (("reference", inc), ("main", main_function)):
            gc.collect()
            start = clock()
            for i in range(tasks):
                push_(function, args=(i,), scale=False)
            best[key] = min(best[key], (clock() - start) / tasks)
            _drained(controller)
    return {"tasks": tasks, "rounds": rounds, "seconds_per_push_reference": best["reference"],
            "seconds_per_push_main": best["main"]}


def traced(tasks: int) -> dict[str, Any]:
    """Python-heap bytes per queued task (tracemalloc), and the allocation sites that hold them."""
    controller = _idle_controller()
    controller.push(inc, args=(0,), scale=False)
    _drained(controller)
    gc.collect()
    tracemalloc.start(1)
    first = tracemalloc.take_snapshot()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(tasks):
        controller.push(inc, args=(i,), scale=False)
    _drained(controller)
    held = tracemalloc.get_traced_memory()[0] - base
    top = tracemalloc.take_snapshot().compare_to(first, "lineno")[:8]
    tracemalloc.stop()
    sites = [{"site": str(stat.traceback[0]), "bytes_per_task": stat.size_diff / tasks} for stat in top]
    return {"tasks": tasks, "bytes_per_task": held / tasks, "sites": sites}


class SimLauncher(crew.Launcher):
    """Starts simulated workers: ``per_process`` dialers in each of a few processes."""

    def __init__(self, *args: Any, per_process: int = 250, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.per_process = per_process

    def launch_workers(self, call: str, n: int) -> list[subprocess.Popen]:
        words = shlex.split(call)
        url = words[3]
        controller = words[words.index("--controller") + 1]
        launch = words[words.index("--launch") + 1]
        env = environment()
        env.update(self.environment)
        handles: list[subprocess.Popen] = []
        while len(handles) < n:
            count = min(self.per_process, n - len(handles))
            process = subprocess.Popen(
                [sys.executable, SIM, url, controller, launch, str(count)], env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            handles += [process] * count
        return handles

    def terminate_workers(self, handles: Sequence[subprocess.Popen]) -> None:
        processes = list({id(p): p for p in handles}.values())
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            end(process)


def simulated(workers: int, tasks: int, per_process: int) -> dict[str, Any]:
    """Throughput of ``tasks`` trivial tasks dispatched to ``workers`` simulated workers."""
    launcher = SimLauncher(workers=workers, seconds_launch=300, per_process=per_process)
    controller = crew.Controller(crew.Client(host="127.0.0.1"), launcher)
    with controller:
        start = clock()
        for i in range(workers):
            controller.push(inc, args=(i,), scale=False)
        controller.scale()
        deadline = time.monotonic() + 300
        while sum(i.state == "connected" for i in list(launcher.instances)) < workers:
            if time.monotonic() > deadline:
                raise TimeoutError("simulated workers did not all connect")
            time.sleep(0.01)
        controller.wait()
        controller.collect()
        connect = clock() - start
        runs = []
        for _ in range(2):
            begin = clock()
            for i in range(tasks):
                controller.push(inc, args=(i,), scale=False)
            controller.wait()
            results = controller.collect()
            runs.append(clock() - begin)
            if len(results) != tasks or any(r.status != "success" for r in results):
                raise AssertionError("simulated workers lost tasks")
        busy = len({r.worker for r in results})
    out = rate(tasks, min(runs))
    out.update({"workers": workers, "connect_seconds": connect, "workers_used": busy})
    return out
