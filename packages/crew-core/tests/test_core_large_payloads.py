"""No task is lost when a worker's connection backs up.

NNG's polyamorous pair socket silently drops a frame sent to a worker whose connection is still
writing the previous one. A stopped worker (SIGSTOP) reads nothing, so its connection backs up
after a few megabytes; the controller's one-frame-in-flight window must keep every task.
The scenario runs as a script of its own (a fresh interpreter, as users run crew).
"""

import subprocess
import sys

SCENARIO = r'''
import os, signal, time
from crew_local import local_controller

def length(payload):
    return len(payload)

with local_controller(workers=1) as controller:
    controller.push(length, args=(b"warm",))
    assert controller.wait(seconds_timeout=60)
    pid = controller.pop().pid
    payload = os.urandom(1_000_000)
    os.kill(pid, signal.SIGSTOP)
    try:
        names = [controller.push(length, args=(payload,)) for _ in range(40)]
        time.sleep(2)  # the controller sends (or, dropping frames, loses) tasks to the stopped worker
    finally:
        os.kill(pid, signal.SIGCONT)
    finished = controller.wait(seconds_timeout=30)
    results = controller.collect()
    print(finished, controller.unresolved(), len(results), sorted(r.name for r in results) == sorted(names),
          {r.result for r in results} == {len(payload)}, {r.pid for r in results} == {pid})
'''


def test_tasks_sent_while_a_worker_reads_nothing_all_resolve():
    done = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True", "0", "40", "True", "True", "True"], done.stdout


def test_results_larger_than_one_part_come_back_whole():
    """A result over the 1 MiB a controller reads at once travels in parts and is joined."""
    from crew_local import local_controller

    with local_controller(workers=1, crashes_max=0) as controller:
        sizes = [2**20 - 100, 2**20 + 100, 3 * 2**20 + 7, 9 * 2**20]
        names = [controller.push("bytes(size)", data={"size": size}) for size in sizes]
        assert controller.wait(seconds_timeout=120)
        results = {result.name: result for result in controller.collect()}
        assert [(results[name].status, len(results[name].result)) for name in names] == [
            ("success", size) for size in sizes]
