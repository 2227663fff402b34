"""The gate: peers that connected and have not authenticated yet (strangers), and their hellos.

Owner: the loop thread. A stranger is sent a challenge (a random nonce) and must answer with a
hello, in JSON, that proves knowledge of the controller's secret; nothing it sends is unpickled.
At most ``STRANGERS_MAX`` strangers wait at once; one that says nothing for ``seconds_timeout``
is cut off.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional

from .. import _protocol as P

__all__ = ["STRANGERS_MAX", "Gate", "check_hello"]

STRANGERS_MAX = 64  # connections that have not said hello yet (workers dial in at once on a big launch)


def check_hello(hello: P.Hello, controller_id: str, secret: str, nonce: bytes) -> Optional[str]:
    """Why a hello is refused, or None when it is good (a pure function)."""
    if hello.version != P.VERSION:
        return f"protocol version {hello.version!r}, expected {P.VERSION}"
    if hello.controller != controller_id:
        return "hello for another controller"
    if not P.verify(secret, nonce, controller_id, hello.mac):
        return "wrong secret"
    return None


class Gate:
    """See the module docstring."""

    def __init__(self, controller_id: str, secret: str, seconds_timeout: float):
        self.controller_id = controller_id
        self._secret = secret
        self.seconds_timeout = seconds_timeout
        self.strangers: dict[int, tuple[Any, bytes, float]] = {}  # pipe id -> (pipe, nonce, since)

    def admit(self, pipe: Any) -> Optional[str]:
        """Challenge a new peer; return why it was turned away, or None."""
        if len(self.strangers) >= STRANGERS_MAX:
            return f"{STRANGERS_MAX} connections are already waiting to say hello"
        nonce = os.urandom(P.NONCE_BYTES)
        self.strangers[pipe.id] = (pipe, nonce, time.monotonic())
        try:
            pipe.send(P.encode(P.Challenge(nonce)))
        except Exception:
            self.strangers.pop(pipe.id, None)
        return None

    def forget(self, key: int) -> None:
        self.strangers.pop(key, None)

    def hello(self, pipe: Any, data: bytes) -> tuple[Optional[P.Hello], Optional[str]]:
        """The stranger's hello if it is good, else why not. Either way it is no stranger now;
        (None, None) for a pipe that was never challenged (already turned away)."""
        stranger = self.strangers.pop(pipe.id, None)
        if stranger is None:
            return None, None
        try:
            hello = P.decode_hello(data)
        except P.ProtocolError as error:
            return None, str(error)
        reason = check_hello(hello, self.controller_id, self._secret, stranger[1])
        return (hello, None) if reason is None else (None, reason)

    def expired(self, now: float) -> list[Any]:
        """Strangers that said nothing for seconds_timeout (forgotten here; the caller closes them)."""
        late = [key for key, (_, _, since) in self.strangers.items() if now - since > self.seconds_timeout]
        return [self.strangers.pop(key)[0] for key in late]
