"""A chaos monkey, run as its own process by the chaos test.

    python _killer.py PARENT_PID CONTROLLER_ID MIN_SECONDS MAX_SECONDS SEED

Every MIN..MAX seconds it SIGKILLs one random running worker of that controller: a child process
of PARENT_PID whose command line runs ``crew.worker`` with ``--controller CONTROLLER_ID`` and that
is connected (it has an established TCP connection; see test_worker_lost_before_dialling_in for
workers killed while they start). It prints
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
            if "crew.worker" not in words or controller not in words or child.status() == psutil.STATUS_ZOMBIE:
                continue
            connected = any(c.status == psutil.CONN_ESTABLISHED for c in child.net_connections(kind="tcp"))
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if connected:
            pids.append(child.pid)
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
