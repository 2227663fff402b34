"""Running one task inside a worker: decode it, run it in a clean namespace, encode its result.

Used by the worker's main thread (:mod:`crew.worker`); nothing here touches a socket.
"""

from __future__ import annotations

import ast
import collections
import gc
import pickle
import random
import sys
import time
import traceback
from types import CodeType, TracebackType
from typing import Any, Callable, Optional

from ._protocol import ResultRecord, TaskRecord
from ._serial import PROTOCOL, Serializer

__all__ = ["Interrupted", "Source", "Commands", "Runner", "FRAME_ROOM", "split_results"]

FRAME_ROOM = 64 * 1024  # bytes kept free in a frame for everything but a result's payload
_CACHE_SIZE = 64


class Interrupted(BaseException):
    """Raised inside a running task that the controller cancelled."""


class Source:
    """A string command compiled once: statements, then the value of the last expression."""

    __slots__ = ("body", "last", "text")

    def __init__(self, text: str):
        self.text = text
        tree = ast.parse(text, mode="exec")
        last: Optional[CodeType] = None
        final = tree.body[-1] if tree.body else None
        if isinstance(final, ast.Expr):
            tree.body.pop()
            last = compile(ast.Expression(final.value), "<crew task>", "eval")
        self.body = compile(tree, "<crew task>", "exec")
        self.last = last

    def __call__(self, scope: dict[str, Any]) -> Any:
        exec(self.body, scope)
        return eval(self.last, scope) if self.last is not None else None


class Commands:
    """Commands deserialized before, by their bytes (the most recent ``_CACHE_SIZE``)."""

    def __init__(self) -> None:
        self._cache: collections.OrderedDict[bytes, Any] = collections.OrderedDict()

    def known(self, blob: bytes) -> Any:
        """The command of ``blob`` if it was deserialized before, else None."""
        return self._cache.get(blob)

    def get(self, blob: bytes, serializer: Serializer) -> Any:
        command = self._cache.get(blob)
        if command is None:
            command = serializer.loads(blob)
            if isinstance(command, str):
                command = Source(command)
            self._cache[blob] = command
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return command


