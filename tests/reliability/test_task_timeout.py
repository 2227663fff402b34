"""A task that overruns its seconds_timeout resolves as "timeout", its worker is replaced, and the
other tasks go on."""

from _crewfaults import eventually, pids_alive

SLEEP = "import time\ntime.sleep(seconds)\nindex"


def test_timeout_replaces_the_worker_and_the_queue_goes_on(workers):
    controller = workers.controller(workers=1, seconds_interval=0.1)
    with controller:
        controller.push(SLEEP, data={"seconds": 60, "index": -1}, name="slow", seconds_timeout=0.5)
        names = controller.walk(SLEEP, {"index": list(range(5))}, data={"seconds": 0.0})
        assert controller.wait(seconds_timeout=30)
        results = {result.name: result for result in controller.collect()}
    slow = results.pop("slow")
    assert slow.status == "timeout", slow
    assert "seconds_timeout" in slow.error and "0.5" in slow.error, slow.error
    assert sorted(results) == sorted(names)
    assert all(result.status == "success" for result in results.values()), results
    assert sorted(result.result for result in results.values()) == list(range(5))
    # The worker that ran the slow task left; the others ran on its replacement.
    assert slow.pid is not None and {result.pid for result in results.values()} == {results[names[0]].pid}
    assert slow.pid not in {result.pid for result in results.values()}
    eventually(lambda: not pids_alive([slow.pid]), 10)
    assert sum(row["launches"] for row in controller.summary()) == 2


def test_other_workers_keep_going_while_a_task_overruns(workers):
    controller = workers.controller(workers=2, seconds_interval=0.1)
    with controller:
        controller.push(SLEEP, data={"seconds": 60, "index": -1}, name="slow", seconds_timeout=3)
        controller.walk(SLEEP, {"index": list(range(40))}, data={"seconds": 0.005})
        assert controller.wait(seconds_timeout=30)
        order = [result.name for result in controller.collect()]
    # Results come out in the order they resolved: every quick task before the slow one timed out.
    assert order[-1] == "slow" and len(order) == 41, order
