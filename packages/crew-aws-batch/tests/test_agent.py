"""Self-tests of the test harness _fakebatch: the local agent behaves like AWS Batch, through boto3."""

from __future__ import annotations

import os
import sys
import time

import psutil
import pytest
from _fakebatch import LocalBatchAgent, local_aws_batch

PYTHON = sys.executable


def submit(batch, command, size=None, name="agent-test", **extra):
    request = {
        "jobName": name,
        "jobQueue": batch.job_queue,
        "jobDefinition": batch.job_definition,
        "containerOverrides": {"command": command, **extra.pop("overrides", {})},
        **extra,
    }
    if size:
        request["arrayProperties"] = {"size": size}
    return batch.client("batch").submit_job(**request)["jobId"]


def describe(batch, ids):
    return {job["jobId"]: job for job in batch.client("batch").describe_jobs(jobs=list(ids))["jobs"]}


def log_lines(batch, job_id):
    stream = describe(batch, [job_id])[job_id]["container"]["logStreamName"]
    events = batch.client("logs").get_log_events(
        logGroupName="/aws/batch/job", logStreamName=stream, startFromHead=True
    )["events"]
    return [event["message"] for event in events]


def until(predicate, seconds=15.0):
    """Poll the local AWS Batch until ``predicate()`` holds (it has no events to wait on)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_endpoint_is_loopback_and_environment_is_restored():
    before = {name: os.environ.get(name) for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE")}
    with local_aws_batch(slots=1) as batch:
        assert batch.endpoint.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == batch.endpoint
        assert batch.agent.environment["AWS_ENDPOINT_URL"] == batch.endpoint
    assert {name: os.environ.get(name) for name in before} == before


def test_array_job_runs_processes_with_the_batch_environment(aws_batch):
    code = (
        "import os; print('index', os.environ['AWS_BATCH_JOB_ARRAY_INDEX'], os.environ['GREETING'],"
        " os.environ['AWS_BATCH_JQ_NAME'], os.environ['AWS_BATCH_JOB_ATTEMPT'], os.environ['AWS_BATCH_CE_NAME'])"
    )
    parent = submit(aws_batch, [PYTHON, "-c", code], size=3, overrides={"environment": [{"name": "GREETING", "value": "hi"}]})
    children = [f"{parent}:{index}" for index in range(3)]
    assert aws_batch.wait(children) == {child: "SUCCEEDED" for child in children}
    assert aws_batch.wait([parent]) == {parent: "SUCCEEDED"}
    for index, child in enumerate(children):
        assert log_lines(aws_batch, child) == [f"index {index} hi crew-test-queue 1 crew-test-environment"]
    details = describe(aws_batch, [parent, children[0]])
    assert details[parent]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 3
    assert details[parent]["arrayProperties"]["size"] == 3
    assert details[children[0]]["arrayProperties"]["index"] == 0
    assert details[children[0]]["container"]["exitCode"] == 0
    assert {launched.job_id for launched in aws_batch.agent.launched} == set(children)
    listed = aws_batch.client("batch").list_jobs(arrayJobId=parent, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert sorted(job["jobId"] for job in listed) == children
    assert sorted(job["arrayProperties"]["index"] for job in listed) == [0, 1, 2]


def test_statuses_walk_in_order():
    with local_aws_batch(LocalBatchAgent(slots=1, seconds_step=0.4)) as batch:
        job = submit(batch, [PYTHON, "-c", "import time; time.sleep(0.8)"])
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = describe(batch, [job])[job]["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.05)
    assert seen in (
        ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"],
        ["PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"],
    )


def test_exit_codes_and_a_failed_child_fail_the_parent(aws_batch):
    code = "import os, sys; sys.exit(3 if os.environ['AWS_BATCH_JOB_ARRAY_INDEX'] == '1' else 0)"
    parent = submit(aws_batch, [PYTHON, "-c", code], size=2)
    children = [f"{parent}:0", f"{parent}:1"]
    assert aws_batch.wait(children) == {children[0]: "SUCCEEDED", children[1]: "FAILED"}
    assert aws_batch.wait([parent]) == {parent: "FAILED"}
    failed = describe(aws_batch, [children[1]])[children[1]]
    assert failed["container"]["exitCode"] == 3
    assert failed["statusReason"] == "Essential container in task exited"
    summary = aws_batch.client("batch").list_jobs(arrayJobId=parent, jobStatus="FAILED")["jobSummaryList"]
    assert [job["container"]["exitCode"] for job in summary] == [3]


def test_terminating_a_parent_ends_running_and_queued_children(aws_batch):
    # two slots: two children run, the third waits in RUNNABLE
    parent = submit(aws_batch, [PYTHON, "-c", "import time; print('up', flush=True); time.sleep(120)"], size=3)
    children = [f"{parent}:{index}" for index in range(3)]
    until(lambda: len(aws_batch.agent.running()) == 2)
    statuses = sorted(job["status"] for job in describe(aws_batch, children).values())
    assert statuses == ["RUNNABLE", "RUNNING", "RUNNING"]
    pids = list(aws_batch.agent.running().values())
    batch = aws_batch.client("batch")
    batch.terminate_job(jobId=parent, reason="test: stop")
    assert aws_batch.wait(children, seconds=10) == {child: "FAILED" for child in children}
    assert aws_batch.wait([parent]) == {parent: "FAILED"}
    details = describe(aws_batch, children)
    assert {job["statusReason"] for job in details.values()} == {"test: stop"}
    assert all(job.get("isTerminated") for job in details.values())
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_cancel_reaches_waiting_jobs_only(aws_batch):
    with aws_batch.agent.held():
        job = submit(aws_batch, ["true"])
        until(lambda: describe(aws_batch, [job])[job]["status"] == "RUNNABLE")
        aws_batch.client("batch").cancel_job(jobId=job, reason="test: cancel")
        assert aws_batch.wait([job]) == {job: "FAILED"}
    detail = describe(aws_batch, [job])[job]
    assert detail["isCancelled"] is True and detail["statusReason"] == "test: cancel"
    assert aws_batch.agent.launched == []


def test_hold_keeps_jobs_runnable_with_a_reason(aws_batch):
    aws_batch.agent.hold("no capacity in test")
    parent = submit(aws_batch, [PYTHON, "-c", "print('ran')"], size=2)
    children = [f"{parent}:0", f"{parent}:1"]
    until(lambda: [job["status"] for job in describe(aws_batch, [parent, *children]).values()] == ["PENDING", "RUNNABLE", "RUNNABLE"])
    details = describe(aws_batch, [parent, *children])
    assert details[parent]["status"] == "PENDING"
    assert details[parent]["statusReason"] == "no capacity in test"
    assert details[children[0]]["statusReason"] == "no capacity in test"
    assert aws_batch.agent.launched == []
    aws_batch.agent.release()
    assert aws_batch.wait(children) == {child: "SUCCEEDED" for child in children}
    assert "statusReason" not in describe(aws_batch, [children[0]])[children[0]]


def test_attempt_timeout_and_missing_executable(aws_batch):
    slow = submit(aws_batch, [PYTHON, "-c", "import time; time.sleep(60)"], timeout={"attemptDurationSeconds": 1})
    missing = submit(aws_batch, ["/no/such/program"])
    assert aws_batch.wait([slow, missing], seconds=15) == {slow: "FAILED", missing: "FAILED"}
    details = describe(aws_batch, [slow, missing])
    assert details[slow]["statusReason"] == "Job attempt duration exceeded timeout"
    assert details[missing]["statusReason"].startswith("CannotStartContainerError")


def test_crash_kills_the_process(aws_batch):
    job = submit(aws_batch, [PYTHON, "-c", "import time; time.sleep(120)"])
    until(lambda: job in aws_batch.agent.running())
    aws_batch.agent.crash(job)
    assert aws_batch.wait([job]) == {job: "FAILED"}
    assert describe(aws_batch, [job])[job]["container"]["exitCode"] == -9


def test_list_jobs_answers_like_aws(aws_batch):
    batch = aws_batch.client("batch")
    plain = submit(aws_batch, ["true"], name="plain")
    aws_batch.wait([plain])
    parent = submit(aws_batch, [PYTHON, "-c", "import time; time.sleep(120)"], size=2)
    until(lambda: len(aws_batch.agent.running()) == 2)
    # no status and no filter: RUNNING jobs only, and a queue listing leaves array children out
    assert batch.list_jobs(jobQueue=aws_batch.job_queue)["jobSummaryList"] == []
    pending = batch.list_jobs(jobQueue=aws_batch.job_queue, jobStatus="PENDING")["jobSummaryList"]
    assert [(job["jobId"], job["arrayProperties"]) for job in pending] == [(parent, {"size": 2})]
    named = batch.list_jobs(jobQueue=aws_batch.job_queue, filters=[{"name": "JOB_NAME", "values": ["plain*"]}])
    assert [job["jobId"] for job in named["jobSummaryList"]] == [plain]
    batch.terminate_job(jobId=parent, reason="test: done")
    aws_batch.wait([parent])


def test_describe_environment_is_stable(aws_batch):
    job = submit(aws_batch, ["true"], overrides={"environment": [{"name": "A", "value": "1"}]})
    first = describe(aws_batch, [job])[job]["container"]["environment"]
    second = describe(aws_batch, [job])[job]["container"]["environment"]
    assert first == second == [{"name": "A", "value": "1"}]
    aws_batch.wait([job])


def test_worker_processes_reach_the_local_endpoint(aws_batch):
    code = (
        "import boto3, os; print(boto3.client('batch').describe_jobs("
        "jobs=[os.environ['AWS_BATCH_JOB_ID']])['jobs'][0]['status'])"
    )
    job = submit(aws_batch, [PYTHON, "-c", code])
    assert aws_batch.wait([job], seconds=30) == {job: "SUCCEEDED"}
    assert log_lines(aws_batch, job) == ["RUNNING"]


@pytest.mark.parametrize("size", [None, 2])
def test_shutdown_ends_every_process(size):
    with local_aws_batch(slots=2) as batch:
        submit(batch, [PYTHON, "-c", "import time; time.sleep(120)"], size=size)
        until(lambda: len(batch.agent.running()) == (size or 1))
        pids = list(batch.agent.running().values())
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
