"""End to end through the controller helpers: a real Son of Grid Engine, and the LSF, PBS Pro and
TORQUE stand-in commands (tests/clusters/{lsf,pbs}/bin).

The Grid Engine tests are marked ``sge``; they skip only when Grid Engine is not installed and
the ``CI`` variable is unset (CI starts it with tests/clusters/sge/start.sh).
"""

from __future__ import annotations

import datetime
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import crew
import crew.testing
import plumbum
import pytest
from crew.testing import eventually
from crew_sge import (
    LsfMonitor,
    PbsMonitor,
    SgeLauncher,
    SgeMonitor,
    lsf_controller,
    pbs_controller,
    sge_controller,
)

SECONDS = 90.0
NAMES = ["JOB_ID", "SGE_TASK_ID", "LSB_JOBID", "LSB_JOBINDEX", "PBS_JOBID", "PBS_ARRAY_INDEX", "PBS_ARRAYID"]
ENVIRONMENT = "import os\n{name: os.environ[name] for name in NAMES if name in os.environ}"
"""A task (crew runs a string as code) that returns the scheduler's job variables of its worker."""
BLOCKED = "import os, time\nwhile not os.path.exists(marker):\n    time.sleep(0.05)\n" + ENVIRONMENT
"""The same, once the test has created the file ``marker``: holds each worker on one task."""


def _number(job_id: str) -> str:
    return re.match(r"\d+", job_id).group(0)


def _manual_scaling(controller: crew.Controller) -> None:
    """Start the controller with background auto-scaling off and its scaling thread idle.

    ``autoscale(False)`` wakes the scaling thread for one last round; wait until that round is
    over, so that the test's own ``scale()`` is the only round that sees the tasks it pushes.
    """
    controller.start()
    controller.autoscale(False)
    eventually(lambda: not controller._scaler.wanted.is_set(), SECONDS)
    with controller._scaler.round_lock:
        pass


@dataclass
class Platform:
    """One scheduler under test and how this test reaches it."""

    kind: str
    helper: Callable[..., crew.Controller]
    monitor_class: type
    options: dict[str, Any]
    monitor_options: dict[str, Any]
    job_variable: str
    index_variable: str | None
    """The array-index variable a single worker sees (None: PBS Pro submits no array for one)."""
    pending_reason: str
    queue_error: str
    scratch: str
    hold: Callable[[], dict[str, Any]]
    """Makes the next submissions wait in the queue; returns controller options for that."""
    release: Callable[[str], None]
    controllers: list[crew.Controller] = field(default_factory=list)

    def controller(self, **options: Any) -> crew.Controller:
        """A new controller on this scheduler, ended after the test whatever happens."""
        options.setdefault("name", f"t{uuid.uuid4().hex[:8]}")
        made = self.helper(host="127.0.0.1", script_directory=self.scratch, **self.options, **options)
        self.controllers.append(made)
        return made

    def monitor(self, controller: crew.Controller) -> crew.Monitor:
        """A monitor that sees this controller's jobs (by their name)."""
        return self.monitor_class(
            job_name=controller.launcher.job_name, script_directory=self.scratch, **self.monitor_options
        )

    def live_jobs(self, controller: crew.Controller) -> list[dict[str, Any]]:
        """The controller's jobs the scheduler still lists as pending or running."""
        return [row for row in self.monitor(controller).jobs() if row["state"] in ("pending", "running")]

    def close(self) -> None:
        for controller in self.controllers:
            controller.terminate()
            if controller.launcher.job_ids:
                controller.launcher.terminate_workers(controller.launcher.job_ids)


def _grid_engine(request, scratch: str) -> Platform:
    request.getfixturevalue("sge")
    return Platform(
        kind="sge", helper=sge_controller, monitor_class=SgeMonitor, options={}, monitor_options={},
        job_variable="JOB_ID", index_variable="SGE_TASK_ID", pending_reason="on hold",
        queue_error='unknown queue "nosuch.q"', scratch=scratch,
        hold=lambda: {"extra_directives": "-h"}, release=lambda job: plumbum.local["qrls"](job),
    )  # fmt: skip


