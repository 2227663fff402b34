"""Fixtures for crew-slurm's tests: the real SLURM cluster for tests marked ``slurm``.

Tests marked ``@pytest.mark.slurm`` need a running SLURM. When ``sbatch`` is installed but the
daemons are down, the project's start script (tests/clusters/slurm/start.sh) starts them. When
SLURM is not installed they skip, except in CI (the ``CI`` variable set), where the start script
installs it and any failure fails the tests.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

START = pathlib.Path(__file__).resolve().parents[3] / "tests" / "clusters" / "slurm" / "start.sh"
_state: dict[str, str | None] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: needs a running SLURM cluster (tests/clusters/slurm/start.sh)")


def _cluster_up() -> bool:
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, check=False)
    return ping.returncode == 0 and "UP" in ping.stdout


def _ensure_cluster() -> str | None:
    """None when SLURM runs; otherwise why the tests skip (raises in CI or when the start fails)."""
    in_ci = bool(os.environ.get("CI"))
    if shutil.which("sbatch") is None and not in_ci:
        return "SLURM is not installed here (run tests/clusters/slurm/start.sh as root to install and start it)"
    if shutil.which("sbatch") is None or not _cluster_up():
        started = subprocess.run(["bash", str(START)], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            pytest.fail(f"{START} failed ({started.returncode}):\n{started.stdout}\n{started.stderr}")
    if not _cluster_up():
        pytest.fail("SLURM's controller does not answer `scontrol ping` after the start script")
    return None


@pytest.fixture(autouse=True)
def _slurm_cluster(request):
    """Make sure SLURM runs before a test marked ``slurm`` (once per session)."""
    if request.node.get_closest_marker("slurm") is None:
        return
    if "reason" not in _state:
        _state["reason"] = _ensure_cluster()
    if _state["reason"]:
        pytest.skip(_state["reason"])
