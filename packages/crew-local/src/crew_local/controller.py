"""local_controller(): a controller whose workers LocalLauncher starts."""

from __future__ import annotations

from crew._build import controller_helper

from .launcher import LocalLauncher

__all__ = ["local_controller"]

local_controller = controller_helper(
    LocalLauncher,
    name="local_controller",
    defaults={"host": "127.0.0.1"},
    doc="""A validated controller (not started) whose workers LocalLauncher starts.

    It listens on loopback, as these workers run on this machine (for workers on other machines,
    drop the ``host`` default: None picks this machine's first address that is not loopback).
    Start it with ``controller.start()`` or a ``with`` block. Its options are declared once, by
    crew.Client, crew.Controller and LocalLauncher (see ``inspect.signature`` for the defaults).
    """,
)
