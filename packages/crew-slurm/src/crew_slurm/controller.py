"""slurm_controller(): a controller whose workers run as SLURM array jobs."""

from __future__ import annotations

from crew._build import CLUSTER_DEFAULTS, controller_helper

from .launcher import SlurmLauncher

__all__ = ["slurm_controller"]

slurm_controller = controller_helper(
    SlurmLauncher,
    name="slurm_controller",
    defaults=CLUSTER_DEFAULTS,
    doc="""A validated controller (not started) whose workers run as SLURM array jobs.

    ``host`` is the address the workers dial back to (default: this machine's first address
    that is not loopback; compute nodes must reach it). The first arguments are those of
    ``crew_local.local_controller``; the SLURM options, keyword-only, are those of
    :class:`crew_slurm.SlurmLauncher`. Start it with ``controller.start()`` or a ``with`` block.
    """,
)
