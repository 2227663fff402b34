"""crew on AWS Batch: auto-scaled crew workers as AWS Batch (array) jobs.

``aws_batch_controller(...)`` builds a controller; ``AwsBatchLauncher`` is its launcher,
``AwsBatchMonitor`` lists and ends the jobs and reads their logs, ``AwsBatchDefinition``
manages the job definition. The tests run against a local, moto-backed AWS Batch that lives
with them in the repository (``packages/crew-aws-batch/tests/_fakebatch``), not in this package.
"""

from __future__ import annotations

from crew.plugins import Plugin

from .controller import aws_batch_controller
from .definition import AwsBatchDefinition
from .launcher import AwsBatchHandle, AwsBatchLauncher
from .monitor import AwsBatchMonitor

__version__ = "0.1.0"

__all__ = [
    "AwsBatchDefinition",
    "AwsBatchHandle",
    "AwsBatchLauncher",
    "AwsBatchMonitor",
    "aws_batch_controller",
    "plugin",
]

plugin = Plugin(
    name="aws_batch",
    package="crew-aws-batch",
    controller=aws_batch_controller,
    launcher=AwsBatchLauncher,
    monitor=AwsBatchMonitor,
)
"""What this package registers under the ``crew.launchers`` entry-point group."""