def _stand_in(request, kind: str, scratch: str) -> Platform:
    fake = request.getfixturevalue("fake_scheduler")
    folder = request.getfixturevalue("lsf_bin" if kind == "lsf" else "pbs_bin")
    submit, cancel = ("bsub", "bkill") if kind == "lsf" else ("qsub", "qdel")
    flavor = "torque" if kind == "torque" else "pro"
    fake.use(flavor)
    commands = {"command_submit": os.path.join(folder, submit), "command_cancel": os.path.join(folder, cancel)}
    torque = {"torque": True} if kind == "torque" else {}
    variables = {"lsf": ("LSB_JOBID", "LSB_JOBINDEX"), "pbs": ("PBS_JOBID", None), "torque": ("PBS_JOBID", "PBS_ARRAYID")}[kind]

    def hold() -> dict[str, Any]:
        fake.use(flavor, slots=0)
        return {}

    return Platform(
        kind=kind, helper=lsf_controller if kind == "lsf" else pbs_controller,
        monitor_class=LsfMonitor if kind == "lsf" else PbsMonitor,
        options={**commands, **torque}, monitor_options={"command_cancel": commands["command_cancel"], **torque},
        job_variable=variables[0], index_variable=variables[1],
        pending_reason="Job slot limit reached" if kind == "lsf" else "Not Running: Insufficient amount of resource",
        queue_error="nosuch: No such queue" if kind == "lsf" else "Unknown queue", scratch=scratch,
        hold=hold, release=lambda job: fake.open_queue(),
    )  # fmt: skip


PLATFORMS = [
    pytest.param("sge", marks=pytest.mark.sge),
    pytest.param("lsf", marks=pytest.mark.lsf),
    pytest.param("pbs", marks=pytest.mark.pbs),
    pytest.param("torque", marks=pytest.mark.pbs),
]


@pytest.fixture(params=PLATFORMS)
def platform(request, tmp_path):
    scratch = str(tmp_path / "crew")
    os.makedirs(scratch)
    made = _grid_engine(request, scratch) if request.param == "sge" else _stand_in(request, request.param, scratch)
    try:
        yield made
    finally:
        made.close()


# ------------------------------------------------------------------------------- conformance kit


class TestConformance(crew.testing.ControllerSuite):
    """crew's conformance kit (informal test, 200-task load test, terminate-leaves-nothing, crash
    retry, bad options) run through one scheduler's controller helper."""

    seconds_timeout = SECONDS
    workers_many = 8  # what the test schedulers run at once (tests/clusters/sge/start.sh: 8 slots)

    @pytest.fixture(autouse=True)
    def _use_platform(self, platform):
        self.platform = platform

    def make_monitor(self) -> crew.Monitor:
        return self.platform.monitor_class(script_directory=self.platform.scratch, **self.platform.monitor_options)

    def owns(self, controller: crew.Controller, row: dict[str, Any]) -> bool | None:
        """Each controller's jobs have their own name (where the scheduler lists it whole; else the
        kit counts the jobs that are new since the check began)."""
        return True if row["name"] == controller.launcher.job_name else None

    def make_controller(self, **options: Any) -> crew.Controller:
        return self.platform.controller(**options)

    def remaining_workers(self, controller: crew.Controller, pids: list[int]) -> list[Any]:
        """Live worker processes, and the controller's jobs the scheduler still lists."""
        return crew.testing.pids_alive(pids) + [row["id"] for row in self.platform.live_jobs(controller)]

    def scratch_directory(self) -> str:
        return tempfile.mkdtemp(prefix="suite-", dir=self.platform.scratch)


# ------------------------------------------------------------------------------- scheduler specifics


