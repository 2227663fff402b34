"""The frames exchanged between a controller and its workers: typed records, pure encode/decode.

Every frame starts with one byte naming its kind. Frames a worker sends before it has
authenticated (its HELLO) are JSON, never pickle, so the controller unpickles nothing from a
stranger; :func:`decode_hello` is the only decoder used on a stranger's bytes.

The handshake is mutual: the hello carries the worker's own nonce and an HMAC over both nonces;
from the Welcome on, every frame both ways is sealed with a per-connection key derived from the
secret and both nonces (:mod:`crew._channel`), so a worker unpickles nothing until its controller
has proved it holds the secret, and a relay cannot alter or inject frames.

controller -> worker                      worker -> controller
  Challenge  nonce                          Hello     json {version, controller, launch, pid, host, nonce, mac}
  Welcome    json {worker, settings}        Results   pickle [ResultRecord as a tuple, ...]
  Tasks      pickle [TaskRecord as a tuple, ...]
  Cancel     pickle ([ids], interrupt)      Returned  pickle ([ids asked], [ids given back unstarted])
  Quit                                      Goodbye   json {reason}
  Ping                                      Pong      (answer to Ping)
                                            Ack       (each Welcome, Cancel, Ping received; a Tasks
                                                       frame received by a busy worker)
                                            Started   >q id (a task still running 1 ms after it began)

A Tasks or Results frame whose pickle is large is sent as two pieces (its kind byte, its pickle),
never joined. A task's large serialized arguments are an :class:`OutOfBand` (see
:mod:`crew._serial`): a pickle and the buffers it refers to, the user's own ``bytes`` objects.
They travel as pickle protocol 5 out-of-band buffers, never copied into the frame: such a frame is
``T``, the number of buffers, the lengths of the pickle and of each buffer, the pickle, then the
buffers; the worker unpickles it with views of those buffers, so a task's ``rest`` there is an
OutOfBand of views of the frame (:func:`decode` accepts a ``memoryview``).

NNG's polyamorous pair socket drops a frame sent to a pipe that is still writing the previous
one, so the controller keeps at most one unacknowledged frame per worker (see
``crew._controller.board``). A worker that is idle when a Tasks frame comes starts its first task
at once without an Ack: that task's Started or result acknowledges the frame. Records travel as
plain tuples (fast to pickle) and are rebuilt, and checked, as the named records below; neither
side indexes a tuple.
"""

from __future__ import annotations

import hmac
import json
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Optional, Union, overload

from ._channel import Buffer, Wire, hello_mac

__all__ = [
    "VERSION", "NONCE_BYTES", "MAX_HELLO_BYTES", "STATUSES", "ProtocolError",
    "TaskRecord", "ResultRecord", "Challenge", "Hello", "Welcome", "Tasks", "Cancel", "Quit", "Ping",
    "Pong", "Ack", "Results", "Returned", "Goodbye", "Started", "Frame",
    "encode", "decode", "decode_hello", "mac", "verify", "worker_nonce", "OUT_OF_BAND", "OutOfBand",
]

VERSION = 4
NONCE_BYTES = 32
MAX_HELLO_BYTES = 4096
PICKLE_PROTOCOL = 5
STATUSES = frozenset({"success", "error", "crash", "cancel", "timeout"})
OUT_OF_BAND = 2**16
"""A buffer this long travels out of band (in an :class:`OutOfBand`), not copied into a frame."""
_PIECES = 2**16  # a pickle this long is sent after its kind byte as a piece of its own

_CHALLENGE, _WELCOME, _TASKS, _CANCEL, _QUIT, _PING = b"c", b"w", b"t", b"x", b"q", b"p"
_HELLO, _RESULTS, _RETURNED, _GOODBYE, _STARTED, _PONG, _ACK = b"h", b"r", b"b", b"g", b"s", b"o", b"a"
_TASKS_BUFFERS = b"T"  # Tasks with out-of-band buffers
_COUNTS = struct.Struct(">IQ")  # buffers, bytes of the pickle


class ProtocolError(ValueError):
    """Bytes that are not a well-formed frame of the expected kind."""


class TaskRecord(NamedTuple):
    """One task as a worker receives it."""

    id: int
    command: bytes  # the serialized callable or string of code
    rest: bytes | OutOfBand | None  # serialized (args, kwargs, data, globals), or None when all are empty
    seed: int | None
    timeout: float | None


