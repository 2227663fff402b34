"""A round whose AWS Batch job ends before its worker dials in fails its launch at once, with
AWS's reason and the container's last log lines: exit_status (exact requests, botocore's
Stubber) and the controller against the local AWS Batch (moto on 127.0.0.1 + the local agent)."""

from __future__ import annotations

import time

import boto3
import crew
import crew.testing
import pytest
from botocore.stub import Stubber
from crew.launcher import Instance
from crew_aws_batch import AwsBatchHandle, AwsBatchLauncher, aws_batch_controller


class Fleet:
    """The controller's fleet registry, as a launcher reads it."""

    def __init__(self, instances):
        self.instances = instances

    def snapshot(self):
        return list(self.instances)


def stubbed(launcher, service):
    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b").client(service)
    launcher.connection._clients[service] = client
    stubber = Stubber(client)
    stubber.activate()
    return stubber


def job(job_id, status, **fields):
    return {"jobId": job_id, "jobName": f"crew-{job_id}", "jobQueue": "queue", "jobDefinition": "worker:3",
            "status": status, "startedAt": 0, **fields}  # fmt: skip


FAILED = job(
    "j1", "FAILED", statusReason="Essential container in task exited",
    container={"exitCode": 1, "logStreamName": "worker/default/j1",
               "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/crew/workers"}}},
)  # fmt: skip


def test_exit_status_asks_once_for_every_launching_round_and_quotes_reason_and_log():
    handles = [AwsBatchHandle("1", ("j1",), (1,)), AwsBatchHandle("2", ("j2",), (1,)), AwsBatchHandle("3", ("j3",), (4,))]
    launcher = AwsBatchLauncher(job_queue="queue", job_definition="worker:3", seconds_status=60)
    fleet = Fleet([Instance(launch=handle.launch, handle=handle) for handle in handles])
    launcher.bind(crew.Contact("tcp://10.0.0.5:5555", "c0ffee", "secret", None, "unit"), fleet)
    batch, logs = stubbed(launcher, "batch"), stubbed(launcher, "logs")
    batch.add_response(
        "describe_jobs",
        {"jobs": [FAILED, job("j2", "RUNNING"), job("j3", "RUNNABLE", arrayProperties={"size": 4})]},
        {"jobs": ["j2", "j1", "j3"]},  # the round asked about first, then every round still launching
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 1, "message": "Traceback (most recent call last):"},
                    {"timestamp": 2, "message": "ModuleNotFoundError: No module named 'crew'"}]},
        {"logGroupName": "/crew/workers", "logStreamName": "worker/default/j1", "limit": 5, "startFromHead": False},
    )  # fmt: skip
    assert launcher.exit_status(handles[1]) is None  # the one describe_jobs call
    ended = launcher.exit_status(handles[0])  # no further describe_jobs: the stubber would refuse it
    assert ended == (
        "FAILED: Essential container in task exited (exit code 1); "
        "log: Traceback (most recent call last): | ModuleNotFoundError: No module named 'crew'"
    )
    assert launcher.exit_status(handles[2]) is None
    assert launcher.exit_status(handles[0]) == ended  # remembered: no second log read
    assert launcher.exit_status("not a handle") is None
    batch.assert_no_pending_responses()
    logs.assert_no_pending_responses()


def test_a_failed_array_is_described_by_a_failed_child():
    handle = AwsBatchHandle("1", ("p",), (3,))
    launcher = AwsBatchLauncher(job_queue="queue", job_definition="worker:3")
    launcher.bind(crew.Contact("tcp://10.0.0.5:5555", "c0ffee", "secret", None, "unit"))
    batch, logs = stubbed(launcher, "batch"), stubbed(launcher, "logs")
    batch.add_response("describe_jobs", {"jobs": [job("p", "FAILED", arrayProperties={"size": 3})]}, {"jobs": ["p"]})
    batch.add_response("list_jobs", {"jobSummaryList": [{"jobId": "p:1", "jobName": "crew-p"}]},
                       {"arrayJobId": "p", "jobStatus": "FAILED"})  # fmt: skip
    child = job("p:1", "FAILED", statusReason="Job attempt duration exceeded timeout")  # no log stream
    batch.add_response("describe_jobs", {"jobs": [child]}, {"jobs": ["p:1"]})
    assert launcher.exit_status(handle) == "FAILED: Job attempt duration exceeded timeout"
    batch.assert_no_pending_responses()
    logs.assert_no_pending_responses()


def test_seconds_status_is_checked():
    with pytest.raises(crew.SettingError, match="^seconds_status must"):
        AwsBatchLauncher(job_queue="queue", job_definition="worker:3", seconds_status=-1)


# ---------------------------------------------------------------------- against the local AWS Batch
def test_a_container_without_crew_fails_the_launch_at_once_with_aws_reason_and_log(aws_batch, tmp_path):
    python = tmp_path / "python3"  # the container's interpreter, without crew
    python.write_text("#!/bin/sh\necho \"$0: Error while finding module specification for 'crew.worker'"
                      " (ModuleNotFoundError: No module named 'crew')\" >&2\nexit 1\n")  # fmt: skip
    python.chmod(0o755)
    controller = aws_batch_controller(
        host="127.0.0.1", python=str(python), workers=1, seconds_interval=0.1, seconds_status=0.5,
        seconds_launch=600, **aws_batch.options(),
    )  # fmt: skip  (seconds_launch: only the job's end can fail these launches in time)
    try:
        controller.start()
        pushed = time.monotonic()
        controller.push(sum, args=([1, 2],), name="never")
        with pytest.raises(crew.LaunchError) as raised:
            controller.wait(seconds_timeout=60)
        seconds = time.monotonic() - pushed
    finally:
        controller.terminate()
    message = str(raised.value)
    assert "FAILED: Essential container in task exited (exit code 1)" in message, message
    assert "No module named 'crew'" in message, message
    assert seconds < 15, (seconds, message)
    pids = [launched.pid for launched in aws_batch.agent.launched]
    assert pids and crew.testing.eventually(lambda: not crew.testing.pids_alive(pids), seconds=30)
