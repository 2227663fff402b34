"""AWS Batch's memory request uses crew's one gigabytes-to-MiB rule (crew.validate.megabytes)."""

import crew
import pytest
from crew import validate
from crew_aws_batch import AwsBatchLauncher

REQUIRED = {"job_queue": "queue", "job_definition": "definition"}


@pytest.mark.parametrize("gigabytes", [3 * 0.1 * 10, 1.5, 0.001, 100.1])
def test_memory_gigabytes_as_every_plugin_counts_them(gigabytes):
    launcher = AwsBatchLauncher(**REQUIRED, memory_gigabytes=gigabytes)
    assert launcher.options.memory_mebibytes == validate.megabytes(gigabytes)


def test_float_noise_adds_no_mebibyte():
    assert AwsBatchLauncher(**REQUIRED, memory_gigabytes=3 * 0.1 * 10).options.memory_mebibytes == 3072
    launcher = AwsBatchLauncher(**REQUIRED, memory_gigabytes=3 * 0.1 * 10)
    launcher.bind(crew.Contact("tcp://10.0.0.5:5555", "c0ffee", "s" * 32, None, "memory"))
    request = launcher.requests(launcher.call(launch="1"), 1)[0]
    assert {"type": "MEMORY", "value": "3072"} in request["containerOverrides"]["resourceRequirements"]


def test_options_are_read_only():
    launcher = AwsBatchLauncher(**REQUIRED, cpus=2)
    with pytest.raises(AttributeError, match="read-only"):
        launcher.options.cpus = 4
    assert launcher.options.cpus == 2
