"""The launcher contract: how a platform starts the workers a controller asks for.

A plugin subclasses :class:`Launcher` and implements ``launch_worker(call)`` (one worker) or
``launch_workers(call, n)`` (n workers at once, e.g. one array job). Everything else
(auto-scaling, crash retries, authentication) is the controller's job.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from . import _handles, validate
from ._metrics import METRICS_SECONDS
from ._secret_file import private_directory
from .errors import CrewError, SettingError
from .tls import TLS

__all__ = ["Contact", "FleetView", "Launcher", "Instance", "Queued"]

SECRET_ENV = "CREW_SECRET"
TLS_ENV = "CREW_TLS_CERTIFICATE"


@dataclass(eq=False)
class Instance:
    """One worker the launcher was asked for, from launch to exit."""

    launch: str
    """Id of the scaling round that launched it (shared by the workers of one array job)."""
    handle: Any = None
    """What ``launch_worker``/``launch_workers`` returned for it (shared within an array job)."""
    launched: float = field(default_factory=time.monotonic)
    state: str = "launching"
    """``launching`` (asked for, not dialled in yet), ``connected``, ``ended`` or ``failed``."""
    worker: str | None = None
    pid: int | None = None
    host: str | None = None
    slot: int | None = None
    """The worker's place (1 to ``workers``) in the controller's summary."""
    queued: bool = False
    reason: str | None = None
    """The platform's reason while the worker waits in its queue (e.g. SLURM's ``Priority``)."""


@dataclass(frozen=True)
class Contact:
    """How a launcher's workers reach their controller; given to :meth:`Launcher.bind` at start.

    The secret is the controller's: a launcher passes it to workers through their environment
    or a file only the user can read, never on a command line.
    """

    url: str
    """The address workers dial, e.g. ``tcp://10.0.0.5:41234``."""
    controller_id: str
    """The id a worker names in its hello."""
    secret: str = field(repr=False)
    certificate: str | None = field(default=None, repr=False)
    """The controller's TLS certificate (PEM) when TLS is on."""
    name: str | None = None
    """The controller's name (a launcher without a name of its own takes it)."""
    secret_file: str | None = None
    """A file only the user can read that holds the secret (and certificate), in the
    controller's private folder; :meth:`Launcher.call` names it where workers share the
    controller's file system."""


class FleetView(Protocol):
    """What a bound launcher may read of the controller's fleet registry."""

    def snapshot(self) -> list[Instance]:
        """The workers launched and not yet ended, as a new list."""
        ...


@dataclass
class Queued:
    """How many workers of one launch still wait in the platform's queue, and why."""

    count: int
    reason: str | None = None


def worker_environment(secret: str, certificate: str | None) -> dict[str, str]:
    """The variables that give a worker its controller's secret (and TLS certificate)."""
    env = {SECRET_ENV: secret}
    if certificate:
        env[TLS_ENV] = certificate
    return env


