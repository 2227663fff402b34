"""A controller process for test_controller_killed: the test SIGKILLs it.

    python _doomed_controller.py MODE SLOW_PYTHON

MODE is ``busy`` (both workers run a long task), ``idle`` (both workers finished their tasks) or
``dialling`` (the workers were launched through SLOW_PYTHON, which waits before starting Python,
so they have not dialled in yet). It prints one JSON line with the worker pids, then waits to be
killed (it exits by itself when its standard input closes).
"""

from __future__ import annotations

import json
import sys

from _crewfaults import Workers, connected_pids, eventually


def main(mode: str, slow_python: str) -> None:
    tracker = Workers()
    options = {"python": slow_python} if mode == "dialling" else {}
    controller = tracker.controller(workers=2, seconds_timeout=3, **options)
    controller.start()
    if mode in ("busy", "idle"):
        controller.walk("import time\ntime.sleep(seconds)", {"seconds": [600, 600] if mode == "busy" else [0, 0]})
        pids = eventually(lambda: len(connected_pids(controller)) == 2 and connected_pids(controller), 30)
        if mode == "idle":
            assert controller.wait(seconds_timeout=30)
    else:
        controller.walk("index", {"index": [1, 2]})
        pids = eventually(lambda: len(tracker.pids) == 2 and tracker.pids, 30)
    print(json.dumps(pids), flush=True)
    sys.stdin.read()
    controller.terminate()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
