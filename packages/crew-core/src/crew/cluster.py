"""The shared base of launchers and monitors for script-based batch schedulers.

SLURM, Grid Engine, LSF and PBS all work the same way: write a job script whose header holds the
scheduler's directives, submit it with one command, read the job id from its output, and cancel
with another command. :class:`ClusterLauncher` does all of that once; a scheduler's subclass only
says how its directives look (:meth:`ClusterLauncher._directives`), how to read the job id from
the submit command's output (:meth:`ClusterLauncher._parse_job_id`) and, optionally, how to ask
the queue which array tasks still wait and which jobs ended
(:meth:`ClusterLauncher._status_arguments`, :meth:`ClusterLauncher._parse_status` and
:meth:`ClusterLauncher._parse_ended`).

Every command runs through :func:`_run_command` on a plumbum machine (``plumbum.local`` by
default, or e.g. a ``plumbum.SshMachine`` to a login node), so submission works the same locally
and remotely. The controller's secret never appears on a command line: it goes into a file only
the user can read (``--secret-file``), in ``script_directory``, which must be on a file system the
compute nodes share.
"""

from __future__ import annotations

import abc
import logging
import math
import os
import re
import secrets
import shlex
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import plumbum
from plumbum.commands.processes import CommandNotFound, ProcessTimedOut
from plumbum.machines.base import BaseMachine
from plumbum.machines.local import LocalMachine

from . import validate
from .errors import SchedulerError, SettingError
from .launcher import Launcher, Queued
from .monitor import JOB_COLUMNS, Monitor

__all__ = [
    "DEFAULT_SCRIPT_DIRECTORY",
    "DIRECTIVE_LINE",
    "DIRECTIVE_VALUE",
    "LOG_FOLDER",
    "ClusterLauncher",
    "ClusterMonitor",
    "array_indices",
    "job_name",
    "megabytes",
    "render_script",
]

DEFAULT_SCRIPT_DIRECTORY = os.path.join(".crew", "scripts")
"""Where job scripts, worker logs and the secret file go by default, under the working directory."""

LOG_FOLDER = "logs"
"""The folder inside ``script_directory`` that holds the default worker logs."""

PLACEHOLDER_CALL = "<the worker's command line, known once the controller starts>"
"""What :meth:`ClusterLauncher.script` shows in place of the worker's command before the start."""

_logger = logging.getLogger("crew.cluster")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def job_name(text: str, limit: int | None = None) -> str:
    """A job name every scheduler accepts: letters, digits, ``_ . -``, starting with a letter."""
    cleaned = _NAME_UNSAFE.sub("-", text).strip("-.")
    if not cleaned:
        cleaned = "crew"
    elif not cleaned[0].isalpha():
        cleaned = f"crew-{cleaned}"
    return cleaned[:limit] if limit else cleaned


def megabytes(gigabytes: float) -> int:
    """Whole megabytes (rounded up) in a possibly fractional number of gigabytes (1 GB = 1024 MB)."""
    return math.ceil(round(gigabytes * 1024, 6))


def array_indices(spec: str) -> list[int]:
    """The array indices in the schedulers' range notation ``1-3,7,9-15:3`` (a ``%`` limit is dropped)."""
    found: list[int] = []
    for part in spec.split("%")[0].split(","):
        part = part.strip()
        if not part:
            continue
        first, _, rest = part.partition("-")
        last, _, step = rest.partition(":")
        found += range(int(first), int(last or first) + 1, int(step or 1))
    return found


def render_script(shell: str, prefix: str, directives: Iterable[str], lines: Iterable[str], call: str) -> str:
    """The text of a job script: shebang, one directive per line, the user's lines, then the worker.

    A directive given without the scheduler's prefix (``--partition=short``) gets it
    (``#SBATCH --partition=short``); one that already starts with ``#`` is kept as is.
    """
    header = [f"#!{shell}"]
    header += [item if item.startswith("#") else f"{prefix} {item}" for item in directives]
    return "\n".join([*header, *lines, f"exec {call}"]) + "\n"


