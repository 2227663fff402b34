"""build_controller(): the body every plugin's ``<name>_controller(...)`` helper shares."""

from __future__ import annotations

from typing import Any

from .client import Client
from .controller import Controller
from .launcher import Launcher

__all__ = ["build_controller", "CLIENT_OPTIONS", "CONTROLLER_OPTIONS"]

CLIENT_OPTIONS = ("host", "port", "tls", "serializer", "profile", "seconds_interval", "seconds_timeout")
CONTROLLER_OPTIONS = ("reset_globals", "reset_modules", "garbage_collection", "crashes_max", "backup")


def build_controller(launcher: type[Launcher], **options: Any) -> Controller:
    """A validated, unstarted controller: a :class:`crew.Client`, a ``launcher`` and a
    :class:`crew.Controller`, each given its share of ``options``.

    Client options (``host``, ``port``, ``tls`` ...) go to the client, controller options
    (``reset_globals``, ``crashes_max``, ``backup`` ...) to the controller, and everything else to
    the launcher, which also gets ``tls``, ``seconds_interval`` and ``seconds_timeout``. A
    plugin's helper is then one line::

        def slurm_controller(name=None, workers=1, ..., partition=None, ...):
            return crew.build_controller(SlurmLauncher, **locals())
    """
    client_options = {key: options.pop(key) for key in CLIENT_OPTIONS if key in options}
    controller_options = {key: options.pop(key) for key in CONTROLLER_OPTIONS if key in options}
    for shared in ("tls", "seconds_interval", "seconds_timeout"):
        if shared in client_options:
            options[shared] = client_options[shared]
    client = Client(**client_options)
    return Controller(client, launcher(**options), **controller_options).validate()