class Runner:
    """Runs tasks in the worker's namespace with the controller's settings.

    ``arm(task_id, seconds)`` starts a task's timer (``arm(None, None)`` stops it); ``ended()``
    runs as soon as the task's code returns or raises (before any clean-up). Call
    :meth:`configure` when ``settings`` or the serializer change (the worker's welcome).
    """

    def __init__(self, serializer: Serializer, settings: dict[str, Any],
                 arm: Callable[[Optional[int], Optional[float]], None], ended: Callable[[], None]):
        self.arm = arm
        self.ended = ended
        self.namespace: dict[str, Any] = {"__name__": "__crew__", "__builtins__": __builtins__}
        self.names = frozenset(self.namespace)  # what a task may leave behind, with reset_globals
        self.commands = Commands()
        self.configure(serializer, settings)

    def configure(self, serializer: Serializer, settings: dict[str, Any]) -> None:
        """Take the serializer and settings (read here once, not per task)."""
        self.serializer = serializer
        self.settings = settings
        self.reset_modules = bool(settings.get("reset_modules"))
        self.reset_globals = bool(settings.get("reset_globals", True))
        self.collect_garbage = bool(settings.get("garbage_collection"))
        self.limit = settings.get("max_frame_bytes") or 0
        self._plain_dumps = serializer.module is None  # plain pickle for a scalar result
        self.warnings: list[str] = []

    def on_warning(self, message: Any, category: type, filename: str, lineno: int, file: Any = None,
                   line: Any = None) -> None:
        self.warnings.append(f"{category.__name__}: {message}")

    def run(self, task: TaskRecord) -> ResultRecord:
        """Run one task and return its result record (never raises, but for Interrupted's cousins)."""
        self.warnings = []
        modules = set(sys.modules) if self.reset_modules else None
        restore: Optional[Callable[[], None]] = None
        status, value, error, trace, exception = "success", None, None, None, None
        start = time.perf_counter()
        try:
            value, restore = self._call(task, self.reset_globals)
        except Interrupted:
            status, error = "cancel", "cancelled while running"
        except BaseException as caught:  # a task's failure never ends the worker
            status, error, exception = "error", f"{type(caught).__name__}: {caught}", caught
            trace = "".join(traceback.format_exception(type(caught), caught, _user_frames(caught.__traceback__)))
        finally:
            self.ended()
            if task.timeout is not None:
                self.arm(None, None)
        seconds = time.perf_counter() - start
        if (restore is not None or modules is not None or self.collect_garbage
                or (self.reset_globals and len(self.namespace) != len(self.names))):
            self._clean(restore, self.names if self.reset_globals else None, modules)
        plain = (pickle.dumps(value, PROTOCOL)  # the common result, a scalar (hot path)
                 if status == "success" and self._plain_dumps and type(value) in _SCALARS else None)
        if plain is not None and not (self.limit and len(plain) > self.limit - FRAME_ROOM):
            payload: Optional[bytes] = plain
        else:
            payload, status, error = self._payload(status, value, exception, error)
        return _new(ResultRecord, (task.id, status, payload, error, trace, self.warnings or None, seconds))

    def _call(self, task: TaskRecord, scratch: bool) -> tuple[Any, Optional[Callable[[], None]]]:
        command = self.commands.known(task.command) or self.commands.get(task.command, self.serializer)
        args, kwargs, data, globals_ = self.serializer.loads_arguments(task.rest) if task.rest else ((), None, None, None)
        if task.seed is not None:
            seed(task.seed)
        restore = None
        if globals_:
            self.namespace.update(globals_)
            if not isinstance(command, Source):
                restore = inject(command, globals_)
        if task.timeout is not None:
            self.arm(task.id, task.timeout)
        if isinstance(command, Source):
            # With reset_globals, names the code sets live in a scratch copy; without, they stay.
            scope = dict(self.namespace) if scratch else self.namespace
            if data:
                scope.update(data)
            return command(scope), restore
        return command(*args, **(kwargs or {})), restore

    def _clean(self, restore: Optional[Callable[[], None]], names: Optional[frozenset[str]],
               modules: Optional[set[str]]) -> None:
        if restore is not None:
            restore()
        if names is not None and len(self.namespace) != len(names):
            for key in [key for key in self.namespace if key not in names]:
                del self.namespace[key]
        if modules is not None:
            for key in [key for key in sys.modules if key not in modules]:
                del sys.modules[key]
        if self.collect_garbage:
            gc.collect()

    def _payload(self, status: str, value: Any, exception: Optional[BaseException],
                 error: Optional[str]) -> tuple[Optional[bytes], str, Optional[str]]:
        """The serialized value (or exception), and the status and error once that is known."""
        if status != "success":
            if exception is None:
                return None, status, error
            try:
                return self.serializer.dumps_exception(exception), status, error
            except Exception:
                return None, status, error
        try:
            payload = self.serializer.dumps(value)
        except Exception as caught:
            return None, "error", f"the task's result could not be serialized: {type(caught).__name__}: {caught}"
        limit = self.limit
        if limit and len(payload) > limit - FRAME_ROOM:
            return None, "error", (f"the task's result is {len(payload)} bytes serialized, more than the controller "
                                   f"accepts (max_frame_bytes={limit})")
        return payload, status, error


_new = tuple.__new__  # a record from its fields, without the named tuple's slower constructor (hot path)
_SCALARS = frozenset((int, float, str, bytes, bool, type(None)))


def _user_frames(frames: Optional[TracebackType]) -> Optional[TracebackType]:
    """The traceback from the task's own code on: crew's frames (this module's) left out."""
    while frames is not None and frames.tb_frame.f_code.co_filename == __file__:
        frames = frames.tb_next
    return frames


def inject(command: Any, values: dict[str, Any]) -> Optional[Callable[[], None]]:
    """Set names in a callable's global namespace; return a function that undoes it."""
    target = getattr(command, "__globals__", None)
    if target is None:
        return None
    missing = object()
    saved = {key: target.get(key, missing) for key in values}
    target.update(values)

    def restore() -> None:
        for key, old in saved.items():
            if old is missing:
                target.pop(key, None)
            else:
                target[key] = old

    return restore


_numpy: Any = None


def seed(value: int) -> None:
    """Seed ``random`` and, when installed, NumPy's global generator."""
    global _numpy
    random.seed(value)
    if _numpy is None:
        try:
            import numpy

            _numpy = numpy
        except ImportError:
            _numpy = False
    if _numpy:
        _numpy.random.seed(value % 2**32)


def split_results(results: list[ResultRecord], limit: int) -> list[list[ResultRecord]]:
    """Results in batches whose frames stay under the controller's ``limit`` (0: no limit)."""
    if not limit or len(results) <= 1:
        return [results]
    batches: list[list[ResultRecord]] = []
    current: list[ResultRecord] = []
    size = 0
    for result in results:
        weight = len(result.payload or b"") + len(result.error or "") + FRAME_ROOM
        if current and size + weight > limit:
            batches.append(current)
            current, size = [], 0
        current.append(result)
        size += weight
    batches.append(current)
    return batches
