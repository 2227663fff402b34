"""Launcher plugins: how an installed package makes its launcher known to crew."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Plugin", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "crew.launchers"


@dataclass(frozen=True)
class Plugin:
    """What a launcher package registers under the ``crew.launchers`` entry-point group.

    A package declares, in its pyproject.toml::

        [project.entry-points."crew.launchers"]
        slurm = "crew_slurm:plugin"

    where ``plugin = crew.Plugin(name="slurm", package="crew-slurm", controller=slurm_controller,
    launcher=SlurmLauncher, monitor=SlurmMonitor)``.
    """

    name: str
    package: str
    controller: Callable[..., Any]
    launcher: type
    monitor: type | None = None
