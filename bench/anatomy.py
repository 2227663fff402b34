"""Where a one-task round trip spends its time: the transport floor, then the hand-offs between
threads that a controller and a worker add, one at a time.

Usage: ``python bench/anatomy.py [--round-trips N]``. Prints p50/p99 per variant (µs).

Controller side (this process), over one pynng Pair1 socket to one worker process:
- ``direct``: the calling thread sends and receives (the floor's shape);
- ``loop+receiver``: the caller hands the task to a loop thread through a queue, a receiver thread
  hands the result frame to the loop through the same queue, and the loop hands the result back
  to the caller through a condition variable (crew's first design);
- ``loop+waker``: the loop thread blocks on the socket itself; the caller wakes it by sending an
  empty frame over an in-process pynng pair (crew's second design);
- ``caller-sends``: the caller sends the task frame to the worker's pipe itself, and the loop
  thread, blocked on the socket, hands the result back through a condition variable.
Worker side: ``single`` runs the task on the receiving thread; ``threaded`` hands it to the main
thread through a condition variable (crew's worker).
"""

from __future__ import annotations

import argparse
import queue
import threading

import cloudpickle
import pynng
from bench_tasks import inc
from common import HERE, clock, latency_summary, listen_url, spawn
from floors import _stop, _wait_for_pipes

WORKER = str(HERE / "floor_worker.py")


class _Direct:
    def __init__(self, sock):
        self.sock = sock

    def call(self, frame: bytes) -> bytes:
        self.sock.send(frame)
        return self.sock.recv()

    def close(self) -> None:
        pass


class _Loop:
    """A loop thread between the caller and the socket, woken by a queue or by an inproc frame."""

    def __init__(self, sock, waker: bool, caller_sends: bool = False):
        self.sock = sock
        self.caller_sends = caller_sends
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.done = threading.Condition()
        self.results: list[bytes] = []
        self.waker = None
        self.sleeping = False
        if waker:
            name = f"inproc://anatomy-{id(self)}"
            self.wake_listener = sock.listen(name)
            self.waker = pynng.Pair1(polyamorous=True)
            self.waker.dial(name, block=True)
            target = self._loop_on_socket
        else:
            threading.Thread(target=self._receive, daemon=True).start()
            target = self._loop_on_queue
        threading.Thread(target=target, daemon=True).start()

    def call(self, frame: bytes) -> bytes:
        if self.caller_sends:
            next(p for p in self.sock.pipes if p.listener is not self.wake_listener).send(frame)
        else:
            self.inbox.put(("task", frame))
            if self.waker is not None and self.sleeping:
                self.waker.send(b"")
        with self.done:
            while not self.results:
                self.done.wait()
            return self.results.pop()

    def _deliver(self, frame: bytes) -> None:
        with self.done:
            self.results.append(frame)
            self.done.notify_all()

    def _receive(self) -> None:
        while True:
            try:
                message = self.sock.recv_msg()
            except pynng.Closed:
                return
            self.inbox.put(("frame", message.bytes))

    def _loop_on_queue(self) -> None:
        pipe = None
        while True:
            kind, frame = self.inbox.get()
            if kind == "stop":
                return
            if kind == "task":
                if pipe is None:
                    pipe = self.sock.pipes[0]
                pipe.send(frame)
            else:
                self._deliver(frame)

    def _loop_on_socket(self) -> None:
        worker_pipe = None
        while True:
            self.sleeping = True
            if self.inbox.empty():
                try:
                    message = self.sock.recv_msg()
                except pynng.Closed:
                    return
                self.sleeping = False
                if message.pipe.listener is not self.wake_listener:
                    self._deliver(message.bytes)
            self.sleeping = False
            while True:
                try:
                    kind, frame = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "stop":
                    return
                if worker_pipe is None:
                    worker_pipe = next(p for p in self.sock.pipes if p.listener is not self.wake_listener)
                worker_pipe.send(frame)

    def close(self) -> None:
        self.inbox.put(("stop", b""))
        if self.waker is not None:
            self.waker.send(b"")
            self.waker.close()


def variant(controller: str, worker: str, round_trips: int) -> dict[str, float]:
    """p50/p99 round trip of ``inc`` for one controller shape and one worker shape."""
    dumps, loads = cloudpickle.dumps, cloudpickle.loads
    with pynng.Pair1(polyamorous=True) as sock:
        url = listen_url(sock)
        process = spawn(WORKER, "pair", url, "1" if worker == "threaded" else "0")
        try:
            _wait_for_pipes(sock, count=1)
            if controller == "direct":
                shape = _Direct(sock)
            else:
                shape = _Loop(sock, waker=controller != "loop+receiver", caller_sends=controller == "caller-sends")
            times = []
            for i in range(100 + round_trips):
                start = clock()
                value = loads(shape.call(dumps((inc, (i,)))))
                if i >= 100:
                    times.append(clock() - start)
                if value != i + 1:
                    raise AssertionError("wrong result")
            shape.close()
        finally:
            _stop([process])
    return latency_summary(times)


def main() -> None:
    parser = argparse.ArgumentParser(description="Round-trip anatomy: thread hand-offs over the pynng floor.")
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3, help="interleaved runs per variant; the best p50 is kept")
    args = parser.parse_args()
    shapes = [(c, w) for c in ("direct", "loop+receiver", "loop+waker", "caller-sends") for w in ("single", "threaded")]
    best: dict[tuple[str, str], dict[str, float]] = {}
    for _ in range(args.reps):
        for shape in shapes:
            summary = variant(*shape, args.round_trips)
            if shape not in best or summary["p50"] < best[shape]["p50"]:
                best[shape] = summary
    floor = best[("direct", "single")]["p50"]
    print("| controller | worker | p50 (µs) | p99 (µs) | p50 / floor |\n|---|---|---:|---:|---:|")
    for (controller, worker), summary in best.items():
        print(f"| {controller} | {worker} | {summary['p50'] * 1e6:.0f} | {summary['p99'] * 1e6:.0f} | "
              f"{summary['p50'] / floor:.2f} |")


if __name__ == "__main__":
    main()
