"""AwsBatchDefinition.submit(): one job from the job definition, against the local AWS Batch
(moto on 127.0.0.1 + the local agent), and the request it sends (a dry run, no AWS)."""

from __future__ import annotations

import crew
import crew.testing
import pytest
from crew_aws_batch import AwsBatchDefinition


def definition_of(batch, name="crew-submit", log_group="/crew/submit"):
    definition = AwsBatchDefinition(
        batch.job_queue, name, log_group=log_group, endpoint_url=batch.endpoint, region=batch.region
    )
    definition.register("crew-worker:1", memory_mebibytes=512, command=["echo", "the definition's command"])
    return definition


def job_of(batch, job_id):
    (job,) = batch.client("batch").describe_jobs(jobs=[job_id])["jobs"]
    return job


# ---------------------------------------------------------------------- against the local AWS Batch
def test_submit_runs_a_shell_line_and_returns_name_id_arn(aws_batch):
    definition = definition_of(aws_batch)
    job = definition.submit('echo "$GREETING" | tr a-z A-Z', name="shout", environment={"GREETING": "hello"})
    assert set(job) == {"name", "id", "arn"} and job["name"] == "shout"
    assert aws_batch.wait([job["id"]]) == {job["id"]: "SUCCEEDED"}
    described = job_of(aws_batch, job["id"])
    assert (described["jobName"], described["jobArn"]) == ("shout", job["arn"])
    crew.testing.eventually(lambda: "HELLO" in definition.monitor().log(job["id"]), seconds=30)


def test_submit_a_list_of_words_with_resources_and_a_revision(aws_batch):
    definition = definition_of(aws_batch)
    definition.register("crew-worker:2", command=["false"])  # revision 2 would fail
    job = definition.submit(["sh", "-c", "exit 3"], revision=1, cpus=2, memory_gigabytes=0.5, tags={"team": "stats"})
    assert aws_batch.wait([job["id"]]) == {job["id"]: "FAILED"}
    described = job_of(aws_batch, job["id"])
    assert described["jobDefinition"].endswith("crew-submit:1")
    assert described["container"]["exitCode"] == 3
    assert aws_batch.client("batch").list_tags_for_resource(resourceArn=job["arn"])["tags"] == {"team": "stats"}
    (moto_job,) = [item for item in aws_batch.agent.jobs if item.job_id == job["id"]]  # moto does not describe overrides
    wanted = {item["type"]: item["value"] for item in moto_job.container_overrides["resourceRequirements"]}
    assert (wanted["VCPU"], wanted["MEMORY"]) == ("2", "512")


def test_submit_without_a_command_runs_the_definitions_own(aws_batch):
    definition = definition_of(aws_batch)
    job = definition.submit(None)
    assert job["name"].startswith("crew-submit-") and len(job["name"]) == len("crew-submit-") + 8
    assert aws_batch.wait([job["id"]]) == {job["id"]: "SUCCEEDED"}
    crew.testing.eventually(lambda: "the definition's command" in definition.monitor().log(job["id"]), seconds=30)


def test_submit_an_array(aws_batch):
    definition = definition_of(aws_batch)
    job = definition.submit('echo "child $AWS_BATCH_JOB_ARRAY_INDEX"', array_size=2)
    assert aws_batch.wait([job["id"]]) == {job["id"]: "SUCCEEDED"}
    children = aws_batch.client("batch").list_jobs(arrayJobId=job["id"], jobStatus="SUCCEEDED")["jobSummaryList"]
    assert len(children) == 2


def test_aws_refusal_is_a_scheduler_error(aws_batch):
    definition = definition_of(aws_batch)
    with pytest.raises(crew.SchedulerError):
        definition.submit(["true"], revision=9)


# ---------------------------------------------------------------------- the request (dry run)
def test_submission_request():
    definition = AwsBatchDefinition("queue", "crew-worker")
    request = definition.submission(
        "echo hi", name="one", revision=3, array_size=4, gpus=1, memory_mebibytes=2048, environment={"A": "1"},
        timeout=120, retry_strategy=2, share_identifier="blue", scheduling_priority_override=5,
        parameters={"p": "v"}, propagate_tags=True,
    )  # fmt: skip
    assert request == {
        "jobName": "one",
        "jobQueue": "queue",
        "jobDefinition": "crew-worker:3",
        "arrayProperties": {"size": 4},
        "containerOverrides": {
            "command": ["sh", "-c", "echo hi"],
            "environment": [{"name": "PYTHONUNBUFFERED", "value": "1"}, {"name": "A", "value": "1"}],
            "resourceRequirements": [{"type": "MEMORY", "value": "2048"}, {"type": "GPU", "value": "1"}],
        },
        "parameters": {"p": "v"},
        "propagateTags": True,
        "shareIdentifier": "blue",
        "schedulingPriorityOverride": 5,
        "retryStrategy": {"attempts": 2},
        "timeout": {"attemptDurationSeconds": 120},
    }
    bare = definition.submission(None, name="two")
    assert bare["jobDefinition"] == "crew-worker" and "command" not in bare["containerOverrides"]


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("command", 3),
        ("command", []),
        ("command", ""),
        ("name", "two words"),
        ("name", "-leading"),
        ("name", "x" * 129),
        ("revision", 0),
        ("array_size", 1),
        ("array_size", 10_001),
        ("cpus", 0),
        ("memory_gigabytes", "2G"),
        ("environment", {"A": 1}),
        ("timeout", 30),
        ("tags", "team"),
    ],
)
def test_bad_arguments_name_themselves(argument, value):
    definition = AwsBatchDefinition("queue", "crew-worker")
    settings = {"command": ["true"], argument: value}
    command = settings.pop("command")
    with pytest.raises(crew.SettingError, match=f"^{argument} must"):
        definition.submission(command, **settings)


def test_unknown_argument_is_refused():
    with pytest.raises(TypeError, match="colour"):
        AwsBatchDefinition("queue", "crew-worker").submission(["true"], colour="red")
