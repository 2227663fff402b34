"""The cluster start scripts on a machine that an earlier run used.

Each test plants what an earlier run (or another SLURM setup) leaves, runs the start script, and
checks the cluster works; the last one makes a start fail and checks the script shows the failing
daemon's log and stops what it started. They stop the real clusters for a few seconds, so they run
in CI (``CI`` set) or with ``CREW_RESTART_CLUSTERS=1``, and always end by running start.sh again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SLURM_START, SLURM_STOP = HERE / "slurm" / "start.sh", HERE / "slurm" / "stop.sh"
SGE_START = HERE / "sge" / "start.sh"
SGE_SPOOL = Path("/var/spool/gridengine")
STATE = Path("/var/spool/slurmctld")


@pytest.fixture(autouse=True)
def _allowed():
    if not (os.environ.get("CI") or os.environ.get("CREW_RESTART_CLUSTERS")):
        pytest.skip("restarts the shared clusters: runs in CI or with CREW_RESTART_CLUSTERS=1")
    if os.geteuid() != 0:
        pytest.fail("the cluster start scripts run as root")


def sh(*words: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(word) for word in words], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})


def pid_of(pidfile: str | Path) -> int | None:
    """The live process a pid file names, or None."""
    try:
        pid = int(Path(pidfile).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def program(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@pytest.fixture
def bystander():
    """An unrelated process whose pid the tests write into pid files: it must survive."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def started(script: Path, env: dict[str, str] | None = None) -> str:
    done = sh("bash", script, env=env)
    assert done.returncode == 0, f"{script} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.skipif(shutil.which("slurmctld") is None and not os.environ.get("CI"), reason="SLURM not installed")
def test_slurm_starts_over_what_an_earlier_run_left(bystander):
    started(SLURM_START)
    try:
        # The database user keeps an old password; slurmdbd is down (its next start needs ours).
        os.kill(pid_of("/run/slurmdbd.pid"), 15)
        assert sh("mysql", "-u", "root", "-e",
                  "ALTER USER 'slurm'@'localhost' IDENTIFIED BY 'an-old-password'").returncode == 0
        # slurmctld stopped, with state files of a cluster named "ci" and a pid file of a dead pid.
        slurmctld = pid_of("/run/slurmctld.pid")
        os.kill(slurmctld, 15)
        _wait_gone(slurmctld)
        (STATE / "clustername").write_text("ci\n")
        Path("/run/slurmctld.pid").write_text(f"{slurmctld}\n")
        # slurmd still running, but its pid file names an unrelated live process.
        slurmd = pid_of("/run/slurmd.pid")
        Path("/run/slurmd.pid").write_text(f"{bystander.pid}\n")
        out = started(SLURM_START)
        assert "moving aside the state files of cluster 'ci'" in out
        assert f"stopping a leftover slurmd (pid {slurmd})" in out
        assert bystander.poll() is None, "start.sh killed the process a stale pid file named"
        assert (STATE / "clustername").read_text().strip() == "crew"
        assert (Path("/var/spool/slurmctld.previous") / "clustername").read_text().strip() == "ci"
        assert program(pid_of("/run/slurmd.pid")) == "slurmd"
        assert sh("mysql", "-u", "slurm", "-pcrew-slurm-tests", "-e", "SELECT 1").returncode == 0
        assert "crew" in sh("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster").stdout.split()
        job = sh("sbatch", "--wait", "--output=/dev/null", "--wrap", "true")
        assert job.returncode == 0, job.stderr
    finally:
        started(SLURM_START)


def _wait_gone(pid: int, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still running after {seconds} s")


@pytest.mark.skipif(shutil.which("slurmctld") is None and not os.environ.get("CI"), reason="SLURM not installed")
def test_a_failed_slurm_start_shows_the_log_and_stops_what_it_started():
    sh("bash", SLURM_STOP)
    try:
        # A state folder that is a file: slurmctld starts, then stops on it (in its log).
        failed = sh("bash", SLURM_START, env={"CREW_SLURM_CONF_EXTRA": "StateSaveLocation=/etc/hostname"})
        assert failed.returncode != 0
        assert "last 40 lines of slurmctld's log" in failed.stderr, failed.stderr
        for daemon in ("slurmdbd", "munged", "mariadb"):
            assert f"stopping {daemon}, which this run started" in failed.stderr, failed.stderr
        for pidfile in ("/run/slurmctld.pid", "/run/slurmd.pid", "/run/slurmdbd.pid", "/run/munge/munged.pid"):
            assert pid_of(pidfile) is None, f"{pidfile} still names a live process after the failed start"
        assert sh("mysqladmin", "ping").returncode != 0, "mariadb still runs after the failed start"
    finally:
        started(SLURM_START)


@pytest.mark.skipif(shutil.which("sge_qmaster") is None and not os.environ.get("CI"), reason="SGE not installed")
def test_sge_starts_over_stale_pid_files(bystander):
    env = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default"}
    started(SGE_START, env)
    execd_files = list(SGE_SPOOL.glob("execd/*/execd.pid"))
    execd = [pid for pid in map(pid_of, execd_files) if pid]
    assert execd, "no sge_execd runs after start.sh"
    try:
        # execd dies and its pid file names an unrelated live process: start.sh must start a new
        # execd and leave that process alone.
        os.kill(execd[0], 9)
        _wait_gone(execd[0])
        for path in execd_files:
            path.write_text(f"{bystander.pid}\n")
        out = started(SGE_START, env)
        assert "starting sge_execd" in out
        assert bystander.poll() is None, "start.sh killed the process a stale pid file named"
        assert [program(pid) for pid in map(pid_of, SGE_SPOOL.glob("execd/*/execd.pid")) if pid] == ["sge_execd"]
    finally:
        started(SGE_START, env)
