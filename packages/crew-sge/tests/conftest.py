"""Shared fixtures: where the LSF/PBS stand-in commands live, their job tables, and the real Grid Engine."""

from __future__ import annotations

import os
import shutil
import uuid

import plumbum
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))
CLUSTERS = os.path.join(REPO, "tests", "clusters")
LSF_BIN = os.path.join(CLUSTERS, "lsf", "bin")
PBS_BIN = os.path.join(CLUSTERS, "pbs", "bin")
GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def pytest_configure(config):
    config.addinivalue_line("markers", "sge: needs a running Son of Grid Engine (tests/clusters/sge/start.sh)")
    config.addinivalue_line("markers", "lsf: runs against the LSF stand-in commands (tests/clusters/lsf/bin)")
    config.addinivalue_line("markers", "pbs: runs against the PBS stand-in commands (tests/clusters/pbs/bin)")


@pytest.fixture
def name() -> str:
    """A fresh controller name, so that each test finds its own jobs in the scheduler."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def lsf_bin() -> str:
    """The folder of the LSF stand-ins (bsub, bjobs, bkill)."""
    return LSF_BIN


@pytest.fixture
def pbs_bin() -> str:
    """The folder of the PBS stand-ins (qsub, qstat, qdel); never put on the PATH, where Grid
    Engine's own qsub lives."""
    return PBS_BIN


@pytest.fixture
def golden() -> str:
    """The folder of the expected job scripts."""
    return GOLDEN


class FakeScheduler:
    """Settings of the LSF/PBS stand-ins for one test (their job table is the test's own)."""

    def __init__(self, state: str):
        self.state = state

    def use(self, flavor: str = "pro", slots: int | None = None) -> None:
        """Choose the PBS flavour (``pro`` or ``torque``) and how many tasks may run at once."""
        plumbum.local.env["CREW_FAKE_PBS_FLAVOR"] = flavor
        plumbum.local.env["CREW_FAKE_SCHEDULER_SLOTS"] = "" if slots is None else str(slots)

    def open_queue(self) -> None:
        """Lift the slot limit, also for tasks already waiting."""
        for kind in ("lsf", "pbs"):
            os.makedirs(os.path.join(self.state, kind), exist_ok=True)
            with open(os.path.join(self.state, kind, "slots"), "w"):
                pass


@pytest.fixture
def fake_scheduler(tmp_path):
    """A fresh job table for the LSF/PBS stand-ins, set in the environment the commands run in;
    every stand-in task still running at the end is ended (by its recorded process group)."""
    state = tmp_path / "scheduler"
    state.mkdir()
    settings = {"CREW_FAKE_SCHEDULER_DIR": str(state), "CREW_FAKE_PBS_FLAVOR": "pro", "CREW_FAKE_SCHEDULER_SLOTS": ""}
    with plumbum.local.env(**settings):
        yield FakeScheduler(str(state))
        _end_fake_jobs(str(state))


def _end_fake_jobs(state: str) -> None:
    """End every stand-in task a test left running, by the process group recorded for it."""
    import sys

    sys.path.insert(0, CLUSTERS)
    try:
        import fakesched
    finally:
        sys.path.remove(CLUSTERS)
    for kind in ("lsf", "pbs"):
        folder = os.path.join(state, kind)
        if not os.path.isdir(os.path.join(folder, "jobs")):
            continue
        for job in fakesched.all_jobs(folder):
            live = [key for key, task in job["tasks"].items() if task["state"] not in fakesched.FINISHED]
            if live:
                fakesched.kill_tasks(folder, job["id"], live)
                for key in live:
                    fakesched.end_group(job["tasks"][key]["pid"])


def sge_available() -> bool:
    """Whether Grid Engine's commands are here; without them the SGE tests skip, except in CI."""
    return shutil.which("qsub") is not None and os.path.isdir("/var/lib/gridengine")


@pytest.fixture(scope="session")
def sge():
    """The environment Grid Engine's commands need (SGE_ROOT, SGE_CELL), for the whole session."""
    if not sge_available():
        if os.environ.get("CI"):
            pytest.fail("Grid Engine is not installed: CI must run tests/clusters/sge/start.sh first")
        pytest.skip("Grid Engine is not installed here (run tests/clusters/sge/start.sh as root)")
    defaults = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
    missing = {key: value for key, value in defaults.items() if key not in plumbum.local.env}
    with plumbum.local.env(**missing):
        code, _, err = plumbum.local["qstat"].run(retcode=None)
        if code != 0:
            message = f"Grid Engine does not answer (qstat: {err.strip()}); run tests/clusters/sge/start.sh"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        yield plumbum.local
