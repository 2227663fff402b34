"""A worker's command line and set-up: its options, its secret, and failing before it serves.

Used by :mod:`crew.worker` (``python -m crew.worker`` and the ``crew-worker`` console script).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import NoReturn

from ._metrics import METRICS_SECONDS
from ._secret_file import note_failure, writer_gone

__all__ = ["log", "read_secret", "fail", "parser"]


def log(message: str) -> None:
    print(f"crew.worker[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def read_secret(options: argparse.Namespace) -> tuple[str, str | None]:
    values = dict(os.environ)
    if options.secret_file:
        try:
            with open(options.secret_file) as handle:
                text = handle.read()
        except OSError as error:
            fail(options, f"cannot read the secret file {options.secret_file}: {error.strerror}")
        key = None
        for line in text.splitlines():
            if line.startswith("CREW_") and "=" in line and line.split("=", 1)[0].isidentifier():
                key, value = line.split("=", 1)
                values[key] = value
            elif key is not None:
                values[key] += "\n" + line
        _check_writer(options, values)
    secret = values.get("CREW_SECRET")
    if not secret:
        fail(options, "no secret: set CREW_SECRET or pass --secret-file")
    return str(secret), values.get("CREW_TLS_CERTIFICATE")


def _check_writer(options: argparse.Namespace, values: dict[str, str]) -> None:
    """Refuse a secret file whose controller, on this very host, is gone (e.g. SIGKILLed): the
    file outlives it, and whoever binds the controller's port next must get nothing from us."""
    if writer_gone(values):
        fail(options, f"the controller (pid {values['CREW_CONTROLLER_PID']}) that wrote the secret file is gone")


def fail(options: argparse.Namespace, message: str, code: int = 2) -> NoReturn:
    """Exit before serving: say why on stderr and, beside the secret file, for the controller."""
    log(message)
    if options.secret_file:
        note_failure(options.secret_file, str(options.launch), message)
    sys.stdout.flush()
    os._exit(code)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crew-worker", description="Run a crew worker.")
    parser.add_argument("url", help="the controller's address, e.g. tcp://10.0.0.5:5555")
    parser.add_argument("--controller", required=True, help="id of the controller to serve")
    parser.add_argument("--launch", default="0", help="id of the scaling round that launched this worker")
    parser.add_argument("--seconds-timeout", type=float, default=60.0)
    parser.add_argument("--seconds-idle", type=float, default=math.inf)
    parser.add_argument("--seconds-wall", type=float, default=math.inf)
    parser.add_argument("--tasks-max", type=float, default=math.inf)
    parser.add_argument("--tasks-timers", type=int, default=0)
    parser.add_argument("--metrics", default=None, help="folder for CPU and memory samples")
    parser.add_argument("--metrics-seconds", type=float, default=METRICS_SECONDS,
                        help="seconds between two CPU and memory samples")
    parser.add_argument("--secret-file", default=None)
    return parser
