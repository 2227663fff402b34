"""The ``unix`` transport's controller side: :class:`Listener` and its :class:`Pipe` s.

See :mod:`crew._stream` for the transport, its wire and who owns what.
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import struct
import threading
import time
from collections import deque
from typing import Optional

import pynng

from ._stream import MAX_PIECES, Buffer, Callback, Reader, closed_error, consume, framed

__all__ = ["Listener", "Pipe", "Message"]

_SEND = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
_ids = itertools.count(1)


class Message:
    """A received message: its bytes (or a read-only view, when large) and the pipe it came on."""

    __slots__ = ("pipe", "bytes")

    def __init__(self, pipe: Optional[Pipe], data: Buffer):
        self.pipe = pipe
        self.bytes = data


class Pipe:
    """One worker's connection to a :class:`Listener`. ``send`` may run on any thread."""

    __slots__ = ("id", "listener", "remote_address", "sock", "fd", "reader", "lock", "backlog", "closed")

    def __init__(self, listener: Listener, sock: socket.socket, limit: int):
        self.id = next(_ids)
        self.listener = listener
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = Reader(sock, limit, greeting=True)
        self.lock = threading.Lock()
        self.backlog: deque[Buffer] = deque()  # what the kernel has not taken yet, in order (views)
        self.closed = False
        try:
            pid, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            self.remote_address = f"pid {pid} (uid {uid}) on this machine"
        except OSError:
            self.remote_address = "a process on this machine"

    def send(self, data: Buffer) -> None:
        self.listener._send(self, [data])

    def send_pieces(self, pieces: list[Buffer]) -> None:
        self.listener._send(self, pieces)

    def close(self) -> None:
        self.listener._drop(self)


