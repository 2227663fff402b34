"""The demo: local workers run the load test of the plugin guide, then print the summary.

Run it with ``python -m crew_local.demo`` (or ``crew demo``).
"""

from __future__ import annotations

import time

from .controller import local_controller

__all__ = ["main"]


def main(workers: int = 2, tasks: int = 200) -> int:
    """Push ``tasks`` tasks in two halves to ``workers`` local workers; print what happened."""
    half = tasks // 2
    start = time.perf_counter()
    with local_controller(name="demo", workers=workers, seconds_idle=2) as controller:
        for index in range(1, half + 1):
            controller.push("index", data={"index": index}, name=f"task_{index}")
        controller.wait(mode="all")
        for index in range(half + 1, tasks + 1):
            controller.push("index", data={"index": index}, name=f"task_{index}")
        controller.wait(mode="all")
        results = controller.collect()
        summary = controller.summary()
    seconds = time.perf_counter() - start
    values = sorted(result.result for result in results)
    ok = values == list(range(1, tasks + 1))
    print(f"crew demo: {len(results)} tasks on {workers} local workers in {seconds:.2f} s "
          f"({'results are exactly 1..' + str(tasks) if ok else 'UNEXPECTED RESULTS'})")
    columns = ("worker", "tasks", "seconds", "errors", "crashes", "launches", "state")
    print("  ".join(f"{column:>9}" for column in columns))
    for row in summary:
        print("  ".join(f"{row[column]!s:>9}" for column in columns))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
