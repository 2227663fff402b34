"""SshLauncher: workers started over SSH on one or more hosts, ended by their remote pids."""

from __future__ import annotations

import collections
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import crew
from crew import validate

from ._ssh import LIST, START, STOP, Ssh, SshError, checked_command, checked_hosts

__all__ = ["SshLauncher", "SshWorker", "DEFAULT_LOG_DIRECTORY"]

DEFAULT_LOG_DIRECTORY = ".crew/ssh-logs"
"""Where workers log on their host (relative to the SSH user's home directory)."""


@dataclass(frozen=True)
class SshWorker:
    """The handle of one worker: the host it runs on and its process id there."""

    host: str
    pid: int
    started: float = field(default_factory=time.monotonic, compare=False)


class SshLauncher(crew.Launcher):
    """Starts workers on other machines with the ``ssh`` command (OpenSSH's client).

    Takes the arguments of :class:`crew.Launcher`, plus:
        hosts: the SSH destinations to start workers on (``"node1"``, ``"user@node1"``,
            ``"ssh://user@node1:2222"``, or a ``Host`` of your ssh config); each round's workers go
            to the hosts running the fewest of this launcher's workers.
        ssh_command: the ssh client (a string or a list of words), default ``"ssh"``.
        ssh_options: more options for it, e.g. ``["-F", "ssh_config"]`` or ``["-i", "key"]``.
        connections_max: the most SSH connections open at once to one host (sshd's
            ``MaxStartups`` drops connections beyond 10 by default). One round of workers on a
            host takes one connection, however many workers it starts.
        log_directory: where each worker writes ``crew-worker-<pid>.log`` on its host (relative
            paths start in the SSH user's home directory).
        seconds_status: the least time between two listings of a host's workers (used to notice
            workers that exited before dialling in).

    ``python`` names the interpreter *on the hosts* (default: this one's path, right when the
    hosts share this machine's software). Workers must reach the controller's ``host`` and port.
    The secret goes over the SSH connection's standard input into the worker's environment:
    never on a command line, here or there.
    """

    shared_filesystem = False
    """The hosts need not see this machine's files: the secret travels over SSH instead."""

    def __init__(
        self,
        *args: Any,
        hosts: str | Sequence[str] | None = None,
        ssh_command: str | Sequence[str] = "ssh",
        ssh_options: str | Sequence[str] | None = None,
        connections_max: int = 4,
        log_directory: str = DEFAULT_LOG_DIRECTORY,
        seconds_status: float = 2.0,
        **options: Any,
    ):
        super().__init__(*args, **options)
        self.hosts = checked_hosts(hosts)
        self.ssh_command = checked_command(ssh_command)
        self.ssh_options = validate.strings("ssh_options", ssh_options)
        self.connections_max = validate.integer("connections_max", connections_max, minimum=1)
        self.log_directory = validate.text("log_directory", log_directory, pattern=r"[^\r\n]+")
        self.seconds_status = validate.number("seconds_status", seconds_status, minimum=0)
        self.ssh = Ssh(self.ssh_command, self.ssh_options, self.connections_max, self.seconds_timeout)
        self._listings: dict[str, tuple[float, set[int]]] = {}

    # ------------------------------------------------------------------ the launcher contract
    def launch_workers(self, call: str, n: int) -> list[SshWorker]:
        """Start ``n`` workers, spread over the hosts; one SSH connection per host."""
        handles: list[SshWorker] = []
        try:
            for host, count in self._spread(n).items():
                handles += self._start(host, call, count)
        except SshError:
            self.terminate_workers(handles)
            raise
        return handles

    def terminate_workers(self, handles: Sequence[SshWorker]) -> None:
        """End the workers behind ``handles`` by their pids, one SSH call per host."""
        by_host: dict[str, list[int]] = collections.defaultdict(list)
        for handle in handles:
            by_host[handle.host].append(handle.pid)
        for host, pids in by_host.items():
            self.ssh.run(host, STOP, [self._mark(), *map(str, pids)])
            self._listings.pop(host, None)

    def terminate_worker(self, handle: SshWorker) -> None:
        """End one worker."""
        self.terminate_workers([handle])

    def exit_status(self, handle: SshWorker, timeout: float = 0.0) -> str | None:
        """``"exited"`` (with where its log is) once the worker's process is gone from its host,
        else None. One listing per host per ``seconds_status`` (``timeout`` is not waited)."""
        listing = self._listing(handle.host)
        if listing is None or listing[0] < handle.started or handle.pid in listing[1]:
            return None
        return f"exited; see {self.log_directory}/crew-worker-{handle.pid}.log on {handle.host}"

    def close(self) -> None:
        """End every worker of this controller still on any host, whether or not its pid is known."""
        if not self.bound:
            return
        for host in self.hosts:
            try:
                self.ssh.run(host, STOP, [self._mark()])
            except SshError:
                continue

    # ------------------------------------------------------------------ helpers
    def _spread(self, n: int) -> dict[str, int]:
        """How many of ``n`` new workers go to each host: the least busy hosts first."""
        load = collections.Counter({host: 0 for host in self.hosts})
        for instance in self.instances:
            if isinstance(instance.handle, SshWorker) and instance.handle.host in load:
                load[instance.handle.host] += 1
        chosen: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            host = min(self.hosts, key=lambda name: load[name])
            load[host] += 1
            chosen[host] += 1
        return dict(chosen)

    def _start(self, host: str, call: str, count: int) -> list[SshWorker]:
        secret = "\n".join(self.environment[key] for key in ("CREW_SECRET", "CREW_TLS_CERTIFICATE") if key in self.environment)
        output = self.ssh.run(host, START, [self.log_directory, str(count), *shlex.split(call)], stdin=secret + "\n")
        pids = [int(word) for word in output.split()]
        if len(pids) != count:
            raise SshError(f"ssh to {host}: started {len(pids)} workers, not {count}")
        return [SshWorker(host, pid) for pid in pids]

    def _listing(self, host: str) -> tuple[float, set[int]] | None:
        """(when, pids of live crew workers on ``host``), at most one query per ``seconds_status``."""
        cached = self._listings.get(host)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.seconds_status:
            return cached
        try:
            text = self.ssh.run(host, LIST)
        except SshError:
            return None
        pids = {row.pid for row in parse_ps(text) if not row.stat.startswith("Z")}
        self._listings[host] = (now, pids)
        return self._listings[host]

    def _mark(self) -> str:
        return f"--controller {self._require_bound().controller_id}"


@dataclass(frozen=True)
class PsRow:
    """One crew worker in ``ps`` output."""

    pid: int
    stat: str
    seconds: int
    args: str

    @property
    def controller(self) -> str | None:
        words = self.args.split()
        return words[words.index("--controller") + 1] if "--controller" in words[:-1] else None


def parse_ps(text: str) -> list[PsRow]:
    """The crew workers in the output of ``ps -o pid=,stat=,etimes=,args=``."""
    rows = []
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        words = parts[3].split()
        if "crew.worker" in words[:3] or any(word.endswith("crew-worker") for word in words[:2]):
            rows.append(PsRow(int(parts[0]), parts[1], int(parts[2]), parts[3]))
    return rows
