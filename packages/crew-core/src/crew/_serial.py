"""Serialization of tasks and results: cloudpickle, with a fast path for plain data.

A task's large serialized arguments are an :class:`crew._protocol.OutOfBand`, which frames carry
out of band: with the default serializer, each ``bytes`` argument (or keyword, data or global
value) of OUT_OF_BAND bytes or more is not even copied into the pickle, but lent as a pickle
protocol 5 buffer (a ``bytes`` object cannot change, so the task still gets what was pushed); any
other large pickle is sent as it is, never copied again. A worker copies a lent buffer once, into
the ``bytes`` its task receives."""

from __future__ import annotations

import importlib
import pickle
import types
from typing import Any, Callable, Optional, Union

from ._protocol import OUT_OF_BAND, OutOfBand

_PLAIN = (int, float, str, bytes, bool, type(None), complex)
PROTOCOL = 5


def _plain(value: Any, depth: int = 0) -> bool:
    kind = type(value)
    if kind in _PLAIN:
        return True
    if depth > 2:
        return False
    if kind is tuple or kind is list:
        return len(value) <= 64 and all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return len(value) <= 64 and all(
            type(key) is str and _plain(item, depth + 1) for key, item in value.items()
        )
    return False


def _by_reference(command: Any) -> bool:
    """True for a function, builtin or class that the worker can import by name: not from
    __main__, not local, and not in a module registered with ``cloudpickle.register_pickle_by_value``.
    Anything else (a ``functools.partial``, a bound method, a callable instance) goes by value:
    plain pickle would send its arguments or instance by reference, e.g. to a ``__main__`` class
    the worker cannot import."""
    if isinstance(command, types.BuiltinFunctionType):
        return isinstance(command.__self__, (types.ModuleType, type(None)))
    if not isinstance(command, (types.FunctionType, type)):
        return False
    module = getattr(command, "__module__", None)
    qualname = getattr(command, "__qualname__", "")
    if not (isinstance(module, str) and module != "__main__" and "<" not in qualname):
        return False
    try:
        from cloudpickle import cloudpickle as _cloudpickle

        return bool(_cloudpickle._should_pickle_by_reference(command))
    except Exception:  # a cloudpickle without that helper: trust the module name
        return True


def chained(exception: BaseException, cause: Optional[BaseException], context: Optional[BaseException],
            suppress_context: bool) -> BaseException:
    """Unpickling helper: ``exception`` with its ``__cause__`` and ``__context__`` set back."""
    exception.__cause__ = cause
    exception.__context__ = context
    exception.__suppress_context__ = suppress_context
    return exception


class _Chained:
    """Pickles an exception with its cause and context, which pickle alone drops."""

    def __init__(self, exception: BaseException, depth: int = 0):
        self.exception = exception
        self.depth = depth

    def __reduce__(self) -> tuple[Any, ...]:
        exception, depth = self.exception, self.depth
        linked: list[Any] = [exception.__cause__, exception.__context__]
        if depth < _CHAIN_MAX:
            linked = [_Chained(link, depth + 1) if link is not None else None for link in linked]
        else:
            linked = [None, None]
        return chained, (exception, linked[0], linked[1], exception.__suppress_context__)


_CHAIN_MAX = 16  # links of an exception's cause/context chain sent back


class _Lent:
    """A large ``bytes`` argument: pickled as ``bytes(buffer)`` with its buffer out of band."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return bytes, (pickle.PickleBuffer(self.data),)


def _lend(value: Any) -> Any:
    return _Lent(value) if type(value) is bytes and len(value) >= OUT_OF_BAND else value


def _lent(parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """``(args, kwargs, data, globals)`` with each large ``bytes`` in args or as a value of the
    others wrapped to be lent; ``parts`` itself when there is none."""
    args, maps = parts[0], parts[1:]
    lent_maps: list[Optional[dict[str, Any]]] = [
        None if values is None else {key: _lend(item) for key, item in values.items()} for values in maps]
    lent_args = tuple(map(_lend, args))
    lent = (lent_args, *lent_maps)
    found = any(type(item) is _Lent for item in lent_args) or any(
        type(item) is _Lent for values in lent_maps if values for item in values.values())
    return lent if found else parts


def _held(data: bytes) -> Union[bytes, OutOfBand]:
    return data if len(data) < OUT_OF_BAND else OutOfBand(data)


def _bytes_in(loads: Callable[[bytes], Any]) -> Callable[[Union[bytes, memoryview]], Any]:
    """A custom serializer's ``loads`` that is also given a view (copied to bytes for it)."""
    def loads_bytes(data: Union[bytes, memoryview]) -> Any:
        return loads(bytes(data) if type(data) is memoryview else data)

    return loads_bytes


