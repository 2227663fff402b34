"""slurm_controller(): a controller whose workers run as SLURM array jobs."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import crew

from .launcher import SlurmLauncher

__all__ = ["slurm_controller"]


def slurm_controller(
    name: str | None = None,
    workers: int = 1,
    host: str | None = None,
    port: int | None = None,
    tls: crew.TLS | None = None,
    serializer: str | None = None,
    profile: str | None = None,
    seconds_interval: float = 0.25,
    seconds_timeout: float = 60.0,
    seconds_launch: float = 60.0,
    seconds_idle: float = math.inf,
    seconds_wall: float = math.inf,
    tasks_max: float = math.inf,
    tasks_timers: int = 0,
    reset_globals: bool = True,
    reset_modules: bool = False,
    garbage_collection: bool = False,
    python: str | None = None,
    metrics: str | os.PathLike | None = None,
    crashes_max: int = 5,
    backup: crew.Controller | None = None,
    *,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    time_minutes: float | None = None,
    cpus_per_task: int | None = None,
    memory_gigabytes_required: float | None = None,
    memory_gigabytes_per_cpu: float | None = None,
    gpus: int | str | None = None,
    constraint: str | None = None,
    job_name: str | None = None,
    log_output: str | None = None,
    log_error: str | None = None,
    script_directory: str | os.PathLike | None = None,
    script_lines: str | Sequence[str] | None = None,
    extra_directives: str | Sequence[str] | None = None,
    command_submit: str | Sequence[str] = "sbatch",
    command_cancel: str | Sequence[str] = "scancel",
    machine: Any = None,
    seconds_status: float = 2.0,
) -> crew.Controller:
    """A validated controller (not started) whose workers run as SLURM array jobs.

    ``host`` is the address the workers dial back to (default: this machine's first address
    that is not loopback; compute nodes must reach it). The first arguments are those of
    ``crew_local.local_controller``; the SLURM options are those of :class:`SlurmLauncher`.
    Start it with ``controller.start()`` or a ``with`` block.
    """
    return crew.build_controller(SlurmLauncher, **locals())
