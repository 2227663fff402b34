"""moto, made to answer like AWS Batch while the local agent is installed.

The agent replaces moto's job runner; the other replacements fix moto's answers where they differ
from AWS's (see the package's docstring). They change moto's classes for the whole process while
installed: one local AWS Batch at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from moto.batch import models as _batch_models

from ._jobs import _WAITING, TERMINAL_STATUSES, _job_environment

if TYPE_CHECKING:
    from .agent import LocalBatchAgent

_ORIGINAL: dict[str, Callable[..., Any]] = {}
"""moto's own functions, by name, while the replacements are installed."""


def _get_container_property(self: Any, name: str, default: Any) -> Any:
    if name == "environment":
        return _job_environment(self)
    return _ORIGINAL["_get_container_property"](self, name, default)


def _container_details(self: Any) -> dict[str, Any]:
    details = _ORIGINAL["_container_details"](self)
    if self.exit_code is not None:
        details["exitCode"] = self.exit_code
    if self.job_stopped and self.job_stopped_reason:
        details.setdefault("reason", self.job_stopped_reason)
    if self.log_stream_name:
        details["networkInterfaces"] = [{"privateIpv4Address": "127.0.0.1"}]
    return details


def _array_properties(self: Any) -> dict[str, Any] | None:
    if self._child_jobs:
        return {"size": len(self._child_jobs)}
    if self.array_properties.get("index") is not None:
        return {"index": self.array_properties["index"]}
    return None


def _describe(self: Any) -> dict[str, Any]:
    result = _ORIGINAL["describe"](self)
    if getattr(self, "_crew_cancelled", False):
        result["isCancelled"] = True
    if getattr(self, "_crew_terminated", False):
        result["isTerminated"] = True
    extra = _array_properties(self)
    if extra is not None:
        result["arrayProperties"] = {**extra, **result.get("arrayProperties", {})}
    return result


def _describe_short(self: Any) -> dict[str, Any]:
    result = _ORIGINAL["describe_short"](self)
    extra = _array_properties(self)
    if extra is not None:
        result["arrayProperties"] = extra
    return result


def _cancel_job(self: Any, job_id: str, reason: str) -> None:
    _ORIGINAL["cancel_job"](self, job_id, reason)
    job = self.get_job_by_id(job_id)
    if job is None:
        return
    for item in [job, *(job._child_jobs or [])]:
        if item._status in _WAITING:
            item.terminate(reason)
            item._crew_cancelled = True


def _terminate_job(self: Any, job_id: str, reason: str) -> None:
    _ORIGINAL["terminate_job"](self, job_id, reason)
    job = self.get_job_by_id(job_id)
    if job is None:
        return
    for item in [job, *(job._child_jobs or [])]:
        if item._status not in TERMINAL_STATUSES:
            item.terminate(reason)
            item._crew_terminated = True


def _list_jobs(self: Any, job_queue_name: Any, array_job_id: Any, job_status: Any = None, filters: Any = None) -> Any:
    if job_status is None and not filters:
        job_status = "RUNNING"  # AWS's default
    jobs = _ORIGINAL["list_jobs"](self, job_queue_name, array_job_id, job_status, filters)
    if job_queue_name and not array_job_id:
        jobs = [job for job in jobs if job.array_properties.get("index") is None]
    return jobs


_REPLACEMENTS: dict[str, tuple[str, Callable[..., Any]]] = {
    "describe": ("Job", _describe),
    "describe_short": ("Job", _describe_short),
    "_container_details": ("Job", _container_details),
    "_get_container_property": ("Job", _get_container_property),
    "cancel_job": ("BatchBackend", _cancel_job),
    "terminate_job": ("BatchBackend", _terminate_job),
    "list_jobs": ("BatchBackend", _list_jobs),
}
"""Method name -> (moto class, replacement); ``Job.run`` is replaced by the agent itself."""


@contextlib.contextmanager
def installed(agent: LocalBatchAgent) -> Iterator[None]:
    """Replace moto's job runner with the agent and fix moto's answers; undo it afterwards."""

    def run(self: Any) -> None:
        agent._run(self)

    replacements = {"run": ("Job", run), **_REPLACEMENTS}
    owners = {name: getattr(_batch_models, owner) for name, (owner, _) in replacements.items()}
    saved = {name: getattr(owner, name) for name, owner in owners.items()}
    _ORIGINAL.update(saved)
    for name, (_, function) in replacements.items():
        setattr(owners[name], name, function)
    try:
        yield
    finally:
        for name, function in saved.items():
            setattr(owners[name], name, function)
        _ORIGINAL.clear()
