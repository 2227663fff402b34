"""local_controller(): a controller whose workers run on this machine."""

from __future__ import annotations

import math
import os

import crew

from .launcher import LocalLauncher

__all__ = ["local_controller"]


def local_controller(
    name: str | None = None,
    workers: int = 1,
    host: str | None = "127.0.0.1",
    port: int | None = None,
    tls: crew.TLS | None = None,
    serializer: str | None = None,
    profile: str | None = None,
    seconds_interval: float = 0.25,
    seconds_timeout: float = 60.0,
    seconds_launch: float = 30.0,
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
) -> crew.Controller:
    """A validated controller with local workers, listening on loopback by default.

    Start it with ``controller.start()`` or a ``with`` block; see :class:`crew.Launcher` and
    :class:`crew.Controller` for the arguments.
    """
    return crew.build_controller(LocalLauncher, **locals())
