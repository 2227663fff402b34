"""The tasks every peer runs. Importable by name, so a worker unpickles them by reference."""

from __future__ import annotations

from collections.abc import Callable


def inc(x: int) -> int:
    """The trivial task: ``x + 1``."""
    return x + 1


def size_of(payload: bytes) -> int:
    """The payload task: takes a payload and returns its length."""
    return len(payload)


def by_value() -> Callable[[int], int]:
    """An ``x + 1`` that cannot be imported by name (a closure), so it travels by value."""

    def inc_by_value(x: int) -> int:
        return x + 1

    return inc_by_value


def trace_start() -> int:
    """Start (or keep) tracemalloc in this worker and reset its peak; return the traced bytes now."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        tracemalloc.start()
    tracemalloc.reset_peak()
    return tracemalloc.get_traced_memory()[0]


def trace_peak(payload: bytes) -> tuple[int, int]:
    """Take a payload; return its length and this worker's traced peak since :func:`trace_start`."""
    import tracemalloc

    return len(payload), tracemalloc.get_traced_memory()[1]
