"""A controller on a real cluster, for test_controller_killed_cluster: the test SIGKILLs it.

    python _cluster_controller.py KIND NAME SCRIPTS MODE SECONDS_TIMEOUT

KIND is ``slurm`` or ``sge``; the controller (named NAME, scripts in SCRIPTS) runs 3 workers as
one array job. MODE ``busy``: every worker has connected and runs a long task. MODE
``dialling``: killed as soon as the array job is submitted, before any worker dials in (their jobs
may still be pending; their interpreter waits SLOW_START seconds before it becomes Python). Prints one JSON line (job ids, job name, connected worker pids), then waits
to be killed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from _crewfaults import slow_python
from crew.testing import eventually

SLOW_START = 3.0


def main(kind: str, name: str, scripts: str, mode: str, seconds_timeout: float) -> None:
    if kind == "slurm":
        from crew_slurm import slurm_controller as helper
    else:
        from crew_sge import sge_controller as helper
    options = {"python": slow_python(_folder(scripts), delay=SLOW_START)} if mode == "dialling" else {}
    controller = helper(name=name, host="127.0.0.1", script_directory=scripts, workers=3,
                        seconds_timeout=seconds_timeout, **options)
    controller.start()
    launcher = controller.launcher
    controller.walk("import time\ntime.sleep(seconds)", {"seconds": [600] * 3})
    if mode == "busy":
        connected = lambda: [i.pid for i in launcher.instances if i.state == "connected"]
        pids = eventually(lambda: len(connected()) == 3 and connected(), 120)
    else:
        eventually(lambda: launcher.job_ids, 60)
        pids = []
    print(json.dumps({"job_ids": launcher.job_ids, "job_name": launcher.job_name, "pids": pids}), flush=True)
    time.sleep(3600)


def _folder(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
