"""crew for Python: run Python tasks on workers that auto-scale on a laptop, a cluster or a cloud.

A :class:`Controller` pushes tasks to workers that a :class:`Launcher` starts and that dial
back to its :class:`Client`. Plugins (crew-local, crew-slurm, crew-sge, crew-aws-batch) each
provide a launcher, a monitor and a ``<name>_controller(...)`` helper;
``crew.controller("slurm", **options)`` builds an installed plugin's controller by name.

Names are imported on first use (PEP 562), so a worker (``python -m crew.worker``) loads only
what it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and API docs
    from . import discovery, metrics, validate
    from ._build import build_controller, controller_helper
    from ._controller import Controller
    from ._controller.sequential import SequentialController, sequential_controller
    from .client import Client
    from .discovery import controller
    from .errors import CrewError, LaunchError, SchedulerError, SettingError, TaskError
    from .group import ControllerGroup
    from .launcher import Contact, Instance, Launcher, Queued
    from .monitor import JOB_COLUMNS, Monitor
    from .plugins import ENTRY_POINT_GROUP, Plugin
    from .results import STATUSES, Result
    from .tls import TLS

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "client",
    "Controller": "_controller",
    "controller": "discovery",
    "Contact": "launcher",
    "ControllerGroup": "group",
    "CrewError": "errors",
    "ENTRY_POINT_GROUP": "plugins",
    "Instance": "launcher",
    "JOB_COLUMNS": "monitor",
    "LaunchError": "errors",
    "Launcher": "launcher",
    "Monitor": "monitor",
    "Plugin": "plugins",
    "Queued": "launcher",
    "Result": "results",
    "STATUSES": "results",
    "SchedulerError": "errors",
    "SettingError": "errors",
    "TLS": "tls",
    "TaskError": "errors",
    "build_controller": "_build",
    "sequential_controller": "_controller.sequential",
    "SequentialController": "_controller.sequential",
    "controller_helper": "_build",
}
_MODULES = ("discovery", "metrics", "validate")

__all__ = [
    "JOB_COLUMNS",
    "STATUSES",
    "ENTRY_POINT_GROUP",
    "Client",
    "Contact",
    "Controller",
    "ControllerGroup",
    "CrewError",
    "Instance",
    "LaunchError",
    "Launcher",
    "Monitor",
    "Plugin",
    "Queued",
    "Result",
    "SchedulerError",
    "SettingError",
    "TLS",
    "TaskError",
    "build_controller",
    "controller",
    "controller_helper",
    "sequential_controller",
    "SequentialController",
    "discovery",
    "metrics",
    "validate",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'crew' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
