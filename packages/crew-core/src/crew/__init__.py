"""crew for Python: run Python tasks on workers that auto-scale on a laptop, a cluster or a cloud.

A :class:`Controller` pushes tasks to workers that a :class:`Launcher` starts and that dial
back to its :class:`Client`. Plugins (crew-local, crew-slurm, crew-sge, crew-aws-batch) each
provide a launcher, a monitor and a ``<name>_controller(...)`` helper.
"""

from . import validate
from ._build import build_controller
from .client import Client
from .controller import Controller
from . import discovery
from .errors import CrewError, LaunchError, SchedulerError, SettingError, TaskError
from .group import ControllerGroup
from .launcher import Instance, Launcher, Queued
from .monitor import JOB_COLUMNS, Monitor
from .plugins import ENTRY_POINT_GROUP, Plugin
from .results import STATUSES, Result
from .tls import TLS

__version__ = "0.1.0"

# ``crew.controller("slurm", **options)`` builds an installed plugin's controller; the module
# ``crew.controller`` (which holds crew.Controller) is made callable for that.
discovery._make_controller_module_callable()

__all__ = [
    "Client",
    "Controller",
    "ControllerGroup",
    "CrewError",
    "ENTRY_POINT_GROUP",
    "Instance",
    "JOB_COLUMNS",
    "LaunchError",
    "Launcher",
    "Monitor",
    "Plugin",
    "Queued",
    "Result",
    "STATUSES",
    "SchedulerError",
    "SettingError",
    "TLS",
    "TaskError",
    "build_controller",
    "controller",
    "discovery",
    "validate",
]
