"""The one helper that checks settings, used by crew and by every launcher plugin.

Each function returns the value (normalised) or raises :class:`crew.SettingError` naming the
argument and what is allowed. Call them once, in a constructor, never in a hot path.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast, overload

from .errors import SettingError

__all__ = ["number", "integer", "text", "choice", "flag", "strings", "mapping", "path", "megabytes"]


def _fail(name: str, allowed: str, value: Any) -> SettingError:
    return SettingError(f"{name} must be {allowed}, not {value!r}")


@overload
def number(name: str, value: Any, *, minimum: float | None = ..., maximum: float | None = ...,
           allow_none: Literal[False] = ..., allow_inf: bool = ..., exclusive_minimum: bool = ...) -> float: ...
@overload
def number(name: str, value: Any, *, minimum: float | None = ..., maximum: float | None = ...,
           allow_none: bool, allow_inf: bool = ..., exclusive_minimum: bool = ...) -> float | None: ...


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = 0,
    maximum: float | None = None,
    allow_none: bool = False,
    allow_inf: bool = False,
    exclusive_minimum: bool = False,
) -> float | None:
    """A real number within bounds (``minimum`` included unless ``exclusive_minimum``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise _fail(name, _describe(minimum, maximum, allow_none, allow_inf, exclusive_minimum, "a number"), value)
    value = cast(float, value)  # a numbers.Real: typeshed's numbers ABCs lack the comparisons with int
    if math.isinf(value) and not (allow_inf and value > 0):
        raise _fail(name, _describe(minimum, maximum, allow_none, allow_inf, exclusive_minimum, "a finite number"), value)
    too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    if too_low or (maximum is not None and value > maximum):
        raise _fail(name, _describe(minimum, maximum, allow_none, allow_inf, exclusive_minimum, "a number"), value)
    return float(value)


@overload
def integer(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
            allow_none: Literal[False] = ..., allow_inf: Literal[False] = ...) -> int: ...
@overload
def integer(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
            allow_none: Literal[False] = ..., allow_inf: bool) -> int | float: ...
@overload
def integer(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
            allow_none: bool, allow_inf: Literal[False] = ...) -> int | None: ...
@overload
def integer(name: str, value: Any, *, minimum: int | None = ..., maximum: int | None = ...,
            allow_none: bool, allow_inf: bool) -> int | float | None: ...


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = 0,
    maximum: int | None = None,
    allow_none: bool = False,
    allow_inf: bool = False,
) -> int | float | None:
    """A whole number within bounds; ``math.inf`` is returned as is when ``allow_inf``."""
    if value is None and allow_none:
        return None
    if allow_inf and isinstance(value, float) and math.isinf(value) and value > 0:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, _describe(minimum, maximum, allow_none, allow_inf, False, "a whole number"), value)
    value = cast(int, value)  # a numbers.Integral: typeshed's numbers ABCs lack the comparisons with int
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, _describe(minimum, maximum, allow_none, allow_inf, False, "a whole number"), value)
    return int(value)


@overload
def text(name: str, value: Any, *, allow_none: Literal[False] = ..., allow_empty: bool = ...,
         pattern: str | None = ...) -> str: ...
@overload
def text(name: str, value: Any, *, allow_none: bool, allow_empty: bool = ..., pattern: str | None = ...) -> str | None: ...


def text(
    name: str,
    value: Any,
    *,
    allow_none: bool = False,
    allow_empty: bool = False,
    pattern: str | None = None,
) -> str | None:
    """A string; optionally non-empty and matching a regular expression."""
    if value is None and allow_none:
        return None
    what = "a string" if allow_empty else "a non-empty string"
    if pattern is not None:
        what += f" matching {pattern}"
    if allow_none:
        what += " or None"
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _fail(name, what, value)
    if pattern is not None and not re.fullmatch(pattern, value):
        raise _fail(name, what, value)
    return value


def choice(name: str, value: Any, choices: Iterable[Any], *, allow_none: bool = False) -> Any:
    """One of a fixed set of values."""
    options = tuple(choices)
    if (value is None and allow_none) or (not isinstance(value, (list, dict, set)) and value in options):
        return value
    listed = ", ".join(repr(option) for option in options)
    raise _fail(name, f"one of {listed}" + (" or None" if allow_none else ""), value)


def flag(name: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)
    return value


@overload
def strings(name: str, value: Any, *, allow_none: Literal[False] = ...) -> list[str]: ...
@overload
def strings(name: str, value: Any, *, allow_none: bool) -> list[str] | None: ...


def strings(name: str, value: Any, *, allow_none: bool = False) -> list[str] | None:
    """A list of strings; a single string is taken as a list of one."""
    if value is None:
        if allow_none:
            return None
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return items
    raise _fail(name, "a string or a list of strings", value)


@overload
def mapping(name: str, value: Any, *, allow_none: Literal[False],
            values: type | tuple[type, ...] = ...) -> dict[str, Any]: ...
@overload
def mapping(name: str, value: Any, *, allow_none: bool = ...,
            values: type | tuple[type, ...] = ...) -> dict[str, Any] | None: ...


def mapping(name: str, value: Any, *, allow_none: bool = True,
            values: type | tuple[type, ...] = object) -> dict[str, Any] | None:
    """A dict with string keys (and values of the given type)."""
    if value is None:
        return None if allow_none else {}
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, values) for key, item in value.items()
    ):
        kind = "" if values is object else f" of {getattr(values, '__name__', values)}"
        raise _fail(name, f"a dict of string keys{kind}" + (" or None" if allow_none else ""), value)
    return dict(value)


@overload
def path(name: str, value: Any, *, allow_none: Literal[False] = ...) -> str: ...
@overload
def path(name: str, value: Any, *, allow_none: bool) -> str | None: ...


def path(name: str, value: Any, *, allow_none: bool = False) -> str | None:
    """A file-system path (str or os.PathLike), returned as an absolute string."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _fail(name, "a path (str or os.PathLike)" + (" or None" if allow_none else ""), value)
    return os.path.abspath(os.path.expanduser(os.fspath(value)))


def megabytes(gigabytes: float) -> int:
    """Whole megabytes (MiB, rounded up) in a possibly fractional number of gigabytes (1 GB = 1024 MB).

    The one conversion every plugin uses (``--mem``, ``-l h_vmem``, AWS ``MEMORY`` ...). The product
    is rounded to 6 decimals before rounding up, so float noise adds nothing: ``3*0.1*10`` GB is
    3072 MB, not 3073; a real fraction of a megabyte still counts as a whole one.
    """
    return math.ceil(round(gigabytes * 1024, 6))


def _describe(minimum: float | None, maximum: float | None, allow_none: bool, allow_inf: bool, exclusive: bool,
              kind: str) -> str:
    parts = [kind]
    if minimum is not None:
        parts.append(f"{'>' if exclusive else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    text_ = " ".join(parts[:1]) + (" " + " and ".join(parts[1:]) if len(parts) > 1 else "")
    if allow_inf:
        text_ += " (math.inf allowed)"
    if allow_none:
        text_ += " or None"
    return text_
