"""End to end: aws_batch_controller against the local AWS Batch (moto on 127.0.0.1 + local agent)."""

from __future__ import annotations

import os
import sys
import time

import crew.testing
import pytest
from _fakebatch import local_aws_batch
from crew_aws_batch import AwsBatchDefinition, AwsBatchMonitor, aws_batch_controller

PYTHON = sys.executable
ACTIVE = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")


def controller_for(batch, **options):
    """A controller on loopback whose workers the local agent runs with this Python."""
    return aws_batch_controller(host="127.0.0.1", python=PYTHON, seconds_interval=0.1, **batch.options(), **options)


def active_jobs(batch):
    """Every job (array children included) that is not SUCCEEDED or FAILED."""
    client = batch.client("batch")
    found = []
    for status in ACTIVE:
        for job in client.list_jobs(jobQueue=batch.job_queue, jobStatus=status)["jobSummaryList"]:
            found.append((job["jobId"], status))
            if "size" in (job.get("arrayProperties") or {}):
                for child_status in ACTIVE:
                    children = client.list_jobs(arrayJobId=job["jobId"], jobStatus=child_status)["jobSummaryList"]
                    found.extend((child["jobId"], child_status) for child in children)
    return found


def submitted(batch):
    """(job name, array size or None) of every job submitted so far (parents and plain jobs)."""
    client = batch.client("batch")
    rows = client.list_jobs(jobQueue=batch.job_queue, filters=[{"name": "JOB_NAME", "values": ["crew*"]}])
    return sorted((job["jobName"], (job.get("arrayProperties") or {}).get("size")) for job in rows["jobSummaryList"])


class TestAwsBatchConformance(crew.testing.ControllerSuite):
    """crew's conformance kit: informal test, 200-task load test, terminate, crash retry, bad options."""

    seconds_timeout = 60
    workers_many = 8  # the local AWS Batch below runs 8 jobs at once

    @pytest.fixture(autouse=True)
    def _local_batch(self, tmp_path):
        with local_aws_batch(slots=8) as batch:
            self.batch = batch
            self.scratch = tmp_path
            yield

    def make_controller(self, **options):
        return controller_for(self.batch, **options)

    def scratch_directory(self):
        return str(self.scratch)

    def make_monitor(self):
        return AwsBatchMonitor(self.batch.job_queue, self.batch.job_definition, endpoint_url=self.batch.endpoint,
                               region=self.batch.region)

    def remaining_workers(self, controller, pids):
        return crew.testing.pids_alive(pids) + active_jobs(self.batch)

    def test_informal(self):
        super().test_informal()
        launched = self.batch.agent.launched
        assert len(launched) == 1 and launched[0].environment["AWS_BATCH_JOB_ID"]


def test_informal_result_shows_the_aws_batch_job(aws_batch):
    controller = controller_for(aws_batch, workers=1)
    try:
        result = crew.testing.informal_test(controller, seconds_timeout=60)
    finally:
        controller.terminate()
    job_id = result.result["environment"]["AWS_BATCH_JOB_ID"]
    (launched,) = aws_batch.agent.launched
    assert launched.job_id == job_id and launched.pid == result.pid
    # the secret reached the worker through the container environment, never its command line
    secret = launched.environment["CREW_SECRET"]
    assert secret and not any(secret in word for word in launched.argv)
    assert launched.argv[:3] == [PYTHON, "-m", "crew.worker"]
    # one worker is a plain job, not an array of one
    assert [size for _, size in submitted(aws_batch)] == [None]
    assert ":" not in job_id


@pytest.fixture
def batch3():
    """A local AWS Batch with three slots."""
    with local_aws_batch(slots=3) as batch:
        yield batch


