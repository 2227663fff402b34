"""The demo: local workers share a batch of tasks, then the summary shows who ran what.

Run it with ``python -m crew_local.demo`` (or ``crew demo``).
"""

from __future__ import annotations

import time
from typing import Any

from .controller import local_controller

__all__ = ["main"]

# Each task sleeps this long: long enough that every worker launched gets a share of the batch
# (a task of a few microseconds would all be done by the first worker before the second starts).
SECONDS_PER_TASK = 0.02

_COLUMNS = (("worker", "worker"), ("tasks", "tasks"), ("seconds", "busy (s)"), ("errors", "errors"),
            ("crashes", "crashes"), ("launches", "launches"), ("state", "state"))


def main(workers: int = 2, tasks: int = 200, seconds_per_task: float = SECONDS_PER_TASK) -> int:
    """Push ``tasks`` tasks to ``workers`` local workers; print the results' check and the summary."""
    start = time.perf_counter()
    with local_controller(name="demo", workers=workers, seconds_idle=5) as controller:
        for index in range(1, tasks + 1):
            controller.push("import time\ntime.sleep(seconds)\nindex",
                            data={"index": index, "seconds": seconds_per_task}, name=f"task_{index}")
        controller.wait(mode="all")
        results = controller.collect()
        summary = controller.summary()
    seconds = time.perf_counter() - start
    values = sorted(result.result for result in results)
    ok = values == list(range(1, tasks + 1))
    working = sum(1 for row in summary if row["tasks"])
    print(f"crew demo: {len(results)} tasks of {seconds_per_task * 1000:g} ms each, on {working} of "
          f"{workers} local worker(s), in {seconds:.2f} s "
          f"({'results are exactly 1..' + str(tasks) if ok else 'UNEXPECTED RESULTS'})")
    _print_summary(summary)
    idle = [str(row["worker"]) for row in summary if not row["tasks"]]
    if idle:
        print(f"worker(s) {', '.join(idle)} ran no task: the others finished the batch before "
              f"they connected")
    return 0 if ok else 1


def _print_summary(summary: list[dict[str, Any]]) -> None:
    """The controller's summary as a table; "busy (s)" is the time each worker spent running tasks."""
    print("  ".join(f"{title:>9}" for _, title in _COLUMNS))
    for row in summary:
        cells = [f"{row[key]:.2f}" if key == "seconds" else str(row[key]) for key, _ in _COLUMNS]
        print("  ".join(f"{cell:>9}" for cell in cells))


if __name__ == "__main__":
    raise SystemExit(main())