def _run_command(machine: Any, argv: Sequence[str], stdin: str | None, seconds_timeout: float) -> str:
    """Run ``argv`` on a plumbum machine and return its standard output.

    Raises :class:`crew.SchedulerError` with the command's own message when it is missing, fails,
    or takes longer than ``seconds_timeout``.
    """
    text = shlex.join(argv)
    try:
        command = machine[argv[0]][list(argv[1:])]
    except CommandNotFound:
        raise SchedulerError(text, f"{argv[0]} is not installed (not found on {machine})") from None
    if stdin is not None:
        command = command << stdin
    try:
        code, out, err = command.run(retcode=None, timeout=seconds_timeout)
    except ProcessTimedOut:
        raise SchedulerError(text, f"no answer within {seconds_timeout:g} seconds") from None
    except OSError as error:  # e.g. a path to a command that does not exist or cannot run
        raise SchedulerError(text, f"{argv[0]} could not run: {error.strerror or error}") from None
    if code != 0:
        message = "\n".join(part.strip() for part in (err, out) if part and part.strip())
        raise SchedulerError(text, message or "(no output)", code)
    return out


def _command_words(name: str, value: Any) -> list[str]:
    """A command given as a string (split like a shell would) or a list of words."""
    words = shlex.split(value) if isinstance(value, str) else validate.strings(name, value)
    if not words or not all(word.strip() for word in words):
        raise SettingError(f"{name} must be a command (a string or a list of strings), not {value!r}")
    return words


DIRECTIVE_VALUE = r"[^\s]+"
"""What a value written unquoted into a directive may hold: no spaces, no line breaks."""
DIRECTIVE_LINE = r"[^\r\n]+"
"""What an extra directive may hold: one line."""


class _QueueStatus(NamedTuple):
    """The last answer of the scheduler's queue, as :meth:`ClusterLauncher._queue_status` keeps it."""

    time: float
    queued: dict[str, Queued]
    """Per job asked about: its array tasks still waiting (``Queued(0)`` when none or unknown)."""
    ended: dict[str, str]
    """Per job asked about that ended (no task waits or runs): how."""
    live: tuple[str, ...]
    """The jobs the scheduler reported that had not ended: asked about again at the next refresh."""


def _machine(value: Any) -> Any:
    """A plumbum machine (``plumbum.local`` for None)."""
    if value is None:
        return plumbum.local
    if not isinstance(value, BaseMachine):
        raise SettingError(f"machine must be a plumbum machine (e.g. plumbum.local or a plumbum.SshMachine), not {value!r}")
    return value


