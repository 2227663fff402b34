"""Serialization of tasks and results: cloudpickle, with a fast path for plain data."""

from __future__ import annotations

import importlib
import pickle
from typing import Any, Callable

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
    """True for a function or class that the worker can import by name: not from __main__, not
    local, and not in a module registered with ``cloudpickle.register_pickle_by_value``."""
    module = getattr(command, "__module__", None)
    qualname = getattr(command, "__qualname__", "")
    if not (isinstance(module, str) and module != "__main__" and "<" not in qualname and callable(command)):
        return False
    try:
        from cloudpickle import cloudpickle as _cloudpickle

        return bool(_cloudpickle._should_pickle_by_reference(command))
    except Exception:  # a cloudpickle without that helper: trust the module name
        return True


class Serializer:
    """Turns objects into bytes and back; ``module`` names a module with ``dumps``/``loads``
    (None: cloudpickle). The same module must be importable on the workers."""

    def __init__(self, module: str | None = None):
        self.module = module
        if module is None:
            import cloudpickle

            self._deep: Callable[[Any], bytes] = lambda value: cloudpickle.dumps(value, protocol=PROTOCOL)
            self.loads: Callable[[bytes], Any] = pickle.loads
        else:
            imported = importlib.import_module(module)
            self._deep = imported.dumps
            self.loads = imported.loads

    def dumps(self, value: Any) -> bytes:
        """Bytes for a value: plain pickle for plain data, the full serializer otherwise."""
        if self.module is None and _plain(value):
            return pickle.dumps(value, PROTOCOL)
        return self._deep(value)

    def dumps_plain(self, value: Any) -> bytes:
        """Bytes for a value the caller knows is plain data (scalars in a tuple): with the default
        serializer, plain pickle without the check; with a custom one, that serializer."""
        if self.module is None:
            return pickle.dumps(value, PROTOCOL)
        return self._deep(value)

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
