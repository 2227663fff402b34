"""The loop's wake-up pipe: an in-process NNG pair that interrupts the loop's wait on the socket.

The loop thread blocks on the controller's socket for workers' frames. Other threads (callers,
NNG's pipe callbacks) hand it events through a queue and then :meth:`Wakeup.wake` it by sending
an empty frame over an ``inproc://`` pipe of the same socket, which the loop ignores. The
``unix`` transport's socket (:class:`crew._stream_listener.Listener`) has a wake-up of its own,
which returns such an empty frame; the wake-up then uses it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import pynng

from .._stream_listener import Listener

__all__ = ["Wakeup"]


class Wakeup:
    """Owner: ``sleeping`` is written by the loop thread only; ``wake`` runs in any thread."""

    def __init__(self, sock: Union[pynng.Socket, Listener], controller_id: str):
        self.pipes: set[int] = set()  # the wake pipe's ids, never challenged as workers
        self.sleeping = False  # the loop waits on the socket
        self.sent = False  # a wake frame is on its way
        self.listener: Any = None
        self._sender: Optional[pynng.Pair1] = None
        self._poke: Callable[[], None]
        if isinstance(sock, Listener):
            self._poke = sock.wake
            return
        self.listener = sock.listen(f"inproc://crew-wake-{controller_id}")
        self._sender = sender = pynng.Pair1()
        sender.dial(f"inproc://crew-wake-{controller_id}", block=True)
        self._poke = lambda: sender.send(b"", block=False)

    def owns(self, pipe: Any) -> bool:
        """Whether a new pipe is the wake pipe (called from NNG's connect callback)."""
        if self._sender is None:
            return False
        try:
            mine = pipe.listener is self.listener
        except TypeError:  # pynng: a pipe NNG has already forgotten
            mine = False
        if mine:
            self.pipes.add(pipe.id)
        return mine

    def wake(self) -> None:
        """Interrupt the loop's wait if it is waiting. Never blocks (NNG's pipe callbacks call
        this, and closing the socket waits for them)."""
        if self.sleeping and not self.sent:
            self.sent = True
            try:
                self._poke()
            except Exception:  # full (the loop has wake frames to read anyway) or closed
                pass

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
