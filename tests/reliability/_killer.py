"""A chaos monkey, run as its own process by the chaos test.

    python _killer.py PARENT_PID CONTROLLER_ID MIN_SECONDS MAX_SECONDS SEED

Every MIN..MAX seconds it SIGKILLs one random worker of that controller, connected or still
starting: a child process of PARENT_PID whose command line runs ``crew.worker`` with
``--controller CONTROLLER_ID``. It prints
each pid it killed, one per line, and stops when its standard input closes or reads a line.
"""

from __future__ import annotations

import os
import random
import select
import signal
import sys

import psutil


def _targets(parent: psutil.Process, controller: str) -> list[int]:
    pids = []
    for child in parent.children():
        try:
            words = child.cmdline()
            if "crew.worker" in words and controller in words and child.status() != psutil.STATUS_ZOMBIE:
                pids.append(child.pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return pids


def main(argv: list[str]) -> None:
    parent_pid, controller, low, high, seed = int(argv[0]), argv[1], float(argv[2]), float(argv[3]), int(argv[4])
    parent = psutil.Process(parent_pid)
    chooser = random.Random(seed)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], chooser.uniform(low, high))
        if ready:
            return
        pids = _targets(parent, controller)
        if pids:
            pid = chooser.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            print(pid, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
