"""The controller process killed with SIGKILL: every worker it launched exits by itself."""

import json
import signal
from pathlib import Path

import pytest
from _crewfaults import eventually, kill, pids_alive, slow_python

DOOMED = str(Path(__file__).with_name("_doomed_controller.py"))


@pytest.mark.parametrize("mode", ["busy", "idle", "dialling"])
def test_workers_exit_when_their_controller_is_killed(workers, tmp_path, mode):
    controller = workers.python(DOOMED, mode, slow_python(tmp_path, delay=2))
    line = controller.stdout.readline()
    assert line, controller.stderr.read()
    pids = json.loads(line)
    assert len(pids) == 2 and pids_alive(pids) == pids
    try:
        kill(controller.pid, signal.SIGKILL)
        controller.wait(timeout=10)
        # Connected workers see the connection close at once; dialling ones give up after
        # their seconds_timeout (3 s here, after the 2 s the slow interpreter waits).
        eventually(lambda: not pids_alive(pids), 15, interval=0.05)
    finally:
        for pid in pids_alive(pids):
            kill(pid)
