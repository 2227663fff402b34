"""Resource samples a worker writes while it runs (enabled by the launcher's ``metrics``)."""

from __future__ import annotations

import os
import threading
import time


def start_sampler(folder: str, worker: str | None, seconds_interval: float = 1.0) -> threading.Thread:
    """Append ``time,pid,cpu_percent,rss_bytes`` to ``folder/<worker>.csv`` every interval."""
    import psutil

    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{worker or os.getpid()}.csv")
    process = psutil.Process()

    def sample() -> None:
        with open(path, "a", buffering=1) as handle:
            if handle.tell() == 0:
                handle.write("time,pid,cpu_percent,rss_bytes\n")
            while True:
                info = process.memory_info()
                handle.write(f"{time.time():.3f},{process.pid},{process.cpu_percent():.1f},{info.rss}\n")
                time.sleep(seconds_interval)

    thread = threading.Thread(target=sample, name="crew-metrics", daemon=True)
    thread.start()
    return thread
