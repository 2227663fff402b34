"""crew as a `concurrent.futures` executor, and tasks awaited from `asyncio`.

``controller.executor()`` returns an [`Executor`][crew.executor.Executor]: ``submit`` returns a
real `concurrent.futures.Future`, so ``concurrent.futures.wait``, ``as_completed`` and
``loop.run_in_executor`` work with it. ``await controller.push_async(...)`` pushes one task and
awaits its [`crew.Result`][crew.Result] without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import validate
from .errors import SettingError, TaskError
from .results import Result

if TYPE_CHECKING:  # pragma: no cover
    from ._controller import Controller

__all__ = ["Executor", "push_async"]

_STOP = object()


class _Future(concurrent.futures.Future[Any]):
    """A future for one crew task; cancelling it cancels the task on the controller."""

    def __init__(self, executor: Executor):
        super().__init__()
        self._crew_executor = executor
        self._crew_name: str | None = None
        self._crew_notified = False

    @property
    def name(self) -> str | None:
        """The name of the crew task behind this future."""
        return self._crew_name

    def cancel(self) -> bool:
        """Cancel the task unless it has finished; return True if the future is now cancelled.

        A task still queued, or sent ahead to a worker and not started, never runs; a task that a
        worker already runs is interrupted (crew cannot see a remote task start). The future is
        moved to the cancelled-and-notified state at once, so ``concurrent.futures.wait``,
        ``as_completed`` and ``shutdown(wait=True)`` never wait on it.
        """
        if not self._mark_cancelled():
            return False
        self._crew_executor._cancel_tasks([self])
        return True

    def _mark_cancelled(self) -> bool:
        """Cancel the future object alone (no message to the controller)."""
        if not super().cancel():
            return False
        with self._condition:
            first = not self._crew_notified
            self._crew_notified = True
        if first:
            # CANCELLED -> CANCELLED_AND_NOTIFIED: wakes wait()/as_completed() waiters.
            self.set_running_or_notify_cancel()
        return True


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``fn`` on each argument tuple of one ``map`` chunk, in a worker."""
    return [fn(*args) for args in chunk]


def _outcome(future: concurrent.futures.Future[Any], result: Result) -> None:
    """Settle ``future`` from a task's result (ignored if the future was cancelled)."""
    try:
        if result.status == "success":
            future.set_result(result.result)
        elif result.status == "error" and isinstance(result.exception, BaseException):
            future.set_exception(result.exception)
        elif result.status == "cancel" and future.cancelled():
            return
        else:
            future.set_exception(TaskError(result))
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile: the outcome is dropped


