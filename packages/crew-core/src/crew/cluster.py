"""The shared base of launchers and monitors for script-based batch schedulers.

SLURM, Grid Engine, LSF and PBS all work the same way: write a job script whose header holds the
scheduler's directives, submit it with one command, read the job id from its output, and cancel
with another command. :class:`ClusterLauncher` does all of that once; a scheduler's subclass only
says how its directives look (:meth:`ClusterLauncher._directives`), how to read the job id from
the submit command's output (:meth:`ClusterLauncher._parse_job_id`) and, optionally, how to ask
the queue which array tasks still wait and which jobs ended
(:meth:`ClusterLauncher._status_arguments`, :meth:`ClusterLauncher._parse_status` and
:meth:`ClusterLauncher._parse_ended`).

Every command runs through :func:`_run_command` on a plumbum machine (``plumbum.local`` by
default, or e.g. a ``plumbum.SshMachine`` to a login node), so submission works the same locally
and remotely. The controller's secret never appears on a command line: it goes into a file only
the user can read (``--secret-file``), in ``script_directory``, which must be on a file system the
compute nodes share.

The code lives in ``crew._cluster_common`` (names, the job script, running a command),
``crew._cluster_launcher`` (:class:`ClusterLauncher`) and ``crew._cluster_monitor``
(:class:`ClusterMonitor`); this module is their public face.
"""

from __future__ import annotations

from ._cluster_common import (
    DEFAULT_SCRIPT_DIRECTORY,
    DIRECTIVE_LINE,
    DIRECTIVE_VALUE,
    LOG_FOLDER,
    PLACEHOLDER_CALL,
    array_indices,
    job_name,
    megabytes,
    render_script,
)
from ._cluster_launcher import ClusterLauncher
from ._cluster_monitor import ClusterMonitor

__all__ = [
    "DEFAULT_SCRIPT_DIRECTORY",
    "DIRECTIVE_LINE",
    "DIRECTIVE_VALUE",
    "LOG_FOLDER",
    "PLACEHOLDER_CALL",
    "ClusterLauncher",
    "ClusterMonitor",
    "array_indices",
    "job_name",
    "megabytes",
    "render_script",
]
