"""The channel after the handshake: session keys, a MAC on every frame, and frames sent in parts.

The handshake (see :mod:`crew._protocol`) exchanges two random nonces: the controller's
challenge and the worker's, in its hello. Both sides derive two keys from the secret and both
nonces, one per direction; from the welcome on, every frame carries a sequence number and a
16-byte tag under its direction's key (:meth:`Session.seal`), and the receiver refuses a frame
whose tag is wrong or whose number is not above the last one it accepted (:meth:`Session.open`).
A relay that passed the handshake through can read a plain connection but cannot alter, inject,
replay or reorder frames; the welcome is the controller's first sealed frame, so a worker knows
its controller holds the secret before it unpickles anything.

Tags: keyed BLAKE2b for frames under 64 KiB (fastest for small frames); above, Poly1305 (from
``cryptography``, about 3 times as fast as HMAC-SHA256 on large frames, and it releases the GIL)
under a key of the frame's own, keyed BLAKE2b of its sequence number under the direction's key:
a sender never numbers two frames alike, so no Poly1305 key tags two messages. Both are 16 bytes;
the length picks, on both sides.

The controller accepts raw frames of at most :data:`PART_BYTES` (plus the seal), so a peer that
has not authenticated can make it hold little; an authenticated worker sends a larger sealed frame
as parts (``m`` + piece, ..., ``e`` + last piece) that :meth:`Session.open` joins, up to the
controller's ``max_frame_bytes``.

Large frames are never joined to be sealed or sent: :meth:`Session.seal_pieces` tags a frame given
as pieces (hashing piece by piece), :func:`parts` cuts pieces into parts as views, and
:meth:`Session.open` hands back a large frame as a view of what arrived, not a copy.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable
from typing import Optional, Union

__all__ = ["TAG_BYTES", "SEAL_BYTES", "PART_BYTES", "ChannelError", "Session", "hello_mac", "parts", "part_bytes",
           "Buffer", "Wire", "flat"]

Buffer = Union[bytes, memoryview]
Wire = Union[bytes, list[Buffer]]
"""What goes out as one NNG message: its bytes, or its pieces in order (joined by NNG's own copy)."""

TAG_BYTES = 16
SEAL_BYTES = 8 + TAG_BYTES  # sequence number + tag, after the frame
PART_BYTES = 2**20  # the largest raw frame a controller reads (plus SEAL_BYTES + 1)
_SMALL = 2**16
_GIL_FREE = 2047  # the largest piece hashlib hashes without letting go of the GIL
_SEQ = struct.Struct(">Q")
_PART, _END = b"m", b"e"
_ONE_TIME = b"crew poly1305"


class ChannelError(ValueError):
    """A frame that fails its tag, its sequence number, or the size of its parts."""


def hello_mac(secret: str, challenge: bytes, nonce: bytes, controller: str) -> str:
    """The worker's proof: HMAC-SHA256 of both nonces and the controller id, under the secret."""
    return hmac.new(secret.encode(), b"crew hello\0" + challenge + nonce + controller.encode(), hashlib.sha256).hexdigest()


def _key(secret: str, label: bytes, challenge: bytes, nonce: bytes, controller: str) -> bytes:
    return hmac.new(secret.encode(), label + challenge + nonce + controller.encode(), hashlib.sha256).digest()


def _tag(key: bytes, frame: Buffer, trailer: Buffer) -> bytes:
    if len(frame) < _SMALL:
        # Fed in pieces under 2 KiB: hashlib lets go of the GIL for a larger piece, and taking it
        # back can wait a whole switch interval (5 ms) while another thread runs Python (a caller
        # pushing tasks): more than hashing 64 KiB takes.
        small = hashlib.blake2b(key=key, digest_size=TAG_BYTES)
        if len(frame) < _GIL_FREE:
            small.update(frame)
        else:
            view = memoryview(frame)
            for start in range(0, len(frame), _GIL_FREE):
                small.update(view[start:start + _GIL_FREE])
        small.update(trailer)
        return small.digest()
    return _tag_large(key, (frame,), trailer)


def _tag_pieces(key: bytes, pieces: list[Buffer], size: int, trailer: bytes) -> bytes:
    """:func:`_tag` of the pieces' concatenation (``size`` bytes), hashed piece by piece."""
    if size >= _SMALL:
        return _tag_large(key, pieces, trailer)
    tag = hashlib.blake2b(key=key, digest_size=TAG_BYTES)
    for piece in pieces:
        tag.update(piece)
    tag.update(trailer)
    return tag.digest()


def _tag_large(key: bytes, pieces: Iterable[Buffer], trailer: Buffer) -> bytes:
    """Poly1305 under a key of this frame's own: keyed BLAKE2b of its sequence number."""
    from cryptography.hazmat.primitives.poly1305 import Poly1305

    tag = Poly1305(hashlib.blake2b(trailer, key=key, digest_size=32, person=_ONE_TIME).digest())
    for piece in pieces:
        tag.update(piece)
    tag.update(trailer)
    return tag.finalize()


def flat(wire: Wire) -> bytes:
    """The bytes of a frame given as bytes or pieces (what the receiver gets)."""
    return wire if isinstance(wire, bytes) else b"".join(wire)


class Session:
    """One connection's keys and sequence numbers, on one side (``controller=True`` or not).

    Not thread-safe: the caller seals and sends under one lock, so numbers go out in order."""

    __slots__ = ("_out", "_in", "_sent", "_received", "_held", "_size", "limit")

    def __init__(self, secret: str, challenge: bytes, nonce: bytes, controller_id: str, controller: bool,
                 limit: int = 0):
        down = _key(secret, b"crew down\0", challenge, nonce, controller_id)  # controller -> worker
        up = _key(secret, b"crew up\0", challenge, nonce, controller_id)
        self._out, self._in = (down, up) if controller else (up, down)
        self._sent = 0
        self._received = -1  # the welcome is number 0
        self._held: list[memoryview] = []  # parts of a frame being received
        self._size = 0
        self.limit = limit  # the largest joined frame accepted (0: no limit)

    def seal(self, frame: bytes) -> bytes:
        """``frame`` with its sequence number and tag."""
        trailer = _SEQ.pack(self._sent)
        self._sent += 1
        return frame + trailer + _tag(self._out, frame, trailer)

    def seal_pieces(self, pieces: list[Buffer]) -> list[Buffer]:
        """A frame given as pieces (byte-format buffers), sealed: the pieces, then its sequence
        number and tag; nothing is copied."""
        trailer = _SEQ.pack(self._sent)
        self._sent += 1
        size = sum(map(len, pieces))
        return [*pieces, trailer + _tag_pieces(self._out, pieces, size, trailer)]

    def open(self, data: Buffer) -> Optional[Buffer]:
        """The frame inside sealed ``data``; None for a part of a larger frame (held until its
        end). A large frame comes back as a view of ``data``. Raises :class:`ChannelError`."""
        kind = data[:1]
        if kind == _PART or kind == _END:
            data = self._part(data)
            if kind == _PART:
                return None
        if len(data) < SEAL_BYTES + 1:
            raise ChannelError("a frame too short to carry a seal")
        if len(data) > _SMALL and type(data) is bytes:
            data = memoryview(data)  # the frame is a view, not a copy
        frame, trailer, tag = data[:-SEAL_BYTES], data[-SEAL_BYTES:-TAG_BYTES], data[-TAG_BYTES:]
        if not hmac.compare_digest(_tag(self._in, frame, trailer), tag):
            raise ChannelError("a frame with a wrong tag (altered, or not from the peer that authenticated)")
        number = _SEQ.unpack(trailer)[0]
        if number <= self._received:
            raise ChannelError(f"a frame numbered {number} after {self._received} (replayed or reordered)")
        self._received = number
        return frame

    def _part(self, data: Buffer) -> bytes:
        self._size += len(data) - 1
        if self.limit and self._size > self.limit + SEAL_BYTES:
            raise ChannelError(f"a frame in parts larger than max_frame_bytes ({self.limit})")
        self._held.append(memoryview(data)[1:])  # a view: the one copy is the join
        if data[:1] == _PART:
            return b""
        whole = b"".join(self._held)
        self._held, self._size = [], 0
        return whole


def part_bytes(max_frame_bytes: int) -> int:
    """The size of one part: the largest raw frame a controller with ``max_frame_bytes`` reads,
    less the part's kind byte."""
    return PART_BYTES if not max_frame_bytes else min(PART_BYTES, max_frame_bytes + SEAL_BYTES)


def parts(sealed: Wire, size: int = PART_BYTES) -> list[Wire]:
    """Raw frames that carry ``sealed``: itself when it fits in ``size``, else its parts, each a
    kind byte and views of the pieces (nothing is copied)."""
    pieces: list[Buffer] = [sealed] if isinstance(sealed, bytes) else sealed
    if sum(map(len, pieces)) <= size:
        return [sealed]
    raw: list[list[Buffer]] = []
    current: list[Buffer] = [_PART]
    room = size
    for piece in pieces:
        view = memoryview(piece)
        while view:
            current.append(view[:room])
            room -= len(current[-1])
            view = view[len(current[-1]):]
            if not room:
                raw.append(current)
                current, room = [_PART], size
    last = current if len(current) > 1 else raw.pop()
    last[0] = _END
    return [*raw, last]