class Executor(concurrent.futures.Executor):
    """A `concurrent.futures.Executor` that runs each call as a task of ``controller``.

    Make one with ``controller.executor(**options)``.

    Arguments:
        controller: the [`crew.Controller`][crew.Controller] that runs the tasks (started on first use).
        seconds_timeout: the time limit of each task (None: no limit). A task past it raises
            [`crew.TaskError`][crew.TaskError] from ``future.result()``.
        globals: names set in the worker's global namespace for each task.
        terminate: also terminate the controller in `shutdown` (default False: the
            controller outlives the executor).

    ``future.result()`` returns the call's value, or raises the exception the call raised, with
    the remote traceback attached as a note; a task that crashed its worker too often, timed out
    or was cancelled by the controller raises [`crew.TaskError`][crew.TaskError] (its ``result``
    holds the [`crew.Result`][crew.Result]). Futures' done-callbacks run in a thread of the
    executor, never in the controller's own threads.
    """

    def __init__(
        self,
        controller: Controller,
        *,
        seconds_timeout: float | None = None,
        globals: dict[str, Any] | None = None,
        terminate: bool = False,
    ):
        if not all(callable(getattr(controller, method, None)) for method in ("push", "cancel", "raise_error")):
            raise SettingError(f"controller must be a crew.Controller, not {controller!r}")
        self._controller = controller
        self._options: dict[str, Any] = {}
        if seconds_timeout is not None:
            self._options["seconds_timeout"] = validate.number(
                "seconds_timeout", seconds_timeout, exclusive_minimum=True)
        globals_ = validate.mapping("globals", globals)
        if globals_:
            self._options["globals"] = globals_
        self._terminate = validate.flag("terminate", terminate)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._live: set[_Future] = set()  # futures whose task the controller has not resolved
        self._shutdown = False
        self._resolutions: queue.SimpleQueue[Any] = queue.SimpleQueue()  # (future, result) or _STOP
        self._resolver: threading.Thread | None = None

    @property
    def controller(self) -> Controller:
        """The controller that runs this executor's tasks."""
        return self._controller

    # ------------------------------------------------------------------ submit
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a task; return a future for its value."""
        future = _Future(self)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._live.add(future)
            if self._resolver is None:
                self._resolver = threading.Thread(
                    target=self._resolve, name=f"crew-executor-{self._controller.name}", daemon=True)
                self._resolver.start()
        try:
            name = self._controller.push(fn, args=args, kwargs=kwargs or None,
                                         callback=functools.partial(self._on_result, future), **self._options)
        except BaseException:
            with self._lock:
                self._live.discard(future)
                self._stop_if_idle()
            raise
        future._crew_name = name
        if future.cancelled():  # cancelled by shutdown(cancel_futures=True) while being pushed
            self._controller.cancel(names=[name])
        return future

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Like `map`, with the calls run as tasks; values come back in the input's order.

        Every call is submitted at once. ``timeout`` (seconds, from this call) bounds the wait
        for each next value and raises `TimeoutError`. ``chunksize`` > 1 runs that many
        calls in one task (less overhead for tiny calls). A call that raised re-raises its
        exception when its value is reached; leaving the iterator early cancels what is left.
        """
        if timeout is not None:
            end = timeout + time.monotonic()
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        calls = zip(*iterables)
        if chunksize == 1:
            futures = [self.submit(fn, *args) for args in calls]
        else:
            futures = [self.submit(_run_chunk, fn, chunk) for chunk in _chunks(calls, chunksize)]

        def values() -> Iterator[Any]:
            try:
                futures.reverse()
                while futures:
                    future = futures.pop()
                    if timeout is None:
                        value = future.result()
                    else:
                        value = future.result(end - time.monotonic())
                    if chunksize == 1:
                        yield value
                    else:
                        yield from value
                    del future, value
            finally:
                self._cancel_many(futures)

        return values()

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more calls. ``cancel_futures=True`` cancels every call not yet finished
        (see `concurrent.futures.Future.cancel`); ``wait=True`` returns once the controller
        has resolved every task this executor pushed. With ``terminate=True`` the controller is
        terminated last."""
        with self._lock:
            self._shutdown = True
            pending = [future for future in self._live if not future.done()]
            self._stop_if_idle()
        if cancel_futures:
            self._cancel_many(pending)
        if wait:
            with self._idle:
                while self._live:
                    self._idle.wait(self._controller.client.seconds_interval)
                    if self._live:
                        self._controller.raise_error()  # e.g. workers cannot launch: do not hang
        if self._terminate:
            self._controller.terminate()

    # ------------------------------------------------------------------ internals
    def _cancel_tasks(self, futures: list[_Future]) -> None:
        names = [future._crew_name for future in futures if future._crew_name is not None]
        if names:
            self._controller.cancel(names=names)

    def _cancel_many(self, futures: Iterable[concurrent.futures.Future[Any]]) -> None:
        """Cancel many futures with one message to the controller."""
        cancelled = [future for future in futures if isinstance(future, _Future) and future._mark_cancelled()]
        self._cancel_tasks(cancelled)

    def _on_result(self, future: _Future, result: Result) -> None:
        """In the controller's loop thread (the result is ours, not pop()'s): hand it on."""
        self._resolutions.put((future, result))

    def _resolve(self) -> None:
        """The executor's thread: settle futures (their done-callbacks run here)."""
        while True:
            item = self._resolutions.get()
            if item is _STOP:
                return
            future, result = item
            del item
            _outcome(future, result)
            with self._lock:
                self._live.discard(future)
                del future, result  # hold no reference to a settled future
                if not self._live:
                    self._idle.notify_all()
                    if self._shutdown:
                        self._resolver = None
                        return

    def _stop_if_idle(self) -> None:
        """With the lock held: end the resolver thread once shut down with nothing in flight."""
        if self._shutdown and not self._live and self._resolver is not None:
            self._resolver = None
            self._resolutions.put(_STOP)
            self._idle.notify_all()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"Executor(controller={self._controller.name!r}, in_flight={len(self._live)}, {state})"


def _check_push_options(controller: Controller, options: dict[str, Any]) -> None:
    allowed = set(inspect.signature(controller.push).parameters) - {"command", "callback"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SettingError(f"unknown push options: {unknown}; allowed: {sorted(allowed)}")


def _chunks(items: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    iterator = iter(items)
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk:
            return
        yield chunk


async def push_async(controller: Controller, command: Callable[..., Any] | str, **options: Any) -> Result:
    """Push one task and await its [`crew.Result`][crew.Result] (``options`` as for
    ``Controller.push``).

    The event loop is woken when the task resolves (no polling). The result does not also come
    out of the controller's ``pop()``. Cancelling the awaiting coroutine cancels the task.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[Result] = loop.create_future()

    def settle(result: Result) -> None:
        if not waiter.done():
            waiter.set_result(result)

    def callback(result: Result) -> None:  # in the controller's loop thread
        try:
            loop.call_soon_threadsafe(settle, result)
        except RuntimeError:  # the event loop was closed meanwhile
            pass

    _check_push_options(controller, options)
    name = controller.push(command, callback=callback, **options)
    try:
        return await waiter
    except asyncio.CancelledError:
        controller.cancel(names=[name])
        raise
