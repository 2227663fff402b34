"""AwsBatchDefinition: register, describe and deregister the job definition crew's workers use."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from crew import validate
from crew.errors import SettingError

from ._aws import _Connection, _environment_list
from ._options import (
    ARRAY_MAX,
    NAME_MAX,
    _job_settings,
    _memory_mebibytes,
    _number_text,
    _Options,
    _retry_strategy,
    _sanitise_name,
    _submit_request,
)

__all__ = ["AwsBatchDefinition"]

_PLATFORMS = ("EC2", "FARGATE")


class AwsBatchDefinition:
    """The job definition (and queue) of a crew deployment on AWS Batch.

    Arguments:
        job_queue: name or ARN of the job queue the workers run in.
        job_definition: the job definition's name (its family; revisions are numbered by AWS).
        log_group: the CloudWatch Logs group the awslogs driver writes to.
        region, endpoint_url, aws_profile, aws_credentials, seconds_timeout: the AWS connection,
            as for :class:`crew_aws_batch.AwsBatchLauncher`.
    """

    def __init__(
        self,
        job_queue: str,
        job_definition: str,
        log_group: str = "/aws/batch/job",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        aws_profile: str | None = None,
        aws_credentials: Mapping[str, str] | None = None,
        seconds_timeout: float = 60.0,
    ):
        self.job_queue = validate.text("job_queue", job_queue)
        self.job_definition = validate.text("job_definition", job_definition, pattern=r"[A-Za-z0-9_-]{1,128}")
        self.log_group = validate.text("log_group", log_group)
        self.connection = _Connection(region=region, endpoint_url=endpoint_url, aws_profile=aws_profile,
                                      aws_credentials=aws_credentials, seconds_timeout=seconds_timeout)

    def registration(
        self,
        image: str,
        *,
        cpus: float = 1,
        memory_gigabytes: float | None = None,
        memory_mebibytes: int | None = None,
        gpus: int | None = None,
        job_role_arn: str | None = None,
        execution_role_arn: str | None = None,
        platform_capabilities: str | Sequence[str] | None = None,
        timeout: int | None = None,
        tags: Mapping[str, str] | None = None,
        propagate_tags: bool | None = None,
        parameters: Mapping[str, str] | None = None,
        retry_strategy: int | Mapping[str, Any] | None = None,
        environment: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        container_properties: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``register_job_definition`` request :meth:`register` sends (a dry run).

        Memory defaults to 2 GiB. ``container_properties`` adds further ContainerProperties fields
        (e.g. ``networkConfiguration`` for Fargate); the log configuration is always awslogs into
        ``log_group``.
        """
        image = validate.text("image", image)
        cpus = validate.number("cpus", cpus, exclusive_minimum=True)
        memory = _memory_mebibytes(memory_gigabytes, memory_mebibytes) or 2048
        gpus = validate.integer("gpus", gpus, minimum=1, allow_none=True)
        job_role_arn = validate.text("job_role_arn", job_role_arn, allow_none=True, pattern=r"arn:\S+")
        execution_role_arn = validate.text("execution_role_arn", execution_role_arn, allow_none=True, pattern=r"arn:\S+")
        platforms = validate.strings("platform_capabilities", platform_capabilities, allow_none=True)
        for platform in platforms or []:
            validate.choice("platform_capabilities", platform, _PLATFORMS)
        timeout = validate.integer("timeout", timeout, minimum=60, allow_none=True)
        tags = validate.mapping("tags", tags, values=str)
        if propagate_tags is not None:
            propagate_tags = validate.flag("propagate_tags", propagate_tags)
        parameters = validate.mapping("parameters", parameters, values=str)
        retry = _retry_strategy(retry_strategy)
        environment = validate.mapping("environment", environment, values=str)
        command = validate.strings("command", command, allow_none=True)
        extra = validate.mapping("container_properties", container_properties)
        if platforms and "FARGATE" in platforms and execution_role_arn is None:
            raise SettingError("platform_capabilities=['FARGATE'] needs execution_role_arn")
        properties = self._container_properties(image, cpus, memory, gpus, extra)
        optional = {"command": command, "environment": _environment_list(environment) if environment else None,
                    "jobRoleArn": job_role_arn, "executionRoleArn": execution_role_arn}  # fmt: skip
        properties.update({key: value for key, value in optional.items() if value is not None})
        request: dict[str, Any] = {
            "jobDefinitionName": self.job_definition,
            "type": "container",
            "containerProperties": properties,
        }
        return _with_request_options(request, platforms, timeout, tags, propagate_tags, parameters, retry)

    def _container_properties(
        self, image: str, cpus: float, memory: int, gpus: int | None, extra: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """``extra`` (copied) with the image, resources and the awslogs configuration into :attr:`log_group`."""
        requirements = [
            {"type": "VCPU", "value": _number_text(cpus)},
            {"type": "MEMORY", "value": str(memory)},
        ]
        if gpus is not None:
            requirements.append({"type": "GPU", "value": str(gpus)})
        properties: dict[str, Any] = copy.deepcopy(dict(extra or {}))
        properties.update(
            {
                "image": image,
                "resourceRequirements": requirements,
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": self.log_group}},
            }
        )
        return properties

    def register(self, image: str, **settings: Any) -> dict[str, Any]:
        """Register a new revision; return ``{"name", "revision", "arn"}``.

        Takes the arguments of :meth:`registration`.
        """
        reply = self.connection.call("batch", "register_job_definition", **self.registration(image, **settings))
        return {
            "name": reply["jobDefinitionName"],
            "revision": reply["revision"],
            "arn": reply["jobDefinitionArn"],
        }

    def submission(
        self,
        command: str | Sequence[str] | None,
        *,
        name: str | None = None,
        revision: int | None = None,
        array_size: int | None = None,
        cpus: float | None = None,
        gpus: int | None = None,
        memory_gigabytes: float | None = None,
        memory_mebibytes: int | None = None,
        environment: Mapping[str, str] | None = None,
        timeout: int | None = None,
        retry_strategy: int | Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        propagate_tags: bool | None = None,
        share_identifier: str | None = None,
        scheduling_priority_override: int | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ``submit_job`` request :meth:`submit` sends (a dry run). See :meth:`submit`."""
        options = _Options(
            job_queue=self.job_queue,
            job_definition=_definition_reference(self.job_definition, revision),
            environment=validate.mapping("environment", environment, values=str),
            **_job_settings(
                cpus=cpus, gpus=gpus, memory_gigabytes=memory_gigabytes, memory_mebibytes=memory_mebibytes, tags=tags,
                propagate_tags=propagate_tags, share_identifier=share_identifier,
                scheduling_priority_override=scheduling_priority_override, parameters=parameters,
                retry_strategy=retry_strategy, timeout=timeout),
            container_overrides=None, node_overrides=None, eks_properties_override=None,
        )
        size = validate.integer("array_size", array_size, minimum=2, maximum=ARRAY_MAX, allow_none=True)
        words = _command_words(command)
        request = _submit_request(options, _submit_name(name, self.job_definition), words or [], {}, size or 1)
        if words is None:
            del request["containerOverrides"]["command"]  # the job definition's own command
        return request

    def submit(self, command: str | Sequence[str] | None, **settings: Any) -> dict[str, str]:
        """Submit one job from the job definition; return ``{"name", "id", "arn"}`` (AWS's reply).

        ``command`` runs in the container: a list of words, or a shell command line (a string,
        run as ``["sh", "-c", command]``), or None for the job definition's own command. Keyword
        arguments (all optional):

            name: the job's name (default ``<job definition>-<random hex>``): 1-128 letters,
                digits, ``_`` and ``-``, starting with a letter or digit.
            revision: the job definition's revision (default: the newest active one).
            array_size: 2-10,000 makes an array job of that many children.
            cpus, gpus, memory_gigabytes (1 GB = 1024 MiB) or memory_mebibytes: resource
                requirements overriding the job definition's.
            environment: variables for the container (over the definition's; ``PYTHONUNBUFFERED=1``
                is set unless given).
            timeout (seconds per attempt, >= 60), retry_strategy (a number of attempts or AWS's
            dict), tags, propagate_tags, share_identifier, scheduling_priority_override,
            parameters: the submit_job fields of the same names.

        Bad arguments raise :class:`crew.SettingError` naming the argument; AWS's refusals raise
        :class:`crew.SchedulerError` with AWS's message. Follow the job with :meth:`monitor`.
        """
        reply = self.connection.call("batch", "submit_job", **self.submission(command, **settings))
        return {"name": reply["jobName"], "id": reply["jobId"], "arn": reply.get("jobArn", "")}

    def describe(self, revision: int | None = None, active: bool = True) -> list[dict[str, Any]]:
        """The revisions of the job definition (only ACTIVE ones unless ``active=False``), oldest first.

        Each is a dict: name, revision, arn, status, type, image, cpus, memory_mebibytes, gpus,
        job_role_arn, execution_role_arn, platform_capabilities, log_group, timeout, tags, raw
        (AWS's full description).
        """
        revision = validate.integer("revision", revision, minimum=1, allow_none=True)
        active = validate.flag("active", active)
        parameters: dict[str, Any] = {"jobDefinitionName": self.job_definition}
        if active:
            parameters["status"] = "ACTIVE"
        found = self.connection.pages("batch", "describe_job_definitions", "jobDefinitions", **parameters)
        rows = [_definition_row(item) for item in found if item.get("jobDefinitionName") == self.job_definition]
        if revision is not None:
            rows = [row for row in rows if row["revision"] == revision]
        return sorted(rows, key=lambda row: row["revision"])

    def deregister(self, revision: int | None = None) -> dict[str, Any]:
        """Deregister one revision (default: the newest active one); return its description."""
        revision = validate.integer("revision", revision, minimum=1, allow_none=True)
        revisions = self.describe(revision=revision, active=True)
        if not revisions:
            which = f"revision {revision}" if revision is not None else "revision"
            raise SettingError(f"job definition {self.job_definition!r} has no active {which}")
        target = revisions[-1]
        self.connection.call("batch", "deregister_job_definition", jobDefinition=target["arn"])
        return target

    def monitor(self, **settings: Any) -> Any:
        """An :class:`crew_aws_batch.AwsBatchMonitor` of this queue and definition, same connection."""
        from .monitor import AwsBatchMonitor

        return AwsBatchMonitor(
            self.job_queue, self.job_definition, log_group=self.log_group, **self._connection_settings(), **settings
        )

    def controller(self, **settings: Any) -> Any:
        """An (unstarted) :func:`crew_aws_batch.aws_batch_controller` for this queue and definition."""
        from .controller import aws_batch_controller

        return aws_batch_controller(
            job_queue=self.job_queue, job_definition=self.job_definition, **self._connection_settings(), **settings
        )

    def _connection_settings(self) -> dict[str, Any]:
        return {
            "region": self.connection.region,
            "endpoint_url": self.connection.endpoint_url,
            "aws_profile": self.connection.aws_profile,
            "aws_credentials": self.connection.aws_credentials,
        }

    def __repr__(self) -> str:
        return (
            f"AwsBatchDefinition(job_queue={self.job_queue!r}, job_definition={self.job_definition!r}, "
            f"log_group={self.log_group!r})"
        )


def _definition_reference(job_definition: str, revision: Any) -> str:
    """``name`` (AWS takes the newest active revision) or ``name:revision``."""
    revision = validate.integer("revision", revision, minimum=1, allow_none=True)
    return job_definition if revision is None else f"{job_definition}:{revision}"


def _command_words(command: Any) -> list[str] | None:
    """``command`` as the container's words: a list as given, a string through ``sh -c``."""
    if command is None:
        return None
    if isinstance(command, str):
        return ["sh", "-c", validate.text("command", command)]
    words = validate.strings("command", command)
    if not words:
        raise SettingError("command must be a non-empty list of words, a shell command line or None, not []")
    return words


def _submit_name(name: Any, job_definition: str) -> str:
    """The job's name: the one given (checked as AWS would), or the definition's with a random suffix."""
    if name is None:
        return f"{_sanitise_name(job_definition)[: NAME_MAX - 9]}-{secrets.token_hex(4)}"
    return validate.text("name", name, pattern=r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _definition_row(item: Mapping[str, Any]) -> dict[str, Any]:
    properties = item.get("containerProperties") or {}
    requirements = {entry.get("type"): entry.get("value") for entry in properties.get("resourceRequirements") or []}
    memory = requirements.get("MEMORY", properties.get("memory"))
    cpus = requirements.get("VCPU", properties.get("vcpus"))
    options = (properties.get("logConfiguration") or {}).get("options") or {}
    return {
        "name": item.get("jobDefinitionName"),
        "revision": item.get("revision"),
        "arn": item.get("jobDefinitionArn"),
        "status": item.get("status"),
        "type": item.get("type"),
        "image": properties.get("image"),
        "cpus": float(cpus) if cpus is not None else None,
        "memory_mebibytes": int(memory) if memory is not None else None,
        "gpus": int(requirements["GPU"]) if "GPU" in requirements else None,
        "job_role_arn": properties.get("jobRoleArn"),
        "execution_role_arn": properties.get("executionRoleArn"),
        "platform_capabilities": list(item.get("platformCapabilities") or []),
        "log_group": options.get("awslogs-group"),
        "timeout": (item.get("timeout") or {}).get("attemptDurationSeconds"),
        "tags": dict(item.get("tags") or {}),
        "raw": dict(item),
    }


def _with_request_options(
    request: dict[str, Any],
    platforms: Sequence[str] | None,
    timeout: int | None,
    tags: Mapping[str, str] | None,
    propagate_tags: bool | None,
    parameters: Mapping[str, str] | None,
    retry: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``request`` with the job definition's optional top-level fields that are given."""
    if platforms:
        request["platformCapabilities"] = list(platforms)
    if timeout is not None:
        request["timeout"] = {"attemptDurationSeconds": timeout}
    optional = {"tags": tags, "propagateTags": propagate_tags, "parameters": parameters, "retryStrategy": retry}
    request.update({key: value for key, value in optional.items() if value is not None})
    return request
