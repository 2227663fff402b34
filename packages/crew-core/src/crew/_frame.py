"""Results as a table: ``controller.collect(frame=True)`` returns a pandas DataFrame."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from .errors import CrewError
from .results import Result

__all__ = ["COLUMNS", "results_frame"]

COLUMNS = tuple(item.name for item in fields(Result) if item.name != "exception")
"""The DataFrame's columns: the fields of [`crew.Result`][crew.Result], in order (not ``exception``)."""


class FrameError(CrewError, ImportError):
    """pandas is missing: install crew-core's ``frame`` extra."""


def results_frame(results: Iterable[Result]) -> Any:
    """A pandas DataFrame with one row per result and the result's fields as columns.

    The ``result`` column has dtype ``object`` and holds the tasks' values unchanged.

    Raises an ImportError (also a [`crew.CrewError`][crew.CrewError]) naming the ``frame`` extra when
    pandas is not installed.
    """
    try:
        import pandas
    except ImportError as error:
        raise FrameError(
            "a results frame needs pandas, which is not installed; "
            "install it with: pip install 'crew-core[frame]'"
        ) from error
    rows = [result.to_dict() for result in results]
    frame = pandas.DataFrame(rows, columns=list(COLUMNS))
    # Task values stay the very objects the tasks returned (no coercion to float or NaN).
    frame["result"] = pandas.Series([row["result"] for row in rows], index=frame.index, dtype=object)
    return frame
