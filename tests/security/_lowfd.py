"""A local controller under a low descriptor limit, in its own process, driven by lines on stdin.

``python _lowfd.py LIMIT LOG [TRANSPORT]`` sets its soft RLIMIT_NOFILE to LIMIT, sends its log and
its stderr to the file LOG (never to a pipe nobody reads), starts ``local_controller(workers=2,
transport=transport)`` (default ``nng``: the attacks of test_descriptors.py are on TCP) and prints
one JSON line: ``{"url": ..., "pid": ...}``. Then, for each line on stdin:

- ``run N``: push N tasks (``x * 2`` for x in 0..N-1), wait for them (at most 40 s) and print one JSON line with
  the results, how many tasks it pushed (a push may raise), the seconds taken, the error raised (or null), the most descriptors open at once
  since the previous report (sampled every 10 ms), how often the log said "Too many open files", and the workers' pids.

- ``peak``: print ``{"peak": ...}``, the most descriptors open at once since the previous report.

It ends its controller and exits when stdin closes (so it never outlives its parent).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import threading
import time

from crew_local import local_controller

EMFILE = ("Too many open files", "Errno 24")


class Peak(threading.Thread):
    """Samples this process's open descriptors every 10 ms (no event says when they peak)."""

    def __init__(self, limit: int):
        super().__init__(name="lowfd-peak", daemon=True)
        self.limit = limit
        self.most = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.01):
            try:
                count = len(os.listdir("/proc/self/fd"))
            except OSError:  # no descriptor left to list them with
                count = self.limit
            self.most = max(self.most, count)

    def take(self) -> int:
        """The most descriptors open at once since the last call."""
        most, self.most = self.most, 0
        return most


class Counter(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.emfile = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage() + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        self.emfile += any(word in text for word in EMFILE)


def run(controller, count: int, counter: Counter, peak: Peak, prefix: str) -> dict:
    before, started, error, pushed = counter.emfile, time.monotonic(), None, 0
    try:
        for index in range(count):
            controller.push("x * 2", data={"x": index}, name=f"{prefix}_{index}")
            pushed += 1
        if not controller.wait(seconds_timeout=40):
            error = "timed out"
    except Exception as failure:  # reported to the parent, which asserts on it
        error = f"{type(failure).__name__}: {failure}"
    seconds = time.monotonic() - started
    results = sorted((r.name, r.status, r.result) for r in controller.collect())
    pids = [i.handle.pid for i in list(controller.launcher.instances) if getattr(i.handle, "pid", None)]
    return {"results": results, "pushed": pushed, "seconds": seconds, "error": error, "peak": peak.take(),
            "emfile": counter.emfile - before, "workers": pids}


def main(limit: str, log: str, transport: str = "nng") -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limit), hard))
    handle = open(log, "a")
    os.dup2(handle.fileno(), 2)
    logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    counter = Counter()
    logging.getLogger().addHandler(counter)
    controller = local_controller(workers=2, seconds_interval=0.1, seconds_launch=20, transport=transport)
    controller.start()
    peak = Peak(int(limit))
    peak.start()
    try:
        print(json.dumps({"url": controller.client.url, "pid": os.getpid()}), flush=True)
        for turn, line in enumerate(iter(sys.stdin.readline, "")):
            words = line.split()
            if words[:1] == ["run"]:
                print(json.dumps(run(controller, int(words[1]), counter, peak, f"run{turn}")), flush=True)
            elif words[:1] == ["peak"]:
                print(json.dumps({"peak": peak.take()}), flush=True)
    finally:
        controller.terminate()
        peak.stopped.set()


if __name__ == "__main__":
    main(*sys.argv[1:])
