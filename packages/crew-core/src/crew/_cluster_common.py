"""What the cluster launchers and monitors share: names, constants, the job script, and running
one scheduler command on a plumbum machine (see :mod:`crew.cluster`)."""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Iterable, Sequence
from typing import Any, cast

import plumbum
from plumbum.commands.processes import CommandNotFound, ProcessTimedOut
from plumbum.machines.base import BaseMachine
from plumbum.machines.local import LocalMachine

from . import validate
from .errors import SchedulerError, SettingError

DEFAULT_SCRIPT_DIRECTORY = os.path.join(".crew", "scripts")
"""Where job scripts, worker logs and the secret file go by default, under the working directory."""

LOG_FOLDER = "logs"
"""The folder inside ``script_directory`` that holds the default worker logs."""

PLACEHOLDER_CALL = "<the worker's command line, known once the controller starts>"
"""What :meth:`ClusterLauncher.script` shows in place of the worker's command before the start."""

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
        where = "this machine" if isinstance(machine, LocalMachine) else str(machine)
        raise SchedulerError(argv[0], f"{argv[0]} is not installed (not found on {where})") from None
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
    return cast(str, out)  # plumbum is untyped; run() gives text


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


def _machine(value: Any) -> Any:
    """A plumbum machine (``plumbum.local`` for None)."""
    if value is None:
        return plumbum.local
    if not isinstance(value, BaseMachine):
        raise SettingError(f"machine must be a plumbum machine (e.g. plumbum.local or a plumbum.SshMachine), not {value!r}")
    return value
