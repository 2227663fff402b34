"""One gigabytes-to-megabytes rule, crew.validate.megabytes, for every plugin's memory options."""

import pytest
from crew import cluster, validate


@pytest.mark.parametrize(
    "gigabytes, megabytes",
    [(3 * 0.1 * 10, 3072), (1, 1024), (1.5, 1536), (0.001, 2), (0.5 + 1 / 1024, 513), (2**-10, 1), (100.1, 102503)],
)
def test_whole_megabytes_rounded_up_without_float_noise(gigabytes, megabytes):
    assert validate.megabytes(gigabytes) == megabytes
    assert cluster.megabytes(gigabytes) == megabytes  # the cluster launchers' name for it


def test_float_noise_is_really_there():
    """The case above is a real trap: the plain product is a hair above 3072."""
    assert 3 * 0.1 * 10 * 1024 > 3072
