"""local_controller(): a controller whose workers LocalLauncher starts."""

from __future__ import annotations

from crew._build import controller_helper

from .launcher import LocalLauncher

__all__ = ["local_controller"]

local_controller = controller_helper(
    LocalLauncher,
    name="local_controller",
    defaults={"host": "127.0.0.1", "transport": "auto"},
    doc="""A validated controller (not started) whose workers LocalLauncher starts.

    Its workers run on this machine, so it listens on a Unix socket where it can (``transport="auto"``:
    on Linux, without TLS, with a loopback ``host``), else on loopback TCP. For workers on other
    machines too, pass ``host=None`` (this machine's first address that is not loopback) or
    ``transport="nng"``.
    Start it with ``controller.start()`` or a ``with`` block. Its options are declared once, by
    crew.Client, crew.Controller and LocalLauncher (see ``inspect.signature`` for the defaults).
    """,
)