class Launcher:
    """Base class of every launcher.

    Arguments (all validated here, once):
        name: label of the launcher (defaults to the controller's name).
        workers: the most workers running at once.
        seconds_interval: how often the controller re-checks scaling and the platform's queue.
        seconds_timeout: how long a worker waits to reach the controller, and how long
            platform calls may take.
        seconds_launch: how long a launched worker may take to dial in before the launch counts
            as failed (a worker the platform reports as still queued is not counted).
        seconds_idle: a worker exits after this long without a task.
        seconds_wall: a worker exits after this long in all (soft: it finishes its task first).
        tasks_max: a worker exits after this many tasks.
        tasks_timers: the idle and wall timers start only after this many tasks.
        tls: a :class:`crew.TLS`; normally set by the controller from its client.
        python: the Python interpreter on the worker side (default: this one).
        metrics: a folder where each worker writes its CPU and memory samples, or None
            (read them with :func:`crew.metrics.read`).
        metrics_seconds: how often a worker samples its CPU and memory when ``metrics`` is set.
    """

    shared_filesystem: ClassVar[bool] = True
    """Whether workers see the controller's files (the same home folder): then :meth:`call`
    names the controller's secret file and running ``call`` is enough. A platform without a
    shared file system (e.g. AWS Batch) sets False and passes :attr:`environment` to workers."""

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        seconds_interval: float = 0.25,
        seconds_timeout: float = 60.0,
        seconds_launch: float = 60.0,
        seconds_idle: float = math.inf,
        seconds_wall: float = math.inf,
        tasks_max: int | float = math.inf,
        tasks_timers: int = 0,
        tls: TLS | None = None,
        python: str | None = None,
        metrics: str | os.PathLike[str] | None = None,
        metrics_seconds: float = METRICS_SECONDS,
    ):
        overridden = (
            type(self).launch_worker is not Launcher.launch_worker
            or type(self).launch_workers is not Launcher.launch_workers
        )
        if not overridden:
            raise TypeError(
                f"{type(self).__name__} must implement launch_worker(self, call) "
                "or launch_workers(self, call, n)"
            )
        self.name = validate.text("name", name, allow_none=True)
        self.workers = validate.integer("workers", workers, minimum=1)
        self.seconds_interval = validate.number("seconds_interval", seconds_interval, exclusive_minimum=True)
        self.seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        self.seconds_launch = validate.number("seconds_launch", seconds_launch, exclusive_minimum=True, allow_inf=True)
        self.seconds_idle = validate.number("seconds_idle", seconds_idle, exclusive_minimum=True, allow_inf=True)
        self.seconds_wall = validate.number("seconds_wall", seconds_wall, exclusive_minimum=True, allow_inf=True)
        self.tasks_max = validate.integer("tasks_max", tasks_max, minimum=1, allow_inf=True)
        self.tasks_timers = validate.integer("tasks_timers", tasks_timers, minimum=0)
        if tls is not None and not isinstance(tls, TLS):
            raise SettingError(f"tls must be a crew.TLS or None, not {tls!r}")
        self.tls = tls
        self.python = validate.text("python", python, allow_none=True) or sys.executable
        self.metrics = validate.path("metrics", metrics, allow_none=True)
        self.metrics_seconds = validate.number("metrics_seconds", metrics_seconds, exclusive_minimum=True)
        self._contact: Contact | None = None
        self._fleet: FleetView | None = None
        self._rounds = itertools.count(1)

    # ------------------------------------------------------------------ the plugin's part
    def launch_worker(self, call: str) -> Any:
        """Start one worker that runs the shell command line ``call``; return a handle."""
        raise NotImplementedError(f"{type(self).__name__} implements launch_workers only")

    def launch_workers(self, call: str, n: int) -> Any:
        """Start ``n`` workers running ``call``.

        Return a list of ``n`` handles, or one handle that stands for all of them (an array job).
        The default calls :meth:`launch_worker` ``n`` times.
        """
        return [self.launch_worker(call) for _ in range(n)]

    def terminate_worker(self, handle: Any) -> None:
        """End the worker(s) behind ``handle``.

        The default ends the handles it understands (a :class:`subprocess.Popen`, plumbum's popen
        objects, a :class:`psutil.Process`: terminated, then killed after ``seconds_timeout`` or
        10 s; a :class:`concurrent.futures.Future`: cancelled) and leaves others alone (workers
        told to quit exit by themselves)."""
        _handles.terminate(handle, min(self.seconds_timeout, 10.0))

    def terminate_workers(self, handles: Sequence[Any]) -> None:
        """End the workers behind several handles (one platform call where it can). Default: one by one."""
        for handle in handles:
            self.terminate_worker(handle)

    def queued(self, handles: Sequence[Any]) -> Sequence[Queued | None] | None:
        """For each launch handle, how many of its workers still wait in the platform's queue.

        Return None (the default) when the platform cannot tell; the controller then relies on
        ``seconds_launch`` alone. Called at most once per ``seconds_interval``.
        """
        return None

    def exit_status(self, handle: Any, timeout: float = 0.0) -> str | None:
        """How the worker behind ``handle`` ended (e.g. ``"signal SIGKILL"``), or None while it
        runs or when the platform cannot tell. Waits up to ``timeout`` seconds for the end.

        The controller uses it for crash messages and to notice at once launches that died
        before dialling in. The default understands the handles people return: a
        :class:`subprocess.Popen` (and plumbum's popen objects: ``exit code N`` or
        ``signal NAME``, with the last lines of a stderr pipe), a :class:`psutil.Process` and a
        :class:`concurrent.futures.Future`; for other handles it says None (unknown)."""
        return _handles.exit_status(handle, timeout)

    def close(self) -> None:
        """Release what the launcher holds (e.g. its secret file); called by ``terminate()``."""

    # ------------------------------------------------------------------ given to plugins
    @property
    def environment(self) -> dict[str, str]:
        """Variables a worker needs in its environment: the controller's secret (and TLS certificate).

        Launchers pass these to the worker's process, never on its command line. Script-based
        launchers may instead use :meth:`write_secret_file`.
        """
        contact = self._require_bound()
        return worker_environment(contact.secret, contact.certificate)

    def write_secret_file(self, directory: str | os.PathLike[str]) -> str:
        """Write the secret (and certificate) to a file only its owner can read; return its path.

        Pass the path to :meth:`call` as ``secret_file`` so the worker reads it at start.
        """
        contact = self._require_bound()
        private_directory(os.fspath(directory))
        target = os.path.join(os.fspath(directory), f"crew-secret-{contact.controller_id}")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            for key, value in self.environment.items():
                handle.write(f"{key}={value}\n")
        os.chmod(target, 0o600)
        return target

    def call(self, launch: str | None = None, secret_file: str | None = None) -> str:
        """The shell command line that starts one worker and dials back to the controller.

        It names ``secret_file`` (default: the controller's own, when :attr:`shared_filesystem`)
        so that running it is enough to start a worker that authenticates; it never holds the
        secret itself."""
        contact = self._require_bound()
        launch = launch if launch is not None else "0"
        words = [self.python, "-m", "crew.worker", contact.url, "--controller", contact.controller_id, "--launch", launch]
        words += ["--seconds-timeout", _num(self.seconds_timeout)]
        for option, value in (
            ("--seconds-idle", self.seconds_idle),
            ("--seconds-wall", self.seconds_wall),
            ("--tasks-max", self.tasks_max),
        ):
            if not math.isinf(value):
                words += [option, _num(value)]
        if self.tasks_timers:
            words += ["--tasks-timers", str(self.tasks_timers)]
        if self.metrics:
            words += ["--metrics", self.metrics]
            if self.metrics_seconds != METRICS_SECONDS:
                words += ["--metrics-seconds", _num(self.metrics_seconds)]
        if secret_file is None and self.shared_filesystem:
            secret_file = contact.secret_file
        if secret_file:
            words += ["--secret-file", secret_file]
        return " ".join(shlex.quote(str(word)) for word in words)

    def next_launch(self) -> str:
        """A fresh id for one scaling round."""
        return str(next(self._rounds))

    @property
    def instances(self) -> list[Instance]:
        """The workers launched and not yet ended, with their handles, pids and hosts: a snapshot
        of the controller's fleet registry (empty before the controller starts)."""
        return self._fleet.snapshot() if self._fleet is not None else []

    @property
    def contact(self) -> Contact | None:
        """What :meth:`bind` was given (None before the controller starts)."""
        return self._contact

    @property
    def bound(self) -> bool:
        """True once the controller has called :meth:`bind`."""
        return self._contact is not None

    # ------------------------------------------------------------------ the controller's part
    def default_name(self, name: str) -> None:
        """A launcher without a name of its own takes its controller's (called when the
        controller is built)."""
        if self.name is None:
            self.name = validate.text("name", name)

    def bind(self, contact: Contact, fleet: FleetView | None = None) -> None:
        """Learn where workers dial in, and the fleet registry to read instances from.

        Called by the controller when it starts, before any launch. A launcher without a name of
        its own takes the controller's.
        """
        if not isinstance(contact, Contact):
            raise SettingError(f"contact must be a crew.Contact, not {contact!r}")
        self._contact = contact
        self._fleet = fleet
        if self.name is None:
            self.name = contact.name

    def _require_bound(self) -> Contact:
        if self._contact is None:
            raise CrewError("the launcher is not started yet: call controller.start() first")
        return self._contact

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, workers={self.workers})"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
