"""Exact AWS requests, checked by botocore's Stubber (it rejects unknown keys and wrong types)."""

from __future__ import annotations

import shlex

import boto3
import crew
import pytest
from botocore.stub import ANY, Stubber
from crew_aws_batch import AwsBatchDefinition, AwsBatchHandle, AwsBatchLauncher, AwsBatchMonitor

SECRET = "not-on-the-command-line"
REASON = "crew: terminated by the controller"


def stubbed(owner, service="batch"):
    """Give ``owner`` (launcher, monitor or definition) a stubbed client; return its Stubber."""
    client = boto3.session.Session(region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b").client(service)
    owner.connection._clients[service] = client
    stubber = Stubber(client)
    stubber.activate()
    return stubber


def bound(**options):
    """A launcher bound as a controller would bind it (url, id, secret, name)."""
    launcher = AwsBatchLauncher(job_queue="queue", job_definition="worker:3", python="python3", **options)
    launcher.bind(crew.Contact("tcp://10.0.0.5:5555", "c0ffee", SECRET, None, "analysis"))
    return launcher


def worker_command(launch):
    return ["python3", "-m", "crew.worker", "tcp://10.0.0.5:5555", "--controller", "c0ffee", "--launch", launch, "--seconds-timeout", "60"]


def environment(*extra):
    return [{"name": "PYTHONUNBUFFERED", "value": "1"}, *extra, {"name": "CREW_SECRET", "value": SECRET}]


def test_one_worker_is_a_plain_job():
    launcher = bound()
    stubber = stubbed(launcher)
    stubber.add_response(
        "submit_job",
        {"jobName": "crew-analysis-1", "jobId": "job-1"},
        {
            "jobName": "crew-analysis-1",
            "jobQueue": "queue",
            "jobDefinition": "worker:3",
            "containerOverrides": {"command": worker_command("1"), "environment": environment()},
        },
    )
    call = launcher.call(launch="1")
    assert SECRET not in call
    handle = launcher.launch_workers(call, 1)
    stubber.assert_no_pending_responses()
    assert handle == AwsBatchHandle("1", ("job-1",), (1,))
    assert launcher.jobs == {"1": handle}


def test_an_array_job_with_every_option():
    launcher = bound(
        cpus=2,
        gpus=1,
        memory_gigabytes=4,
        environment={"STAGE": "test", "PYTHONUNBUFFERED": "0"},
        tags={"project": "crew"},
        propagate_tags=True,
        share_identifier="blue",
        scheduling_priority_override=7,
        parameters={"size": "big"},
        retry_strategy={"attempts": 2, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]},
        timeout=3600,
        container_overrides={
            "instanceType": "c5.large",
            "environment": [{"name": "FROM_OVERRIDES", "value": "yes"}],
            "resourceRequirements": [{"type": "VCPU", "value": "8"}],
        },
        job_name="my run/1",
    )
    stubber = stubbed(launcher)
    stubber.add_response(
        "submit_job",
        {"jobName": "my_run_1-2", "jobId": "array-2"},
        {
            "jobName": "my_run_1-2",
            "jobQueue": "queue",
            "jobDefinition": "worker:3",
            "arrayProperties": {"size": 5},
            "containerOverrides": {
                "instanceType": "c5.large",
                "command": worker_command("2"),
                "environment": [
                    {"name": "FROM_OVERRIDES", "value": "yes"},
                    {"name": "PYTHONUNBUFFERED", "value": "0"},
                    {"name": "STAGE", "value": "test"},
                    {"name": "CREW_SECRET", "value": SECRET},
                ],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "2"},
                    {"type": "MEMORY", "value": "4096"},
                    {"type": "GPU", "value": "1"},
                ],
            },
            "parameters": {"size": "big"},
            "tags": {"project": "crew"},
            "propagateTags": True,
            "shareIdentifier": "blue",
            "schedulingPriorityOverride": 7,
            "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "137", "action": "RETRY"}]},
            "timeout": {"attemptDurationSeconds": 3600},
        },
    )
    handle = launcher.launch_workers(launcher.call(launch="2"), 5)
    stubber.assert_no_pending_responses()
    assert handle.sizes == (5,) and handle.arrays == ("array-2",) and handle.workers == 5