class ClusterLauncher(Launcher, abc.ABC):
    """Launch workers as array jobs of a batch scheduler: one job script and one submission per round.

    Arguments (besides those of :class:`crew.Launcher`, passed through ``options``):
        script_directory: folder for the job scripts, the worker logs (``logs/`` inside) and the
            secret file; it must be on a file system the compute nodes see. Default
            ``./.crew/scripts`` under the working directory. Created owner-only (0700).
        script_lines: shell lines that run before the worker starts, e.g. ``module load python``
            or ``source venv/bin/activate``.
        extra_directives: more scheduler directives, with or without the prefix
            (``"--exclusive"`` or ``"#SBATCH --exclusive"``).
        log_output: where a worker's standard output goes (scheduler's path syntax). Default: one
            file per array task in ``<script_directory>/logs``.
        log_error: where a worker's standard error goes. Default: one file per array task there.
        job_name: the jobs' name; default the launcher's name with a ``crew`` prefix (monitors find
            crew's jobs by that prefix). Made safe for every scheduler.
        command_submit: the submit command (a string or a list of words); default the scheduler's.
        command_cancel: the cancel command; default the scheduler's.
        machine: the plumbum machine that runs the commands and holds the files (default
            ``plumbum.local``; e.g. ``plumbum.SshMachine("login-node")``; then give an absolute
            ``script_directory`` that exists on the cluster's shared file system).
        seconds_status: the least time between two queries of the scheduler's queue.

    A subclass sets :attr:`directive_prefix`, :attr:`default_submit`, :attr:`default_cancel` and
    :attr:`log_pattern`, and implements :meth:`_directives` and :meth:`_parse_job_id`.
    """

    directive_prefix: ClassVar[str]
    """How the scheduler's directive lines start, e.g. ``#SBATCH``."""
    default_submit: ClassVar[str]
    """The submit command, e.g. ``sbatch``."""
    default_cancel: ClassVar[str]
    """The cancel command, e.g. ``scancel``."""
    log_pattern: ClassVar[str] = ""
    """What the default log names put after the job name so that each array task gets its own file
    (in the scheduler's log-path syntax, e.g. ``%A_%a`` for SLURM)."""
    submit_stdin: ClassVar[bool] = False
    """Whether the script goes to the submit command on standard input (LSF's ``bsub < script``)."""
    shell: ClassVar[str] = "/bin/bash"
    """The interpreter of the job script."""
    job_name_limit: ClassVar[int | None] = None
    """The longest job name the scheduler accepts, if it has a limit."""

    def __init__(
        self,
        name: str | None = None,
        workers: int = 1,
        *,
        script_directory: str | os.PathLike | None = None,
        script_lines: str | Sequence[str] | None = None,
        extra_directives: str | Sequence[str] | None = None,
        log_output: str | None = None,
        log_error: str | None = None,
        job_name: str | None = None,
        command_submit: str | Sequence[str] | None = None,
        command_cancel: str | Sequence[str] | None = None,
        machine: Any = None,
        seconds_status: float = 2.0,
        **options: Any,
    ):
        super().__init__(name=name, workers=workers, **options)
        directory = script_directory if script_directory is not None else DEFAULT_SCRIPT_DIRECTORY
        self.script_directory = validate.path("script_directory", directory)
        self.script_lines = validate.strings("script_lines", script_lines)
        self.extra_directives = [
            validate.text("extra_directives", item, pattern=DIRECTIVE_LINE)
            for item in validate.strings("extra_directives", extra_directives)
        ]
        self.log_output = validate.text("log_output", log_output, allow_none=True, pattern=DIRECTIVE_VALUE)
        self.log_error = validate.text("log_error", log_error, allow_none=True, pattern=DIRECTIVE_VALUE)
        if (log_output is None or log_error is None) and re.search(r"\s", self.script_directory):
            raise SettingError(
                f"script_directory holds the default logs, so it must not contain spaces, not "
                f"{self.script_directory!r}: choose another one, or give log_output and log_error"
            )
        self._job_name = validate.text("job_name", job_name, allow_none=True)
        self.command_submit = _command_words("command_submit", self.default_submit if command_submit is None else command_submit)
        self.command_cancel = _command_words("command_cancel", self.default_cancel if command_cancel is None else command_cancel)
        self.machine = _machine(machine)
        self.seconds_status = validate.number("seconds_status", seconds_status, minimum=0)
        self.job_ids: list[str] = []
        """Every job this launcher submitted, in order (one per scaling round)."""
        self._secret_file: tuple[str | None, str] | None = None
        self._status: _QueueStatus | None = None

    # ------------------------------------------------------------------ the scheduler's part
    @abc.abstractmethod
    def _directives(self, n: int) -> list[str]:
        """The scheduler's directives (without prefix) for a job of ``n`` workers.

        Use :attr:`job_name` and :meth:`log_path`; :attr:`extra_directives` are added after these.
        """

    @abc.abstractmethod
    def _parse_job_id(self, output: str) -> str:
        """The job id in the submit command's output; raise ValueError when there is none."""

    def _submit_arguments(self, script: str) -> list[str]:
        """The words after :attr:`command_submit` that submit the job script at path ``script``."""
        return [] if self.submit_stdin else [script]

    def _cancel_arguments(self, job_ids: Sequence[str]) -> list[str]:
        """The words after :attr:`command_cancel` that cancel all of ``job_ids`` in one call."""
        return list(job_ids)

    def _status_arguments(self, job_ids: Sequence[str]) -> list[str] | None:
        """The full command asking the queue about ``job_ids``; None if the scheduler cannot tell."""
        return None

    def _parse_status(self, output: str) -> dict[str, Queued]:
        """Per job id in the status command's output: how many of its array tasks still wait, and why."""
        raise NotImplementedError

    def _parse_ended(self, output: str) -> dict[str, str]:
        """Per job id in the status command's output none of whose array tasks waits or runs any
        more: how it ended, in the scheduler's words. Default: nothing (the scheduler cannot tell)."""
        return {}

    # ------------------------------------------------------------------ scripts
    @property
    def job_name(self) -> str:
        """The name the jobs get: ``job_name`` if given, else the launcher's name, starting with ``crew``."""
        if self._job_name:
            return job_name(self._job_name, self.job_name_limit)
        chosen = self.name or "crew"
        return job_name(chosen if chosen.startswith("crew") else f"crew-{chosen}", self.job_name_limit)

    @property
    def log_directory(self) -> str:
        """The folder of the default worker logs."""
        return os.path.join(self.script_directory, LOG_FOLDER)

    def log_path(self, stream: str) -> str:
        """Where the workers' ``"output"`` or ``"error"`` stream goes (given, or one file per task)."""
        given = {"output": self.log_output, "error": self.log_error}[stream]
        if given is not None:
            return given
        suffix = {"output": "out", "error": "err"}[stream]
        middle = f"_{self.log_pattern}" if self.log_pattern else ""
        return os.path.join(self.log_directory, f"{self.job_name}{middle}.{suffix}")

    def script(self, n: int = 1, call: str | None = None) -> str:
        """The job script that would start ``n`` workers (a dry run: nothing is written or submitted).

        ``call`` is the worker's command line; by default the one the controller would use once it
        has started, or a placeholder before.
        """
        n = validate.integer("n", n, minimum=1)
        if call is None:
            call = self.call() if self.bound else PLACEHOLDER_CALL
        directives = self._directives(n) + self.extra_directives
        return render_script(self.shell, self.directive_prefix, directives, self.script_lines, call)

    def call(self, launch: str | None = None, secret_file: str | None = None) -> str:
        """The worker's command line; it reads the secret from a file in :attr:`script_directory`."""
        return super().call(launch=launch, secret_file=secret_file or self._write_secret())

    # ------------------------------------------------------------------ the launcher contract
    def launch_workers(self, call: str, n: int) -> str:
        """Submit one array job of ``n`` workers running ``call``; return its job id (the handle)."""
        text = self.script(n, call)
        self._make_directory(self.script_directory)
        if self.log_output is None or self.log_error is None:
            self._make_directory(self.log_directory)
        path = os.path.join(self.script_directory, f"{self.job_name}-{secrets.token_hex(6)}.sh")
        self._write_private(path, text, 0o700)
        argv = [*self.command_submit, *self._submit_arguments(path)]
        output = self._run(argv, stdin=text if self.submit_stdin else None)
        try:
            job_id = self._parse_job_id(output)
        except ValueError:
            raise SchedulerError(shlex.join(argv), f"no job id in its output {output!r} (script kept at {path})") from None
        # The scheduler keeps its own copy of the script once it accepted the job.
        self._remove(path)
        self.job_ids.append(job_id)
        self._status = None
        return job_id

    def terminate_worker(self, handle: Any) -> None:
        """Cancel the job (all its array tasks) behind one handle."""
        self.terminate_workers([handle])

    def terminate_workers(self, handles: Sequence[Any]) -> None:
        """Cancel the jobs behind ``handles`` with one call of the cancel command."""
        job_ids = list(dict.fromkeys(str(handle) for handle in handles if handle is not None))
        if job_ids:
            self._run([*self.command_cancel, *self._cancel_arguments(job_ids)])
            self._status = None

    def queued(self, handles: Sequence[Any]) -> list[Queued | None] | None:
        """Per handle, how many of its workers still wait in the queue and why (one throttled query).

        A job no longer waiting gives ``Queued(0)``. Returns None when the scheduler cannot tell or
        its query failed.
        """
        status = self._queue_status(handles)
        if status is None:
            return None
        return [None if handle is None else status[0].get(str(handle)) for handle in handles]

    def exit_status(self, handle: Any, timeout: float = 0.0) -> str | None:
        """How the job behind ``handle`` ended once none of its array tasks waits or runs, else None.

        Comes from the same throttled queue query as :meth:`queued` (``timeout`` is not waited).
        """
        status = None if handle is None else self._queue_status([handle])
        return None if status is None else status[1].get(str(handle))

    def _queue_status(self, handles: Sequence[Any]) -> tuple[dict[str, Queued], dict[str, str]] | None:
        """(waiting workers per job id, how ended jobs ended) from at most one query per ``seconds_status``.

        A refresh also asks again about the jobs of the last answer that had not ended, so that
        callers asking about different jobs share one query.
        """
        job_ids = list(dict.fromkeys(str(handle) for handle in handles if handle is not None))
        now = time.monotonic()
        cached = self._status
        if cached is not None and now - cached.time < self.seconds_status and set(job_ids) <= cached.queued.keys():
            return cached.queued, cached.ended
        asked = list(dict.fromkeys([*job_ids, *(cached.live if cached else ())]))
        argv = self._status_arguments(asked) if asked else None
        if argv is None:
            return None
        try:
            output = self._run(argv)
        except SchedulerError as error:
            _logger.warning("could not read the queue: %s", error)
            return None
        found, ended = self._parse_status(output), self._parse_ended(output)
        self._status = _QueueStatus(
            time=now,
            queued={job_id: found.get(job_id, Queued(0)) for job_id in asked},
            ended={job_id: ended[job_id] for job_id in asked if job_id in ended},
            live=tuple(job_id for job_id in asked if job_id in found and job_id not in ended),
        )
        return self._status.queued, self._status.ended

    # ------------------------------------------------------------------ files and commands
    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one command on :attr:`machine`; the only place this launcher runs commands."""
        return _run_command(self.machine, argv, stdin, self.seconds_timeout)

    def _is_local(self) -> bool:
        return isinstance(self.machine, LocalMachine)

    def _make_directory(self, path: str) -> None:
        if self._is_local():
            os.makedirs(path, mode=0o700, exist_ok=True)
        else:
            self._run(["mkdir", "-p", "-m", "700", path])

    def _write_private(self, path: str, text: str, mode: int) -> None:
        """Write a new file that only its owner can read (it never exists with looser permissions)."""
        if self._is_local():
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
            os.chmod(path, mode)
        else:
            self._run(["sh", "-c", f'umask 077 && cat > "$1" && chmod {mode:o} "$1"', "sh", path], stdin=text)

    def _remove(self, path: str) -> None:
        if self._is_local():
            os.remove(path)
        else:
            self._run(["rm", "-f", path])

    def _write_secret(self) -> str:
        """Write the controller's secret to ``<script_directory>/crew-secret-<controller>``, once per controller."""
        controller_id = self._require_bound().controller_id
        if self._secret_file is not None and self._secret_file[0] == controller_id:
            return self._secret_file[1]
        self._make_directory(self.script_directory)
        if self._is_local():
            path = self.write_secret_file(self.script_directory)
        else:
            path = os.path.join(self.script_directory, f"crew-secret-{controller_id}")
            self._remove(path)
            lines = "".join(f"{key}={value}\n" for key, value in self.environment.items())
            self._write_private(path, lines, 0o600)
        self._secret_file = (controller_id, path)
        return path

    def close(self) -> None:
        """Remove the secret file (call once no worker of this controller will start any more)."""
        if self._secret_file is not None:
            try:
                self._remove(self._secret_file[1])
            except (OSError, SchedulerError):
                pass
            self._secret_file = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, workers={self.workers}, job_name={self.job_name!r})"


