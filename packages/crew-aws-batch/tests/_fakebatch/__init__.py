"""A local AWS Batch for crew-aws-batch's tests: moto's real HTTP API on 127.0.0.1 plus crew's own compute agent.

Test support, not part of the product: it lives in the repository next to the tests
(``packages/crew-aws-batch/tests/_fakebatch``) and is not installed with ``crew-aws-batch``. The
tests' ``conftest.py`` puts its folder on ``sys.path``; it needs the ``[test]`` extra
(``moto[server,batch]``). Nothing here reaches beyond 127.0.0.1.

moto answers every AWS Batch, CloudWatch Logs and IAM call over HTTP, parsed and checked by
botocore against the real service model. moto cannot run a job without Docker, so
:class:`LocalBatchAgent` takes its place: each container job's command runs as a local process
(the image is ignored) with the AWS Batch environment (``AWS_BATCH_JOB_ID``,
``AWS_BATCH_JOB_ARRAY_INDEX``, ``AWS_BATCH_JOB_ATTEMPT``, ``AWS_BATCH_JQ_NAME``,
``AWS_BATCH_CE_NAME``); the job goes SUBMITTED → PENDING → RUNNABLE → STARTING → RUNNING →
SUCCEEDED or FAILED; its output goes to CloudWatch Logs under the stream ``describe_jobs``
names; its exit code is recorded; ``terminate_job`` kills it (an array parent ends its children);
and :meth:`LocalBatchAgent.hold` keeps new jobs in RUNNABLE, like a queue without capacity.

While the agent is installed it also makes moto answer like AWS where moto differs:
``describe_jobs`` reports ``container.exitCode``, ``isCancelled``/``isTerminated``, the array
index of children and a stable environment (moto's grows on each call); ``list_jobs`` without a
status or filter lists RUNNING jobs only, a queue listing leaves out array children, and its
summaries carry ``arrayProperties``; array parents follow their children (moto leaves them
SUBMITTED); cancelling or terminating a parent reaches its children.

Use :func:`local_aws_batch` (a context manager) or the ``aws_batch`` pytest fixture::

    from _fakebatch import local_aws_batch

    with local_aws_batch(slots=2) as batch:
        controller = aws_batch_controller(host="127.0.0.1", **batch.options())

The agent changes moto's classes for the whole process while it is installed: run one local
AWS Batch at a time.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._jobs import TERMINAL_STATUSES, Launched
from .agent import LocalBatchAgent
from .server import LocalAwsBatch, local_aws_batch

__all__ = ["LocalBatchAgent", "LocalAwsBatch", "Launched", "local_aws_batch", "aws_batch", "TERMINAL_STATUSES"]


@pytest.fixture
def aws_batch() -> Iterator[LocalAwsBatch]:
    """A :class:`LocalAwsBatch` with two slots, for one test (import it into a ``conftest.py``)."""
    with local_aws_batch(slots=2) as batch:
        yield batch