def test_rounds_above_10000_workers_are_split():
    launcher = bound()
    stubber = stubbed(launcher)
    for part, size in enumerate([8334, 8333, 8333]):
        stubber.add_response(
            "submit_job",
            {"jobName": f"crew-analysis-3-{part}", "jobId": f"array-{part}"},
            {
                "jobName": f"crew-analysis-3-{part}",
                "jobQueue": "queue",
                "jobDefinition": "worker:3",
                "arrayProperties": {"size": size},
                "containerOverrides": {"command": worker_command("3"), "environment": environment()},
            },
        )
    handle = launcher.launch_workers(launcher.call(launch="3"), 25_000)
    stubber.assert_no_pending_responses()
    assert handle.job_ids == ("array-0", "array-1", "array-2") and handle.workers == 25_000


def test_a_failed_part_ends_the_parts_already_submitted():
    launcher = bound()
    stubber = stubbed(launcher)
    stubber.add_response("submit_job", {"jobName": "crew-analysis-4-0", "jobId": "array-0"}, {"jobName": "crew-analysis-4-0", "jobQueue": ANY, "jobDefinition": ANY, "arrayProperties": ANY, "containerOverrides": ANY})
    stubber.add_client_error("submit_job", "ClientException", "Job queue queue does not exist", 400)
    stubber.add_response("cancel_job", {}, {"jobId": "array-0", "reason": REASON})
    stubber.add_response("terminate_job", {}, {"jobId": "array-0", "reason": REASON})
    for status in ("STARTING", "RUNNING"):
        stubber.add_response("list_jobs", {"jobSummaryList": []}, {"arrayJobId": "array-0", "jobStatus": status})
    with pytest.raises(crew.SchedulerError, match="Job queue queue does not exist") as caught:
        launcher.launch_workers(launcher.call(launch="4"), 10_001)
    assert caught.value.command == "batch.submit_job"
    stubber.assert_no_pending_responses()
    assert launcher.jobs == {}


def test_eks_jobs_get_the_command_in_the_pod():
    launcher = bound(
        cpus=1.5,
        memory_mebibytes=1000,
        eks_properties_override={"podProperties": {"containers": [{"image": "mine", "env": [{"name": "A", "value": "1"}]}]}},
    )
    request = launcher.requests(launcher.call(launch="5"), 2)[0]
    assert "containerOverrides" not in request
    assert request["eksPropertiesOverride"] == {
        "podProperties": {
            "containers": [
                {
                    "image": "mine",
                    "command": worker_command("5"),
                    "env": [{"name": "A", "value": "1"}, *environment()],
                    "resources": {"limits": {"cpu": "1.5", "memory": "1000Mi"}},
                }
            ]
        }
    }
    stubber = stubbed(launcher)
    stubber.add_response("submit_job", {"jobName": "crew-analysis-5", "jobId": "eks"}, request)
    launcher.launch_workers(launcher.call(launch="5"), 2)
    stubber.assert_no_pending_responses()


def test_node_overrides_get_the_command_on_every_node_range():
    launcher = bound(node_overrides={"numNodes": 2})
    (request,) = launcher.requests(launcher.call(launch="6"), 1)
    assert request["nodeOverrides"] == {
        "numNodes": 2,
        "nodePropertyOverrides": [
            {"targetNodes": "0:", "containerOverrides": {"command": worker_command("6"), "environment": environment()}}
        ],
    }
    stubber = stubbed(launcher)
    stubber.add_response("submit_job", {"jobName": "crew-analysis-6", "jobId": "mnp"}, request)
    launcher.launch_workers(launcher.call(launch="6"), 1)
    stubber.assert_no_pending_responses()


def test_terminate_cancels_and_terminates_parents_and_started_children():
    launcher = bound()
    launcher.jobs = {"1": AwsBatchHandle("1", ("plain",), (1,)), "2": AwsBatchHandle("2", ("array",), (3,))}
    stubber = stubbed(launcher)
    for job in ("plain", "array"):
        stubber.add_response("cancel_job", {}, {"jobId": job, "reason": REASON})
        stubber.add_response("terminate_job", {}, {"jobId": job, "reason": REASON})
    stubber.add_response(
        "list_jobs",
        {"jobSummaryList": [{"jobId": "array:0", "jobName": "x"}], "nextToken": "more"},
        {"arrayJobId": "array", "jobStatus": "STARTING"},
    )
    stubber.add_response(
        "list_jobs", {"jobSummaryList": [{"jobId": "array:2", "jobName": "x"}]}, {"arrayJobId": "array", "jobStatus": "STARTING", "nextToken": "more"}
    )
    stubber.add_response("terminate_job", {}, {"jobId": "array:0", "reason": REASON})
    stubber.add_response("terminate_job", {}, {"jobId": "array:2", "reason": REASON})
    stubber.add_response("list_jobs", {"jobSummaryList": []}, {"arrayJobId": "array", "jobStatus": "RUNNING"})
    launcher.terminate_workers(list(launcher.jobs.values()))
    stubber.assert_no_pending_responses()