class Serializer:
    """Turns objects into bytes and back; ``module`` names a module with ``dumps``/``loads``
    (None: cloudpickle). The same module must be importable on the workers."""

    def __init__(self, module: str | None = None):
        self.module = module
        if module is None:
            import cloudpickle

            self._deep: Callable[[Any], bytes] = lambda value: cloudpickle.dumps(value, protocol=PROTOCOL)
            self.loads: Callable[[Union[bytes, memoryview]], Any] = pickle.loads
        else:
            imported = importlib.import_module(module)
            self._deep = imported.dumps
            self.loads = _bytes_in(imported.loads)

    def dumps(self, value: Any) -> bytes:
        """Bytes for a value: plain pickle for plain data, the full serializer otherwise."""
        if self.module is None and _plain(value):
            return pickle.dumps(value, PROTOCOL)
        return self._deep(value)

    def dumps_plain(self, value: Any) -> bytes:
        """Bytes for a value the caller knows is plain data (scalars in a tuple): with the default
        serializer, plain pickle without the check; with a custom one, that serializer. (Large
        ``bytes`` arguments never come here: :meth:`dumps_arguments` lends them.)"""
        if self.module is None:
            return pickle.dumps(value, PROTOCOL)
        return self._deep(value)

    def dumps_arguments(self, value: tuple[Any, ...]) -> Union[bytes, OutOfBand]:
        """:meth:`dumps` for a task's ``(args, kwargs, data, globals)``: an OutOfBand when they
        are large (see the module docstring)."""
        if self.module is None:
            lent = _lent(value)
            if lent is not value:
                return self._lend(lent)
        return _held(self.dumps(value))

    def _lend(self, value: Any) -> OutOfBand:
        """``value``, its lent ``bytes`` sent as buffers: only those, others are copied in band."""
        buffers: list[memoryview] = []

        def lend(buffer: pickle.PickleBuffer) -> bool:
            view = buffer.raw()
            if type(view.obj) is not bytes:
                return True  # in band: a copy of what was pushed, even if it changes later
            buffers.append(view)
            return False

        if _plain(value):
            head = pickle.dumps(value, PROTOCOL, buffer_callback=lend)
        else:
            import cloudpickle

            head = cloudpickle.dumps(value, protocol=PROTOCOL, buffer_callback=lend)
        return OutOfBand(head, tuple(buffers))

    def loads_arguments(self, rest: Union[bytes, OutOfBand]) -> Any:
        """A task's arguments back from :meth:`dumps_plain` or :meth:`dumps_arguments` (or a frame)."""
        if isinstance(rest, OutOfBand):
            return pickle.loads(rest.head, buffers=rest.buffers) if rest.buffers else self.loads(rest.head)
        return self.loads(rest)

    def dumps_exception(self, exception: BaseException) -> bytes:
        """Bytes for an exception with its ``__cause__`` and ``__context__`` chain; the exception
        alone when a linked one cannot be serialized."""
        if exception.__cause__ is not None or exception.__context__ is not None:
            try:
                return self._deep(_Chained(exception))
            except Exception:
                pass
        return self.dumps(exception)

    def dumps_command(self, command: Any) -> tuple[bytes, bool]:
        """Bytes for a command and whether they are stable (a by-reference callable or a string)."""
        if isinstance(command, str):
            return (pickle.dumps(command, PROTOCOL) if self.module is None else self._deep(command)), True
        if self.module is None and _by_reference(command):
            try:
                return pickle.dumps(command, PROTOCOL), True
            except Exception:
                pass
        return self._deep(command), False
