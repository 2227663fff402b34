"""crew-ssh: run crew workers on other machines over SSH.

:class:`SshLauncher` starts each scaling round's workers on the least busy of its hosts (one SSH
connection per host per round), passes the controller's secret over the connection's standard
input, and ends workers by their remote pids; :class:`SshMonitor` lists, ends and reads the logs
of crew workers on those hosts.
"""

import crew

from ._ssh import SshError
from .controller import ssh_controller
from .launcher import SshLauncher, SshWorker
from .monitor import SshMonitor

__version__ = "0.1.0"

plugin = crew.Plugin(name="ssh", package="crew-ssh", controller=ssh_controller,
                     launcher=SshLauncher, monitor=SshMonitor)

__all__ = ["SshError", "SshLauncher", "SshMonitor", "SshWorker", "ssh_controller", "plugin"]
