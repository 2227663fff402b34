"""crew-slurm against a real SLURM cluster (tests/clusters/slurm/start.sh starts one here).

The conformance kit (informal test, 200-task load test, terminate leaves nothing, crash retry,
bad options) runs through ``slurm_controller``, then the SLURM specifics: workers run inside the
array job, one array job per scaling round, pending jobs are not relaunched and show SLURM's
reason, ``scancel`` mid-task means a retry, scheduler errors surface, and the monitor lists,
reads and cancels jobs.
"""

from __future__ import annotations

import datetime
import os
import secrets
import subprocess
import sys
import tempfile
import time

import cloudpickle
import crew
import crew.testing
import pytest
from crew.testing import eventually, pids_alive
from crew_slurm import SlurmMonitor, slurm_controller

pytestmark = pytest.mark.slurm

# The workers cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SECONDS = 60.0


def in_queue(job_ids: list[str]) -> list[str]:
    """The array tasks of ``job_ids`` that SLURM still has pending, running or completing."""
    if not job_ids:
        return []
    listed = subprocess.run(
        ["squeue", "--noheader", "--array", "--states=PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED",
         f"--jobs={','.join(job_ids)}", "--format=%i"],
        capture_output=True, text=True, check=False,
    )
    if listed.returncode != 0 and "Invalid job id" in listed.stderr:
        return []  # SLURM has forgotten all of them
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split()


def slurm_environment() -> dict[str, str]:
    """A task: the SLURM variables of the job it runs in."""
    return {name: value for name, value in os.environ.items() if name.startswith("SLURM_")}


class TestSlurmConformance(crew.testing.ControllerSuite):
    """The checks every crew launcher passes, run through slurm_controller."""

    seconds_timeout = SECONDS
    workers_many = 8  # what the test cluster runs at once (2 CPUs, OverSubscribe=4)

    @pytest.fixture(autouse=True)
    def _folder(self, tmp_path):
        """Each check's scripts, logs and scratch files go to its own pytest folder."""
        self.folder = tmp_path

    def make_controller(self, **options):
        options.setdefault("seconds_timeout", 30)
        return slurm_controller(
            host="127.0.0.1",
            job_name=f"crew-suite-{secrets.token_hex(3)}",
            script_directory=self.folder / "scripts",
            **options,
        )

    def scratch_directory(self) -> str:
        return tempfile.mkdtemp(prefix="scratch-", dir=self.folder)

    def make_monitor(self):
        return SlurmMonitor(script_directory=self.folder / "scripts")

    def owns(self, controller, row):
        """Each controller's jobs have their own name."""
        return row["name"] == controller.launcher.job_name

    def remaining_workers(self, controller, pids):
        """Worker processes still alive, and the controller's jobs still in SLURM's queue."""
        return pids_alive(pids) + in_queue(controller.launcher.job_ids)


@pytest.fixture
def make(tmp_path):
    """slurm_controller(...) on loopback with its own job name; at the end every controller is
    terminated and none of their jobs may remain in the queue."""
    made: list[crew.Controller] = []

    def make_controller(**options):
        options.setdefault("workers", 2)
        options.setdefault("seconds_timeout", 30)
        controller = slurm_controller(
            host="127.0.0.1",
            job_name=f"crew-test-{secrets.token_hex(3)}",
            script_directory=tmp_path / "scripts",
            **options,
        )
        made.append(controller)
        return controller

    yield make_controller
    for controller in made:
        controller.terminate()
    job_ids = [job_id for controller in made for job_id in controller.launcher.job_ids]
    eventually(lambda: not in_queue(job_ids), SECONDS)


def test_worker_runs_inside_the_array_job(make, tmp_path):
    with make(workers=1) as controller:
        # A lambda: crew sends a module-level function by name, and workers cannot import this module.
        controller.push(lambda: slurm_environment(), name="where")
        assert controller.wait(seconds_timeout=SECONDS)
        result = controller.pop()
        secret_files = list((tmp_path / "scripts").glob("crew-secret-*"))
        assert len(secret_files) == 1
    assert not secret_files[0].exists(), "terminate() leaves the secret file behind"
    assert result.status == "success", result
    assert result.result["SLURM_JOB_ID"]
    assert result.result["SLURM_ARRAY_JOB_ID"] == controller.launcher.job_ids[0]
    assert result.result["SLURM_ARRAY_TASK_ID"] == "1"
    assert result.result["SLURM_JOB_NAME"] == controller.launcher.job_name


def test_n_tasks_reaches_slurm_as_ntasks(make):
    with make(workers=1, n_tasks=2) as controller:
        controller.push(lambda: slurm_environment(), name="ntasks")
        assert controller.wait(seconds_timeout=SECONDS)
        result = controller.pop()
    assert result.status == "success", result
    assert result.result["SLURM_NTASKS"] == "2"


def test_one_array_job_per_scaling_round(make):
    with make(workers=4) as controller:
        for index in range(4):
            controller.push(
                lambda: (time.sleep(1), slurm_environment())[1],
                name=f"task_{index}", scale=False,
            )
        assert controller.launcher.job_ids == []
        assert controller.scale() == 4
        assert len(controller.launcher.job_ids) == 1
        job_id = controller.launcher.job_ids[0]
        tasks = in_queue([job_id])
        assert sorted(tasks) == [f"{job_id}_{index}" for index in (1, 2, 3, 4)], tasks
        assert controller.wait(seconds_timeout=SECONDS)
        results = controller.collect()
    assert [result.status for result in results] == ["success"] * 4, results
    assert {result.result["SLURM_ARRAY_JOB_ID"] for result in results} == {job_id}
    assert controller.launcher.job_ids == [job_id]