def test_one_array_job_per_scaling_round(batch3):
    aws_batch = batch3
    controller = controller_for(aws_batch, workers=3, seconds_idle=30)
    try:
        controller.start()
        with aws_batch.agent.held("waiting for the test"):
            for index in range(3):
                controller.push(time.sleep, args=(0.2,), name=f"task{index}", scale=False)
            assert submitted(aws_batch) == []
            controller.scale()
            crew.testing.eventually(lambda: submitted(aws_batch), seconds=30)
            (name, size), = submitted(aws_batch)
            assert size == 3 and name.startswith("crew-")
            # while held, the workers count as queued (with AWS's reason): a new round submits nothing
            crew.testing.eventually(
                lambda: controller.scale() == 0
                and [i.reason for i in controller.launcher.instances if i.queued] == ["waiting for the test"] * 3,
                seconds=30,
            )
            assert len(submitted(aws_batch)) == 1
        assert controller.wait(seconds_timeout=60)
        assert all(result.status == "success" for result in controller.collect())
        assert len(submitted(aws_batch)) == 1
        # every child of the array starts a worker (the last may start after the tasks are done)
        crew.testing.eventually(lambda: len(aws_batch.agent.launched) == 3, seconds=30)
        children = {launched.job_id for launched in aws_batch.agent.launched}
        assert len(children) == 3 and all(":" in job for job in children)
        indexes = sorted(launched.environment["AWS_BATCH_JOB_ARRAY_INDEX"] for launched in aws_batch.agent.launched)
        assert indexes == ["0", "1", "2"]
    finally:
        controller.terminate()
    assert active_jobs(aws_batch) == []


def test_terminate_leaves_no_job_running_or_runnable(aws_batch):
    controller = controller_for(aws_batch, workers=4)
    try:
        controller.start()
        for index in range(4):
            controller.push(time.sleep, args=(300,), name=f"long{index}")
        # the fixture has two slots: two children run, two wait in RUNNABLE
        crew.testing.eventually(lambda: len(aws_batch.agent.running()) == 2, seconds=30)
        crew.testing.eventually(lambda: len([job for job in active_jobs(aws_batch) if job[1] == "RUNNING"]) == 2, seconds=30)
        pids = list(aws_batch.agent.running().values())
    finally:
        controller.terminate()
    crew.testing.eventually(lambda: active_jobs(aws_batch) == [], seconds=30)
    crew.testing.eventually(lambda: not crew.testing.pids_alive(pids), seconds=30)
    assert sorted(result.status for result in controller.collect()) == ["cancel"] * 4


def test_a_worker_killed_mid_task_has_its_task_retried(aws_batch):
    controller = controller_for(aws_batch, workers=1, crashes_max=2)
    marker = os.path.join(aws_batch.agent.cwd or os.getcwd(), f"crash-{os.getpid()}-{time.monotonic_ns()}")
    try:
        controller.start()
        controller.push(crew.testing._crash_once, args=(marker, 600), name="crashy")
        first = int(crew.testing.eventually(lambda: os.path.exists(marker) and open(marker).read(), seconds=60))
        (job_id,) = [job for job, pid in aws_batch.agent.running().items() if pid == first]
        aws_batch.agent.crash(job_id)
        assert controller.wait(seconds_timeout=120)
        result = controller.pop()
    finally:
        controller.terminate()
        if os.path.exists(marker):
            os.remove(marker)
    assert result.status == "success" and result.result not in (first, -1)
    assert aws_batch.wait([job_id]) == {job_id: "FAILED"}
    assert len(aws_batch.agent.launched) == 2


