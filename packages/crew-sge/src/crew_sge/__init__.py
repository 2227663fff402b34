"""crew-sge: run crew workers as array jobs on Grid Engine (SGE), LSF and PBS Pro / TORQUE.

``sge_controller(...)``, ``lsf_controller(...)`` and ``pbs_controller(...)`` build a controller
whose auto-scaling submits one array job per round; ``SgeMonitor``, ``LsfMonitor`` and
``PbsMonitor`` list, cancel and read the logs of crew's jobs on each scheduler.
"""

import crew

from .lsf import LsfLauncher, LsfMonitor, lsf_controller
from .pbs import PbsLauncher, PbsMonitor, pbs_controller
from .sge import SgeLauncher, SgeMonitor, sge_controller

__version__ = "0.1.0"

sge_plugin = crew.Plugin(name="sge", package="crew-sge", controller=sge_controller, launcher=SgeLauncher, monitor=SgeMonitor)
lsf_plugin = crew.Plugin(name="lsf", package="crew-sge", controller=lsf_controller, launcher=LsfLauncher, monitor=LsfMonitor)
pbs_plugin = crew.Plugin(name="pbs", package="crew-sge", controller=pbs_controller, launcher=PbsLauncher, monitor=PbsMonitor)

__all__ = [
    "LsfLauncher",
    "LsfMonitor",
    "PbsLauncher",
    "PbsMonitor",
    "SgeLauncher",
    "SgeMonitor",
    "lsf_controller",
    "lsf_plugin",
    "pbs_controller",
    "pbs_plugin",
    "sge_controller",
    "sge_plugin",
]
