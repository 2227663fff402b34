"""Where one round trip's time goes, step by step, in both processes.

Usage: ``python bench/trace.py [--round-trips N] [--transport auto|nng]``. One crew-local worker;
the script pushes one task at a time (``push``, ``wait``, ``pop``) and prints, for each step, the
median time since ``push`` began (µs).

Steps are timed by wrapping crew's own functions (sealing, opening, encoding, decoding, sends and
receives on NNG or on the ``unix`` transport, the runner, the result store) in both processes with ``perf_counter``, one clock for
both on Linux. The wrappers go into the worker through a ``sitecustomize`` module on its
``PYTHONPATH``; they add about a microsecond per step, so the total is a little above an untraced
round trip. A measuring tool, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Wrapped in both processes: (module, object, attribute, label, time the entry, time the exit).
_STEPS = [
    ("pynng", "Socket", "send", "send", True, True),
    ("pynng", "Socket", "recv_msg", "receive", False, True),
    ("crew._stream_listener", "Listener", "_send", "send", True, True),
    ("crew._stream_listener", "Listener", "recv_msg", "receive", False, True),
    ("crew._stream", "Dialer", "send_pieces", "send", True, True),
    ("crew._wire", None, "receive", "receive", False, True),
    ("crew._channel", "Session", "open", "open", True, True),
    ("crew._channel", "Session", "seal", "seal", True, True),
    ("crew._protocol", None, "decode", "decode", True, True),
    ("crew._protocol", None, "encode", "encode", True, True),
    ("crew._execute", "Runner", "run", "run the task", True, True),
    ("crew._controller.store", "ResultStore", "publish", "publish", True, True),
]

_SITE = '''
import importlib, json, os, threading, time
EVENTS = []
_clock = time.perf_counter

def _wrap(owner, name, label, enter, leave):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        if enter:
            EVENTS.append((label + " begins", _clock()))
        value = inner(*args, **kwargs)
        if leave:
            EVENTS.append((label + " ends", _clock()))
        return value
    setattr(owner, name, wrapper)

for module, owner, name, label, enter, leave in json.loads(os.environ["CREW_TRACE_STEPS"]):
    try:
        found = importlib.import_module(module)
    except ImportError:
        continue
    _wrap(getattr(found, owner) if owner else found, name, label, enter, leave)

_DUMPING = threading.Lock()

def _dump():
    path = os.path.join(os.environ["CREW_TRACE_DIR"], f"events-{os.getpid()}.json")
    with _DUMPING:
        with open(path + ".part", "w") as handle:
            json.dump(EVENTS, handle)
        os.replace(path + ".part", path)

def _dump_now_and_then():  # a worker leaves by os._exit: no exit hook runs
    while True:
        time.sleep(1)
        _dump()

threading.Thread(target=_dump_now_and_then, daemon=True).start()
'''

_DRIVER = '''
import operator, os, sys, time
import sitecustomize
import crew_local
events, clock = sitecustomize.EVENTS, time.perf_counter
controller = crew_local.local_controller(workers=1, transport=sys.argv[2])
controller.start()
for i in range(200):
    controller.push(operator.add, args=(i, 1)); controller.wait(mode="one"); controller.pop()
del events[:]
for i in range(int(sys.argv[1])):
    events.append(("push begins", clock()))
    controller.push(operator.add, args=(i, 1))
    events.append(("push returns", clock()))
    controller.wait(mode="one")
    events.append(("the caller wakes", clock()))
    controller.pop()
time.sleep(1.5)  # the worker writes its events every second
controller.terminate()
sitecustomize._dump()
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--round-trips", type=int, default=1000)
    parser.add_argument("--transport", choices=("auto", "nng"), default="auto", help="local_controller's transport")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "sitecustomize.py").write_text(_SITE)
        paths = [folder] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "CREW_TRACE_DIR": folder,
               "CREW_TRACE_STEPS": json.dumps(_STEPS)}
        driver = subprocess.run([sys.executable, "-c", _DRIVER, str(options.round_trips), options.transport], env=env, cwd=folder)
        if driver.returncode:
            sys.exit(driver.returncode)
        time.sleep(0.2)
        by_process = [json.loads(path.read_text()) for path in Path(folder).glob("events-*.json")]
    driver_events = max(by_process, key=lambda events: sum(name == "push begins" for name, _ in events))
    marked = [[("controller: " if events is driver_events else "worker: ") + name, at] for events in by_process
              for name, at in events]
    print(_table(sorted(marked, key=lambda event: event[1]), options.round_trips))


def _table(events: list[list], round_trips: int) -> str:
    """Median time since ``push`` began of each step's n-th occurrence within a round trip."""
    rounds: list[list] = []
    for name, at in events:
        if name == "controller: push begins":
            rounds.append([at])
        elif rounds:
            rounds[-1].append((name, at))
    since: dict[str, list[float]] = collections.defaultdict(list)
    for one in rounds[round_trips // 20: -round_trips // 20 or None]:  # leave out the edges
        seen: collections.Counter[str] = collections.Counter()
        for name, at in one[1:]:
            seen[name] += 1
            key = name if seen[name] == 1 else f"{name} ({seen[name]})"
            since[key].append((at - one[0]) * 1e6)
    kept = len(rounds) - 2 * (round_trips // 20)
    lines = ["| step | µs since push began (median) |", "|---|---:|"]
    for key, values in sorted(since.items(), key=lambda item: statistics.median(item[1])):
        if len(values) >= kept * 0.8:  # a step of (nearly) every round trip
            lines.append(f"| {key} | {statistics.median(values):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
