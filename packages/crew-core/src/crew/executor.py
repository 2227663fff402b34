"""crew as a `concurrent.futures` executor, and tasks awaited from `asyncio`.

``controller.executor()`` returns an [`Executor`][crew.executor.Executor]: ``submit`` returns a
real `concurrent.futures.Future`, so ``concurrent.futures.wait``, ``as_completed`` and
``loop.run_in_executor`` work with it. ``await controller.push_async(...)`` pushes one task and
awaits its [`crew.Result`][crew.Result] without blocking the event loop.

Like the standard pools, the interpreter does not exit until the calls submitted to an executor
are done (whatever ``shutdown`` was told), and ``submit`` from an exit hook raises `RuntimeError`.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import concurrent.futures
import functools
import inspect
import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Optional

from . import validate
from .errors import CrewError, SettingError, TaskError
from .results import Result

if TYPE_CHECKING:  # pragma: no cover
    from ._controller import Controller

__all__ = ["Executor", "BrokenCrewExecutor", "push_async"]

_executors: weakref.WeakSet[Executor] = weakref.WeakSet()
_exiting = False  # the interpreter is shutting down: no new calls
_LINGER = 0.5  # seconds an idle resolver thread waits for more results before it ends


def _python_exit() -> None:
    """Interpreter exit (``threading``'s hooks, before ``atexit``'s, which end the controllers):
    accept no more calls and wait for the pending ones, as the standard pools do."""
    global _exiting
    _exiting = True
    for executor in list(_executors):
        executor._wait_idle(give_up_on_error=True)


try:  # the hook concurrent.futures.thread uses: runs while the controllers' threads still run
    threading._register_atexit(_python_exit)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # pragma: no cover - another interpreter, or exiting already
    atexit.register(_python_exit)


class BrokenCrewExecutor(concurrent.futures.BrokenExecutor, CrewError):
    """``submit`` on an executor whose controller was terminated (a `RuntimeError`, as the
    standard pools' `BrokenExecutor`, and a [`crew.CrewError`][crew.CrewError])."""


class _Future(concurrent.futures.Future[Any]):
    """A future for one crew task: running once a worker reports the call started; cancelling
    a future that is not running cancels its task on the controller."""

    def __init__(self, executor: Executor):
        super().__init__()
        self._crew_executor = executor
        self._crew_name: str | None = None
        self._crew_notified = False

    @property
    def name(self) -> str | None:
        """The name of the crew task behind this future (``controller.cancel(name)`` interrupts
        it even while it runs)."""
        return self._crew_name

    def cancel(self) -> bool:
        """Cancel the call unless it is running or done; return True if the future is cancelled.

        A call still queued, or sent ahead to a worker and not started, never runs. A running
        call is not disturbed (False), as with the standard executors; crew learns that a call
        started when the worker reports it (after it ran 1 ms), so a call that began just before
        ``cancel`` may still be interrupted. The future is moved to the cancelled-and-notified
        state at once, so ``wait``, ``as_completed`` and ``shutdown(wait=True)`` never wait on it.
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

    def _crew_started(self) -> None:
        """In the controller's loop thread: a worker reports the call started."""
        with self._condition:
            if not (self.running() or self.cancelled() or self.done()):
                self.set_running_or_notify_cancel()


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``fn`` on each argument tuple of one ``map`` chunk, in a worker."""
    return [fn(*args) for args in chunk]


def _run_chunk_of_one(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    """Run ``fn`` on each value of one chunk of a ``map`` over one iterable, in a worker (the
    values travel bare, not each in a tuple: a fifth of the pickling and unpickling)."""
    return [fn(value) for value in chunk]


def _settlement(result: Result) -> tuple[bool, Any]:
    """(True, value) or (False, exception) for a task's result; None for a cancel."""
    if result.status == "success":
        return True, result.result
    if result.status == "error" and isinstance(result.exception, BaseException):
        return False, result.exception
    return False, TaskError(result)


def _settle(future: _Future, success: bool, payload: Any) -> None:
    """Settle ``future`` (its done-callbacks run here); dropped if it was cancelled."""
    try:
        if success:
            future.set_result(payload)
        elif not (future.cancelled() and isinstance(payload, TaskError) and payload.result.status == "cancel"):
            future.set_exception(payload)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled meanwhile: the outcome is dropped


def _result_or_cancel(future: concurrent.futures.Future[Any], end: Optional[float]) -> Any:
    """The future's value; cancel it if that fails (a timeout: the call is not left to run)."""
    try:
        try:
            return future.result(None if end is None else end - time.monotonic())
        finally:
            future.cancel()
    finally:
        del future  # no cycle through the exception's traceback


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

    ``future.result()`` returns the call's value, or raises the exception the call raised (with
    its ``__cause__``, and the remote traceback attached as a note); a task that crashed its
    worker too often, timed out or was cancelled by the controller raises
    [`crew.TaskError`][crew.TaskError] (its ``result`` holds the [`crew.Result`][crew.Result]).
    ``future.running()`` becomes True when a worker reports the call started.

    How it differs from `concurrent.futures.ProcessPoolExecutor`, and why:

    - No ``max_workers``, ``mp_context``, ``initializer`` or ``max_tasks_per_child``: the
      controller's launcher and settings decide how many workers run, where, and for how long.
    - A call is reported running once it has run for 1 ms on a worker (the worker does not
      send a frame per tiny task), so ``cancel()`` on a call that started less than that (plus
      the network's delay) before returns True and interrupts it. A running call is never
      cancelled by ``cancel()``; ``controller.cancel(future.name)`` interrupts it on purpose.
    - A call whose worker died is run again (up to the controller's ``crashes_max``); past that,
      or past ``seconds_timeout``, its future raises `crew.TaskError` and the executor stays
      usable. The standard pool breaks instead (`BrokenProcessPool`) and fails every future.
    - ``submit`` raises [`BrokenCrewExecutor`][crew.executor.BrokenCrewExecutor] (a
      `BrokenExecutor`) only once the controller was terminated.
    - Callables and arguments are serialized with the controller's serializer (cloudpickle by
      default): lambdas, local functions and ``__main__`` objects work; they need not be
      importable by the worker.
    - Done-callbacks run in the executor's resolver threads (one more starts whenever every
      one is busy in a callback, so a callback may wait on another future of the executor), not
      in the caller's process's pool threads nor in the controller's own threads.
    - ``map`` submits every call at once (as the standard pools do); ``chunksize`` works as
      for `ProcessPoolExecutor`. Leaving its iterator early (or its timeout) cancels the calls not
      started; running ones finish, as with the standard pools.
    - The calls' results do not come out of the controller's ``pop()``/``collect()``.
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
        self._changed = threading.Condition(self._lock)  # live, items or free changed
        self._live: set[_Future] = set()  # futures whose task the controller has not resolved
        self._settling = 0  # futures being settled (their done-callbacks running)
        self._items: collections.deque[tuple[_Future, bool, Any]] = collections.deque()
        self._free = 0  # resolver threads not running a settlement
        self._resolvers: list[threading.Thread] = []
        self._shutdown = False
        _executors.add(self)

    @property
    def controller(self) -> Controller:
        """The controller that runs this executor's tasks."""
        return self._controller

    # ------------------------------------------------------------------ submit
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args, **kwargs)`` as a task; return a future for its value."""
        future = _Future(self)
        with self._lock:
            self._check_open()
            self._live.add(future)
        try:
            name = self._controller.push(fn, args=args, kwargs=kwargs or None, on_start=future._crew_started,
                                         callback=functools.partial(self._on_result, future), **self._options)
        except BaseException as error:
            with self._lock:
                self._live.discard(future)
                self._changed.notify_all()
            if isinstance(error, CrewError) and getattr(self._controller, "terminated", False):
                raise BrokenCrewExecutor(f"controller {self._controller.name!r} was terminated") from error
            raise
        future._crew_name = name
        if future.cancelled():  # cancelled by shutdown(cancel_futures=True) while being pushed
            self._controller.cancel(names=[name])
        return future

    def _check_open(self) -> None:
        """With the lock held: refuse a call the way the standard pools do."""
        if _exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if getattr(self._controller, "terminated", False):
            raise BrokenCrewExecutor(f"controller {self._controller.name!r} was terminated; make a new one")

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
        exception when its value is reached; leaving the iterator early (or a timeout) cancels
        the calls not started, the one timed out on included. The iterator keeps no value it
        has handed out.
        """
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, not {chunksize!r}.")
        if timeout is not None:
            timeout = validate.number("timeout", timeout)
        end = None if timeout is None else timeout + time.monotonic()
        if chunksize == 1:
            futures = [self.submit(fn, *args) for args in zip(*iterables)]
        elif len(iterables) == 1:
            futures = [self.submit(_run_chunk_of_one, fn, chunk) for chunk in _chunks(iterables[0], chunksize)]
        else:
            futures = [self.submit(_run_chunk, fn, chunk) for chunk in _chunks(zip(*iterables), chunksize)]
        return self._values(futures, end, chunksize > 1)

    def _values(self, futures: list[concurrent.futures.Future[Any]], end: Optional[float],
                chunked: bool) -> Iterator[Any]:
        try:
            futures.reverse()
            while futures:
                if not chunked:
                    yield _result_or_cancel(futures.pop(), end)
                    continue
                chunk = _result_or_cancel(futures.pop(), end)
                chunk.reverse()
                while chunk:
                    yield chunk.pop()
        finally:
            self._cancel_many(futures)

    # ------------------------------------------------------------------ shutdown
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more calls. ``cancel_futures=True`` cancels every call not started (see
        `_Future.cancel`); ``wait=True`` returns once every call has finished and its
        done-callbacks have run. With ``terminate=True`` the controller is terminated last."""
        with self._lock:
            self._shutdown = True
            pending = list(self._live)
            self._changed.notify_all()  # idle resolver threads end
        if cancel_futures:
            self._cancel_many(pending)
        del pending
        if wait:
            self._wait_idle(give_up_on_error=False)
            me = threading.current_thread()
            for thread in list(self._resolvers):
                if thread is not me:
                    thread.join()
        if self._terminate:
            self._controller.terminate()

    def _wait_idle(self, give_up_on_error: bool) -> None:
        """Wait until no call is in flight; the controller's error (e.g. workers cannot launch)
        is raised, or ends the wait with ``give_up_on_error``."""
        with self._changed:
            while self._live or self._settling or self._items:
                self._changed.wait(self._controller.client.seconds_interval)
                if self._live and give_up_on_error:
                    try:
                        self._controller.raise_error()
                    except Exception:
                        return
                elif self._live:
                    self._controller.raise_error()

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
        """In the controller's loop thread (the result is ours, not pop()'s): settle a future that
        has no done-callback here (only waiters wake: no user code runs in the loop, and it saves
        the round trip a hand-off between threads); else hand it to a resolver thread, starting
        one if every one is busy in a done-callback."""
        success, payload = _settlement(result)
        del result
        with future._condition:  # add_done_callback waits for this: none is added meanwhile
            if not future._done_callbacks:  # type: ignore[attr-defined]
                _settle(future, success, payload)
                with self._lock:  # after settling: shutdown(wait=True) returns once it is done
                    self._live.discard(future)
                    self._changed.notify_all()
                return
        with self._lock:
            self._items.append((future, success, payload))
            if self._free == 0:
                self._start_resolver()
            self._changed.notify_all()

    def _resolve(self) -> None:
        """A resolver thread: settle futures (their done-callbacks run here); ends when nothing
        is left to settle."""
        while True:
            with self._lock:
                while not self._items:
                    if self._shutdown or not (self._changed.wait(_LINGER) or self._items):
                        self._free -= 1
                        self._resolvers.remove(threading.current_thread())
                        self._changed.notify_all()
                        return
                future, success, payload = self._items.popleft()
                self._live.discard(future)  # before settling: no reference outlives the call
                self._settling += 1
                self._free -= 1
                if self._items and self._free == 0:  # the next one must not wait on this callback
                    self._start_resolver()
            try:
                _settle(future, success, payload)
            finally:
                del future, payload
                with self._lock:
                    self._settling -= 1
                    self._free += 1
                    self._changed.notify_all()

    def _start_resolver(self) -> None:
        """With the lock held: one more resolver thread (counted free until it takes an item)."""
        self._free += 1
        thread = threading.Thread(target=self._resolve, daemon=True,
                                  name=f"crew-executor-{self._controller.name}-{len(self._resolvers)}")
        self._resolvers.append(thread)
        thread.start()

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "open"
        return f"Executor(controller={self._controller.name!r}, in_flight={len(self._live)}, {state})"


def _check_push_options(controller: Controller, options: dict[str, Any]) -> None:
    allowed = set(inspect.signature(controller.push).parameters) - {"command", "callback"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise SettingError(f"unknown push options: {unknown}; allowed: {sorted(allowed)}")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
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