def test_monitor_lists_jobs_and_returns_a_worker_log(aws_batch):
    controller = controller_for(aws_batch, workers=2, seconds_idle=60)
    monitor = AwsBatchMonitor(aws_batch.job_queue, aws_batch.job_definition, endpoint_url=aws_batch.endpoint, region=aws_batch.region)
    try:
        controller.start()
        controller.push(print, args=("hello from the task",), name="hello")
        controller.push(time.sleep, args=(0.5,), name="nap")
        assert controller.wait(seconds_timeout=60)
        crew.testing.eventually(lambda: len(monitor.running()) == 2, seconds=30)
        rows = monitor.jobs()
        assert len(rows) == 2
        assert set(rows[0]) >= set(crew.JOB_COLUMNS)
        assert {row["state"] for row in rows} == {"running"} and {row["raw_state"] for row in rows} == {"RUNNING"}
        assert sorted(row["array_index"] for row in rows) == [0, 1]
        assert all(row["node"] == "127.0.0.1" and row["start_time"] is not None for row in rows)
        assert monitor.active() == rows and monitor.inactive() == []
        assert [row["id"] for row in monitor.status([rows[0]["id"]])] == [rows[0]["id"]]
        ids = monitor.terminate(all=True)
        assert {row["array_id"] for row in rows} <= set(ids)
        crew.testing.eventually(lambda: len(monitor.failed()) == 2, seconds=30)
        assert {row["state"] for row in monitor.failed()} == {"cancelled"}
        logs = [monitor.log(row["id"]) for row in rows]
        assert sorted(text.count("hello from the task") for text in logs) == [0, 1]
    finally:
        controller.terminate()


def test_definitions_register_describe_deregister(aws_batch):
    definition = AwsBatchDefinition(aws_batch.job_queue, "crew-e2e", log_group="/crew/e2e", endpoint_url=aws_batch.endpoint, region=aws_batch.region)
    assert definition.describe() == []
    first = definition.register(
        "crew-worker:1",
        cpus=2,
        memory_mebibytes=1024,
        job_role_arn="arn:aws:iam::123456789012:role/crew-job",
        execution_role_arn="arn:aws:iam::123456789012:role/crew-execution",
        command=["true"],
    )
    second = definition.register("crew-worker:2", gpus=1, timeout=600, tags={"team": "stats"})
    assert (first["revision"], second["revision"]) == (1, 2)
    rows = definition.describe()
    assert [(row["revision"], row["image"], row["status"]) for row in rows] == [(1, "crew-worker:1", "ACTIVE"), (2, "crew-worker:2", "ACTIVE")]
    assert rows[0]["job_role_arn"] == "arn:aws:iam::123456789012:role/crew-job"
    assert rows[0]["execution_role_arn"] == "arn:aws:iam::123456789012:role/crew-execution"
    assert (rows[0]["cpus"], rows[0]["memory_mebibytes"], rows[0]["log_group"]) == (2.0, 1024, "/crew/e2e")
    assert (rows[1]["gpus"], rows[1]["timeout"], rows[1]["tags"]) == (1, 600, {"team": "stats"})
    assert [row["revision"] for row in definition.describe(revision=1)] == [1]
    assert definition.deregister()["revision"] == 2
    assert [row["revision"] for row in definition.describe()] == [1]
    assert [(row["revision"], row["status"]) for row in definition.describe(active=False)] == [(1, "ACTIVE"), (2, "INACTIVE")]
    definition.deregister(1)
    assert definition.describe() == []


def test_workers_log_to_the_definitions_log_group(aws_batch):
    definition = AwsBatchDefinition(aws_batch.job_queue, "crew-logged", log_group="/crew/logged", endpoint_url=aws_batch.endpoint, region=aws_batch.region)
    definition.register("crew-worker:1", memory_mebibytes=512)
    controller = definition.controller(host="127.0.0.1", python=PYTHON, workers=1, seconds_interval=0.1)
    monitor = definition.monitor()
    try:
        controller.start()
        controller.push(print, args=("logged line",), name="print")
        assert controller.wait(seconds_timeout=60)
        (row,) = crew.testing.eventually(monitor.running, seconds=30)
        crew.testing.eventually(lambda: "logged line" in monitor.log(row["id"]), seconds=30)
    finally:
        controller.terminate()
    crew.testing.eventually(lambda: active_jobs(aws_batch) == [], seconds=30)