class ClusterMonitor(Monitor):
    """List and cancel a scheduler's crew jobs, outside any controller.

    Arguments:
        job_name: only jobs whose name starts with this are crew's (default ``crew``, the prefix of
            the launchers' default job names).
        machine: the plumbum machine that runs the commands (default ``plumbum.local``).
        command_cancel: the cancel command (default the scheduler's).
        seconds_timeout: how long one scheduler command may take.
        script_directory: the launchers' ``script_directory``, where :meth:`log` finds the default
            log files (in ``logs/`` inside) of jobs the scheduler has forgotten.

    A subclass implements :meth:`jobs` (building rows with :meth:`_row`) and sets
    :attr:`default_cancel` and :attr:`states`.
    """

    default_cancel: ClassVar[str]
    states: ClassVar[Mapping[str, str]] = {}
    """The scheduler's raw job states (upper case) mapped to ``pending``, ``running``, ``done``,
    ``failed`` or ``cancelled``; a state not listed counts as ``running``."""

    def __init__(
        self,
        job_name: str = "crew",
        machine: Any = None,
        command_cancel: str | Sequence[str] | None = None,
        seconds_timeout: float = 60.0,
        script_directory: str | os.PathLike | None = None,
    ):
        self.job_name = validate.text("job_name", job_name)
        self.machine = _machine(machine)
        self.command_cancel = _command_words("command_cancel", self.default_cancel if command_cancel is None else command_cancel)
        self.seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        directory = script_directory if script_directory is not None else DEFAULT_SCRIPT_DIRECTORY
        self.script_directory = validate.path("script_directory", directory)

    @property
    def log_directory(self) -> str:
        """The folder of the launchers' default worker logs."""
        return os.path.join(self.script_directory, LOG_FOLDER)

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> str:
        """Run one command on :attr:`machine`; the only place this monitor runs commands."""
        return _run_command(self.machine, argv, stdin, self.seconds_timeout)

    def _mine(self, name: str | None) -> bool:
        """Whether a job of this name is one of crew's (its name starts with :attr:`job_name`)."""
        return bool(name) and name.startswith(self.job_name)

    def _row(
        self,
        id: str,
        array_index: int | None,
        name: str | None,
        raw_state: str,
        reason: str | None = None,
        node: str | None = None,
        start_time: str | None = None,
    ) -> dict[str, Any]:
        """One row of :meth:`jobs` with the state normalised (an unknown state counts as running)."""
        state = self.states.get(raw_state.upper(), "running")
        row = {
            "id": id, "array_index": array_index, "name": name, "state": state, "reason": reason or None,
            "node": node or None, "start_time": start_time or None, "raw_state": raw_state,
        }
        assert tuple(row) == JOB_COLUMNS
        return row

    def _cancel_arguments(self, ids: Sequence[str]) -> list[str]:
        """The words after :attr:`command_cancel` that cancel all of ``ids`` in one call."""
        return list(ids)

    def terminate(self, ids: Sequence[Any] | None = None, all: bool = False) -> list[str]:
        """Cancel the jobs ``ids``, or with ``all=True`` every pending or running crew job; return the ids."""
        validate.flag("all", all)
        if all:
            chosen = [row["id"] for row in self.jobs() if row["state"] in ("pending", "running")]
        elif ids is None:
            raise SettingError("terminate() needs ids (a list of job ids) or all=True")
        else:
            chosen = [str(item) for item in ([ids] if isinstance(ids, (str, int)) else ids)]
        if chosen:
            self._run([*self.command_cancel, *self._cancel_arguments(chosen)])
        return chosen

    def _read(self, path: str) -> str:
        """The text of a file on :attr:`machine` ('' when it does not exist)."""
        target = self.machine.path(path)
        return target.read() if target.exists() else ""
