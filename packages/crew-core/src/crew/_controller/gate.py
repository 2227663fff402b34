"""The gate: peers that connected and have not authenticated yet (strangers), and their hellos.

Owner: the loop thread. A stranger is sent a challenge (a random nonce) and must answer with a
hello, in JSON, that carries its own nonce and proves knowledge of the controller's secret over
both; nothing it sends is unpickled. A good hello opens a :class:`crew._channel.Session`.

At most :func:`strangers_max` strangers wait at once (64, fewer under a low descriptor limit).
When the gate is full, a new peer takes the place of the one that has waited longest if that one
has said nothing for ``GRACE`` (it is cut off: idle strangers cannot lock workers out, since a
worker answers its challenge within milliseconds); otherwise the newcomer is turned away. A
worker turned away or cut off before its welcome dials again (see :mod:`crew.worker`), so a burst
of workers dialling in at once gets in, a gateful at a time.
While the process's open descriptors come within :func:`reserve` of its limit, new peers are cut
off at once, so launching workers still has descriptors. One that says nothing for
``seconds_timeout`` is cut off.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from .. import _protocol as P
from .._channel import Session

__all__ = ["STRANGERS_MAX", "Gate", "check_hello", "strangers_max", "reserve", "descriptors"]

STRANGERS_MAX = 64  # connections that have not said hello yet (workers dial in at once on a big launch)
GRACE = 1.0  # seconds a stranger may take to say hello before a newcomer may take its place
DESCRIPTORS_SECONDS = 0.25


def descriptors() -> tuple[int, int]:
    """(descriptors open in this process, its soft limit); (0, 0) where unknown."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return len(os.listdir("/proc/self/fd")), (limit if limit > 0 else 0)
    except (ImportError, OSError, ValueError):
        return 0, 0


def strangers_max(limit: int) -> int:
    """Strangers that may wait at once under a descriptor limit (0: unknown)."""
    return STRANGERS_MAX if limit <= 0 else max(4, min(STRANGERS_MAX, limit // 16))


def reserve(limit: int) -> int:
    """Descriptors kept free of new strangers (for launching workers, logs, files)."""
    return max(64, limit // 4)


def check_hello(hello: P.Hello, controller_id: str, secret: str, challenge: bytes) -> Optional[str]:
    """Why a hello is refused, or None when it is good (a pure function)."""
    if hello.version != P.VERSION:
        return f"protocol version {hello.version!r}, expected {P.VERSION}"
    if hello.controller != controller_id:
        return "hello for another controller"
    nonce = P.worker_nonce(hello)
    if nonce is None:
        return "malformed hello (no nonce)"
    if nonce == challenge:
        return "the worker's nonce is the challenge (a reflection)"
    if not P.verify(secret, challenge, nonce, controller_id, hello.mac):
        return "wrong secret"
    return None


class Gate:
    """See the module docstring."""

    def __init__(self, controller_id: str, secret: str, seconds_timeout: float, max_frame_bytes: int = 0):
        self.controller_id = controller_id
        self._secret = secret
        self.seconds_timeout = seconds_timeout
        self.max_frame_bytes = max_frame_bytes
        self.strangers: dict[int, tuple[Any, bytes, float]] = {}  # pipe id -> (pipe, nonce, since), oldest first
        _, self.limit = descriptors()
        self.capacity = strangers_max(self.limit)
        self._counted, self._counted_at = 0, -1.0

    def admit(self, pipe: Any) -> tuple[Optional[str], Optional[Any]]:
        """Challenge a new peer. Returns (why it was turned away, or None; a stranger cut off to
        make room for it, or None): the caller logs and closes both."""
        if self.limit and self._open_descriptors() > self.limit - reserve(self.limit):
            return f"too many open descriptors (limit {self.limit}, {reserve(self.limit)} kept for launching)", None
        evicted = None
        if len(self.strangers) >= self.capacity:
            oldest = next(iter(self.strangers))
            if time.monotonic() - self.strangers[oldest][2] < GRACE:
                # A burst of workers dialling in at once: each answers within milliseconds, so the
                # newcomer is turned away (its dialer tries again) rather than cut off one about
                # to answer; else new arrivals would evict each other faster than any could answer.
                return f"{self.capacity} peers are already saying hello", None
            evicted = self.strangers.pop(oldest)[0]
        nonce = os.urandom(P.NONCE_BYTES)
        self.strangers[pipe.id] = (pipe, nonce, time.monotonic())
        try:
            pipe.send(P.encode(P.Challenge(nonce)))
        except Exception:
            self.strangers.pop(pipe.id, None)
        return None, evicted

    def _open_descriptors(self) -> int:
        """Open descriptors, counted at most every DESCRIPTORS_SECONDS (listing them costs)."""
        now = time.monotonic()
        if now - self._counted_at >= DESCRIPTORS_SECONDS:
            self._counted, self._counted_at = descriptors()[0], now
        return self._counted

    def forget(self, key: int) -> None:
        self.strangers.pop(key, None)

    def hello(self, pipe: Any, data: bytes) -> tuple[Optional[P.Hello], Optional[Session], Optional[str]]:
        """(the stranger's hello, its session) if the hello is good, else why not. Either way it
        is no stranger now; (None, None, None) for a pipe that was never challenged."""
        stranger = self.strangers.pop(pipe.id, None)
        if stranger is None:
            return None, None, None
        try:
            hello = P.decode_hello(data)
        except P.ProtocolError as error:
            return None, None, str(error)
        challenge = stranger[1]
        reason = check_hello(hello, self.controller_id, self._secret, challenge)
        if reason is not None:
            return None, None, reason
        session = Session(self._secret, challenge, P.worker_nonce(hello) or b"", self.controller_id, True,
                          self.max_frame_bytes)
        return hello, session, None

    def expired(self, now: float) -> list[Any]:
        """Strangers that said nothing for seconds_timeout (forgotten here; the caller closes them)."""
        late = [key for key, (_, _, since) in self.strangers.items() if now - since > self.seconds_timeout]
        return [self.strangers.pop(key)[0] for key in late]