class OutOfBand:
    """A task's serialized arguments that travel out of band: a pickle (``head``) and the buffers
    it refers to (pickle protocol 5), never copied into a frame. ``len()`` is their size. Never
    pickled in band (that raises TypeError): :func:`encode` sends its pieces as they are."""

    __slots__ = ("head", "buffers", "size")

    def __init__(self, head: Buffer, buffers: tuple[Buffer, ...] = ()):
        self.head = head
        self.buffers = buffers
        self.size = len(head) + sum(map(len, buffers))

    @classmethod
    def received(cls, value: Any) -> OutOfBand:
        """One from what a frame carried: (the head, [views of its buffers])."""
        if not (type(value) is tuple and len(value) == 2 and type(value[1]) is list
                and all(type(item) in (bytes, memoryview) for item in (value[0], *value[1]))):
            raise ProtocolError("malformed task record")
        return cls(value[0], tuple(value[1]))

    def lent(self) -> tuple[Any, list[pickle.PickleBuffer]]:
        """What a frame carries: the head (out of band too when large) and the buffers."""
        head = self.head
        return (pickle.PickleBuffer(head) if len(head) >= OUT_OF_BAND else bytes(head),
                [pickle.PickleBuffer(buffer) for buffer in self.buffers])

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        return (type(other) is OutOfBand and self.head == other.head and len(self.buffers) == len(other.buffers)
                and all(mine == theirs for mine, theirs in zip(self.buffers, other.buffers)))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> Any:
        raise TypeError("an OutOfBand travels out of band, never pickled in band")

    def __repr__(self) -> str:
        return f"OutOfBand({self.size} bytes, {len(self.buffers)} buffers)"


class ResultRecord(NamedTuple):
    """One task's outcome as a worker reports it."""

    id: int
    status: str  # one of STATUSES
    payload: bytes | None  # the serialized value (success) or exception (error)
    error: str | None
    trace: str | None
    warnings: list[str] | None
    seconds: float


@dataclass(frozen=True)
class Challenge:
    """Controller -> stranger: prove you hold the secret (a random nonce)."""

    nonce: bytes
    """NONCE_BYTES random bytes, new for each connection."""


@dataclass(frozen=True)
class Hello:
    """Stranger -> controller: who it is and the proof (JSON, never unpickled)."""

    version: Any
    controller: Any
    launch: str
    pid: int | None
    host: str
    mac: Any
    nonce: Any = None
    """The worker's nonce, hex (NONCE_BYTES bytes): the session keys depend on it."""


@dataclass(frozen=True)
class Welcome:
    """Controller -> worker: accepted; its id and the controller's settings."""

    worker: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tasks:
    """Controller -> worker: a batch of tasks to run in order."""

    tasks: list[TaskRecord]


@dataclass(frozen=True)
class Cancel:
    """Controller -> worker: hand these tasks back (a steal), or also interrupt the running one."""

    ids: list[int]
    interrupt: bool


@dataclass(frozen=True)
class Results:
    """Worker -> controller: results of tasks, in the order they finished."""

    results: list[ResultRecord]


@dataclass(frozen=True)
class Returned:
    """Worker -> controller: the ids asked back, and those handed back unstarted."""

    requested: list[int]
    returned: list[int]


@dataclass(frozen=True)
class Goodbye:
    """Worker -> controller: leaving (idle, wall time, tasks_max, timeout)."""

    reason: str
    """Why: ``seconds_idle``, ``seconds_wall``, ``tasks_max`` or ``timeout``."""


@dataclass(frozen=True)
class Started:
    """Worker -> controller: this task has run for a millisecond and still runs."""

    task_id: int
    """The id of the task, as in its TaskRecord."""


@dataclass(frozen=True)
class _Signal:
    """A frame that carries nothing but its kind."""


class Quit(_Signal):
    """Controller -> worker: exit now."""


class Ping(_Signal):
    """Controller -> worker: are you there (answered by Pong)."""


class Pong(_Signal):
    """Worker -> controller: the answer to Ping."""


class Ack(_Signal):
    """Worker -> controller: one frame received; the next may come."""


Frame = Union[Challenge, Hello, Welcome, Tasks, Cancel, Quit, Ping, Pong, Ack, Results, Returned, Goodbye, Started]

_new = tuple.__new__  # a named tuple from a checked row, without its slower constructor (hot path)

_SIGNALS: dict[type, bytes] = {Quit: _QUIT, Ping: _PING, Pong: _PONG, Ack: _ACK}
_SIGNAL_FRAMES: dict[bytes, Frame] = {kind: cls() for cls, kind in _SIGNALS.items()}


# ---------------------------------------------------------------------- encode
@overload
def encode(frame: Union[Tasks, Results]) -> Wire: ...


@overload
def encode(frame: Union[Challenge, Hello, Welcome, Cancel, Quit, Ping, Pong, Ack, Returned, Goodbye,
                        Started]) -> bytes: ...


