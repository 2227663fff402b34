"""Hostile peers for the security tests: NNG sockets that dial a controller and speak (or
mangle) the worker protocol, and a recorder of the controller's log."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import shlex
import sys
import threading
import time

import crew
import pynng
from _crewfaults import Workers, slow_python
from crew_local import LocalLauncher

__all__ = ["Peer", "LogRecorder", "controller_id", "hello_frame", "Bomb", "gated_controller", "open_gate", "LIMIT",
           "call_by_hand"]

LIMIT = 2**20
"""The max_frame_bytes of :func:`gated_controller`."""

CHALLENGE, WELCOME, TASKS, HELLO = b"c", b"w", b"t", b"h"


def controller_id(controller: crew.Controller) -> str:
    """The id a worker must name in its hello (read from the worker call, as a worker would)."""
    words = shlex.split(controller.launcher.call())
    return words[words.index("--controller") + 1]


def hello_frame(secret: str, nonce: bytes, ident: str, changes: dict | None = None, mine: bytes = b"n" * 32) -> bytes:
    """A worker's hello to controller ``ident`` answering ``nonce`` with its own nonce ``mine``;
    ``changes`` replace or add fields (a None value drops one). Computed here by hand, from the
    protocol's description, not with crew's code."""
    mac = hmac.new(secret.encode(), b"crew hello\0" + nonce + mine + ident.encode(), hashlib.sha256).hexdigest()
    hello = {"version": 4, "controller": ident, "launch": "0", "pid": 1, "host": "peer", "nonce": mine.hex(),
             "mac": mac}
    hello.update(changes or {})
    hello = {key: value for key, value in hello.items() if value is not None}
    return HELLO + json.dumps(hello).encode()


class Bomb:
    """Unpickling it creates ``path``: proof that somebody unpickled it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class Peer:
    """One NNG connection to a controller, made by hand. Use as a context manager."""

    def __init__(self, url: str, tls: pynng.TLSConfig | None = None, seconds: float = 5.0):
        self.seconds = seconds
        self.socket = pynng.Pair1(recv_timeout=int(seconds * 1000), send_timeout=int(seconds * 1000),
                                  reconnect_time_min=60_000, reconnect_time_max=60_000)
        if tls is not None:
            self.socket.tls_config = tls
        self.connected = threading.Event()
        self.removed = threading.Event()
        self.socket.add_post_pipe_connect_cb(lambda pipe: self.connected.set())
        self.socket.add_post_pipe_remove_cb(lambda pipe: self.removed.set())
        self.url = url
        self.received: list[bytes] = []

    def __enter__(self) -> Peer:
        self.socket.dial(self.url, block=False)
        return self

    def __exit__(self, *exc) -> None:
        self.socket.close()

    def recv(self) -> bytes | None:
        """The next frame, or None after ``seconds`` (or once the connection is gone)."""
        try:
            frame = self.socket.recv()
        except (pynng.Timeout, pynng.Closed):
            return None
        self.received.append(frame)
        return frame

    def challenge(self) -> bytes:
        """Wait for the controller's challenge; return its nonce."""
        frame = self.recv()
        assert frame is not None and frame[:1] == CHALLENGE and len(frame) == 33, frame
        return frame[1:]

    def send(self, frame: bytes) -> bool:
        """Send one frame; False if the connection is already gone."""
        if self.removed.is_set():
            return False
        try:
            self.socket.send(frame)
            return True
        except (pynng.Timeout, pynng.Closed, pynng.NNGException):
            return False

    def dropped(self) -> bool:
        """Wait (up to ``seconds``) for the controller to close the connection, reading what it sends."""
        deadline = time.monotonic() + self.seconds
        while not self.removed.is_set() and time.monotonic() < deadline:
            try:
                self.received.append(self.socket.recv(block=False))
            except pynng.TryAgain:
                self.removed.wait(0.01)
        return self.removed.is_set()


class LogRecorder(logging.Handler):
    """Keeps the messages of the ``crew`` logger while installed (a context manager)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock2:
            self.messages.append(record.getMessage())

    def count(self, text: str) -> int:
        with self._lock2:
            return sum(text in message for message in self.messages)

    def __enter__(self) -> LogRecorder:
        logger = logging.getLogger("crew")
        self._level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc) -> None:
        logger = logging.getLogger("crew")
        logger.removeHandler(self)
        logger.setLevel(self._level)


def call_by_hand(controller: crew.Controller, **options) -> str:
    """The controller's worker call (``options`` as for ``Launcher.call``), run by this Python
    rather than the launcher's interpreter (a gated one in :func:`gated_controller`)."""
    words = shlex.split(controller.launcher.call(**options))
    words[0] = sys.executable
    return shlex.join(words)


def gated_controller(workers: Workers, folder, seconds_timeout: float = 3.0, tls: crew.TLS | None = None,
                     seconds_launch: float = 600, max_frame_bytes: int = LIMIT, transport: str = "nng") -> crew.Controller:
    """A started controller with three queued tasks whose own worker waits to dial in until the
    file ``folder/gate`` exists (see :func:`open_gate`): meanwhile only the test's peers talk to it."""
    client = crew.Client(host="127.0.0.1", seconds_timeout=seconds_timeout, max_frame_bytes=max_frame_bytes,
                         tls=tls, transport=transport)
    python = slow_python(folder, gate=os.path.join(folder, "gate"))
    launcher = LocalLauncher(workers=1, seconds_interval=0.1, seconds_launch=seconds_launch, python=python)
    controller = workers.watch(crew.Controller(client, launcher))
    controller.start()
    for index in range(3):
        controller.push("index * 2", data={"index": index}, name=f"queued_{index}")
    return controller


def open_gate(controller: crew.Controller, folder) -> list:
    """Let the controller's own worker dial in; check it runs the three queued tasks; return the results."""
    open(os.path.join(folder, "gate"), "w").close()
    assert controller.wait(seconds_timeout=30), "the controller stopped working"
    results = sorted(controller.collect(), key=lambda result: result.name)
    assert [(r.name, r.status, r.result) for r in results] == [(f"queued_{i}", "success", 2 * i) for i in range(3)]
    return results
