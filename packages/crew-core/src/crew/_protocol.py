"""The frames exchanged between a controller and its workers.

Every frame starts with one byte naming its kind. Frames a worker sends before it has
authenticated are JSON, never pickle, so the controller unpickles nothing from a stranger.

controller -> worker                      worker -> controller
  CHALLENGE nonce                           HELLO   json {version, controller, launch, pid, host, mac}
  WELCOME   json {worker, settings}         RESULTS pickle [(id, status, value, exception, error, traceback, warnings, seconds)]
  TASKS     pickle [(id, command, rest, seed, timeout)]
  CANCEL    pickle ([ids], interrupt)       RETURNED pickle ([ids asked], [ids given back unstarted])
  QUIT                                      GOODBYE json {reason}
  PING                                      PONG    (answer to PING; any frame shows the peer is alive)
                                            ACK     (each WELCOME, TASKS, CANCEL, PING received)

NNG's polyamorous pair socket drops a frame sent to a pipe that is still writing the previous
one, so the controller keeps at most one unacknowledged frame per worker (see Controller._send).
                                            STARTED >q id  (a task still running 1 ms after it began)
"""

from __future__ import annotations

import hashlib
import hmac
import json

VERSION = 1

CHALLENGE = b"c"
WELCOME = b"w"
TASKS = b"t"
CANCEL = b"x"
QUIT = b"q"
PING = b"p"

HELLO = b"h"
RESULTS = b"r"
RETURNED = b"b"
GOODBYE = b"g"
STARTED = b"s"
PONG = b"o"
ACK = b"a"

NONCE_BYTES = 32
MAX_HELLO_BYTES = 4096


def mac(secret: str, nonce: bytes, controller: str) -> str:
    """The proof that a worker holds the controller's secret."""
    return hmac.new(secret.encode(), nonce + controller.encode(), hashlib.sha256).hexdigest()


def verify(secret: str, nonce: bytes, controller: str, proof: object) -> bool:
    return isinstance(proof, str) and hmac.compare_digest(mac(secret, nonce, controller), proof)


def encode_json(kind: bytes, payload: dict) -> bytes:
    return kind + json.dumps(payload, separators=(",", ":")).encode()


def decode_json(frame: bytes) -> dict:
    value = json.loads(frame[1:].decode())
    if not isinstance(value, dict):
        raise ValueError("frame payload is not a JSON object")
    return value
