"""Task intake: check what a caller pushes and encode it, through the client's one serializer.

Owner: runs in callers' threads. Its one piece of state is the command cache (a command pushed
before is not serialized again): a dict whose entries are added and replaced whole, so two callers
racing on it at worst serialize a command twice. It holds only strings and what a module keeps
alive anyway (module-level functions, classes, builtins): never a partial, a bound method or a
callable instance, whose arguments or instance must be freed once their tasks are done. Functions
shipped by value are kept weakly, with what their bytes depend on (see
:mod:`crew._controller.shipping`).
"""

from __future__ import annotations

import functools
import pickle
import types
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, Union

from .. import validate
from .._protocol import OUT_OF_BAND, OutOfBand
from .._serial import PROTOCOL, Serializer
from ..errors import SettingError
from .shipping import ByValueCache
from .task import Task

__all__ = ["Intake"]

_SCALARS = frozenset({int, float, str, bool, type(None)})  # and bytes under OUT_OF_BAND: see quick()
_CACHE_MAX = 256


class Intake:
    """Builds :class:`Task` objects from what callers push."""

    def __init__(self, serializer: Serializer):
        self.serializer = serializer
        # Plain data: pickle itself (a C call) with the default serializer, else the serializer.
        self._plain: Callable[[Any], bytes] = (functools.partial(pickle.dumps, protocol=PROTOCOL)
                                               if serializer.module is None else serializer.dumps_plain)
        self._cache: dict[int, tuple[Any, bytes, str]] = {}  # id(command) -> (command, bytes, shown)
        self._by_value = ByValueCache()  # functions shipped by value, while unchanged

    def quick(self, command: Any, args: Any, name: Any) -> Optional[Task]:
        """The task for the commonest push (a cached command, scalar positional arguments, no
        other option), or None when the full check is needed."""
        if type(args) is not tuple or not (name is None or type(name) is str):
            return None
        cached = self._cache.get(id(command))
        if cached is not None and cached[0] is command:
            blob, shown = cached[1], cached[2]
        else:
            shipped = self._by_value.get(command)
            if shipped is None:
                return None
            blob, shown = shipped
        for value in args:
            if type(value) not in _SCALARS and (type(value) is not bytes or len(value) >= OUT_OF_BAND):
                return None  # a large bytes argument is lent, not pickled: see Serializer.dumps_arguments
        return Task(name, shown, blob, self._plain((args, None, None, None)) if args else None)

    def task(self, command: Any, args: Sequence[Any] = (), kwargs: Optional[Mapping[str, Any]] = None,
             data: Optional[Mapping[str, Any]] = None, globals_: Optional[Mapping[str, Any]] = None,
             name: Optional[str] = None, seed: Optional[int] = None, seconds_timeout: Optional[float] = None,
             blob: Optional[bytes] = None) -> Task:
        """A checked, encoded task. Raises :class:`crew.SettingError` naming the bad argument."""
        shown = _shown(command)
        if data and not isinstance(command, str):
            raise SettingError("data applies only to string commands; pass args or kwargs to a callable")
        if not isinstance(args, (tuple, list)):
            raise SettingError(f"args must be a tuple or list, not {args!r}")
        for label, value in (("kwargs", kwargs), ("data", data), ("globals", globals_)):
            if value is not None and not (isinstance(value, Mapping) and all(isinstance(k, str) for k in value)):
                raise SettingError(f"{label} must be a dict with string keys or None, not {value!r}")
        if name is not None and not isinstance(name, str):
            raise SettingError(f"name must be a string or None, not {name!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SettingError(f"seed must be an integer or None, not {seed!r}")
        if seconds_timeout is not None:
            seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        if blob is None:
            blob = self.command_bytes(command)
        rest = None
        if args or kwargs or data or globals_:
            rest = self._rest((tuple(args), dict(kwargs) if kwargs else None, dict(data) if data else None,
                               dict(globals_) if globals_ else None))
        return Task(name, shown, blob, rest, seed, seconds_timeout)

    def walk(self, command: Any, iterate: Mapping[str, Sequence[Any]], data: Optional[Mapping[str, Any]],
             globals_: Optional[Mapping[str, Any]], names: Optional[Sequence[str]], seed: Optional[int],
             seconds_timeout: Optional[float], taken: Callable[[list[str]], list[str]]) -> list[Task]:
        """One task per element of the lists in ``iterate`` (see ``Controller.walk``); ``taken``
        says which names are in use."""
        count, checked = _walk_names(iterate, names, taken)
        blob = self.command_bytes(command) if not isinstance(command, str) else None
        tasks = []
        for index in range(count):
            values = {key: column[index] for key, column in iterate.items()}
            name = None if checked is None else checked[index]
            index_seed = None if seed is None else seed + index
            if isinstance(command, str):
                tasks.append(self.task(command, (), None, {**(data or {}), **values}, globals_, name, index_seed,
                                       seconds_timeout, blob))
            else:
                tasks.append(self.task(command, (), values, None, globals_, name, index_seed, seconds_timeout, blob))
        return tasks

    def _rest(self, parts: tuple[Any, ...]) -> Union[bytes, OutOfBand]:
        try:
            return self.serializer.dumps_arguments(parts)
        except Exception:
            for label, part in zip(("args", "kwargs", "data", "globals"), parts):
                try:
                    self.serializer.dumps(part)
                except Exception as error:
                    raise SettingError(f"{label} cannot be serialized: {type(error).__name__}: {error}") from None
            raise

    def command_bytes(self, command: Any) -> bytes:
        """The serialized command; kept for next time when the bytes are stable (a string, or a
        callable the worker imports by name)."""
        cached = self._cache.get(id(command))
        if cached is not None and cached[0] is command:
            return cached[1]
        shown = _shown(command)
        shipped = self._by_value.get(command)
        if shipped is not None:
            return shipped[0]
        try:
            blob, stable = self.serializer.dumps_command(command)
        except Exception as error:
            raise SettingError(f"command cannot be serialized: {type(error).__name__}: {error}") from None
        if stable and _cacheable(command):
            if len(self._cache) > _CACHE_MAX:
                self._cache.clear()
            self._cache[id(command)] = (command, blob, shown)
        elif not stable:
            self._by_value.put(command, blob, shown)
        return blob


def _walk_names(iterate: Mapping[str, Sequence[Any]], names: Optional[Sequence[str]],
                taken: Callable[[list[str]], list[str]]) -> tuple[int, Optional[list[str]]]:
    iterate = validate.mapping("iterate", iterate, allow_none=False)
    lengths = {len(values) for values in iterate.values()}
    if len(lengths) > 1:
        raise SettingError("iterate must hold lists of one length, not " + repr({k: len(v) for k, v in iterate.items()}))
    count = lengths.pop() if lengths else 0
    if names is None:
        return count, None
    checked = list(validate.strings("names", names))
    if len(checked) != count or len(set(checked)) != count:
        raise SettingError(f"names must be {count} distinct strings, one per task")
    used = taken(checked)
    if used:
        raise SettingError(f"names {used[:5]!r} are already used by tasks not yet popped")
    return count, checked


def _cacheable(command: Any) -> bool:
    """Whether keeping ``command`` in the cache keeps nothing alive that its module does not."""
    if isinstance(command, (str, types.FunctionType, type)):
        return True
    return isinstance(command, types.BuiltinFunctionType) and isinstance(command.__self__, types.ModuleType)


def _shown(command: Any) -> str:
    """The command as results show it; raises SettingError for something that is not a command."""
    if isinstance(command, str):
        if not command.strip():
            raise SettingError("command must be a callable or a non-empty string of Python code")
        return command
    if callable(command):
        return getattr(command, "__qualname__", None) or repr(command)
    raise SettingError(f"command must be a callable or a string of Python code, not {command!r}")
