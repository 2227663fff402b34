"""slurm_controller(machine=SshMachine(...)): a laptop submits through a login node (#16, part 4).

The login node is a real OpenSSH server on 127.0.0.1 (tests/support/sshd_server.py) in front of
the real SLURM of tests/clusters/slurm. sbatch, squeue and scancel run through it (each records
the variable that only sshd's sessions have), the secret file is written through it, and after
terminate() nothing is left: no job, no worker, no script, no secret file, no SSH session.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
import stat
import subprocess
import sys

import psutil
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "support"))

import crew.testing
import sshd_server
from crew.testing import eventually

pytestmark = pytest.mark.slurm
SECONDS = 90.0


def _require_slurm() -> None:
    ready = shutil.which("sbatch") and subprocess.run(["squeue", "--noheader"], capture_output=True,
                                                      timeout=30, check=False).returncode == 0
    if not ready:
        message = "SLURM is not running here (tests/clusters/slurm/start.sh starts it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    _require_slurm()
    server = sshd_server.start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


def _recorded(record: pathlib.Path, name: str) -> str:
    """A script that appends '<value of the sshd-only variable> <name>' to ``record``, then runs
    the real command; its path."""
    path = record.parent / f"recorded-{name}"
    path.write_text(f'#!/bin/sh\necho "${{{sshd_server.VIA_SSHD}:-local}} {name}" >> {record}\nexec {name} "$@"\n')
    path.chmod(0o755)
    return str(path)


def _in_queue(job_ids: list[str]) -> list[str]:
    if not job_ids:
        return []
    listed = subprocess.run(["squeue", "--noheader", "--array", f"--jobs={','.join(job_ids)}", "--format=%i"],
                            capture_output=True, text=True, check=False)
    return listed.stdout.split() if listed.returncode == 0 else []


def test_slurm_controller_submits_through_a_login_node(sshd, tmp_path):
    from crew_slurm import slurm_controller
    from plumbum import SshMachine

    record = tmp_path / "commands"
    scripts = tmp_path / "scripts"
    machine = SshMachine(sshd.destination, ssh_opts=sshd.ssh_options, scp_opts=sshd.ssh_options)
    try:
        controller = slurm_controller(
            host="127.0.0.1", workers=1, seconds_timeout=30, machine=machine, script_directory=scripts,
            job_name=f"crew-ssh-{secrets.token_hex(3)}",
            command_submit=_recorded(record, "sbatch"), command_cancel=_recorded(record, "scancel"),
        )
        controller.launcher.command_status = _recorded(record, "squeue")
        with controller:
            result = crew.testing.informal_test(controller, SECONDS)
            (secret_file,) = scripts.glob("crew-secret-*")
            assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
            assert controller.launcher.contact.secret in secret_file.read_text()
            job_ids = [result.result["environment"]["SLURM_JOB_ID"]]
            assert controller.launcher.queued(job_ids) == [crew.Queued(0)]  # squeue: none of it waits
    finally:
        machine.close()
    lines = record.read_text().splitlines()
    assert {line.split()[1] for line in lines} >= {"sbatch", "squeue", "scancel"}, lines
    assert all(line.split()[0] == str(sshd.port) for line in lines), lines  # each ran through sshd
    eventually(lambda: not _in_queue(job_ids), SECONDS)
    eventually(lambda: not crew.testing.pids_alive([result.pid]), SECONDS)
    assert list(scripts.glob("crew-secret-*")) == [] and list(scripts.glob("*.sh")) == []
    # Every SSH connection is a child process of the listening sshd: none is left.
    eventually(lambda: not psutil.Process(sshd.process.pid).children(), SECONDS)
