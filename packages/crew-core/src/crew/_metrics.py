"""Resource samples a worker writes while it runs (enabled by the launcher's ``metrics``).

Each worker appends one line per sample to ``<folder>/<worker id>.csv`` (the id made safe as a
file name: ``/`` becomes ``_``); :func:`crew.metrics.read` reads them back. psutil is imported only when a worker samples.
"""

from __future__ import annotations

import os
import re
import threading
import time

__all__ = ["COLUMNS", "METRICS_SECONDS", "start_sampler"]

METRICS_SECONDS = 1.0
"""The default interval between two samples (the launcher's ``metrics_seconds``)."""
COLUMNS = ("worker", "time", "pid", "cpu_percent", "rss_bytes")
"""The header of every samples file: the worker's id, Unix time in seconds, the worker's pid, its
CPU use since the previous sample (100 is one core busy), its resident memory."""


def start_sampler(folder: str, worker: str | None, seconds_interval: float = METRICS_SECONDS) -> threading.Thread:
    """Append ``worker,time,pid,cpu_percent,rss_bytes`` to ``folder/<worker>.csv`` every interval.

    The first sample is written at once, so a worker that runs shorter than one interval still
    leaves one. A daemon thread: it ends with the worker.
    """
    import psutil

    os.makedirs(folder, exist_ok=True)
    worker = worker or str(os.getpid())
    path = os.path.join(folder, re.sub(r"[^A-Za-z0-9_.-]", "_", worker) + ".csv")
    process = psutil.Process()
    process.cpu_percent()  # the first call only starts psutil's CPU clock

    def sample() -> None:
        with open(path, "a", buffering=1) as handle:
            if handle.tell() == 0:
                handle.write(",".join(COLUMNS) + "\n")
            while True:
                info = process.memory_info()
                handle.write(f"{worker},{time.time():.3f},{process.pid},{process.cpu_percent():.1f},{info.rss}\n")
                time.sleep(seconds_interval)  # a sampling period, not a wait for an event

    thread = threading.Thread(target=sample, name="crew-metrics", daemon=True)
    thread.start()
    return thread
