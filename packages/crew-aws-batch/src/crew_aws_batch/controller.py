"""aws_batch_controller(): a crew controller whose workers run as AWS Batch jobs."""

from __future__ import annotations

from crew._build import CLUSTER_DEFAULTS, controller_helper

from .launcher import AwsBatchLauncher

__all__ = ["aws_batch_controller"]

aws_batch_controller = controller_helper(
    AwsBatchLauncher,
    name="aws_batch_controller",
    defaults=CLUSTER_DEFAULTS,
    doc="""A :class:`crew.Controller` (not started) whose workers are AWS Batch jobs.

    Takes every argument of ``crew_local.local_controller`` with the same meaning, except that
    ``host`` defaults to None (the first non-loopback address, which workers in the VPC can
    reach), ``seconds_launch`` to 60 (containers start slower than local processes) and
    ``python`` is the interpreter inside the container (default ``python3``), plus the AWS Batch
    options of :class:`crew_aws_batch.AwsBatchLauncher`, keyword-only (``job_queue`` and
    ``job_definition`` are required). The controller's TCP port must be open to the workers'
    security group (see the README).
    """,
)
