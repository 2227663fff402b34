"""LocalMonitor: the crew workers running on this machine, whoever started them."""

from __future__ import annotations

import datetime
import os
from typing import Any

import crew
import psutil

__all__ = ["LocalMonitor"]


class LocalMonitor(crew.Monitor):
    """Lists and ends this user's crew worker processes on this machine (by pid).

    Besides the keys of ``crew.JOB_COLUMNS``, each row has ``controller`` (the id of the controller
    the worker serves) and ``controller_alive`` (False once the process that launched the worker
    has exited), so that ``crew terminate --controller ID`` and ``--orphans`` can choose workers.

    PLATFORM: ask the platform for the user's crew jobs instead, and end them by job id.
    """

    def jobs(self) -> list[dict[str, Any]]:
        """One row per worker, with the keys of ``crew.JOB_COLUMNS``."""
        rows = []
        user = psutil.Process().username()
        for process in psutil.process_iter(["pid", "cmdline", "username", "status", "create_time", "name"]):
            info = process.info
            if info["username"] != user or not _is_worker(info["cmdline"] or []):
                continue
            alive = info["status"] != psutil.STATUS_ZOMBIE
            rows.append({
                "id": info["pid"],
                "array_index": None,
                "name": info["name"],
                "state": "running" if alive else "done",
                "reason": None,
                "node": os.uname().nodename,
                "start_time": datetime.datetime.fromtimestamp(info["create_time"]),
                "raw_state": info["status"],
                "controller": _controller_id(info["cmdline"] or []),
                "controller_alive": _controller_alive(process),
            })
        return rows

    def workers(self) -> list[int]:
        """Pids of the running crew workers."""
        return super().workers()

    def terminate(self, ids: list[int] | None = None, all: bool = False) -> list[int]:
        """End the workers with these pids (or every one of them with ``all=True``); return those ended."""
        if ids is None and not all:
            raise crew.SettingError("terminate needs ids or all=True")
        known = set(self.workers())
        targets = known if all or ids is None else {int(pid) for pid in ids}
        ended = []
        processes = []
        for pid in sorted(targets & known):
            try:
                process = psutil.Process(pid)
                process.terminate()
            except psutil.NoSuchProcess:
                continue
            processes.append(process)
            ended.append(pid)
        _, alive = psutil.wait_procs(processes, timeout=5)
        for process in alive:
            process.kill()
        return ended


def _is_worker(cmdline: list[str]) -> bool:
    if any(word.endswith("crew-worker") for word in cmdline[:2]):
        return True
    return "-m" in cmdline and "crew.worker" in cmdline


def _controller_id(cmdline: list[str]) -> str | None:
    """The value of the worker's ``--controller`` argument."""
    for index, word in enumerate(cmdline[:-1]):
        if word == "--controller":
            return cmdline[index + 1]
    return None


def _controller_alive(process: psutil.Process) -> bool:
    """Whether the process that launched this worker still runs: LocalLauncher records its pid in
    the worker's environment (``CREW_CONTROLLER_PID``), and a worker whose controller has exited
    has been handed to another parent."""
    try:
        parent = process.ppid()
        recorded = process.environ().get("CREW_CONTROLLER_PID")
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    if recorded is None or not recorded.isdigit():
        return parent > 1
    return parent == int(recorded)
