"""Many lightweight simulated workers in one process (for the dispatcher-scale benchmark).

Usage: ``CREW_SECRET=... python sim_workers.py URL CONTROLLER_ID LAUNCH COUNT``

Each of COUNT dialers speaks crew's worker protocol over its own pynng socket (asyncio): it
answers the controller's challenge, seals every frame after it (:mod:`crew._channel`), and
answers every batch of tasks at once with ``None`` results, without running them, so the
controller's dispatcher is what is measured.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket
import sys

import pynng
from crew import _protocol as P
from crew._channel import Session

NONE = pickle.dumps(None, 5)


async def _dialer(url: str, controller: str, launch: str, secret: str, pid: int) -> None:
    ack = P.encode(P.Ack())
    with pynng.Pair1(recv_max_size=0) as sock:
        sock.dial(url, block=False)
        session = None
        welcomed = False
        while True:
            data = await sock.arecv()
            if not welcomed and data[:1] == b"c" and len(data) == 1 + P.NONCE_BYTES:
                # a challenge (again, when a full gate cut us off and NNG dialled anew): answer it
                session = await _hello(sock, data[1:], controller, launch, secret, pid)
                continue
            if session is None:
                continue
            frame = P.decode(session.open(data) or b"")
            kind = type(frame)
            welcomed = welcomed or kind is P.Welcome
            if kind is not P.Quit:
                await sock.asend(session.seal(ack))  # the controller sends one frame at a time per worker
            if kind is P.Tasks:
                done = [P.ResultRecord(task.id, "success", NONE, None, None, None, 0.0) for task in frame.tasks]
                await sock.asend(session.seal(P.encode(P.Results(done))))
            elif kind is P.Cancel:
                await sock.asend(session.seal(P.encode(P.Returned(frame.ids, []))))
            elif kind is P.Quit:
                return


async def _hello(sock: pynng.Pair1, challenge: bytes, controller: str, launch: str, secret: str, pid: int) -> Session:
    """Answer a challenge; every later frame is sealed with the session it opens."""
    nonce = os.urandom(P.NONCE_BYTES)
    await sock.asend(P.encode(P.Hello(P.VERSION, controller, launch, pid, socket.gethostname(),
                                      P.mac(secret, challenge, nonce, controller), nonce.hex())))
    return Session(secret, challenge, nonce, controller, False)


async def _main(url: str, controller: str, launch: str, count: int) -> None:
    secret = os.environ["CREW_SECRET"]
    base = os.getpid() * 100_000
    await asyncio.gather(*(_dialer(url, controller, launch, secret, base + i) for i in range(count)))


if __name__ == "__main__":
    url, controller, launch, count = sys.argv[1:5]
    asyncio.run(_main(url, controller, launch, int(count)))
