"""The monitor contract: list and end the workers a platform runs, outside any controller."""

from __future__ import annotations

import abc
from typing import Any

__all__ = ["Monitor", "JOB_COLUMNS"]

JOB_COLUMNS = ("id", "array_index", "name", "state", "reason", "node", "start_time", "raw_state")
"""The keys of each row a monitor's ``jobs()`` returns, the same on every platform."""


class Monitor(abc.ABC):
    """Base class of platform monitors.

    ``jobs()`` returns one dict per worker job with the keys in :data:`JOB_COLUMNS`
    (``state`` is one of ``pending``, ``running``, ``done``, ``failed``, ``cancelled``);
    ``terminate(ids=None, all=False)`` ends the named jobs, or all of the user's crew jobs.
    """

    @abc.abstractmethod
    def jobs(self) -> list[dict[str, Any]]:
        """The worker jobs this platform knows of."""

    @abc.abstractmethod
    def terminate(self, ids: list[Any] | None = None, all: bool = False) -> list[Any]:
        """End the given jobs (or every crew job with ``all=True``); return the ids ended."""

    def workers(self) -> list[Any]:
        """Ids of the workers that are still running or pending."""
        return [row["id"] for row in self.jobs() if row["state"] in ("pending", "running")]

    def log(self, id: Any) -> str:
        """The text a worker wrote to its log."""
        raise NotImplementedError(f"{type(self).__name__} keeps no worker logs")
