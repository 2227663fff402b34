"""A controller killed with SIGKILL on a real cluster (SLURM, Son of Grid Engine) leaves nothing.

The controller runs in its own process with 3 workers as one array job; the test SIGKILLs it and
watches the scheduler (through ``crew workers -l KIND --json``, the monitor users have): within
``seconds_timeout`` plus the scheduler's delay, no job of that controller is pending or running.

- ``busy``: every worker is connected and running a task; each sees the connection close and exits.
- ``dialling``: the controller dies as soon as the array job is submitted, and the workers'
  interpreter waits SLOW_START seconds before it starts, so no worker has dialled in. Such a worker
  never reaches a controller: it retries for its ``seconds_timeout``, then exits, so its job can
  outlive the controller by the scheduler's start delay, the worker's start and ``seconds_timeout``.
  That is the bound this case checks.

Needs the real clusters (tests/clusters/*/start.sh); skipped without them, failed in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

CONTROLLER = str(Path(__file__).with_name("_cluster_controller.py"))
TIMEOUT = 8.0  # the workers' seconds_timeout
SCHEDULER_DELAY = 12.0  # start a pending job, run its script, start Python; end a job after its process
SLOW_START = 3.0  # _cluster_controller.SLOW_START: the dialling workers' interpreter waits this long
LIVE = ("pending", "running")
CANCEL = {"slurm": ["scancel"], "sge": ["qdel"]}


def _available(kind: str) -> None:
    command = {"slurm": "sbatch", "sge": "qsub"}[kind]
    if shutil.which(command) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{command} is missing in CI: tests/clusters/{kind}/start.sh must have run")
        pytest.skip(f"{kind} is not installed here (tests/clusters/{kind}/start.sh)")


def live_jobs(kind: str, job_name: str) -> list[dict]:
    """The controller's jobs ``crew workers -l KIND`` lists as pending or running."""
    listed = subprocess.run([sys.executable, "-m", "crew", "workers", "-l", kind, "--json"],
                            capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    return [row for row in json.loads(listed.stdout or "[]") if row["name"] == job_name and row["state"] in LIVE]


@pytest.mark.parametrize("mode", ["busy", "dialling"])
@pytest.mark.parametrize("kind", ["slurm", "sge"])
def test_killed_controller_leaves_no_job(kind, mode, tmp_path):
    _available(kind)
    env = {**os.environ, "SGE_ROOT": os.environ.get("SGE_ROOT", "/var/lib/gridengine"),
           "SGE_CELL": os.environ.get("SGE_CELL", "default")}
    name = f"killed{uuid.uuid4().hex[:6]}"
    controller = subprocess.Popen(
        [sys.executable, CONTROLLER, kind, name, str(tmp_path / "scripts"), mode, str(TIMEOUT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )
    os.environ.update({key: env[key] for key in ("SGE_ROOT", "SGE_CELL")})
    seen: dict = {}
    try:
        line = controller.stdout.readline()
        assert line, controller.stderr.read()[-3000:] if controller.poll() is not None else "no line"
        seen = json.loads(line)
        assert seen["job_ids"] and (mode == "dialling" or len(seen["pids"]) == 3)
        assert live_jobs(kind, seen["job_name"]), "the controller's jobs are not listed before the kill"
        os.kill(controller.pid, signal.SIGKILL)
        killed = time.monotonic()
        controller.wait(timeout=10)
        bound = TIMEOUT + SCHEDULER_DELAY + (SLOW_START if mode == "dialling" else 0)
        left = live_jobs(kind, seen["job_name"])
        while left and time.monotonic() - killed < bound:
            time.sleep(0.5)
            left = live_jobs(kind, seen["job_name"])
        elapsed = time.monotonic() - killed
        assert not left, f"jobs still live {elapsed:.1f} s after the controller's SIGKILL: {left}"
        print(f"{kind} {mode}: no job left {elapsed:.1f} s after the SIGKILL")
    finally:
        if controller.poll() is None:
            os.kill(controller.pid, signal.SIGKILL)
            controller.wait(timeout=10)
        for stream in (controller.stdout, controller.stderr):
            stream.close()
        if seen.get("job_ids") and live_jobs(kind, seen["job_name"]):
            subprocess.run(CANCEL[kind] + [str(job) for job in seen["job_ids"]], capture_output=True, check=False)
