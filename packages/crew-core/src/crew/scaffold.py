"""``crew new-plugin NAME``: a new launcher plugin package with crew-local's shape.

The package it writes (``crew-NAME/``) has a launcher, a monitor, a ``NAME_controller`` helper, a
[`crew.Plugin`][crew.Plugin] registered under the ``crew.launchers`` entry point, a README, and
tests that run the [`crew.testing`][crew.testing] conformance suite. Its launcher starts workers as
processes of this machine, so the package passes its tests before its author changes a line; the author then
replaces the marked parts with the platform's own calls.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from .errors import CrewError, SettingError

__all__ = ["names", "new_plugin", "render"]

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RESERVED = {"core", "crew", "testing", "local"}

_PYPROJECT = '''\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "crew launcher plugin: workers on $name."
readme = "README.md"
requires-python = ">=3.9"
license = "MIT"
dependencies = ["crew-core==$crew_version", "plumbum>=1.8", "psutil>=5.9"]

[project.optional-dependencies]
test = ["pytest>=7", "tomli>=1.1; python_version < '3.11'"]

[project.entry-points."crew.launchers"]
$name = "$module:plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/$module"]
'''

_README = '''\
# $dist

A [crew](https://pypi.org/project/crew-core/) launcher plugin: runs crew workers on $name.

```python
from $module import ${name}_controller

with ${name}_controller(workers=2) as controller:
    controller.push(pow, args=(2, 10), name="power")
    controller.wait()
    print(controller.pop().result)  # 1024
```

Or, with the plugin installed, `crew.controller("$name", workers=2)`; `crew workers --launcher $name`
lists its workers.

## Make it yours

This package was made by `crew new-plugin $name`. Its launcher still starts each worker as a
process of this machine (like crew-local), so its tests pass as generated. To reach $name:

1. `src/$module/launcher.py`: in `launch_worker` (or `launch_workers` for one array job of `n`
   workers), submit `call` with your platform; return a handle. Pass `self.environment` (the
   controller's secret) in the job's environment in a way other users cannot read, or write it with
   `self.write_secret_file(directory)` and override `call()` to add `secret_file`; never put it on
   a command line. Implement `terminate_workers(handles)`, and `queued(handles)` if the platform
   can say which workers still wait in its queue.
2. `src/$module/monitor.py`: list the platform's crew jobs with the same keys as every monitor
   (`crew.JOB_COLUMNS`) and end them by id.
3. `src/$module/controller.py`: add the platform's options (validate them with `crew.validate`).
4. `tests/test_conformance.py`: point `make_controller` at your platform (a test queue, say).

```sh
pip install -e ".[test]"
pytest tests
```

| name | what it is |
|---|---|
| `${Name}Launcher` | starts and ends workers |
| `${name}_controller(...)` | client + `${Name}Launcher` + controller, validated, not started |
| `${Name}Monitor` | lists (`jobs()`, `workers()`) and ends (`terminate(ids)`) worker jobs |
| `plugin` | the `crew.Plugin` registered under the `crew.launchers` entry point |
'''

_INIT = '''\
"""$dist: run crew workers on $name.

Made by ``crew new-plugin $name``: a launcher, a monitor, a controller helper, and the
:class:`crew.Plugin` that the ``crew.launchers`` entry point registers.
"""

import crew

from .controller import ${name}_controller
from .launcher import ${Name}Launcher
from .monitor import ${Name}Monitor

__version__ = "0.1.0"

plugin = crew.Plugin(
    name="$name",
    package="$dist",
    controller=${name}_controller,
    launcher=${Name}Launcher,
    monitor=${Name}Monitor,
)

__all__ = ["${Name}Launcher", "${Name}Monitor", "${name}_controller", "plugin"]
'''

_LAUNCHER = '''\
"""${Name}Launcher: how workers start on $name."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any, Sequence

from plumbum import local

import crew
from crew import validate

__all__ = ["${Name}Launcher"]