def test_final_terminate_also_ends_active_jobs_of_earlier_rounds():
    launcher = bound()
    launcher.jobs = {"1": AwsBatchHandle("1", ("old-done",), (1,)), "2": AwsBatchHandle("2", ("old-running",), (1,)), "3": AwsBatchHandle("3", ("now",), (1,))}
    stubber = stubbed(launcher)
    stubber.add_response(
        "describe_jobs",
        {"jobs": [_detail("old-done", "SUCCEEDED"), _detail("old-running", "RUNNING")]},
        {"jobs": ["old-done", "old-running"]},
    )
    for job in ("now", "old-running"):
        stubber.add_response("cancel_job", {}, {"jobId": job, "reason": REASON})
        stubber.add_response("terminate_job", {}, {"jobId": job, "reason": REASON})
    assert launcher.instances == []  # the controller clears its instances before the final call
    launcher.terminate_workers([launcher.jobs["3"]])
    stubber.assert_no_pending_responses()
    # nothing is asked twice
    launcher.terminate_workers([])
    stubber.assert_no_pending_responses()


def test_queued_describes_in_chunks_of_100_and_counts_waiting_workers():
    launcher = bound()
    handles = [AwsBatchHandle(str(index), (f"job-{index}",), (1,)) for index in range(150)]
    handles.append(AwsBatchHandle("array", ("array",), (4,)))
    ids = [job for handle in handles for job in handle.job_ids]
    first = [_detail(job, "RUNNABLE", reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT") if job == "job-0" else _detail(job, "RUNNING") for job in ids[:100]]
    second = [_detail(job, "PENDING") for job in ids[100:150]]
    second.append(
        _detail(
            "array",
            "PENDING",
            arrayProperties={"size": 4, "statusSummary": {"RUNNABLE": 2, "STARTING": 1, "RUNNING": 1}},
        )
    )
    stubber = stubbed(launcher)
    stubber.add_response("describe_jobs", {"jobs": first}, {"jobs": ids[:100]})
    stubber.add_response("describe_jobs", {"jobs": second}, {"jobs": ids[100:]})
    report = launcher.queued(handles)
    stubber.assert_no_pending_responses()
    assert report[0] == crew.Queued(1, "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT")
    assert report[1] == crew.Queued(0, None)
    assert report[120] == crew.Queued(1, "PENDING")
    assert report[-1] == crew.Queued(3, "RUNNABLE")
    # asked again at once: answered from the last answer, without calling AWS
    assert launcher.queued(handles) == report


def test_aws_errors_carry_aws_words():
    launcher = bound()
    stubber = stubbed(launcher)
    stubber.add_client_error("describe_jobs", "TooManyRequestsException", "Rate exceeded", 429)
    with pytest.raises(crew.SchedulerError, match="Rate exceeded"):
        launcher.queued([AwsBatchHandle("1", ("a",), (1,))])


def _detail(job_id, status, reason=None, **extra):
    detail = {"jobId": job_id, "jobName": "crew-analysis", "jobQueue": "queue", "status": status, "startedAt": 1_700_000_000_000, "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/worker:3", "createdAt": 1}
    if reason:
        detail["statusReason"] = reason
    detail.update(extra)
    return detail


# ---------------------------------------------------------------------------------------- monitor
def test_monitor_jobs_lists_with_a_filter_and_children_by_status():
    monitor = AwsBatchMonitor("queue", "worker")
    stubber = stubbed(monitor)
    stubber.add_response(
        "list_jobs",
        {
            "jobSummaryList": [
                {"jobId": "plain", "jobName": "crew-a-1", "status": "RUNNING", "jobDefinition": "arn:aws:batch:us-east-1:1:job-definition/worker:3"},
                {"jobId": "array", "jobName": "crew-a-2", "status": "PENDING", "arrayProperties": {"size": 2}, "jobDefinition": "arn:aws:batch:us-east-1:1:job-definition/worker:4"},
                {"jobId": "other", "jobName": "crew-b-1", "status": "RUNNING", "jobDefinition": "arn:aws:batch:us-east-1:1:job-definition/different:1"},
            ]
        },
        {"jobQueue": "queue", "filters": [{"name": "JOB_NAME", "values": ["crew*"]}]},
    )
    stubber.add_response(
        "describe_jobs",
        {
            "jobs": [
                _detail("plain", "RUNNING", container={"networkInterfaces": [{"privateIpv4Address": "10.0.0.9"}], "logStreamName": "s/1"}),
                _detail("array", "PENDING", arrayProperties={"size": 2, "statusSummary": {"RUNNING": 1, "FAILED": 1}}),
            ]
        },
        {"jobs": ["plain", "array"]},
    )
    stubber.add_response("list_jobs", {"jobSummaryList": [{"jobId": "array:0", "jobName": "crew-a-2"}]}, {"arrayJobId": "array", "jobStatus": "RUNNING"})
    stubber.add_response("list_jobs", {"jobSummaryList": [{"jobId": "array:1", "jobName": "crew-a-2"}]}, {"arrayJobId": "array", "jobStatus": "FAILED"})
    stubber.add_response(
        "describe_jobs",
        {
            "jobs": [
                _detail("array:0", "RUNNING", arrayProperties={"index": 0}),
                _detail("array:1", "FAILED", reason="crew: terminated by the controller", isTerminated=True, container={"exitCode": 143}),
            ]
        },
        {"jobs": ["array:0", "array:1"]},
    )
    rows = monitor.jobs()
    stubber.assert_no_pending_responses()
    assert [(row["id"], row["array_index"], row["state"], row["raw_state"], row["array_id"]) for row in rows] == [
        ("array:0", 0, "running", "RUNNING", "array"),
        ("array:1", 1, "cancelled", "FAILED", "array"),
        ("plain", None, "running", "RUNNING", None),
    ]
    assert rows[2]["node"] == "10.0.0.9" and rows[2]["log_stream"] == "s/1"
    assert rows[1]["exit_code"] == 143 and rows[1]["reason"] == "crew: terminated by the controller"
    assert rows[0]["start_time"].year == 2023
    assert set(crew.JOB_COLUMNS) <= set(rows[0])


def test_monitor_status_chunks_and_log_pages():
    monitor = AwsBatchMonitor("queue", log_group="/custom")
    batch = stubbed(monitor)
    ids = [f"job-{index}" for index in range(101)]
    batch.add_response("describe_jobs", {"jobs": [_detail(job, "SUCCEEDED") for job in ids[:100]]}, {"jobs": ids[:100]})
    batch.add_response("describe_jobs", {"jobs": [_detail(ids[100], "SUCCEEDED")]}, {"jobs": ids[100:]})
    assert [row["state"] for row in monitor.status(ids)] == ["done"] * 101
    batch.add_response("describe_jobs", {"jobs": [_detail("job-1", "SUCCEEDED", container={"logStreamName": "worker/default/abc"})]}, {"jobs": ["job-1"]})
    logs = stubbed(monitor, "logs")
    stream = {"logGroupName": "/custom", "logStreamName": "worker/default/abc", "startFromHead": True}
    logs.add_response("get_log_events", {"events": [{"message": "one"}, {"message": "two"}], "nextForwardToken": "f/1"}, stream)
    logs.add_response("get_log_events", {"events": [{"message": "three"}], "nextForwardToken": "f/2"}, {**stream, "nextToken": "f/1"})
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/2"}, {**stream, "nextToken": "f/2"})
    assert monitor.log("job-1") == "one\ntwo\nthree"
    batch.assert_no_pending_responses()
    logs.assert_no_pending_responses()


def test_monitor_terminate_all_asks_by_status_and_keeps_to_crew_jobs():
    monitor = AwsBatchMonitor("queue", job_name="crew-a")
    stubber = stubbed(monitor)
    reason = "crew: terminated by the monitor"
    for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"):
        found = []
        if status == "PENDING":
            found = [{"jobId": "array", "jobName": "crew-a-2", "arrayProperties": {"size": 3}}, {"jobId": "theirs", "jobName": "etl"}]
        if status == "RUNNING":
            found = [{"jobId": "plain", "jobName": "crew-a-1"}]
        stubber.add_response("list_jobs", {"jobSummaryList": found}, {"jobQueue": "queue", "jobStatus": status})
    for job in ("array", "plain"):
        stubber.add_response("cancel_job", {}, {"jobId": job, "reason": reason})
        stubber.add_response("terminate_job", {}, {"jobId": job, "reason": reason})
        if job == "array":
            stubber.add_response("list_jobs", {"jobSummaryList": []}, {"arrayJobId": "array", "jobStatus": "STARTING"})
            stubber.add_response("list_jobs", {"jobSummaryList": [{"jobId": "array:1", "jobName": "crew-a-2"}]}, {"arrayJobId": "array", "jobStatus": "RUNNING"})
            stubber.add_response("terminate_job", {}, {"jobId": "array:1", "reason": reason})
    assert monitor.terminate(all=True) == ["array", "array:1", "plain"]
    stubber.assert_no_pending_responses()


# ---------------------------------------------------------------------------------------- definitions
def test_register_sends_the_awslogs_driver_and_role_arns():
    definition = AwsBatchDefinition("queue", "crew-worker", log_group="/crew/workers")
    stubber = stubbed(definition)
    expected = {
        "jobDefinitionName": "crew-worker",
        "type": "container",
        "containerProperties": {
            "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/crew:1",
            "resourceRequirements": [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "1024"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/crew/workers"}},
            "environment": [{"name": "MODE", "value": "prod"}],
            "jobRoleArn": "arn:aws:iam::123456789012:role/crew-job",
            "executionRoleArn": "arn:aws:iam::123456789012:role/crew-execution",
            "networkConfiguration": {"assignPublicIp": "DISABLED"},
        },
        "platformCapabilities": ["FARGATE"],
        "timeout": {"attemptDurationSeconds": 7200},
        "tags": {"team": "stats"},
        "propagateTags": True,
    }
    stubber.add_response(
        "register_job_definition",
        {"jobDefinitionName": "crew-worker", "jobDefinitionArn": "arn:aws:batch:us-east-1:1:job-definition/crew-worker:7", "revision": 7},
        expected,
    )
    registered = definition.register(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/crew:1",
        cpus=0.5,
        memory_gigabytes=1,
        job_role_arn="arn:aws:iam::123456789012:role/crew-job",
        execution_role_arn="arn:aws:iam::123456789012:role/crew-execution",
        platform_capabilities="FARGATE",
        timeout=7200,
        tags={"team": "stats"},
        propagate_tags=True,
        environment={"MODE": "prod"},
        container_properties={"networkConfiguration": {"assignPublicIp": "DISABLED"}},
    )
    stubber.assert_no_pending_responses()
    assert registered == {"name": "crew-worker", "revision": 7, "arn": "arn:aws:batch:us-east-1:1:job-definition/crew-worker:7"}


def test_deregister_takes_the_newest_active_revision():
    definition = AwsBatchDefinition("queue", "crew-worker")
    stubber = stubbed(definition)
    revisions = [
        {"jobDefinitionName": "crew-worker", "jobDefinitionArn": f"arn:aws:batch:us-east-1:1:job-definition/crew-worker:{revision}", "revision": revision, "status": "ACTIVE", "type": "container"}
        for revision in (2, 5, 3)
    ]
    stubber.add_response("describe_job_definitions", {"jobDefinitions": revisions}, {"jobDefinitionName": "crew-worker", "status": "ACTIVE"})
    stubber.add_response("deregister_job_definition", {}, {"jobDefinition": "arn:aws:batch:us-east-1:1:job-definition/crew-worker:5"})
    assert definition.deregister()["revision"] == 5
    stubber.add_response("describe_job_definitions", {"jobDefinitions": []}, {"jobDefinitionName": "crew-worker", "status": "ACTIVE"})
    with pytest.raises(crew.SettingError, match="no active revision 9"):
        definition.deregister(9)
    stubber.assert_no_pending_responses()


def test_launch_command_round_trips_through_shlex():
    launcher = bound(metrics="/tmp/metrics dir")
    call = launcher.call(launch="7")
    assert shlex.split(call) == launcher.requests(call, 1)[0]["containerOverrides"]["command"]
