"""The local AWS Batch: moto's HTTP server on 127.0.0.1 with the agent, a queue and a job definition."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._jobs import _LOG_GROUP, TERMINAL_STATUSES
from .agent import LocalBatchAgent
from .moto_patches import installed


@dataclass
class LocalAwsBatch:
    """A running local AWS Batch: endpoint, agent, and the queue and definition made for tests."""

    endpoint: str
    agent: LocalBatchAgent
    region: str
    job_queue: str
    job_definition: str
    compute_environment: str
    log_group: str = _LOG_GROUP
    environment: dict[str, str] = field(default_factory=dict)
    """The variables set for the duration (endpoint, region, dummy credentials)."""
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, service: str) -> Any:
        """A boto3 client of the local endpoint (one per service, reused)."""
        import boto3

        with self._lock:
            if service not in self._clients:
                session = boto3.session.Session(
                    aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
                )
                self._clients[service] = session.client(service, endpoint_url=self.endpoint)
            return self._clients[service]

    def options(self) -> dict[str, str]:
        """Keyword arguments that point a launcher, controller or monitor at this AWS Batch."""
        return {
            "job_queue": self.job_queue,
            "job_definition": self.job_definition,
            "region": self.region,
            "endpoint_url": self.endpoint,
        }

    def wait(self, job_ids: Sequence[str], statuses: Sequence[str] = TERMINAL_STATUSES, seconds: float = 30) -> dict[str, str]:
        """Poll describe_jobs until every job is in one of ``statuses``; return id → status."""
        batch = self.client("batch")
        deadline = time.monotonic() + seconds
        while True:
            found = {job["jobId"]: job["status"] for job in batch.describe_jobs(jobs=list(job_ids))["jobs"]}
            if len(found) == len(set(job_ids)) and all(status in statuses for status in found.values()):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not in {statuses} after {seconds} s: {found}")
            time.sleep(0.05)


_ENVIRONMENT_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


@contextlib.contextmanager
def _environment(values: Mapping[str, str], cleared: Sequence[str]) -> Iterator[None]:
    """Set and clear environment variables for the duration; restore them exactly afterwards."""
    names = list(values) + list(cleared)
    before = {name: os.environ.get(name) for name in names}
    try:
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(values)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def local_aws_batch(
    agent: LocalBatchAgent | None = None,
    *,
    slots: int = 4,
    region: str = "us-east-1",
    name: str = "crew-test",
    image: str = "crew-worker:local",
) -> Iterator[LocalAwsBatch]:
    """Start moto on 127.0.0.1 (a free port) with the agent, make an UNMANAGED compute environment,
    a queue and a job definition, and point boto3 at it with dummy credentials for the duration.

    On exit every job is ended, the server stops, moto's state is reset and the environment is restored.
    """
    agent = agent if agent is not None else LocalBatchAgent(slots=slots)
    with _moto_server(agent) as endpoint:
        values = _aws_variables(endpoint, region)
        with _environment(values, _ENVIRONMENT_CLEARED):
            if agent.environment is None:
                agent.environment = dict(os.environ)
            else:
                agent.environment.update(values)
            batch = LocalAwsBatch(endpoint, agent, region, "", "", "", environment=values)
            batch.job_queue, batch.job_definition, batch.compute_environment = _create_queue(batch, name, image)
            try:
                yield batch
            finally:
                agent._stop_all()


@contextlib.contextmanager
def _moto_server(agent: LocalBatchAgent) -> Iterator[str]:
    """moto's threaded server on a free port of 127.0.0.1 with the agent installed; yields its endpoint.

    moto's state is reset before and after, and the server logs no line per request meanwhile.
    """
    from moto.moto_api._internal.models import moto_api_backend
    from moto.server import ThreadedMotoServer

    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto_api_backend.reset()
    with installed(agent):
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            moto_api_backend.reset()
            quiet.setLevel(level)


def _aws_variables(endpoint: str, region: str) -> dict[str, str]:
    """The environment that points boto3 at ``endpoint`` with dummy credentials and no config files."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _create_queue(batch: LocalAwsBatch, name: str, image: str) -> tuple[str, str, str]:
    """An IAM service role, an UNMANAGED compute environment, a queue and a job definition."""
    iam = batch.client("iam")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName=f"{name}-service", AssumeRolePolicyDocument=json.dumps(policy))["Role"]["Arn"]
    client = batch.client("batch")
    environment = client.create_compute_environment(
        computeEnvironmentName=f"{name}-environment", type="UNMANAGED", state="ENABLED", serviceRole=role
    )
    client.create_job_queue(
        jobQueueName=f"{name}-queue",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    client.register_job_definition(
        jobDefinitionName=f"{name}-worker",
        type="container",
        containerProperties={
            "image": image,
            "command": ["true"],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "512"}],
        },
    )
    return f"{name}-queue", f"{name}-worker", environment["computeEnvironmentArn"]

