"""ssh_controller(): a controller whose workers SshLauncher starts on other machines."""

from __future__ import annotations

from crew._build import controller_helper

from .launcher import SshLauncher

__all__ = ["ssh_controller"]

ssh_controller = controller_helper(
    SshLauncher,
    name="ssh_controller",
    doc="""A validated controller (not started) whose workers SshLauncher starts over SSH on ``hosts``.

    ``host`` (where the controller listens) defaults to this machine's first address that is not
    loopback, which the hosts must reach; pass ``host="127.0.0.1"`` only when every host is this
    machine. Its options are declared once, by crew.Client, crew.Controller and SshLauncher.
    """,
)