def encode(frame: Frame) -> Wire:
    """The bytes of one frame; a large Tasks or Results frame as pieces (see the module docstring)."""
    if type(frame) is Tasks:
        rows = [tuple(task) for task in frame.tasks]
        try:
            return _pieces(_TASKS, pickle.dumps(rows, PICKLE_PROTOCOL))
        except TypeError:  # an OutOfBand (never pickled in band)
            return _out_of_band(_TASKS_BUFFERS, rows)
    if type(frame) is Results:
        return _pieces(_RESULTS, pickle.dumps([tuple(row) for row in frame.results], PICKLE_PROTOCOL))
    if type(frame) in _SIGNALS:
        return _SIGNALS[type(frame)]
    if type(frame) is Cancel:
        return _CANCEL + pickle.dumps((list(frame.ids), bool(frame.interrupt)), PICKLE_PROTOCOL)
    if type(frame) is Returned:
        return _RETURNED + pickle.dumps((list(frame.requested), list(frame.returned)), PICKLE_PROTOCOL)
    if type(frame) is Started:
        return _STARTED + struct.pack(">q", frame.task_id)
    if type(frame) is Challenge:
        return _CHALLENGE + frame.nonce
    if type(frame) is Hello:
        return _json(_HELLO, {"version": frame.version, "controller": frame.controller, "launch": frame.launch,
                              "pid": frame.pid, "host": frame.host, "nonce": frame.nonce, "mac": frame.mac})
    if type(frame) is Welcome:
        return _json(_WELCOME, {"worker": frame.worker, "settings": frame.settings})
    if type(frame) is Goodbye:
        return _json(_GOODBYE, {"reason": frame.reason})
    raise TypeError(f"not a frame: {frame!r}")


def _pieces(kind: bytes, body: bytes) -> Wire:
    return kind + body if len(body) < _PIECES else [kind, body]


def _out_of_band(kind: bytes, rows: list[tuple[Any, ...]]) -> Wire:
    """``kind``, the counts, the pickle of task ``rows`` and, after it, the buffers of each
    OutOfBand ``rest`` (views: nothing copied)."""
    buffers: list[pickle.PickleBuffer] = []
    rows = [row if type(row[2]) is not OutOfBand else (*row[:2], row[2].lent(), *row[3:]) for row in rows]
    body = pickle.dumps(rows, PICKLE_PROTOCOL, buffer_callback=buffers.append)
    views = [buffer.raw() for buffer in buffers]
    head = kind + _COUNTS.pack(len(views), len(body)) + struct.pack(f">{len(views)}Q", *map(len, views))
    return [head, body, *views]


def _json(kind: bytes, payload: dict[str, Any]) -> bytes:
    return kind + json.dumps(payload, separators=(",", ":")).encode()


# ---------------------------------------------------------------------- decode
def decode(data: Buffer) -> Frame:
    """The frame in ``data`` (bytes, or a view) from an authenticated peer. Raises
    :class:`ProtocolError`."""
    kind = data[:1]
    try:
        decoder = _DECODERS[kind]  # type: ignore[index]  # a view of bytes is found too: it hashes as its bytes
    except KeyError:
        raise ProtocolError(f"unknown frame kind {bytes(kind)!r}") from None
    except TypeError:  # a view of an unhashable buffer (NNG's, a bytearray): look its kind up as bytes
        decoder = _DECODERS.get(bytes(kind))  # type: ignore[assignment]
        if decoder is None:
            raise ProtocolError(f"unknown frame kind {bytes(kind)!r}") from None
    try:
        return decoder(data)
    except ProtocolError:
        raise
    except Exception as error:  # whatever malformed bytes make pickle or json raise
        raise ProtocolError(f"malformed {bytes(kind)!r} frame: {type(error).__name__}: {error}") from None


def decode_hello(data: bytes) -> Hello:
    """A stranger's hello: JSON only, never unpickled. Raises :class:`ProtocolError`."""
    if data[:1] != _HELLO or len(data) > MAX_HELLO_BYTES:
        raise ProtocolError("expected a hello frame")
    try:
        value = _object(data)
    except ValueError:
        raise ProtocolError("malformed hello") from None
    pid = value.get("pid")
    return Hello(value.get("version"), value.get("controller"), str(value.get("launch")),
                 pid if type(pid) is int else None, str(value.get("host"))[:255], value.get("mac"), value.get("nonce"))


def _object(data: Buffer) -> dict[str, Any]:
    value = json.loads(bytes(data[1:]).decode())
    if not isinstance(value, dict):
        raise ProtocolError("frame payload is not a JSON object")
    return value


def _ids(value: Any) -> list[int]:
    if type(value) is not list or not all(type(item) is int for item in value):
        raise ProtocolError("expected a list of task ids")
    return value


def _unpickle_with_buffers(data: Buffer) -> Any:
    """The rows of a frame with out-of-band buffers (see the module docstring), unpickled with
    views of its buffers."""
    view = memoryview(data)
    count, length = _COUNTS.unpack_from(view, 1)
    start = 1 + _COUNTS.size + 8 * count
    if start + length > len(view):
        raise ProtocolError("malformed frame with buffers")
    buffers = []
    end = start + length
    for size in struct.unpack_from(f">{count}Q", view, 1 + _COUNTS.size):
        buffers.append(view[end:end + size])
        end += size
    if end != len(view):
        raise ProtocolError("malformed frame with buffers")
    return pickle.loads(view[start:start + length], buffers=buffers)


