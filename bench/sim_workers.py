"""Many lightweight simulated workers in one process (for the dispatcher-scale benchmark).

Usage: ``CREW_SECRET=... python sim_workers.py URL CONTROLLER_ID LAUNCH COUNT``

Each of COUNT dialers speaks crew's worker protocol over its own pynng socket (asyncio): it
answers the controller's challenge, and answers every batch of tasks at once with ``None``
results, without running them, so the controller's dispatcher is what is measured.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import sys

import pynng
from crew import _protocol as P

NONE = pickle.dumps(None, 5)


async def _dialer(url: str, controller: str, launch: str, secret: str, pid: int) -> None:
    with pynng.Pair1(recv_max_size=0) as sock:
        sock.dial(url, block=False)
        while True:
            frame = await sock.arecv()
            kind = frame[:1]
            if kind != P.CHALLENGE and kind != P.QUIT:
                await sock.asend(P.ACK)  # the controller sends one frame at a time per worker
            if kind == P.TASKS:
                done = [(task[0], "success", NONE, None, None, None, 0.0) for task in pickle.loads(frame[1:])]
                await sock.asend(P.RESULTS + pickle.dumps(done, 5))
            elif kind == P.CANCEL:
                ids, _ = pickle.loads(frame[1:])
                await sock.asend(P.RETURNED + pickle.dumps((ids, []), 5))
            elif kind == P.CHALLENGE:
                hello = {
                    "version": P.VERSION, "controller": controller, "launch": launch, "pid": pid,
                    "host": socket.gethostname(), "mac": P.mac(secret, frame[1:], controller),
                }
                await sock.asend(P.encode_json(P.HELLO, hello))
            elif kind == P.QUIT:
                return


async def _main(url: str, controller: str, launch: str, count: int) -> None:
    secret = os.environ["CREW_SECRET"]
    base = os.getpid() * 100_000
    await asyncio.gather(*(_dialer(url, controller, launch, secret, base + i) for i in range(count)))


if __name__ == "__main__":
    url, controller, launch, count = sys.argv[1:5]
    asyncio.run(_main(url, controller, launch, int(count)))
