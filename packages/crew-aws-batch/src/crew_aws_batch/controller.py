"""aws_batch_controller(): a crew controller whose workers run as AWS Batch jobs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import crew
from crew.tls import TLS

from .launcher import AwsBatchLauncher

__all__ = ["aws_batch_controller"]


def aws_batch_controller(
    name: str | None = None,
    workers: int = 1,
    host: str | None = None,
    port: int | None = None,
    tls: TLS | None = None,
    serializer: Any = None,
    profile: Any = None,
    seconds_interval: float = 0.25,
    seconds_timeout: float = 60,
    seconds_launch: float = 60,
    seconds_idle: float = math.inf,
    seconds_wall: float = math.inf,
    tasks_max: int | float = math.inf,
    tasks_timers: int = 0,
    reset_globals: bool = True,
    reset_modules: bool = False,
    garbage_collection: bool = False,
    python: str | None = None,
    metrics: str | None = None,
    crashes_max: int = 5,
    backup: Any = None,
    *,
    job_queue: str,
    job_definition: str,
    region: str | None = None,
    endpoint_url: str | None = None,
    aws_profile: str | None = None,
    aws_credentials: Mapping[str, str] | None = None,
    cpus: float | None = None,
    gpus: int | None = None,
    memory_gigabytes: float | None = None,
    memory_mebibytes: int | None = None,
    environment: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
    propagate_tags: bool | None = None,
    share_identifier: str | None = None,
    scheduling_priority_override: int | None = None,
    parameters: Mapping[str, str] | None = None,
    retry_strategy: int | Mapping[str, Any] | None = None,
    timeout: int | None = None,
    container_overrides: Mapping[str, Any] | None = None,
    node_overrides: Mapping[str, Any] | None = None,
    eks_properties_override: Mapping[str, Any] | None = None,
    job_name: str | None = None,
) -> Any:
    """A :class:`crew.Controller` (not started) whose workers are AWS Batch jobs.

    Takes every argument of ``crew_local.local_controller`` with the same meaning, except that
    ``host`` defaults to None (the first non-loopback address, which workers in the VPC can
    reach) and ``python`` is the interpreter inside the container (default ``python3``), plus the
    AWS Batch options of :class:`crew_aws_batch.AwsBatchLauncher` (``job_queue`` and
    ``job_definition`` are required). The controller's TCP port must be open to the workers'
    security group (see the README).
    """
    return crew.build_controller(AwsBatchLauncher, **locals())