def test_task_runs_inside_a_scheduler_job(platform):
    controller = platform.controller(workers=1)
    controller.start()
    controller.push(ENVIRONMENT, data={"NAMES": NAMES}, name="where")
    assert controller.wait(seconds_timeout=SECONDS)
    result = controller.pop()
    controller.terminate()
    assert result.status == "success", result
    (job,) = controller.launcher.job_ids
    assert _number(result.result[platform.job_variable]) == _number(job), (result.result, job)
    if platform.index_variable:
        assert result.result[platform.index_variable] == "1"
    else:
        assert "PBS_ARRAY_INDEX" not in result.result and result.result["PBS_JOBID"] == job


def test_one_array_job_per_scaling_round(platform):
    controller = platform.controller(workers=3)
    marker = os.path.join(platform.scratch, "go")
    _manual_scaling(controller)
    for index in range(3):
        controller.push(BLOCKED, data={"NAMES": NAMES, "marker": marker}, name=f"task{index}", scale=False)
    assert controller.scale() == 3
    (job,) = controller.launcher.job_ids
    running = eventually(
        lambda: [row for row in platform.live_jobs(controller) if row["state"] == "running"], SECONDS
    )
    eventually(lambda: len([row for row in platform.live_jobs(controller) if row["state"] == "running"]) == 3, SECONDS)
    assert {_number(row["id"]) for row in platform.live_jobs(controller)} == {_number(job)}
    assert running[0]["node"] and isinstance(running[0]["start_time"], datetime.datetime)
    # Each of the three workers holds one task until the marker exists.
    eventually(lambda: [row["state"] for row in controller.summary()] == ["connected"] * 3, SECONDS)
    open(marker, "w").close()
    assert controller.wait(seconds_timeout=SECONDS)
    results = controller.collect()
    controller.terminate()
    assert [result.status for result in results] == ["success"] * 3
    assert {_number(result.result[platform.job_variable]) for result in results} == {_number(job)}
    index_variable = platform.index_variable or "PBS_ARRAY_INDEX"
    assert sorted(result.result[index_variable] for result in results) == ["1", "2", "3"]
    assert controller.launcher.job_ids == [job]
    eventually(lambda: not platform.live_jobs(controller), SECONDS)


def test_waiting_workers_are_not_relaunched_and_show_the_reason(platform):
    controller = platform.controller(workers=1, seconds_launch=1, **platform.hold())
    controller.start()
    controller.push(ENVIRONMENT, data={"NAMES": NAMES}, name="held")
    reasons = eventually(lambda: [row["reason"] for row in controller.summary() if row["reason"]], SECONDS)
    assert platform.pending_reason in reasons[0]
    (job,) = controller.launcher.job_ids
    (row,) = platform.live_jobs(controller)
    assert row["state"] == "pending" and platform.pending_reason in row["reason"]
    # Watch for three times seconds_launch: the waiting launch is neither failed nor replaced.
    watch_until = time.monotonic() + 3 * controller.launcher.seconds_launch
    while time.monotonic() < watch_until:
        assert controller.launcher.job_ids == [job]
        assert [row["state"] for row in controller.summary()] == ["launching"]
        time.sleep(controller.launcher.seconds_interval)
    # The short seconds_launch served to show that waiting does not count; a released worker
    # gets the usual time to start and dial in (the machine may be busy).
    controller.launcher.seconds_launch = SECONDS
    platform.release(job)
    assert controller.wait(seconds_timeout=SECONDS)
    assert controller.pop().status == "success"
    assert controller.launcher.job_ids == [job]
    controller.terminate()
    eventually(lambda: not platform.live_jobs(controller), SECONDS)


def test_a_job_that_ends_before_its_worker_dials_in_fails_at_once(platform):
    controller = platform.controller(workers=1, seconds_launch=3600, script_lines=["exit 3"])
    controller.start()
    controller.push("1 + 1", name="never")
    eventually(lambda: controller.summary()[0]["failed_launches"] >= 1, SECONDS)  # not after an hour
    controller.terminate()
    eventually(lambda: not platform.live_jobs(controller), SECONDS)