def test_terminate_leaves_no_job_in_squeue(make):
    controller = make(workers=2)
    controller.start()
    for index in range(2):
        controller.push(time.sleep, args=(600,), name=f"sleep_{index}")
    job_ids = controller.launcher.job_ids
    eventually(lambda: len(in_queue(job_ids)) == 2 and all(row["state"] == "connected" for row in controller.summary()), SECONDS)
    controller.terminate()
    eventually(lambda: not in_queue(job_ids), SECONDS)
    assert sorted(result.status for result in controller.collect()) == ["cancel", "cancel"]


def test_pending_jobs_are_not_relaunched_and_show_slurms_reason(make):
    # --begin holds the array in the queue with reason BeginTime; seconds_launch is short, so the
    # controller would relaunch if it did not count pending array tasks as still launching.
    controller = make(workers=2, seconds_launch=1, extra_directives=["--begin=now+3600"])
    controller.start()
    for index in range(2):
        controller.push(lambda: 1, name=f"held_{index}")
    eventually(lambda: [row["reason"] for row in controller.summary()] == ["BeginTime", "BeginTime"], SECONDS)
    job_id = controller.launcher.job_ids[0]
    assert controller.launcher.queued([job_id]) == [crew.Queued(2, "BeginTime")]
    submitted = time.monotonic()
    while time.monotonic() - submitted < 4 * controller.launcher.seconds_launch:
        assert controller.launcher.job_ids == [job_id]
        assert sum(row["failed_launches"] for row in controller.summary()) == 0
        time.sleep(0.2)
    controller.terminate()
    eventually(lambda: not in_queue([job_id]), SECONDS)


def test_a_job_that_dies_before_dialling_in_fails_its_launch_at_once(make):
    # seconds_launch is long: only SLURM's word that the job ended can fail the launch in time.
    controller = make(workers=1, seconds_launch=600, script_lines=["exit 3"])
    controller.start()
    controller.push(lambda: 1, name="never")
    eventually(lambda: sum(row["failed_launches"] for row in controller.summary()) >= 1, SECONDS)
    controller.terminate()
    first = controller.launcher.job_ids[0]
    assert controller.launcher.exit_status(first) == f"SLURM job {first} FAILED"


def test_worker_cancelled_by_scancel_has_its_task_retried(make, tmp_path):
    marker = tmp_path / "first-attempt"

    def first_attempt_hangs():
        if marker.exists():
            return os.environ["SLURM_ARRAY_JOB_ID"]
        marker.write_text(f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ['SLURM_ARRAY_TASK_ID']}")
        time.sleep(600)

    with make(workers=1, crashes_max=2) as controller:
        controller.push(first_attempt_hangs, name="retried")
        first = eventually(lambda: marker.exists() and marker.read_text(), SECONDS)
        monitor = SlurmMonitor(job_name=controller.launcher.job_name)
        assert monitor.terminate([first]) == [first]
        assert controller.wait(seconds_timeout=SECONDS)
        result = controller.pop()
    assert result.status == "success", result
    assert result.result != first.split("_")[0]
    assert len(controller.launcher.job_ids) == 2
    assert sum(row["crashes"] for row in controller.summary()) == 1


def test_invalid_partition_raises_sbatchs_message_and_the_controller_stays_usable(make):
    with make(workers=1, partition="crew-no-such-partition") as controller:
        controller.push(lambda: "ok", name="task")
        with pytest.raises(crew.SchedulerError, match="[Ii]nvalid partition") as caught:
            controller.wait(seconds_timeout=SECONDS)
        assert caught.value.command.startswith("sbatch --parsable ")
        assert controller.launcher.job_ids == []
        controller.launcher.partition = None  # the user fixes the setting; the same controller goes on
        controller.scale()
        assert controller.wait(seconds_timeout=SECONDS)
        assert controller.pop().result == "ok"


def test_monitor_lists_reads_logs_and_cancels(make, tmp_path):
    def hello_then_hang():
        os.write(2, f"hello from task {os.environ['SLURM_ARRAY_TASK_ID']}\n".encode())
        time.sleep(600)

    controller = make(workers=2, crashes_max=0)
    controller.start()
    for index in range(2):
        controller.push(hello_then_hang, name=f"hang_{index}")
    job_id = eventually(lambda: controller.launcher.job_ids and controller.launcher.job_ids[0], SECONDS)
    monitor = SlurmMonitor(job_name=controller.launcher.job_name, script_directory=tmp_path / "scripts", accounting=True)

    def two_running():
        running = [row for row in monitor.jobs() if row["state"] == "running"]
        return running if len(running) == 2 else None

    rows = eventually(two_running, SECONDS)
    assert sorted(row["id"] for row in rows) == [f"{job_id}_1", f"{job_id}_2"]
    assert {row["array_index"] for row in rows} == {1, 2}
    assert {row["name"] for row in rows} == {controller.launcher.job_name}
    assert all(row["node"] and isinstance(row["start_time"], datetime.datetime) for row in rows)
    assert sorted(monitor.workers()) == [f"{job_id}_1", f"{job_id}_2"]
    eventually(lambda: "hello from task 1" in monitor.log(f"{job_id}_1"), SECONDS)

    assert sorted(monitor.terminate(all=True)) == [f"{job_id}_1", f"{job_id}_2"]
    eventually(lambda: not monitor.workers(), SECONDS)
    assert {row["state"] for row in monitor.jobs() if row["id"].startswith(f"{job_id}_")} == {"cancelled"}
    assert "CANCELLED" in monitor.log(f"{job_id}_2")
