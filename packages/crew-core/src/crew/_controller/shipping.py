"""Functions shipped by value (defined in ``__main__``, a notebook, or inside another function):
serialized once, and again only when they change.

cloudpickle serializes such a function with a snapshot of the globals it reads. Serializing it
at every push costs tens of microseconds, so the controller keeps the bytes, keyed weakly by the
function, with a *fingerprint*: the function's code, its defaults, its closure's contents and the
objects bound to every global name it (or a function nested in it) reads. A push reuses the bytes
while the fingerprint is the same, object for object:

- redefining the function, or rebinding a global it reads (``factor = 3`` after ``factor = 2``),
  ships it anew: workers see the new value;
- changing an object in place (``table.append(4)``, ``config["k"] = 1``) is not seen: workers keep
  the snapshot of the first push. Rebind the name, or pass the object as an argument.

Owner: callers' threads, through the intake; entries are replaced whole.
"""

from __future__ import annotations

import operator
import types
import weakref
from typing import Any, Optional

__all__ = ["ByValueCache"]

_MISSING = object()
_NAMES: dict[types.CodeType, tuple[str, ...]] = {}  # global names read by a code object and its nested ones
_NAMES_MAX = 1024


def _names(code: types.CodeType) -> tuple[str, ...]:
    found = _NAMES.get(code)
    if found is None:
        names = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                names.update(_names(const))
        found = tuple(sorted(names))
        if len(_NAMES) > _NAMES_MAX:
            _NAMES.clear()
        _NAMES[code] = found
    return found


def fingerprint(function: types.FunctionType) -> tuple[Any, ...]:
    """What a function's serialized bytes depend on, as one flat tuple compared object by object:
    its code, defaults, closure contents and the objects bound to the global names it reads."""
    scope = function.__globals__
    closure = function.__closure__
    return (function.__code__, function.__defaults__, function.__kwdefaults__,
            *(map(_contents, closure) if closure else ()),
            *(scope.get(name, _MISSING) for name in _names(function.__code__)))


def _contents(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # a cell not filled yet
        return _MISSING


def _same(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return len(old) == len(new) and all(map(operator.is_, old, new))


class ByValueCache:
    """Serialized bytes of functions shipped by value, while they stay the same. Functions are
    held weakly: an entry goes when its function is collected."""

    def __init__(self) -> None:
        # id(function) -> (weak reference to it, fingerprint, bytes, shown)
        self._entries: dict[int, tuple[weakref.ref[types.FunctionType], tuple[Any, ...], bytes, str]] = {}

    def get(self, function: Any) -> Optional[tuple[bytes, str]]:
        """(bytes, shown) of an unchanged function pushed before, else None."""
        entry = self._entries.get(id(function))
        if entry is None:
            return None
        alive = entry[0]()
        if alive is None or alive is not function or not _same(entry[1], fingerprint(alive)):
            return None
        return entry[2], entry[3]

    def put(self, function: Any, blob: bytes, shown: str) -> None:
        if type(function) is not types.FunctionType:
            return
        key = id(function)
        entries = self._entries

        def forget(_: object) -> None:
            entry = entries.get(key)
            if entry is not None and entry[0]() is None:
                del entries[key]

        entries[key] = (weakref.ref(function, forget), fingerprint(function), blob, shown)
