"""A live progress bar for ``wait(progress=True)`` and ``map(..., progress=True)``.

On a terminal it redraws one line (done/total, errors, workers up, elapsed time) about ten
times a second and leaves the final state behind; when the stream is not a terminal it prints
nothing at all. No dependency beyond the standard library.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # pragma: no cover
    from ._controller import Controller

__all__ = ["Progress", "render"]

_REFRESH = 0.1


def render(done: int, total: int, errors: int, up: int, launching: int, seconds: float, width: int,
           unicode: bool = True) -> str:
    """One line of the bar, at most ``width`` characters (a pure function)."""
    minutes, secs = divmod(int(seconds), 60)
    parts = [f"{done}/{total}"]
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    workers = f"{up} worker{'s' if up != 1 else ''} up"
    if launching:
        workers += f", {launching} launching"
    parts.append(workers)
    parts.append(f"{minutes:02d}:{secs:02d}")
    text = " | ".join(parts)
    room = width - len(text) - 3
    if room >= 10:
        bar_width = min(room, 40)
        filled = bar_width if total <= 0 else min(bar_width, bar_width * done // total)
        full, empty = ("\u2588", "\u2591") if unicode else ("#", "-")
        return f"[{full * filled}{empty * (bar_width - filled)}] {text}"
    return text[:width]


class Progress:
    """Shows a controller's progress while the ``with`` block runs.

    Arguments:
        controller: the controller to watch.
        total: how many tasks the block waits for (None: every task unresolved at the start,
            plus those pushed meanwhile).
        stream: where to draw (default ``sys.stderr``); nothing is drawn unless it is a terminal.
    """

    def __init__(self, controller: Controller, total: int | None = None, stream: TextIO | None = None):
        self.controller = controller
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start = 0.0
        self._pushed0 = self._resolved0 = self._errors0 = 0
        self._width = 0

    @property
    def active(self) -> bool:
        """Whether the bar is drawn (the stream is a terminal)."""
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError):
            return False

    def counts(self) -> dict[str, int]:
        """done, total, errors, workers up and launching, as of now."""
        controller = self.controller
        resolved = controller.resolved()
        pushed = resolved + controller.unresolved()
        if self.total is None:
            total = pushed - self._resolved0
            done = resolved - self._resolved0
        else:
            total = self.total
            done = total - min(total, pushed - resolved)
        rows = controller.summary()
        errors = sum(row["errors"] for row in rows) - self._errors0
        up = sum(1 for row in rows if row["state"] == "connected")
        launching = sum(1 for row in rows if row["state"] == "launching")
        return {"done": max(0, done), "total": max(0, total), "errors": max(0, errors), "up": up,
                "launching": launching}

    def line(self) -> str:
        """The bar as it would be drawn now."""
        counts = self.counts()
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        encoding = (getattr(self.stream, "encoding", None) or "ascii").lower()
        return render(counts["done"], counts["total"], counts["errors"], counts["up"], counts["launching"],
                      time.monotonic() - self._start, width, unicode="utf" in encoding)

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._resolved0 = self.controller.resolved()
        self._pushed0 = self._resolved0 + self.controller.unresolved()
        self._errors0 = sum(row["errors"] for row in self.controller.summary())
        if self.active:
            self._draw()
            self._thread = threading.Thread(target=self._run, name="crew-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._draw()
        self._write("\n")

    def _run(self) -> None:
        while not self._stop.wait(_REFRESH):
            self._draw()

    def _draw(self) -> None:
        text = self.line()
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self._write("\r" + text + " " * pad)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass
