"""A group of controllers used as one: push to a named member, wait and collect across all."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Union

from . import validate
from ._controller import Controller
from ._controller.outcome import ERROR_MODES, check
from .errors import SettingError
from .results import Result

__all__ = ["ControllerGroup"]

_Command = Union[Callable[..., Any], str]  # a function, or a string of code
_Iterate = Mapping[str, Sequence[Any]]


class ControllerGroup:
    """Several controllers (e.g. local workers and cluster workers) behind one interface.

    ``push``, ``walk`` and ``map`` go to the member named by ``controller`` (default: the
    first); ``pop``, ``collect``, ``wait``, ``cancel`` and ``summary`` span every member.
    """

    def __init__(self, controllers: Iterable[Controller]):
        members = list(controllers)
        if not members or not all(isinstance(member, Controller) for member in members):
            raise SettingError("controllers must be a non-empty list of crew.Controller")
        names = [member.name for member in members]
        if len(set(names)) != len(names):
            raise SettingError(f"controllers must have distinct names, not {names!r}")
        self.controllers: dict[str, Controller] = dict(zip(names, members))
        self._cond = threading.Condition()
        for member in members:
            member.add_listener(self._changed)

    def _changed(self) -> None:
        """A member resolved tasks (called in its loop thread): wake the group's waiters."""
        with self._cond:
            self._cond.notify_all()

    def member(self, controller: str | None = None) -> Controller:
        """The member named ``controller`` (the first when None)."""
        if controller is None:
            return next(iter(self.controllers.values()))
        validate.choice("controller", controller, self.controllers)
        return self.controllers[controller]

    def start(self) -> ControllerGroup:
        for member in self.controllers.values():
            member.start()
        return self

    def terminate(self) -> None:
        for member in self.controllers.values():
            member.terminate()

    def __enter__(self) -> ControllerGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    def push(self, command: _Command, *, controller: str | None = None, **options: Any) -> str:
        """Push one task to a member (see :meth:`crew.Controller.push`)."""
        return self.member(controller).push(command, **options)

    def walk(self, command: _Command, iterate: _Iterate, *, controller: str | None = None,
             **options: Any) -> list[str]:
        return self.member(controller).walk(command, iterate, **options)

    def map(self, command: _Command, iterate: _Iterate, *, controller: str | None = None,
            **options: Any) -> list[Result]:
        return self.member(controller).map(command, iterate, **options)

    def members(self, controllers: Iterable[str] | None = None) -> list[Controller]:
        """The members named in ``controllers`` (all when None), in the group's order."""
        if controllers is None:
            return list(self.controllers.values())
        names = set(validate.strings("controllers", controllers))
        unknown = sorted(names - set(self.controllers))
        if unknown:
            raise SettingError(f"controllers must name members of the group ({sorted(self.controllers)}), "
                               f"not {unknown}")
        return [member for name, member in self.controllers.items() if name in names]

    def pop(self, scale: bool = True, error: str = "silent",
            controllers: Iterable[str] | None = None) -> Result | None:
        """The next result of any member (of those named in ``controllers``), or None; ``error``
        as for :meth:`crew.Controller.pop`."""
        for member in self.members(controllers):
            result = member.pop(scale=scale, error=error)
            if result is not None:
                return result
        return None

    def collect(self, scale: bool = True, frame: bool = False, error: str = "silent",
                controllers: Iterable[str] | None = None) -> Any:
        """Every result of the members (named in ``controllers``); with ``frame=True`` a pandas
        DataFrame; ``error`` as for :meth:`crew.Controller.collect` (applied once all are taken)."""
        results: list[Result] = []
        for member in self.members(controllers):
            results.extend(member.collect(scale=scale))
        check(results, validate.choice("error", error, ERROR_MODES))
        if frame:
            from ._frame import results_frame

            return results_frame(results)
        return results

    def wait(self, mode: str = "all", seconds_timeout: float | None = None,
             controllers: Iterable[str] | None = None) -> bool:
        """Block until every member (named in ``controllers``) has resolved everything (``"all"``)
        or any has a result to pop (``"one"``); False if ``seconds_timeout`` passed first."""
        validate.choice("mode", mode, ("all", "one"))
        deadline = math.inf if seconds_timeout is None else time.monotonic() + seconds_timeout
        members = self.members(controllers)
        with self._cond:
            while True:
                # wait(seconds_timeout=0) checks one member at once: it raises the member's
                # error, wakes its scaler if needed, and says whether it is done.
                if all([member.wait("all", seconds_timeout=0) for member in members]):
                    return True
                if mode == "one" and any(member.results_ready() for member in members):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 1.0))

    def cancel(self, names: Union[str, Iterable[str], None] = None, all: bool = False,
               controllers: Iterable[str] | None = None) -> None:
        """Cancel tasks by name, or all, in the members named in ``controllers`` (all when None)."""
        for member in self.members(controllers):
            member.cancel(names, all=all)

    def scale(self) -> int:
        return sum(member.scale() for member in self.controllers.values())

    def unresolved(self) -> int:
        return sum(member.unresolved() for member in self.controllers.values())

    def resolved(self) -> int:
        return sum(member.resolved() for member in self.controllers.values())

    def empty(self) -> bool:
        return all(member.empty() for member in self.controllers.values())

    def summary(self, by: str = "worker", controllers: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The members' summaries (of those named in ``controllers``), one after the other."""
        return [row for member in self.members(controllers) for row in member.summary(by=by)]
