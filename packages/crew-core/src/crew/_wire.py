"""NNG messages to and from frames, without a copy in Python.

A frame given as pieces (see :mod:`crew._channel`) goes out as one NNG message that NNG fills piece
by piece (the one copy between a Python object and the socket). A large message comes in as a
read-only view of NNG's own buffer, freed when the last view of it goes, so a task's argument is
copied once on a worker: into the object its task receives.
"""

from __future__ import annotations

from typing import Any, Union

import pynng
from pynng import ffi, lib
from pynng.exceptions import check_err

from . import _stream, _stream_listener
from ._channel import Buffer, Wire

__all__ = ["LARGE", "Wire", "send", "message", "receive"]

LARGE = 2**16
"""A message at least this long is received as a view of NNG's buffer, not copied to bytes."""


def message(pieces: list[Buffer]) -> pynng.Message:
    """One NNG message holding the pieces, in order."""
    held = pynng.Message(b"")
    body = held._nng_msg
    check_err(lib.nng_msg_reserve(body, sum(map(len, pieces))))
    for piece in pieces:
        if piece:
            check_err(lib.nng_msg_append(body, ffi.from_buffer(piece), len(piece)))
    return held


Target = Union[pynng.Socket, pynng.Pipe, _stream_listener.Pipe, _stream.Dialer]


def send(target: Target, wire: Wire) -> None:
    """Send a frame's bytes or pieces on a socket or a pipe (NNG's, or the ``unix`` transport's)."""
    if type(wire) is bytes:
        target.send(wire)
    elif isinstance(target, (_stream_listener.Pipe, _stream.Dialer)):
        target.send_pieces(wire)  # type: ignore[arg-type]
    else:
        target.send_msg(message(wire))  # type: ignore[arg-type]


def receive(sock: Union[pynng.Socket, _stream.Dialer], block: bool = True) -> Buffer:
    """The next message on ``sock``: bytes, or a read-only view of the buffer NNG hands over when
    it is LARGE or longer (on the ``unix`` transport, :meth:`crew._stream.Dialer.receive`).
    Raises what :meth:`pynng.Socket.recv` raises (``TryAgain`` when ``block`` is False and no
    message waits).

    Two calls into NNG (each lets go of the GIL, which the thread running tasks may then hold for
    a switch interval): the receive, and freeing the buffer."""
    if isinstance(sock, _stream.Dialer):
        return sock.receive(block)
    pointer = ffi.new("char **")
    length = ffi.new("size_t *")
    flags = lib.NNG_FLAG_ALLOC if block else lib.NNG_FLAG_ALLOC | lib.NNG_FLAG_NONBLOCK
    check_err(lib.nng_recv(sock.socket, pointer, length, flags))
    body, size = pointer[0], length[0]
    if size < LARGE:
        data: bytes = ffi.unpack(body, size)
        lib.nng_free(body, size)
        return data
    owner = ffi.gc(body, _freer(size))  # views of the buffer keep it alive; the last one frees it
    return memoryview(ffi.buffer(owner, size)).toreadonly()


def _freer(size: int) -> Any:
    return lambda body: lib.nng_free(body, size)
