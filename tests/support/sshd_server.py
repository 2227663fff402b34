"""A real OpenSSH server for tests: Debian's sshd, started on 127.0.0.1 with its own config,
host key, client key and port, ended by its pid.

Used by crew-ssh's tests and tests/test_slurm_over_ssh.py (their conftest files put this folder on
``sys.path``). Without ``/usr/sbin/sshd`` the tests skip, except in CI (``CI=true``), where they
fail: tests/run.sh installs openssh-server.
"""

from __future__ import annotations

import getpass
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

import pytest

SSHD = "/usr/sbin/sshd"
HOST_ALIAS = "crew-test-sshd"
"""The ``Host`` of the client config: ``ssh -F <config> crew-test-sshd`` reaches the server."""
VIA_SSHD = "CREW_TEST_VIA_SSHD"
"""Set (to the server's port) in the environment of every command run through the server."""


@dataclass
class SshServer:
    """One running sshd and how a client reaches it."""

    folder: pathlib.Path
    port: int
    process: subprocess.Popen[bytes]
    user: str = field(default_factory=getpass.getuser)

    @property
    def client_config(self) -> str:
        """An ssh config file (for ``ssh -F``) whose ``Host crew-test-sshd`` is this server."""
        return str(self.folder / "ssh_config")

    @property
    def ssh_options(self) -> list[str]:
        return ["-F", self.client_config]

    @property
    def destination(self) -> str:
        return HOST_ALIAS

    @property
    def log(self) -> str:
        return (self.folder / "sshd.log").read_text(errors="replace")

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a remote command through this server."""
        done = subprocess.run(["ssh", *self.ssh_options, "-T", self.destination, command],
                              capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"ssh {command!r} failed ({done.returncode}): {done.stderr}\nsshd log:\n{self.log}")
        return done

    def stop(self) -> None:
        """End the listening sshd by its pid (sessions still open end with their clients)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def require_sshd() -> None:
    """Skip without sshd, except in CI, where a missing sshd is a failure."""
    if os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("ssh-keygen"):
        return
    message = f"{SSHD}, ssh or ssh-keygen missing: apt-get install openssh-server openssh-client"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _keygen(path: pathlib.Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "crew-test", "-f", str(path)],
                   check=True, capture_output=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_configs(folder: pathlib.Path, port: int) -> None:
    (folder / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password", "AllowTcpForwarding no",
        "X11Forwarding no", "PrintMotd no", "LogLevel VERBOSE",
        f"SetEnv {VIA_SSHD}={port}",  # only commands run through this server see it
        "",
    ]))
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (folder / "ssh_config").write_text("\n".join([
        f"Host {HOST_ALIAS}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {getpass.getuser()}",
        f"  IdentityFile {folder / 'client_key'}", "  IdentitiesOnly yes",
        f"  UserKnownHostsFile {folder / 'known_hosts'}", "  StrictHostKeyChecking yes",
        "  BatchMode yes", "  LogLevel ERROR", "",
    ]))


def start_sshd(folder: pathlib.Path, seconds: float = 20.0) -> SshServer:
    """Make keys and configs in ``folder``, start sshd in the foreground (-D), wait until a
    client logs in."""
    require_sshd()
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    port = _free_port()
    _write_configs(folder, port)
    log = open(folder / "sshd.log", "wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = SshServer(folder, port, process)
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(f"sshd exited ({process.returncode}):\n{server.log}")
        if server.ssh("true", check=False).returncode == 0:
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"no login through sshd within {seconds:g} s:\n{server.log}")
        time.sleep(0.1)
