"""The ``unix`` transport: workers on the controller's machine, over Unix stream sockets.

It stands in for the part of pynng's ``Pair1`` that crew uses:
:class:`crew._stream_listener.Listener` for the controller's polyamorous socket, :class:`Dialer`
(here) for a worker's. It raises pynng's exceptions (``Timeout``, ``TryAgain``, ``Closed``) so
that the code around a socket is the same for both. This module also holds the wire's pieces
both sides use (:class:`Reader`, :func:`framed`, :func:`consume`).

Why: NNG passes each message through its own threads. A send blocks its caller for 45-70 us
while NNG's threads finish it, and a message that arrives passes two or three of NNG's threads
before the receiving thread has it: on a 2-core machine, some 200 us of a 550 us round trip. Here
the thread that waits on a socket reads it itself, and a send is one system call.

Wire: the dialer first sends :data:`GREETING`; then each message, either way, is its length
(8 bytes, big-endian) and its bytes. A listener drops a peer whose greeting is wrong or whose
message is longer than ``recv_max_size``. The client puts the socket file in a directory of its own
that only its owner may enter, and crew's handshake runs over the connection as over NNG's.

Reads are exact (a message's header, then its body, never past it), so what is left of the next
message stays in the kernel and the socket stays readable: waiting on the descriptor is enough.

Owners: a :class:`Listener`'s connections, their read state and its epoll belong to the thread that
calls :meth:`Listener.recv_msg` (the controller's loop). :meth:`Pipe.send` runs on any thread: under
the pipe's lock it writes what the kernel takes at once and leaves the rest to the receiving
thread's next turn (it waits for room with ``EPOLLOUT``), so a send never blocks. A
:class:`Dialer` is read under its caller's lock (the worker's ``receive_lock``); its sends block,
one at a time under its own lock.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from collections import deque
from typing import Any, Callable, Optional, Union

import pynng

__all__ = ["GREETING", "SCHEME", "HEADER", "MAX_PIECES", "Buffer", "Callback", "Dialer", "Reader", "closed_error",
           "consume", "framed", "path_of"]

SCHEME = "unix://"
GREETING = b"crew\0ux1"
HEADER = struct.Struct(">Q")
_LARGE = 2**16  # a body at least this long is read into a buffer of its own and handed over as a view
MAX_PIECES = 512  # buffers in one sendmsg (the kernel takes at most IOV_MAX = 1024)
Buffer = Union[bytes, memoryview]
Callback = Callable[[Any], None]


def path_of(url: str) -> str:
    """The socket file of a ``unix://`` address."""
    if not url.startswith(SCHEME) or len(url) == len(SCHEME):
        raise ValueError(f"not a {SCHEME} address: {url!r}")
    return url[len(SCHEME):]


def closed_error() -> pynng.Closed:
    return pynng.Closed("the socket is closed", pynng.lib.NNG_ECLOSED)


