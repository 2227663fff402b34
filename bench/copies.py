"""How many payload-sized buffers a large argument needs on its way, on each side.

For each peer (1 worker, so that every task lands on the same process) and each payload size,
tracemalloc counts the bytes the Python heap holds at its peak beyond what it held before:

- controller side: from just before ``push``/``submit`` of a task taking the payload (the user's
  object already exists) to its result, in the process that pushes (every thread);
- worker side: from the end of the task before (:func:`bench_tasks.trace_start`, which resets the
  peak) to the payload task running (:func:`bench_tasks.trace_peak`), whose argument, the user's
  object on that side, is one of the buffers counted.

Divided by the payload size, this is the number of payload-sized buffers alive at once: a lower
bound on the copies (a copy freed before the next is made is not counted). Buffers allocated
outside the Python heap (nng's messages, the kernel's socket and pipe buffers) are not counted.
"""

from __future__ import annotations

import os
import tracemalloc
from typing import Any

from bench_tasks import trace_peak, trace_start


def _crew(sizes: list[int]) -> dict[str, Any]:
    import crew_local

    out = {}
    controller = crew_local.local_controller(workers=1)
    controller.start()
    try:
        def run(function, *args):
            controller.push(function, args=args)
            if not controller.wait(mode="all", seconds_timeout=120):
                raise TimeoutError("crew: a copy-counting task did not finish in 120 s")
            result = controller.pop()
            if result.status != "success":
                raise RuntimeError(f"crew: {result.status}: {result.error}")
            return result.result

        for size in sizes:
            payload = os.urandom(size)
            run(trace_peak, payload)  # warm: one-time costs (e.g. a module imported for the first large frame) not counted
            out[str(size)] = _one(run, payload)
    finally:
        controller.terminate()
    return out


def _ppe(sizes: list[int]) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    out = {}
    with ProcessPoolExecutor(max_workers=1) as executor:
        def run(function, *args):
            return executor.submit(function, *args).result()

        for size in sizes:
            payload = os.urandom(size)
            run(trace_peak, payload)  # warm: one-time costs (e.g. a module imported for the first large frame) not counted
            out[str(size)] = _one(run, payload)
    return out


def _one(run, payload: bytes) -> dict[str, float]:
    size = len(payload)
    base_worker = run(trace_start)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    length, peak_worker = run(trace_peak, payload)
    peak = tracemalloc.get_traced_memory()[1]
    if length != size:
        raise AssertionError("copy count: wrong payload length")
    return {"bytes": size, "controller": (peak - base) / size, "worker": (peak_worker - base_worker) / size}


def measure(sizes: list[int]) -> dict[str, Any]:
    tracemalloc.start()
    try:
        return {"crew-local": _crew(sizes), "ppe": _ppe(sizes)}
    finally:
        tracemalloc.stop()
