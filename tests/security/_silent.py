"""Silent peers in their own process: ``python _silent.py URL COUNT KIND``.

KIND ``sp``: COUNT NNG Pair1 sockets dial the controller, complete NNG's handshake and then say
nothing; a dialer cut off waits 60 s before it dials again (so none redials during a test).
KIND ``tcp``: COUNT plain TCP connections that never even start NNG's handshake.
KIND ``unix``: COUNT connections to a ``unix://`` controller that send crew's 8-byte greeting (what
a worker sends first) and then nothing; ``dropped``: those the controller has closed by the report.

Once every connection is made (or after 20 s) it prints one JSON line, ``{"made": ...,
"connected": ..., "dropped": ...}`` (for ``sp``: handshakes completed and connections the
controller closed so far; for ``tcp``: connections the kernel accepted), holds them until stdin
closes, closes them all and exits.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

import pynng

SECONDS = 20.0


class Dialers:
    def __init__(self, url: str, count: int):
        self.lock = threading.Lock()
        self.connected = self.dropped = 0
        self.sockets = []
        for _ in range(count):
            sock = pynng.Pair1(reconnect_time_min=60_000, reconnect_time_max=60_000)
            sock.add_post_pipe_connect_cb(lambda pipe: self._count("connected"))
            sock.add_post_pipe_remove_cb(lambda pipe: self._count("dropped"))
            self.sockets.append(sock)
            sock.dial(url, block=False)

    def _count(self, what: str) -> None:
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def report(self) -> dict:
        deadline = time.monotonic() + SECONDS
        while self.connected < len(self.sockets) and time.monotonic() < deadline:
            time.sleep(0.01)  # NNG's callbacks count; no event says when the last one ran
        with self.lock:
            return {"made": len(self.sockets), "connected": self.connected, "dropped": self.dropped}

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


class Connections:
    def __init__(self, url: str, count: int):
        where = urlsplit(url)
        self.sockets = []
        deadline = time.monotonic() + SECONDS
        while len(self.sockets) < count and time.monotonic() < deadline:
            try:
                self.sockets.append(socket.create_connection((where.hostname, where.port), timeout=2))
            except OSError:
                pass

    def report(self) -> dict:
        return {"made": len(self.sockets)}

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


class UnixPeers:
    def __init__(self, url: str, count: int):
        self.sockets = []
        deadline = time.monotonic() + SECONDS
        while len(self.sockets) < count and time.monotonic() < deadline:
            try:
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(2)
                sock.connect(url[len("unix://"):])
                sock.sendall(b"crew\0ux1")  # crew's greeting, written out here (see crew/_stream.py)
                sock.settimeout(None)  # blocking again: reads below say MSG_DONTWAIT themselves
                self.sockets.append(sock)
            except OSError:
                sock.close()

    def report(self) -> dict:
        dropped = 0
        for sock in self.sockets:  # read what came (a challenge); closed by the controller: then its end
            try:
                while sock.recv(65536, socket.MSG_DONTWAIT):
                    pass
                dropped += 1
            except BlockingIOError:
                pass
            except OSError:
                dropped += 1
        return {"made": len(self.sockets), "connected": len(self.sockets), "dropped": dropped}

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def main(url: str, count: str, kind: str) -> None:
    if kind == "unix":
        assert url.startswith("unix:///"), url
    else:
        assert urlsplit(url).hostname == "127.0.0.1", url
    peers = {"sp": Dialers, "tcp": Connections, "unix": UnixPeers}[kind](url, int(count))
    try:
        print(json.dumps(peers.report()), flush=True)
        sys.stdin.read()
    finally:
        peers.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
