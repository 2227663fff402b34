"""crew-slurm: run crew workers as SLURM array jobs.

``slurm_controller(...)`` builds a controller whose auto-scaling submits one ``sbatch --array``
job per round; ``SlurmMonitor`` lists, cancels and reads the logs of crew's SLURM jobs.
"""

import crew

from .controller import slurm_controller
from .launcher import SlurmLauncher
from .monitor import SlurmMonitor

__version__ = "0.1.0"

plugin = crew.Plugin(name="slurm", package="crew-slurm", controller=slurm_controller,
                     launcher=SlurmLauncher, monitor=SlurmMonitor)

__all__ = ["SlurmLauncher", "SlurmMonitor", "plugin", "slurm_controller"]
