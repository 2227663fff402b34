"""Helpers shared by the benchmark modules: timing statistics, child processes, addresses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def environment() -> dict[str, str]:
    """This process's environment with ``bench/`` on PYTHONPATH, so that workers of every peer
    import :mod:`bench_tasks` by name."""
    env = dict(os.environ)
    paths = [str(HERE)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def use_bench_path() -> None:
    """Put ``bench/`` on this process's path and on the path of every process it starts."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = environment()["PYTHONPATH"]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50 and p99 (in seconds) of round-trip times."""
    return {"n": len(seconds), "p50": percentile(seconds, 50), "p99": percentile(seconds, 99)}


def rate(tasks: int, seconds: float) -> dict[str, float]:
    return {"tasks": tasks, "seconds": seconds, "tasks_per_second": tasks / seconds if seconds > 0 else float("inf")}


def listen_url(sock) -> str:
    """Listen ``sock`` (pynng) on a free loopback port; return the URL to dial."""
    listener = sock.listen("tcp://127.0.0.1:0")
    return f"tcp://127.0.0.1:{socket.ntohs(listener.local_address.port)}"


def spawn(*args: str) -> subprocess.Popen:
    """Start ``python ARGS`` with the bench path; its output is dropped."""
    return subprocess.Popen(
        [sys.executable, *args], env=environment(), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def end(process: subprocess.Popen, seconds: float = 10.0) -> None:
    """Wait for a process we started to exit; terminate it (by pid) if it does not."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def clock() -> float:
    return time.perf_counter()
