"""The workers' CPU and memory samples, read back from the launcher's ``metrics`` folder.

A launcher made with ``metrics=folder`` starts every worker with a sampler that writes a line to
``<folder>/<worker id>.csv`` every ``metrics_seconds`` (default 1 s)::

    controller = crew_local.local_controller(workers=2, metrics="metrics", metrics_seconds=0.5)
    ...
    samples = crew.metrics.read("metrics")              # a list of dicts
    table = crew.metrics.read("metrics", frame=True)    # a pandas DataFrame (crew-core[frame])

Each record has ``worker`` (the worker's id), ``time`` (Unix time in seconds),
``pid``, ``cpu_percent`` (since the previous sample of that worker; 100 is one busy core) and
``rss_bytes`` (resident memory). Records come sorted by time, then worker.
"""

from __future__ import annotations

import os
from typing import Any

from . import validate
from ._metrics import COLUMNS
from .errors import SettingError

__all__ = ["FIELDS", "read"]

FIELDS = COLUMNS
"""The keys of each record, and the columns of the DataFrame, in order."""
_TYPES = (float, int, float, int)
"""The types of the fields after ``worker``."""


def read(folder: str | os.PathLike[str], frame: bool = False) -> Any:
    """Every sample the workers wrote to ``folder``, oldest first.

    Returns a list of dicts with the keys of :data:`FIELDS` or, with ``frame=True``, a pandas
    DataFrame with those columns (one row per sample; pandas comes with ``crew-core[frame]``).
    The result does not depend on whether pandas is installed: a list unless you ask for a frame.

    Files in ``folder`` that are not crew samples files (other names, other headers) are left
    out, and so is a last line a worker was still writing. Raises :class:`crew.SettingError` when
    ``folder`` is not an existing directory.
    """
    folder = validate.path("folder", folder)
    frame = validate.flag("frame", frame)
    if not os.path.isdir(folder):
        raise SettingError(f"folder must be an existing directory of metrics samples, not {folder!r}")
    records: list[dict[str, Any]] = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".csv"):
            records += _read_file(os.path.join(folder, name))
    records.sort(key=lambda record: (record["time"], record["worker"]))
    return _frame(records) if frame else records


def _read_file(path: str) -> list[dict[str, Any]]:
    """The samples of one worker's file; [] when the file is not a samples file."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().split("\n")
    if not lines or lines[0] != ",".join(COLUMNS):
        return []
    records = []
    for line in lines[1:-1]:  # the last piece is "" or a line the worker was still writing
        values = line.rsplit(",", len(_TYPES))  # the id may hold commas: split the numbers off the right
        if len(values) != len(FIELDS) or not values[0]:
            continue
        try:
            parsed = [kind(value) for kind, value in zip(_TYPES, values[1:])]
        except ValueError:
            continue
        records.append(dict(zip(FIELDS, [values[0], *parsed])))
    return records


def _frame(records: list[dict[str, Any]]) -> Any:
    try:
        import pandas
    except ImportError as error:
        from ._frame import FrameError

        raise FrameError(
            "crew.metrics.read(frame=True) needs pandas, which is not installed; "
            "install it with: pip install 'crew-core[frame]'"
        ) from error
    return pandas.DataFrame(records, columns=list(FIELDS))