def test_terminate_removes_jobs_still_waiting(platform):
    controller = platform.controller(workers=2, **platform.hold())
    controller.start()
    for index in range(2):
        controller.push(ENVIRONMENT, data={"NAMES": NAMES}, name=f"held{index}")
    eventually(lambda: len(platform.live_jobs(controller)) == 2, SECONDS)
    controller.terminate()
    eventually(lambda: not platform.live_jobs(controller), SECONDS)
    assert {result.status for result in controller.collect()} == {"cancel"}


def test_monitor_lists_logs_and_deletes_jobs(platform):
    controller = platform.controller(workers=2, crashes_max=0, script_lines=['echo "crew log check"'])
    marker = os.path.join(platform.scratch, "never")
    _manual_scaling(controller)
    for index in range(2):
        controller.push(BLOCKED, data={"NAMES": NAMES, "marker": marker}, name=f"task{index}", scale=False)
    controller.scale()
    monitor = platform.monitor(controller)
    rows = eventually(lambda: [row for row in monitor.jobs() if row["state"] == "running"][1:] and monitor.jobs(), SECONDS)
    assert all(tuple(row) == crew.JOB_COLUMNS for row in rows)
    assert sorted(row["array_index"] for row in rows) == [1, 2]
    first, second = sorted(rows, key=lambda row: row["array_index"])
    assert eventually(lambda: "crew log check" in monitor.log(first["id"]), SECONDS)
    assert monitor.terminate([first["id"]]) == [first["id"]]
    eventually(lambda: {row["id"]: row["state"] for row in monitor.jobs()}.get(first["id"]) in (None, "cancelled"), SECONDS)
    assert monitor.terminate(all=True) == [second["id"]]
    eventually(lambda: not platform.live_jobs(controller), SECONDS)
    if platform.kind != "sge" or monitor.jobs():  # Grid Engine lists ended tasks once qacct has them
        eventually(lambda: {row["state"] for row in monitor.jobs()} == {"cancelled"}, SECONDS)
    controller.terminate()
    with pytest.raises(crew.SettingError, match="ids"):
        monitor.terminate()


def test_scheduler_error_is_raised_and_the_controller_stays_usable(platform):
    controller = platform.controller(workers=1, queue="nosuch.q" if platform.kind == "sge" else "nosuch")
    controller.start()
    controller.push("1 + 1", name="never", scale=False)
    with pytest.raises(crew.SchedulerError) as caught:
        controller.scale()
    assert platform.queue_error in str(caught.value)
    assert controller.launcher.job_ids == []
    assert [row["state"] for row in controller.summary()] != ["connected"]  # still answers
    controller.terminate()
    assert controller.pop().status == "cancel"


def test_cancelling_an_ended_job_is_quiet_but_other_cancel_errors_raise(platform):
    controller = platform.controller(workers=1)
    launcher = controller.launcher
    os.makedirs(launcher.script_directory, exist_ok=True)
    job = launcher.launch_workers("true", 1)
    eventually(lambda: not platform.live_jobs(controller), SECONDS)
    launcher.terminate_workers([job])  # the job ended already: nothing to complain about
    failing = platform.helper(
        name="x", script_directory=platform.scratch,
        **{**platform.options, "command_cancel": ["/bin/sh", "-c", "echo 'permission denied' >&2; exit 1", "sh"]},
    ).launcher  # fmt: skip
    with pytest.raises(crew.SchedulerError, match="permission denied"):
        failing.terminate_workers([job])


@pytest.mark.parametrize("command", ["crew-no-such-qsub", "/nonexistent/bin/qsub"])
def test_missing_scheduler_command_is_a_scheduler_error(tmp_path, command):
    launcher = SgeLauncher(name="x", script_directory=str(tmp_path), command_submit=command)
    with pytest.raises(crew.SchedulerError, match="not installed|could not run"):
        launcher.launch_workers("true", 1)
