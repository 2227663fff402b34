"""LocalLauncher: how workers start (as generated, as processes of this machine)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any, cast

import crew
from crew import validate
from plumbum import local

__all__ = ["LocalLauncher"]


class LocalLauncher(crew.Launcher):
    """Starts each worker as a process of this machine.

    Takes the arguments of :class:`crew.Launcher` (``seconds_launch`` defaults to 30 seconds, as
    a process starts at once), plus:
        log_directory: a folder for one log file per worker (default: worker output is dropped).

    Every option is declared here, once, and validated here, once; ``local_controller`` takes
    them all. A plugin made by ``crew new-plugin`` starts from this file: replace the bodies
    marked ``PLATFORM`` with the platform's own calls, and add its options here.
    """

    def __init__(
        self,
        *args: Any,
        seconds_launch: float = 30.0,
        log_directory: str | os.PathLike | None = None,
        **options: Any,
    ):
        options["seconds_launch"] = seconds_launch  # this plugin's default, passed on as the others
        super().__init__(*args, **options)
        self.log_directory = validate.path("log_directory", log_directory, allow_none=True)

    def launch_worker(self, call: str) -> subprocess.Popen:
        """Start one worker process running ``call``; its handle is the process.

        PLATFORM: submit ``call`` as a job instead and return the job id (or override
        ``launch_workers(call, n)`` to submit one array job of ``n`` workers). The secret
        (``self.environment``) must travel in the job's environment or a private file, never on
        a command line.
        """
        env = dict(os.environ)
        env.update(self.environment)
        env["CREW_CONTROLLER_PID"] = str(os.getpid())  # LocalMonitor tells live controllers' workers by it
        output: Any = subprocess.DEVNULL
        if self.log_directory:
            os.makedirs(self.log_directory, mode=0o700, exist_ok=True)
            log = os.path.join(self.log_directory, f"worker-{len(os.listdir(self.log_directory)) + 1}.log")
            output = os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")  # the user's only
        try:
            process = cast(subprocess.Popen, local["sh"]["-c", f"exec {call}"].popen(  # on this machine: a Popen
                env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            ))
        finally:
            if output is not subprocess.DEVNULL:
                output.close()
        # Reap the process as soon as it exits, so no zombie outlives it.
        threading.Thread(target=process.wait, name=f"crew-local-reap-{process.pid}", daemon=True).start()
        return process

    def terminate_workers(self, handles: Sequence[subprocess.Popen]) -> None:
        """Ask every process to stop, then kill those still running after ``seconds_timeout``.

        PLATFORM: cancel the jobs, in one call where the platform allows it.
        """
        running = [process for process in handles if process.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        for process in running:
            try:
                process.wait(timeout=min(self.seconds_timeout, 10))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL)
                process.wait()

    def terminate_worker(self, handle: subprocess.Popen) -> None:
        """End one worker."""
        self.terminate_workers([handle])

    def exit_status(self, handle: subprocess.Popen, timeout: float = 0.0) -> str | None:
        """``exit code N`` or ``signal NAME`` once the process has ended, else None (the base
        class understands processes).

        PLATFORM: ask the platform for the job's final state.
        """
        return super().exit_status(handle, timeout)


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:
        pass