class ${Name}Launcher(crew.Launcher):
    """Starts crew workers on $name.

    Takes the arguments of :class:`crew.Launcher`, plus:
        log_directory: a folder for one log file per worker (default: worker output is dropped).

    As generated, each worker is a process of this machine. Replace the bodies marked
    ``PLATFORM`` with $name's own calls.
    """

    def __init__(self, *args: Any, log_directory: str | os.PathLike | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.log_directory = validate.path("log_directory", log_directory, allow_none=True)

    def launch_worker(self, call: str) -> subprocess.Popen:
        """Start one worker running the command line ``call``; return its handle.

        PLATFORM: submit ``call`` as a job instead; return the job id (or override
        ``launch_workers(call, n)`` to submit one array job of ``n`` workers).
        """
        environment = dict(os.environ)
        environment.update(self.environment)  # the secret travels in the environment only
        output: Any = subprocess.DEVNULL
        if self.log_directory:
            os.makedirs(self.log_directory, exist_ok=True)
            count = len(os.listdir(self.log_directory)) + 1
            output = open(os.path.join(self.log_directory, f"worker-{count}.log"), "ab")
        try:
            process = local["sh"]["-c", f"exec {call}"].popen(
                env=environment, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if output is not subprocess.DEVNULL:
                output.close()
        threading.Thread(target=process.wait, name=f"$name-reap-{process.pid}", daemon=True).start()
        return process

    def terminate_workers(self, handles: Sequence[subprocess.Popen]) -> None:
        """End the workers behind ``handles``.

        PLATFORM: cancel the jobs, in one call where the platform allows it.
        """
        running = [process for process in handles if process.poll() is None]
        for process in running:
            _send(process, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=min(self.seconds_timeout, 10))
            except subprocess.TimeoutExpired:
                _send(process, signal.SIGKILL)
                process.wait()

    def terminate_worker(self, handle: subprocess.Popen) -> None:
        """End one worker."""
        self.terminate_workers([handle])

    def exit_status(self, handle: subprocess.Popen, timeout: float = 0.0) -> str | None:
        """How the worker ended (``exit code N`` or ``signal NAME``), or None while it runs.

        PLATFORM: ask the platform for the job's final state.
        """
        try:
            code = handle.wait(timeout=max(timeout, 0.001))
        except subprocess.TimeoutExpired:
            return None
        return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _send(process: subprocess.Popen, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass
'''

_MONITOR = '''\
"""${Name}Monitor: the crew workers on $name, whoever started them."""

from __future__ import annotations

import datetime
import os
from typing import Any

import psutil

import crew

__all__ = ["${Name}Monitor"]


class ${Name}Monitor(crew.Monitor):
    """Lists and ends this user's crew workers.

    As generated, it looks at this machine's processes. PLATFORM: ask $name for the user's crew
    jobs instead, and end them by job id.
    """

    def jobs(self) -> list[dict[str, Any]]:
        """One row per worker, with the keys of ``crew.JOB_COLUMNS``."""
        rows = []
        user = psutil.Process().username()
        for process in psutil.process_iter(["pid", "cmdline", "username", "status", "create_time", "name"]):
            info = process.info
            if info["username"] != user or not _is_worker(info["cmdline"] or []):
                continue
            alive = info["status"] != psutil.STATUS_ZOMBIE
            rows.append({
                "id": info["pid"],
                "array_index": None,
                "name": info["name"],
                "state": "running" if alive else "done",
                "reason": None,
                "node": os.uname().nodename,
                "start_time": datetime.datetime.fromtimestamp(info["create_time"]),
                "raw_state": info["status"],
            })
        return rows

    def terminate(self, ids: list[Any] | None = None, all: bool = False) -> list[Any]:
        """End the workers ``ids`` (or every one with ``all=True``); return the ids ended."""
        if ids is None and not all:
            raise crew.SettingError("terminate needs ids or all=True")
        known = set(self.workers())
        chosen = known if all else {int(job) for job in ids} & known
        ended, processes = [], []
        for pid in sorted(chosen):
            try:
                process = psutil.Process(pid)
                process.terminate()
            except psutil.NoSuchProcess:
                continue
            processes.append(process)
            ended.append(pid)
        _, alive = psutil.wait_procs(processes, timeout=5)
        for process in alive:
            process.kill()
        return ended


def _is_worker(cmdline: list[str]) -> bool:
    if any(word.endswith("crew-worker") for word in cmdline[:2]):
        return True
    return "-m" in cmdline and "crew.worker" in cmdline
'''

_CONTROLLER = '''\
"""${name}_controller(): a controller whose workers run on $name."""

from __future__ import annotations

import math
import os

import crew

from .launcher import ${Name}Launcher

__all__ = ["${name}_controller"]


def ${name}_controller(
    name: str | None = None,
    workers: int = 1,
    host: str | None = "127.0.0.1",
    port: int | None = None,
    tls: crew.TLS | None = None,
    serializer: str | None = None,
    profile: str | None = None,
    seconds_interval: float = 0.25,
    seconds_timeout: float = 60.0,
    seconds_launch: float = 60.0,
    seconds_idle: float = math.inf,
    seconds_wall: float = math.inf,
    tasks_max: int | float = math.inf,
    tasks_timers: int = 0,
    reset_globals: bool = True,
    reset_modules: bool = False,
    garbage_collection: bool = False,
    python: str | None = None,
    metrics: str | os.PathLike | None = None,
    crashes_max: int = 5,
    backup: crew.Controller | None = None,
    *,
    log_directory: str | os.PathLike | None = None,
) -> crew.Controller:
    """A validated controller (not started) whose workers run on $name.

    The arguments before ``log_directory`` are those every crew controller helper takes (see
    :class:`crew.Launcher` and :class:`crew.Controller`). PLATFORM: the default ``host`` is
    loopback; when workers run on other machines, default to an address they can reach (None
    picks this machine's first address that is not loopback).
    """
    client = crew.Client(
        host=host,
        port=port,
        tls=tls,
        serializer=serializer,
        profile=profile,
        seconds_interval=seconds_interval,
        seconds_timeout=seconds_timeout,
    )
    launcher = ${Name}Launcher(
        name=name,
        workers=workers,
        seconds_interval=seconds_interval,
        seconds_timeout=seconds_timeout,
        seconds_launch=seconds_launch,
        seconds_idle=seconds_idle,
        seconds_wall=seconds_wall,
        tasks_max=tasks_max,
        tasks_timers=tasks_timers,
        tls=tls,
        python=python,
        metrics=metrics,
        log_directory=log_directory,
    )
    controller = crew.Controller(
        client,
        launcher,
        reset_globals=reset_globals,
        reset_modules=reset_modules,
        garbage_collection=garbage_collection,
        crashes_max=crashes_max,
        backup=backup,
    )
    return controller.validate()
'''

_TEST_CONFORMANCE = '''\
"""$dist passes the conformance suite that every crew launcher plugin runs."""

import crew.testing
from $module import ${name}_controller


class Test${Name}Conformance(crew.testing.ControllerSuite):
    seconds_timeout = 60

    def make_controller(self, **options):
        return ${name}_controller(**options)
'''

_TEST_PLUGIN = '''\
"""The plugin's own parts: its registration, its options, its monitor's rows."""

import pathlib

import pytest

import crew
import $module
from $module import ${Name}Monitor, ${name}_controller

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_plugin_is_registered_under_crew_launchers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["crew.launchers"] == {"$name": "$module:plugin"}
    plugin = $module.plugin
    assert isinstance(plugin, crew.Plugin)
    assert (plugin.name, plugin.package) == ("$name", "$dist")
    assert plugin.controller is ${name}_controller and plugin.monitor is ${Name}Monitor


def test_own_option_is_validated():
    with pytest.raises(crew.SettingError, match="log_directory"):
        ${name}_controller(log_directory=42)


def test_monitor_rows_have_the_common_columns():
    for row in ${Name}Monitor().jobs():
        assert tuple(row) == crew.JOB_COLUMNS
    with pytest.raises(crew.SettingError):
        ${Name}Monitor().terminate()
'''

_FILES = {
    "pyproject.toml": _PYPROJECT,
    "README.md": _README,
    "src/$module/__init__.py": _INIT,
    "src/$module/launcher.py": _LAUNCHER,
    "src/$module/monitor.py": _MONITOR,
    "src/$module/controller.py": _CONTROLLER,
    "tests/test_conformance.py": _TEST_CONFORMANCE,
    "tests/test_plugin.py": _TEST_PLUGIN,
}


def names(name: str) -> dict[str, str]:
    """The names a plugin called ``name`` uses: distribution, module, class prefix, crew version.

    >>> names("my_cluster")["Name"], names("my_cluster")["dist"], names("my_cluster")["module"]
    ('MyCluster', 'crew-my-cluster', 'crew_my_cluster')
    """
    from . import __version__

    if not isinstance(name, str) or not _NAME.fullmatch(name) or keyword.iskeyword(name) or name in _RESERVED:
        raise SettingError(
            f"the plugin name must be lower case letters, digits and _ (starting with a letter), "
            f"not a Python keyword nor one of {sorted(_RESERVED)}; got {name!r}")
    return {
        "name": name,
        "Name": "".join(part.capitalize() for part in name.split("_") if part),
        "dist": "crew-" + name.replace("_", "-"),
        "module": "crew_" + name,
        "crew_version": __version__,
    }


def render(name: str) -> dict[str, str]:
    """The files of plugin ``name``: ``{relative path: text}`` (a pure function)."""
    values = names(name)
    return {Template(path).substitute(values): Template(text).substitute(values) for path, text in _FILES.items()}


def new_plugin(name: str, directory: str | Path = ".", force: bool = False) -> Path:
    """Write plugin ``name`` into ``directory/crew-NAME/`` and return that folder.

    Refuses to write into an existing folder unless ``force`` (then it overwrites the files it
    writes and leaves the others).
    """
    files = render(name)
    target = Path(directory) / names(name)["dist"]
    if target.exists() and not force:
        raise CrewError(f"{target} already exists; choose another name or pass --force to overwrite its files")
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target
