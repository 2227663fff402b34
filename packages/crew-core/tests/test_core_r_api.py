"""R crew's controller API: error modes of pop/collect, summary(by="controller"), launch(n),
descale(), crashes(name), the sequential controller and controller groups acting on subsets."""

from __future__ import annotations

import os
import warnings

import crew
import pytest
from crew.testing import pids_alive
from crew_local import local_controller

CRASH_ONCE = "import os, pathlib\np = pathlib.Path(marker)\nif not p.exists():\n    p.touch()\n    os._exit(1)\nos.getpid()"


@pytest.fixture
def controller():
    made = local_controller(workers=2, seconds_interval=0.05).start()
    yield made
    pids = [row["pid"] for row in made.summary() if row["pid"]]
    made.terminate()
    assert not pids_alive(pids) or made.wait(seconds_timeout=0)


def _resolved(controller, count):
    assert controller.wait(seconds_timeout=60)
    return count


def test_pop_error_modes(controller):
    controller.push("1/0", name="bad")
    _resolved(controller, 1)
    with pytest.raises(crew.TaskError, match="ZeroDivisionError") as caught:
        controller.pop(error="stop")
    assert caught.value.result.name == "bad"
    assert controller.empty()  # taken out before it was raised: nothing is lost
    controller.push("1/0", name="bad2")
    _resolved(controller, 1)
    with pytest.warns(UserWarning, match="1 of 1 tasks did not succeed"):
        assert controller.pop(error="warn").name == "bad2"
    controller.push("2", name="fine")
    _resolved(controller, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert controller.pop(error="stop").result == 2
    with pytest.raises(crew.SettingError, match="^error must be one of"):
        controller.pop(error="loud")


def test_collect_error_modes_take_everything_first(controller):
    controller.walk("1 / x", {"x": [1, 0, 2]}, names=["one", "zero", "two"])
    _resolved(controller, 3)
    with pytest.raises(crew.TaskError) as caught:
        controller.collect(error="stop")
    assert caught.value.result.name == "zero" and controller.empty()
    assert controller.collect(error="silent") == []


def test_summary_by_controller_has_r_crews_columns(controller, tmp_path):
    controller.walk("1 / x", {"x": [1, 0]})
    controller.push("import warnings; warnings.warn('careful'); 1", name="warned")
    controller.push("import time; time.sleep(60)", name="slow")
    assert controller.wait(mode="one", seconds_timeout=60)
    controller.cancel(["slow"])
    _resolved(controller, 4)
    (row,) = controller.summary(by="controller")
    assert list(row) == ["controller", "tasks", "seconds", "success", "error", "crash", "cancel", "timeout",
                         "warning"]
    assert row["controller"] == controller.name
    assert (row["tasks"], row["success"], row["error"], row["cancel"], row["crash"], row["timeout"]) == (4, 2, 1, 1, 0, 0)
    assert row["warning"] == 1 and row["seconds"] >= 0
    assert len(controller.summary()) == 2  # by worker: one row per place
    with pytest.raises(crew.SettingError, match="^by must be one of"):
        controller.summary(by="task")


def test_launch_n_and_descale(controller):
    controller.descale()
    assert controller.launch(5) == 2  # never more than workers
    assert controller.launch(1) == 0
    assert sum(row["launches"] for row in controller.summary()) == 2
    with pytest.raises(crew.SettingError, match="^n must be"):
        controller.launch(0)


def test_crashes_counts_the_times_a_task_lost_its_worker(controller, tmp_path):
    controller.push(CRASH_ONCE, data={"marker": str(tmp_path / "crashed")}, name="crashy")
    controller.push("1", name="calm")
    _resolved(controller, 2)
    results = {result.name: result for result in controller.collect()}
    assert results["crashy"].status == "success" and results["crashy"].result != os.getpid()
    assert controller.crashes("crashy") == 1
    assert controller.crashes("calm") == 0 and controller.crashes("unknown") == 0


# ---------------------------------------------------------------------- the sequential controller
def test_sequential_controller_runs_each_task_in_this_process_at_push():
    with crew.sequential_controller(name="here") as controller:
        name = controller.push(os.getpid)
        assert controller.results_ready() == 1 and controller.unresolved() == 0  # ran at push
        result = controller.pop()
        assert (result.name, result.result, result.pid, result.controller) == (name, os.getpid(), os.getpid(), "here")
        controller.push("import warnings; warnings.warn('careful'); 1 / 0", seed=3)
        failed = controller.pop()
        assert failed.status == "error" and "ZeroDivisionError" in failed.error and failed.seed == 3
        assert failed.warnings == ["UserWarning: careful"]
        assert [r.result for r in controller.map(pow, {"base": [2, 3], "exp": [2, 2]})] == [4, 9]
        with controller.executor() as pool:
            assert pool.submit(pow, 2, 5).result() == 32
        assert controller.summary(by="controller")[0]["tasks"] == 5
        controller.push("import time; time.sleep(0.05)", seconds_timeout=0.01)
        assert controller.pop().status == "timeout"
    assert sorted(vars(result)) == sorted(vars(crew.Result("x", "y")))


def test_sequential_controller_resets_globals_like_a_worker():
    with crew.sequential_controller() as controller:
        controller.push("leaked = 1\nleaked")
        controller.push("'leaked' in globals()")
        assert [result.result for result in controller.collect()] == [1, False]


# ---------------------------------------------------------------------- groups on subsets
@pytest.fixture
def group():
    members = [local_controller(name=name, workers=1, seconds_interval=0.05) for name in ("a", "b")]
    with crew.ControllerGroup(members) as made:
        yield made


def test_group_pop_collect_wait_and_summary_on_a_subset(group):
    group.push("1", controller="a", name="in_a")
    group.push("2", controller="b", name="in_b")
    assert group.wait(mode="one", seconds_timeout=60, controllers=["b"])
    assert group.wait(seconds_timeout=60, controllers=["a"])
    assert group.pop(controllers=["b"]).name == "in_b"
    assert group.pop(controllers=["b"]) is None
    assert [result.name for result in group.collect(controllers=["a"])] == ["in_a"]
    group.push("3", controller="a", name="again")
    assert group.wait(seconds_timeout=60)
    frame = group.collect(frame=True, controllers=["a"])  # pandas is in the test extra
    assert list(frame["name"]) == ["again"]
    assert [row["controller"] for row in group.summary(by="controller", controllers=["b"])] == ["b"]
    with pytest.raises(crew.SettingError, match="controllers must name members"):
        group.pop(controllers=["c"])


def test_group_cancel_on_a_subset(group):
    group.push("import time; time.sleep(60)", controller="a", name="slow_a")
    group.push("import time; time.sleep(0.5); 2", controller="b", name="slow_b")
    group.cancel(all=True, controllers=["a"])
    assert group.wait(seconds_timeout=60)
    results = {result.name: result for result in group.collect()}
    assert results["slow_a"].status == "cancel"
    assert (results["slow_b"].status, results["slow_b"].result) == ("success", 2)


def test_a_remote_traceback_starts_at_the_tasks_own_code(controller):
    (result,) = controller.map(lambda x: 1 / x, {"x": [0]}, error="silent")
    assert result.traceback.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError" in result.traceback
    assert "crew" not in result.traceback.split("ZeroDivisionError")[0].replace("<crew task>", "")
