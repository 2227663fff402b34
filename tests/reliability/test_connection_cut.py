"""Connections cut in the middle (by a TCP proxy between the workers and the controller): the
tasks in flight are run again, none is lost or returned twice."""

import os
import threading

import crew
from _crewfaults import eventually, pids_alive
from _proxy import Proxy, ProxyLauncher

TASKS = 600
BLOCKING = """
import os, time
open(os.path.join(folder, f"run-{os.getpid()}"), "w").close()
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.01)
os.getpid()
"""


def _proxied(tracker, count=1, seconds_timeout=60.0, **options):
    client = crew.Client(host="127.0.0.1", seconds_timeout=seconds_timeout)
    launcher = ProxyLauncher(workers=count, seconds_interval=0.05, seconds_timeout=seconds_timeout)
    controller = tracker.watch(crew.Controller(client, launcher, **options))
    controller.start()
    proxy = Proxy(client.port)
    launcher.via = f"tcp://127.0.0.1:{proxy.port}"
    return controller, proxy


def _runs(folder):
    return sorted(name for name in os.listdir(folder) if name.startswith("run-"))


def test_a_task_in_flight_is_run_again_after_a_cut(workers, tmp_path):
    controller, proxy = _proxied(workers)
    try:
        controller.push(BLOCKING, data={"folder": str(tmp_path)}, name="blocked")
        (first,) = eventually(lambda: len(_runs(tmp_path)) == 1 and _runs(tmp_path), 30, interval=0.02)
        assert proxy.cut() == 1
        eventually(lambda: len(_runs(tmp_path)) == 2, 30, interval=0.02)
        (tmp_path / "go").touch()
        assert controller.wait(seconds_timeout=30)
        results = controller.collect()
    finally:
        controller.terminate()
        proxy.close()
    assert [result.name for result in results] == ["blocked"]
    (result,) = results
    assert result.status == "success" and result.result == result.pid, result
    assert f"run-{result.pid}" in _runs(tmp_path) and f"run-{result.pid}" != first  # the second run returned it
    assert sum(row["crashes"] for row in controller.summary()) == 1
    assert proxy.accepted == 2


def test_repeated_cuts_lose_and_duplicate_nothing(workers):
    controller, proxy = _proxied(workers, count=2, crashes_max=10_000)
    stop = threading.Event()
    cuts = []

    def cutter():
        while not stop.wait(0.5):
            cuts.append(proxy.cut())

    thread = threading.Thread(target=cutter, daemon=True)
    try:
        names = controller.walk("import time\ntime.sleep(0.002)\nindex", {"index": list(range(TASKS))})
        thread.start()
        finished = controller.wait(seconds_timeout=45)
        stop.set()
        thread.join()
        results = controller.collect()
    finally:
        stop.set()
        controller.terminate()
        proxy.close()
    assert finished, f"{controller.unresolved()} tasks unresolved"
    assert sorted(result.name for result in results) == sorted(names)
    assert all(result.status == "success" for result in results), [r for r in results if not r.ok][:3]
    assert sorted(result.result for result in results) == list(range(TASKS))
    assert controller.resolved() == TASKS and controller.pop() is None
    assert sum(cuts) >= 3, cuts


def test_a_silent_partition_is_noticed(workers, tmp_path):
    """The network goes quiet without closing anything: both sides notice within seconds_timeout,
    the worker exits and its task runs again elsewhere."""
    controller, proxy = _proxied(workers, seconds_timeout=2)
    try:
        controller.push(BLOCKING, data={"folder": str(tmp_path)}, name="blocked")
        (first,) = eventually(lambda: len(_runs(tmp_path)) == 1 and _runs(tmp_path), 30, interval=0.02)
        assert proxy.freeze() == 1
        eventually(lambda: len(_runs(tmp_path)) == 2, 10, interval=0.05)
        (tmp_path / "go").touch()
        assert controller.wait(seconds_timeout=15)
        (result,) = controller.collect()
        assert result.status == "success" and f"run-{result.pid}" != first
        eventually(lambda: not pids_alive([int(first[4:])]), 15)
    finally:
        controller.terminate()
        proxy.close()
