"""The controller, as small parts with one owner each (see docs/architecture.md).

- :mod:`.controller`: the public :class:`Controller` facade (no socket code);
- :mod:`.intake`: checks and encodes pushed tasks (callers' threads);
- :mod:`.store`: names, counts, results and waiters (one lock);
- :mod:`.loop` with :mod:`.wakeup` and :mod:`.gate`: the ``crew-loop`` thread, its wake-up pipe,
  and the handshake with peers that have not authenticated yet;
- :mod:`.board`: the dispatch board, tasks and connected workers (the loop's, under its lock);
- :mod:`.dispatch`, :mod:`.recovery`, :mod:`.scaling`: the policies, pure functions;
- :mod:`.scaler`: the ``crew-scale`` thread; :mod:`.fleet`: the registry of launched workers.
"""

from __future__ import annotations

import atexit

from .controller import Controller, live

__all__ = ["Controller", "live"]


@atexit.register
def _terminate_live() -> None:
    """At interpreter exit, end the workers of every controller still running. Executors finish
    their pending calls before this (``threading``'s exit hooks run before ``atexit``'s)."""
    for controller in list(live):
        try:
            controller.terminate()
        except Exception:  # one failure must not keep the others' workers alive
            pass
