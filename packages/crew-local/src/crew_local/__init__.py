"""crew-local: run crew workers as processes on this machine.

This package is the template for launcher plugins: a launcher, a monitor, a controller
helper, and a :class:`crew.Plugin` registered under the ``crew.launchers`` entry point.
"""

import crew

from .controller import local_controller
from .launcher import LocalLauncher
from .monitor import LocalMonitor

__version__ = "0.1.0"

plugin = crew.Plugin(name="local", package="crew-local", controller=local_controller,
                     launcher=LocalLauncher, monitor=LocalMonitor)

__all__ = ["LocalLauncher", "LocalMonitor", "local_controller", "plugin"]
