"""The shared base of launchers for script-based batch schedulers (see :mod:`crew.cluster`)."""

from __future__ import annotations

import abc
import logging
import os
import re
import secrets
import shlex
import time
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

from plumbum.machines.local import LocalMachine

from . import validate
from ._cluster_common import (
    DEFAULT_SCRIPT_DIRECTORY,
    DIRECTIVE_LINE,
    DIRECTIVE_VALUE,
    LOG_FOLDER,
    PLACEHOLDER_CALL,
    _command_words,
    _machine,
    _run_command,
    job_name,
    render_script,
)
from ._secret_file import private_directory
from .errors import SchedulerError, SettingError
from .launcher import Launcher, Queued

_logger = logging.getLogger("crew.cluster")


class _QueueStatus(NamedTuple):
    """The last answer of the scheduler's queue, as :meth:`ClusterLauncher._queue_status` keeps it."""

    time: float
    queued: dict[str, Queued]
    """Per job asked about: its array tasks still waiting (``Queued(0)`` when none or unknown)."""
    ended: dict[str, str]
    """Per job asked about that ended (no task waits or runs): how."""
    live: tuple[str, ...]
    """The jobs the scheduler reported that had not ended: asked about again at the next refresh."""


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
        script_directory: str | os.PathLike[str] | None = None,
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
            private_directory(path)
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
