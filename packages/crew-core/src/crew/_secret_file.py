"""The controller's private folder: the secret file that ``call`` names, and launch failure notes.

On a platform that shares a file system with the controller (local processes, SSH to a machine
with the same home folder, cluster jobs), a worker reads the secret from a file only the user
can read, in a folder only the user can enter: ``~/.crew/run/<controller id>/``. The worker's
command line carries the file's path, never the secret. A worker that cannot start writes why
into the same folder (``failed-<launch>-<pid>``), for the controller's ``summary()`` and
:class:`crew.LaunchError`. The controller removes the folder at ``terminate()``; a controller
that was killed cannot, so each controller, as it starts, removes the folders of controllers of
this host whose process is gone (:func:`sweep`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import warnings
from collections.abc import Mapping

__all__ = ["ROOT_ENV", "root", "write", "note_failure", "failures", "remove", "private_directory", "writer_gone",
           "sweep"]

ROOT_ENV = "CREW_RUN_DIRECTORY"
"""Environment variable that moves the folders' root from ``~/.crew/run``."""


def root() -> str:
    return os.environ.get(ROOT_ENV) or os.path.join(os.path.expanduser("~"), ".crew", "run")


def private_directory(path: str) -> None:
    """Make ``path`` and every missing parent mode 0700, whatever the umask (``os.makedirs``
    gives its mode to the last folder only; parents get the umask's). Existing folders are left
    as they are; one that others may write to gets a warning."""
    path = os.path.abspath(path)
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    if not missing:
        _warn_if_open(path)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            continue
        os.chmod(folder, 0o700)


def _warn_if_open(path: str) -> None:
    mode = os.stat(path).st_mode & 0o777
    if mode & 0o022:
        warnings.warn(f"{path} is writable by other users (mode {mode:o}): crew keeps job scripts and secret "
                      "files there; make it private (chmod 700) or choose another folder", stacklevel=3)


def _private_directory(path: str) -> None:
    """The controller's own folder: 0700 even if it exists."""
    private_directory(path)
    os.chmod(path, 0o700)


def write(controller_id: str, values: Mapping[str, str]) -> str:
    """Write ``KEY=value`` lines (multi-line values continue on the next lines) to a 0600 file
    in the controller's private folder; return the file's path."""
    folder = os.path.join(root(), controller_id)
    _private_directory(os.path.dirname(folder))
    sweep()
    _private_directory(folder)
    path = os.path.join(folder, "secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for key, value in values.items():
            handle.write(f"{key}={value}\n")
    os.chmod(path, 0o600)
    return path


def note_failure(secret_file: str, launch: str, message: str) -> None:
    """From a worker that cannot start: leave ``message`` beside the secret file (best effort)."""
    path = os.path.join(os.path.dirname(os.path.abspath(secret_file)), f"failed-{launch}-{os.getpid()}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(message[-2000:])
    except OSError:
        pass


def failures(controller_id: str, launch: str) -> list[str]:
    """The messages that workers of one launch left before they exited."""
    found = []
    for path in sorted(glob.glob(os.path.join(root(), controller_id, f"failed-{glob.escape(launch)}-*"))):
        try:
            with open(path) as handle:
                found.append(handle.read().strip())
        except OSError:
            continue
    return [text for text in found if text]


def writer_gone(values: Mapping[str, str]) -> bool:
    """Whether the controller that wrote a secret file (its ``CREW_CONTROLLER_PID`` and
    ``CREW_CONTROLLER_HOST``) is known to be gone: it ran on this host and no process has its pid."""
    pid, host = values.get("CREW_CONTROLLER_PID", ""), values.get("CREW_CONTROLLER_HOST")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def sweep() -> list[str]:
    """Remove the folders of controllers of this host that are gone (killed before their
    ``terminate()``); return their ids."""
    removed = []
    for path in glob.glob(os.path.join(root(), "*", "secret")):
        try:
            with open(path) as handle:
                values = dict(line.split("=", 1) for line in handle.read().splitlines()
                              if line.startswith("CREW_CONTROLLER_") and "=" in line)
        except OSError:
            continue
        if writer_gone(values):
            folder = os.path.dirname(path)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(os.path.basename(folder))
    return removed


def remove(controller_id: str) -> None:
    shutil.rmtree(os.path.join(root(), controller_id), ignore_errors=True)