class Listener:
    """The controller's side: many workers' connections, read by one thread (see the module
    docstring). ``recv_timeout`` is in milliseconds (-1: none), as pynng's."""

    def __init__(self, recv_max_size: int = 0):
        self.recv_max_size = recv_max_size
        self.recv_timeout = -1
        self.path: Optional[str] = None
        self._epoll = select.epoll()
        self.recv_fd = self._epoll.fileno()  # readable while a connection or the wake pipe is
        self._server: Optional[socket.socket] = None
        self._pipes: dict[int, Pipe] = {}  # by file descriptor
        self._wake_out, self._wake_in = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_out, select.EPOLLIN)
        self._on_connect: list[Callback] = []
        self._on_remove: list[Callback] = []
        self._closed = False
        self._paused = False  # not accepting: out of descriptors

    def listen(self, path: str) -> None:
        """Listen at ``path`` (put it in a directory only its owner can enter: see the client)."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path)
            os.chmod(path, 0o600)
            server.listen(128)
        except OSError:
            server.close()
            raise
        server.setblocking(False)
        self._server, self.path = server, path
        self._epoll.register(server.fileno(), select.EPOLLIN)

    def add_post_pipe_connect_cb(self, callback: Callback) -> None:
        self._on_connect.append(callback)

    def add_post_pipe_remove_cb(self, callback: Callback) -> None:
        self._on_remove.append(callback)

    def wake(self) -> None:
        """Make a waiting :meth:`recv_msg` return an empty message. Any thread; never blocks."""
        try:
            os.write(self._wake_in, b"!")
        except (BlockingIOError, OSError):  # full: a wake is pending anyway; or closed
            pass

    def recv_msg(self, block: bool = True) -> Message:
        """The next message from any worker; an empty one after :meth:`wake`. Raises
        ``pynng.TryAgain`` (not ``block``), ``pynng.Timeout`` or ``pynng.Closed``."""
        timeout: Optional[float] = 0.0 if not block else (None if self.recv_timeout < 0 else self.recv_timeout / 1000)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._closed:
                raise closed_error()
            message = self._turn(timeout)
            if message is not None:
                return message
            if not block:
                raise pynng.TryAgain("no message waits", pynng.lib.NNG_EAGAIN)
            if deadline is not None:  # a turn that brought a connection, room to write, or part of a message
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise pynng.Timeout("no message within recv_timeout", pynng.lib.NNG_ETIMEDOUT)

    def _turn(self, timeout: Optional[float]) -> Optional[Message]:
        """One wait on the epoll; the first whole message it brings, if any."""
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout)
        except (OSError, ValueError):  # closed under us
            raise closed_error() from None
        server = self._server.fileno() if self._server is not None else -1
        for fd, mask in events:
            if fd == self._wake_out:
                try:
                    os.read(self._wake_out, 4096)
                except OSError:  # nothing left (another turn read it), or closed
                    pass
                return Message(None, b"")
            if fd == server:
                self._accept()
                continue
            pipe = self._pipes.get(fd)
            if pipe is None:
                continue
            if mask & select.EPOLLOUT:
                self._flush(pipe)
            if mask & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                try:
                    data = pipe.reader.read()
                except (EOFError, ValueError, OSError):
                    self._drop(pipe)
                    continue
                if data is not None:
                    return Message(pipe, data)
        return None

    def _accept(self) -> None:
        server: socket.socket = self._server  # type: ignore[assignment]
        try:
            sock, _ = server.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # out of descriptors (or memory): stop accepting until a connection ends
            self._epoll.unregister(server.fileno())  # (else the waiting peer keeps it readable: a busy loop)
            self._paused = True
            return
        pipe = Pipe(self, sock, self.recv_max_size)
        self._pipes[pipe.fd] = pipe
        self._epoll.register(pipe.fd, select.EPOLLIN)
        for callback in self._on_connect:
            callback(pipe)

    def _send(self, pipe: Pipe, pieces: list[Buffer]) -> None:
        """Write what the kernel takes now; keep the rest, as views of the pieces (the frame's
        buffers are not the caller's to change once sent, as with NNG after the send)."""
        buffers = framed(pieces)
        with pipe.lock:
            if pipe.closed:
                raise closed_error()
            if pipe.backlog:
                pipe.backlog.extend(buffers)
                return
            try:
                sent = pipe.sock.sendmsg(buffers, (), _SEND)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as error:  # the worker is gone: the reader sees it and drops the pipe
                raise closed_error() from error
            if sent < sum(map(len, buffers)):
                pipe.backlog.extend(buffers)
                consume(pipe.backlog, sent)
                self._epoll.modify(pipe.fd, select.EPOLLIN | select.EPOLLOUT)

    def _flush(self, pipe: Pipe) -> None:
        """Write what the kernel has room for now (the receiving thread, on EPOLLOUT)."""
        with pipe.lock:
            backlog = pipe.backlog
            while backlog and not pipe.closed:
                chunk = list(itertools.islice(backlog, MAX_PIECES))
                try:
                    sent = pipe.sock.sendmsg(chunk, (), _SEND)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:  # the worker is gone: the reader sees it and drops the pipe
                    backlog.clear()
                    break
                consume(backlog, sent)
                if sent < sum(map(len, chunk)):
                    return
            if not pipe.closed:
                self._epoll.modify(pipe.fd, select.EPOLLIN)

    def _drop(self, pipe: Pipe) -> None:
        """Close a connection and tell the remove callbacks, once."""
        with pipe.lock:
            if pipe.closed:
                return
            pipe.closed = True
            pipe.backlog.clear()
        self._pipes.pop(pipe.fd, None)
        try:
            self._epoll.unregister(pipe.fd)
        except (OSError, ValueError):
            pass
        pipe.sock.close()
        if self._paused and self._server is not None and not self._closed:
            self._paused = False
            self._epoll.register(self._server.fileno(), select.EPOLLIN)
        for callback in self._on_remove:
            callback(pipe)

    def close(self) -> None:
        """Close every connection, the listening socket and its file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.wake()  # a recv_msg waiting in another thread returns, and raises Closed
        for pipe in list(self._pipes.values()):
            self._drop(pipe)
        if self._server is not None:
            self._server.close()
            try:
                os.unlink(self.path)  # type: ignore[arg-type]
            except OSError:
                pass
        self._epoll.close()
        os.close(self._wake_in)
        os.close(self._wake_out)
