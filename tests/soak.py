"""Soak test: many trivial tasks through one controller, in batches, watching its resources.

    python tests/soak.py --tasks 1000000 [--batch 20000] [--workers 2] [--warmup 0.2]

After every batch it prints one row: tasks done, seconds, throughput, the controller process's
resident memory (RSS), its open file descriptors and threads, and the workers' RSS. At the end it
checks that after the warm-up the descriptors and threads did not grow and RSS grew by less than
``--rss-slack`` MiB; it exits 1 (listing the problems) if not. tests/reliability/test_soak_short.py
runs a short form in the test suite; ``nox -s soak`` runs the long one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Callable

import psutil
from crew_local import local_controller

MIB = 2**20


@dataclass(frozen=True)
class Sample:
    """The controller process's resources after ``tasks`` tasks."""

    tasks: int
    seconds: float
    rss: int
    fds: int
    threads: int
    worker_rss: int

    def row(self) -> str:
        rate = self.tasks / self.seconds if self.seconds else 0.0
        return (f"{self.tasks:>10} {self.seconds:>9.1f} {rate:>9.0f} {self.rss / MIB:>9.1f} "
                f"{self.fds:>5} {self.threads:>7} {self.worker_rss / MIB:>10.1f}")


HEADER = f"{'tasks':>10} {'seconds':>9} {'tasks/s':>9} {'RSS MiB':>9} {'fds':>5} {'threads':>7} {'worker MiB':>10}"


def _sample(tasks: int, started: float, pids: list[int]) -> Sample:
    me = psutil.Process()
    worker_rss = 0
    for pid in pids:
        try:
            worker_rss += psutil.Process(pid).memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return Sample(tasks, time.monotonic() - started, me.memory_info().rss, me.num_fds(), me.num_threads(), worker_rss)


def soak(tasks: int, batch: int = 20_000, workers: int = 2, report: Callable[[str], None] = print) -> list[Sample]:
    """Run ``tasks`` trivial tasks through one local controller, ``batch`` at a time; check every
    result; return one sample after each batch."""
    samples = []
    with local_controller(workers=workers) as controller:
        started = time.monotonic()
        report(HEADER)
        done = 0
        while done < tasks:
            count = min(batch, tasks - done)
            controller.walk("index", {"index": range(done, done + count)})
            if not controller.wait(seconds_timeout=600):
                raise RuntimeError(f"{controller.unresolved()} tasks unresolved after 600 s")
            results = controller.collect()
            bad = [result for result in results if result.status != "success"]
            if len(results) != count or bad or sum(r.result for r in results) != sum(range(done, done + count)):
                raise RuntimeError(f"batch at {done}: {len(results)} results of {count}; failures: {bad[:3]}")
            del results
            done += count
            pids = [i.pid for i in list(controller.launcher.instances) if i.pid]
            samples.append(_sample(done, started, pids))
            report(samples[-1].row())
    return samples


def problems(samples: list[Sample], warmup: float = 0.2, rss_slack: float = 16.0) -> list[str]:
    """What grew after the first ``warmup`` fraction of the samples: descriptors, threads, or RSS
    by more than ``rss_slack`` MiB."""
    steady = samples[max(1, int(len(samples) * warmup)):]
    if len(steady) < 2:
        return ["too few samples after the warm-up to judge"]
    found = []
    first, peak = steady[0], max(steady, key=lambda sample: sample.rss)
    if max(s.fds for s in steady) > first.fds:
        found.append(f"file descriptors grew from {first.fds} to {max(s.fds for s in steady)}")
    if max(s.threads for s in steady) > first.threads:
        found.append(f"threads grew from {first.threads} to {max(s.threads for s in steady)}")
    if peak.rss - first.rss > rss_slack * MIB:
        found.append(f"RSS grew by {(peak.rss - first.rss) / MIB:.1f} MiB after the warm-up "
                     f"(from {first.rss / MIB:.1f} at {first.tasks} tasks to {peak.rss / MIB:.1f} at {peak.tasks})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the batches counted as warm-up")
    parser.add_argument("--rss-slack", type=float, default=16.0, help="MiB of RSS growth tolerated after warm-up")
    options = parser.parse_args(argv)
    samples = soak(options.tasks, options.batch, options.workers)
    found = problems(samples, options.warmup, options.rss_slack)
    last = samples[-1]
    print(f"{last.tasks} tasks in {last.seconds:.1f} s ({last.tasks / last.seconds:.0f} tasks/s); "
          f"RSS {samples[0].rss / MIB:.1f} -> {last.rss / MIB:.1f} MiB, fds {samples[0].fds} -> {last.fds}, "
          f"threads {samples[0].threads} -> {last.threads}")
    for problem in found:
        print(f"PROBLEM: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