def _decode_tasks(data: Buffer) -> Tasks:
    return _tasks(pickle.loads(data[1:]))


def _decode_tasks_buffers(data: Buffer) -> Tasks:
    rows = _unpickle_with_buffers(data)
    if type(rows) is not list:
        raise ProtocolError("malformed tasks frame")
    return _tasks([row if type(row) is not tuple or len(row) != 5 or type(row[2]) is not tuple else
                   (*row[:2], OutOfBand.received(row[2]), *row[3:]) for row in rows])


def _tasks(rows: Any) -> Tasks:
    if type(rows) is not list:
        raise ProtocolError("malformed tasks frame")
    tasks = []
    for row in rows:
        if type(row) is not tuple or len(row) != 5 or type(row[0]) is not int or type(row[1]) is not bytes:
            raise ProtocolError("malformed task record")
        tasks.append(_new(TaskRecord, row))
    return Tasks(tasks)


def _decode_results(data: Buffer) -> Results:
    return _results(pickle.loads(data[1:]))


def _results(rows: Any) -> Results:
    if type(rows) is not list:
        raise ProtocolError("malformed results frame")
    results = []
    for row in rows:
        if not (type(row) is tuple and len(row) == 7 and type(row[0]) is int and row[1] in STATUSES
                and (row[2] is None or type(row[2]) is bytes) and (row[3] is None or type(row[3]) is str)
                and (row[4] is None or type(row[4]) is str) and type(row[6]) is float
                and (row[5] is None or (type(row[5]) is list and all(type(w) is str for w in row[5])))):
            raise ProtocolError("malformed result record")
        results.append(_new(ResultRecord, row))
    return Results(results)


def _decode_cancel(data: Buffer) -> Cancel:
    ids, interrupt = pickle.loads(data[1:])
    if type(interrupt) is not bool:
        raise ProtocolError("malformed cancel frame")
    return Cancel(_ids(ids), interrupt)


def _decode_returned(data: Buffer) -> Returned:
    requested, returned = pickle.loads(data[1:])
    return Returned(_ids(requested), _ids(returned))


def _decode_started(data: Buffer) -> Started:
    if len(data) != 9:
        raise ProtocolError("malformed started frame")
    return Started(struct.unpack(">q", data[1:9])[0])


def _decode_welcome(data: Buffer) -> Welcome:
    value = _object(data)
    settings = value.get("settings")
    if type(value.get("worker")) is not str or type(settings) is not dict:
        raise ProtocolError("malformed welcome frame")
    return Welcome(value["worker"], settings)


def _decode_goodbye(data: Buffer) -> Goodbye:
    return Goodbye(str(_object(data).get("reason")))


def _decode_challenge(data: Buffer) -> Challenge:
    if len(data) != 1 + NONCE_BYTES:
        raise ProtocolError("malformed challenge frame")
    return Challenge(bytes(data[1:]))


def _signal(data: bytes) -> Frame:  # one byte: never a view
    if len(data) != 1:
        raise ProtocolError(f"a {data[:1]!r} frame carries nothing")
    return _SIGNAL_FRAMES[data]


_DECODERS: dict[bytes, Callable[[Any], Frame]] = {
    _TASKS: _decode_tasks, _TASKS_BUFFERS: _decode_tasks_buffers, _RESULTS: _decode_results,
    _CANCEL: _decode_cancel, _RETURNED: _decode_returned,
    _STARTED: _decode_started, _WELCOME: _decode_welcome, _GOODBYE: _decode_goodbye, _CHALLENGE: _decode_challenge,
    _HELLO: decode_hello, _QUIT: _signal, _PING: _signal, _PONG: _signal, _ACK: _signal,
}


# ---------------------------------------------------------------------- authentication
def worker_nonce(hello: Hello) -> Optional[bytes]:
    """The worker's nonce of a hello, or None when it is not NONCE_BYTES bytes in hex."""
    value = hello.nonce
    if type(value) is not str or len(value) != 2 * NONCE_BYTES:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def mac(secret: str, challenge: bytes, nonce: bytes, controller: str) -> str:
    """The proof that a worker holds the controller's secret (over both nonces)."""
    return hello_mac(secret, challenge, nonce, controller)


def verify(secret: str, challenge: bytes, nonce: bytes, controller: str, proof: object) -> bool:
    """Whether ``proof`` is :func:`mac` of the secret, both nonces and the controller id."""
    return isinstance(proof, str) and hmac.compare_digest(mac(secret, challenge, nonce, controller), proof)