class Reader:
    """Messages out of one connection, read exactly: the greeting (if expected), then a header and
    a body at a time. Owner: whoever reads the connection (one thread at a time)."""

    __slots__ = ("sock", "limit", "greeting", "_head", "_body", "_view", "_got")

    def __init__(self, sock: socket.socket, limit: int, greeting: bool):
        self.sock = sock
        self.limit = limit
        self.greeting = greeting
        self._head = bytearray(8)
        self._body: Optional[bytearray] = None
        self._view = memoryview(self._head)
        self._got = 0

    def read(self) -> Optional[Buffer]:
        """The next whole message, or None when the rest has not come yet. Raises EOFError when
        the peer has closed, ValueError on a wrong greeting or an oversized message, OSError."""
        while True:
            view, got = self._view, self._got
            try:
                if self._body is not None and got == 0 and len(view) < _LARGE:
                    data = self.sock.recv(len(view), socket.MSG_DONTWAIT)
                    if len(data) == len(view):  # a small body in one read: its bytes, no copy
                        self._reset()
                        return data
                    count = len(data)
                    view[:count] = data
                else:
                    count = self.sock.recv_into(view[got:], len(view) - got, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return None
            if count == 0:
                raise EOFError("the peer closed the connection")
            self._got = got = got + count
            if got == len(view):
                message = self._complete()
                if message is not None:
                    return message

    def _complete(self) -> Optional[Buffer]:
        if self.greeting:
            if bytes(self._head) != GREETING:
                raise ValueError("a peer that is not a crew worker (wrong greeting)")
            self.greeting = False
            self._got = 0
            return None
        if self._body is None:
            size = HEADER.unpack(self._head)[0]
            if self.limit and size > self.limit:
                raise ValueError(f"a message of {size} bytes, over the limit of {self.limit}")
            if size == 0:
                self._got = 0
                return b""
            self._body = bytearray(size)
            self._view = memoryview(self._body)
            self._got = 0
            return None
        body = self._body
        self._reset()
        return memoryview(body).toreadonly() if len(body) >= _LARGE else bytes(body)

    def _reset(self) -> None:
        self._body = None
        self._view = memoryview(self._head)
        self._got = 0


def framed(pieces: list[Buffer]) -> list[Buffer]:
    """A message's header and pieces, as buffers for one sendmsg."""
    buffers: list[Buffer] = [HEADER.pack(sum(map(len, pieces))), *pieces]
    if len(buffers) > MAX_PIECES:
        buffers = [buffers[0], b"".join(pieces)]
    return buffers


def consume(buffers: deque[Buffer], sent: int) -> None:
    """Drop the first ``sent`` bytes of ``buffers`` (and the empty buffers after them); a buffer
    sent in part stays as a view of its rest (nothing is copied)."""
    while buffers:
        size = len(buffers[0])
        if sent < size:
            if sent:
                buffers[0] = memoryview(buffers[0])[sent:]
            return
        buffers.popleft()
        sent -= size


class Dialer:
    """A worker's side: one connection to a :class:`Listener`. As NNG's dialer, it keeps trying
    to connect until it succeeds, and again whenever the connection is lost, until closed."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self.recv_fd = self._epoll.fileno()  # readable while the connection is
        self._path = ""
        self._sock: Optional[socket.socket] = None  # the connection, while there is one
        self._reader: Optional[Reader] = None
        self._send_lock = threading.Lock()
        self._on_remove: list[Callback] = []
        self._stop = threading.Event()  # set by close(): no more connections
        self._lock = threading.Lock()  # guards _sock and _reader
        self.connected = threading.Event()  # set while connected

    def add_post_pipe_remove_cb(self, callback: Callback) -> None:
        self._on_remove.append(callback)

    def dial(self, url: str, block: bool = False) -> None:
        """Connect to the listener at ``url``; when it is not there yet, keep trying in the
        background (``block=False``) or raise ``pynng.ConnectionRefused`` (``block=True``)."""
        self._path = path_of(url)
        if self._connect():
            return
        if block:
            raise pynng.ConnectionRefused(f"nothing listens at {url}", pynng.lib.NNG_ECONNREFUSED)
        self._redial()

    def _redial(self) -> None:
        threading.Thread(target=self._keep_dialling, name="crew-dial", daemon=True).start()

    def _keep_dialling(self) -> None:
        delay = 0.01  # NNG's reconnect time, doubling up to 1 s
        while not self._stop.wait(delay) and not self._connect():
            delay = min(delay * 2, 1.0)

    def _connect(self) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self._path)
            sock.sendall(GREETING)
        except OSError:
            sock.close()
            return False
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return True
            self._sock, self._reader = sock, Reader(sock, 0, greeting=False)
            self._epoll.register(sock.fileno(), select.EPOLLIN)
            self.connected.set()
        return True

    def _lost(self, sock: socket.socket) -> None:
        """The connection ``sock`` ended: tell the remove callbacks, once, and dial again."""
        with self._lock:
            if self._sock is not sock:
                return
            self._sock = self._reader = None
            self.connected.clear()
            try:
                self._epoll.unregister(sock.fileno())
            except (OSError, ValueError):
                pass
            sock.close()
        for callback in self._on_remove:
            callback(self)
        if not self._stop.is_set():
            self._redial()

    def receive(self, block: bool = True) -> Buffer:
        """The next message. Raises ``pynng.TryAgain`` (not ``block``, and nothing whole has come)
        or ``pynng.Closed`` (the socket is closed)."""
        while True:
            if self._stop.is_set():
                raise closed_error()
            sock, reader = self._sock, self._reader
            if sock is not None and reader is not None:
                try:
                    data = reader.read()
                except (EOFError, ValueError, OSError):
                    self._lost(sock)
                    data = None
                if data is not None:
                    return data
            if not block:
                raise pynng.TryAgain("no message waits", pynng.lib.NNG_EAGAIN)
            try:
                self._epoll.poll()
            except (OSError, ValueError):  # closed
                raise closed_error() from None

    def send(self, data: Buffer) -> None:
        self.send_pieces([data])

    def send_pieces(self, pieces: list[Buffer]) -> None:
        """Send one message; blocks until the kernel has taken all of it."""
        sock = self._sock
        if sock is None or self._stop.is_set():
            raise closed_error()
        buffers = framed(pieces)
        with self._send_lock:
            try:
                sent = sock.sendmsg(buffers, (), socket.MSG_NOSIGNAL)
                if sent < sum(map(len, buffers)):  # a signal came: the rest, in order
                    rest = deque(buffers)
                    consume(rest, sent)
                    for piece in rest:
                        sock.sendall(piece, socket.MSG_NOSIGNAL)
            except OSError as error:
                self._lost(sock)
                raise closed_error() from error

    def close(self) -> None:
        """Close the connection (the listener sees it end); no more dialling. Safe twice."""
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._lost(sock)
        self._epoll.close()
