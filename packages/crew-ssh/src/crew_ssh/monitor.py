"""SshMonitor: the crew workers of this user on a list of SSH hosts."""

from __future__ import annotations

import collections
import datetime
from collections.abc import Sequence
from typing import Any

import crew
from crew import validate

from ._ssh import LIST, STOP, Ssh, checked_command, checked_hosts
from .launcher import DEFAULT_LOG_DIRECTORY, parse_ps

__all__ = ["SshMonitor"]


class SshMonitor(crew.Monitor):
    """Lists, ends and reads the logs of the crew workers on ``hosts``, whoever started them.

    A worker's id is ``"<host>/<pid>"``; its ``name`` is the id of the controller it serves.
    Arguments: ``hosts``, ``ssh_command``, ``ssh_options``, ``connections_max`` and
    ``log_directory`` as for :class:`crew_ssh.SshLauncher`, and ``seconds_timeout`` for each SSH call.
    Failures (a host that cannot be reached) raise :class:`crew.LaunchError` with one line naming
    the host.
    """

    def __init__(
        self,
        hosts: str | Sequence[str] | None = None,
        ssh_command: str | Sequence[str] = "ssh",
        ssh_options: str | Sequence[str] | None = None,
        connections_max: int = 4,
        log_directory: str = DEFAULT_LOG_DIRECTORY,
        seconds_timeout: float = 60.0,
    ):
        self.hosts = checked_hosts(hosts)
        command = checked_command(ssh_command)
        self.log_directory = validate.text("log_directory", log_directory, pattern=r"[^\r\n]+")
        self.ssh = Ssh(
            command,
            validate.strings("ssh_options", ssh_options),
            validate.integer("connections_max", connections_max, minimum=1),
            validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True),
        )

    def jobs(self) -> list[dict[str, Any]]:
        """One row per crew worker process on the hosts (``state``: running, or done for a zombie)."""
        now = datetime.datetime.now()
        rows = []
        for host in self.hosts:
            for row in parse_ps(self.ssh.run(host, LIST)):
                rows.append({
                    "id": f"{host}/{row.pid}",
                    "array_index": None,
                    "name": row.controller,
                    "state": "done" if row.stat.startswith("Z") else "running",
                    "reason": None,
                    "node": host,
                    "start_time": now - datetime.timedelta(seconds=row.seconds),
                    "raw_state": row.stat,
                })
        return rows

    def terminate(self, ids: list[Any] | None = None, all: bool = False) -> list[Any]:
        """End the workers with these ids (or every crew worker on the hosts with ``all=True``);
        return the ids ended."""
        if ids is None and not all:
            raise crew.SettingError("terminate needs ids or all=True")
        by_host: dict[str, list[str]] = collections.defaultdict(list)
        if all:
            by_host = {host: [] for host in self.hosts}
        else:
            for item in ids or []:
                host, pid = _split(item)
                by_host[host].append(pid)
        ended = []
        for host, pids in by_host.items():
            if not all and not pids:
                continue
            output = self.ssh.run(host, STOP, ["", *pids])
            ended += [f"{host}/{pid}" for pid in output.split()]
        return ended

    def log(self, id: Any) -> str:
        """What the worker wrote to ``<log_directory>/crew-worker-<pid>.log`` on its host ('' if none)."""
        host, pid = _split(id)
        path = f"{self.log_directory}/crew-worker-{pid}.log"
        return self.ssh.run(host, 'cat -- "$1" 2>/dev/null || true', [path])


def _split(id: Any) -> tuple[str, str]:
    host, _, pid = str(id).rpartition("/")
    if not host or not pid.isdigit():
        raise crew.SettingError(f"a worker id must be '<host>/<pid>' as jobs() gives it, not {id!r}")
    return host, pid
