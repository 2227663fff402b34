"""Chaos: thousands of tasks while a separate process SIGKILLs random workers.

Every task resolves exactly once (success, or "crash" after crashes_max retries), none is lost or
duplicated, and the summary counts the crashes.
"""

import os
import shlex
import time
from pathlib import Path

import crew

KILLER = str(Path(__file__).with_name("_killer.py"))
TASK = "import time\ntime.sleep(0.002)\nindex"
POISON = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"  # kills its worker every time
TASKS = 5000
POISONS = 8
CRASHES_MAX = 2


def test_chaos_every_task_resolves_exactly_once(workers):
    controller = workers.controller(workers=3, crashes_max=CRASHES_MAX, seconds_interval=0.05, seconds_launch=20)
    controller.start()
    words = shlex.split(controller.launcher.call())
    controller_id = words[words.index("--controller") + 1]
    killer = workers.python(KILLER, str(os.getpid()), controller_id, "0.1", "0.4", "2024")
    assert killer.stdout.readline().strip() == "ready", killer.stderr.read()
    expected = {}
    every = TASKS // POISONS
    for index in range(TASKS):
        expected[controller.push(TASK, data={"index": index}, scale=False)] = index
        if index % every == every // 2:
            expected[controller.push(POISON, name=f"poison_{index}", scale=False)] = None
    controller.scale()
    launch_errors = []
    deadline = time.monotonic() + 50
    try:
        while True:
            try:
                finished = controller.wait(seconds_timeout=max(deadline - time.monotonic(), 0))
                break
            except crew.LaunchError as error:  # too many launches killed before they dialled in
                launch_errors.append(error)
    finally:
        killer.stdin.write("stop\n")
        killer.stdin.flush()
        killer.wait(timeout=10)
    killed = [int(line) for line in killer.stdout.read().split()]
    assert finished, f"{controller.unresolved()} tasks unresolved after 50 s"
    assert killer.returncode == 0, killer.stderr.read()
    results = controller.collect()
    summary = controller.summary()
    controller.terminate()

    names = [result.name for result in results]
    assert len(names) == len(set(names)), "a task was returned twice"
    assert set(names) == set(expected), "a task was lost or invented"
    assert controller.resolved() == len(expected) and controller.unresolved() == 0
    assert controller.pop() is None

    crashed = [result for result in results if result.status == "crash"]
    assert {result.status for result in results} <= {"success", "crash"}, {r.status for r in results}
    for result in results:
        if result.status == "success":
            assert result.result == expected[result.name], result
    poisoned = {name for name, index in expected.items() if index is None}
    assert poisoned <= {result.name for result in crashed}, "a poison task did not end as a crash"
    for result in crashed:
        assert f"{CRASHES_MAX + 1} times" in result.error and f"crashes_max={CRASHES_MAX}" in result.error, result
    # Each crashed task was charged crashes_max + 1 times; each worker death charges at most one task.
    crashes = sum(row["crashes"] for row in summary)
    launches = sum(row["launches"] for row in summary)
    assert len(crashed) * (CRASHES_MAX + 1) <= crashes < launches, (crashes, launches)
    assert len(killed) >= 10, f"the killer killed only {len(killed)} workers"
    successes = len(results) - len(crashed)
    assert successes >= TASKS * 0.95, f"only {successes} of {TASKS} tasks succeeded"
