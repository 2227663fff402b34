"""The controller: queues tasks, sends them to workers in batches, scales workers, returns results.

Threads (all started by :meth:`Controller.start`):

- ``crew-loop`` owns the task and worker state: it is the only thread that changes it. It blocks
  on the socket for workers' frames; pushed tasks, cancels and connection events reach it through
  one queue and wake it with a frame on an in-process pipe. The hot path takes no state lock;
- ``crew-scale`` launches and ends workers, which can take a while on a cluster.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import logging
import math
import os
import pickle
import queue
import secrets
import struct
import sys
import threading
import time
import types
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable

import pynng

from . import _protocol as P
from . import validate
from ._serial import PROTOCOL, Serializer
from .client import Client
from .errors import CrewError, LaunchError, SettingError, TaskError
from .launcher import Contact, Instance, Launcher
from .results import STATUSES, Result

__all__ = ["Controller"]

log = logging.getLogger("crew")

_MAX_AHEAD = 256  # tasks sent to one worker beyond the one it runs
_AHEAD_SECONDS = 0.02  # how much work (by the worker's recent task times) to send ahead
_MAX_BATCH_BYTES = 4 * 2**20
_LAUNCH_FAILURES_MAX = 5  # failed launches in a row that are reported to the user as an error
_STRANGERS_MAX = 64  # connections that have not said hello yet (workers dial in at once on a big launch)
_STOP = object()
_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_STATUS_SET = frozenset(STATUSES)
_live: weakref.WeakSet[Controller] = weakref.WeakSet()


class _Task:
    __slots__ = ("id", "name", "command", "blob", "rest", "seed", "timeout", "crashes", "callback", "suspect")

    def __init__(self, id, name, command, blob, rest, seed, timeout):
        self.id = id
        self.name = name
        self.command = command
        self.blob = blob
        self.rest = rest
        self.seed = seed
        self.timeout = timeout
        self.crashes = 0
        self.callback = None
        self.suspect = False  # its worker died while holding it and others: it runs alone next

    def wire(self) -> tuple:
        return (self.id, self.blob, self.rest, self.seed, self.timeout)


class _Worker:
    """A connected, authenticated worker, as the loop sees it."""

    __slots__ = ("pipe", "id", "pid", "host", "instance", "outstanding", "stealing", "average", "leaving", "budget",
                 "marked", "heard", "inflight", "pending")
    # A worker running a suspect task holds only that task (see Controller._requeue).

    def __init__(self, pipe, id, pid, host, instance, budget):
        self.pipe = pipe
        self.id = id
        self.pid = pid
        self.host = host
        self.instance = instance
        self.outstanding: dict[int, _Task] = {}
        self.stealing: set[int] = set()
        self.average: float | None = None
        self.leaving: str | None = None
        self.budget = budget  # tasks it may still be sent (tasks_max)
        self.marked: int | None = None  # the task it last reported as running
        self.heard = time.monotonic()  # when it last sent a frame
        self.inflight = False  # a frame sent to it and not yet acknowledged
        self.pending: collections.deque[bytes] = collections.deque()  # frames waiting for that ack

    @property
    def limit(self) -> int:
        if self.average is None:
            return 1
        return max(1, min(_MAX_AHEAD, int(_AHEAD_SECONDS / max(self.average, 1e-7))))


class _Slot:
    """Statistics of one worker place in the summary, across relaunches."""

    __slots__ = ("index", "tasks", "seconds", "errors", "warnings", "crashes", "launches", "failed_launches", "instance")

    def __init__(self, index: int):
        self.index = index
        self.tasks = 0
        self.seconds = 0.0
        self.errors = 0
        self.warnings = 0
        self.crashes = 0
        self.launches = 0
        self.failed_launches = 0
        self.instance: Instance | None = None


class Controller:
    """Runs tasks on workers that a launcher starts and a client connects.

    Arguments:
        client: a :class:`crew.Client` (where workers dial in).
        launcher: a :class:`crew.Launcher` (how workers start).
        reset_globals: remove names a task set in the worker's global namespace afterwards.
        reset_modules: unload modules a task imported afterwards.
        garbage_collection: run the garbage collector after each task.
        crashes_max: how many times a task may lose its worker and be run again; one more
            crash resolves it with status ``"crash"`` (or moves it to ``backup``).
        backup: a controller that takes the tasks that crashed too often.
    """

    def __init__(
        self,
        client: Client,
        launcher: Launcher,
        reset_globals: bool = True,
        reset_modules: bool = False,
        garbage_collection: bool = False,
        crashes_max: int = 5,
        backup: Controller | None = None,
    ):
        if not isinstance(client, Client):
            raise SettingError(f"client must be a crew.Client, not {client!r}")
        if not isinstance(launcher, Launcher):
            raise SettingError(f"launcher must be a crew.Launcher, not {launcher!r}")
        if backup is not None and not isinstance(backup, Controller):
            raise SettingError(f"backup must be a crew.Controller or None, not {backup!r}")
        self.client = client
        self.launcher = launcher
        self.reset_globals = validate.flag("reset_globals", reset_globals)
        self.reset_modules = validate.flag("reset_modules", reset_modules)
        self.garbage_collection = validate.flag("garbage_collection", garbage_collection)
        self.crashes_max = validate.integer("crashes_max", crashes_max, minimum=0)
        self.backup = backup
        if launcher.tls is None:
            launcher.tls = client.tls
        self.name = launcher.name or client.profile or f"crew-{secrets.token_hex(3)}"
        if launcher.name is None:
            launcher.name = self.name
        self._serializer = Serializer(client.serializer)
        self._id = secrets.token_hex(8)
        self._secret = secrets.token_hex(32)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._done: dict[str, Result] = {}
        self._names: set[str] = set()
        self._push_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pushed = 0
        self._resolved = 0
        self._command_cache: dict[int, tuple[Any, bytes]] = {}
        self._slots = [_Slot(index) for index in range(1, launcher.workers + 1)]
        self._instances: list[Instance] = []
        self._instances_lock = threading.Lock()
        self._scale_lock = threading.RLock()
        self._scale_wanted = threading.Event()
        self._autoscaling = True
        self._last_round = -math.inf
        self._failed_in_row = 0  # launches that failed since a worker last dialled in
        self._last_queue_check = -math.inf
        self._error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._listeners: list[threading.Condition] = []
        self._started = False
        self._terminated = False
        # State below is owned by the loop thread.
        self._queue: collections.deque[_Task] = collections.deque()
        self._suspects: collections.deque[_Task] = collections.deque()
        self._tasks: dict[int, _Task] = {}
        self._workers: dict[int, _Worker] = {}
        self._idle: dict[int, _Worker] = {}  # workers that hold no task, by pipe id
        self._state_lock = threading.Lock()  # held by the loop while it works; push's fast lane tries it
        self._strangers: dict[int, tuple[Any, bytes]] = {}
        self._cancelling: set[int] = set()
        self._sleeping = False
        self._wake_sent = False
        self._wake_listener = None
        self._wake_pipes: set[int] = set()
        self._now = time.monotonic()
        self._next_heartbeat = 0.0
        self._waker = None

    # ================================================================== life cycle
    def start(self) -> Controller:
        """Listen for workers and start the controller's threads. Launches no worker."""
        if self._terminated:
            raise CrewError(f"controller {self.name!r} was terminated; make a new one")
        if self._started:
            return self
        sock = self.client.start()
        self.launcher.bind(Contact(self.client.url, self._id, self._secret, self.client.certificate, self.name), fleet=self)
        # The loop thread blocks on the socket; pushes and pipe events wake it through an
        # in-process pipe of its own, which is never challenged as a worker.
        self._wake_listener = sock.listen(f"inproc://crew-wake-{self._id}")
        sock.add_post_pipe_connect_cb(self._on_connect)
        sock.add_post_pipe_remove_cb(self._on_remove)
        sock.recv_timeout = int(self.client.seconds_interval * 1000)
        self._waker = pynng.Pair1()
        self._waker.dial(f"inproc://crew-wake-{self._id}", block=True)
        self._started = True
        for target, name in ((self._loop, "crew-loop"), (self._scaler, "crew-scale")):
            thread = threading.Thread(target=target, name=f"{name}-{self.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        _live.add(self)
        return self

    def validate(self) -> Controller:
        """Check that the controller's parts fit together; return the controller."""
        if not isinstance(self.client, Client) or not isinstance(self.launcher, Launcher):
            raise CrewError("a controller needs a crew.Client and a crew.Launcher")
        if self.backup is self:
            raise SettingError("backup must be another controller, not the controller itself")
        if self.client.tls != (self.launcher.tls or self.client.tls):
            raise SettingError("the launcher's tls differs from the client's")
        return self

    def terminate(self) -> None:
        """End every worker, close the connection, and resolve unfinished tasks as ``"cancel"``.

        Safe to call more than once; also runs when the interpreter exits.
        """
        if self._terminated:
            return
        self._terminated = True
        if self._started:
            self._notify((_STOP,))
            self._scale_wanted.set()
            for thread in self._threads:
                if thread is not threading.current_thread() and thread.name.startswith(("crew-loop", "crew-scale")):
                    thread.join(self.client.seconds_timeout)
            self.client.stop()
            self._waker.close()
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join(self.client.seconds_timeout)
        with self._instances_lock:
            handles = _distinct(i.handle for i in self._instances if i.handle is not None)
            for instance in self._instances:
                instance.state = "ended" if instance.state == "connected" else instance.state
            self._instances.clear()
        try:
            if handles:
                self.launcher.terminate_workers(handles)
        finally:
            self.launcher.close()
            _live.discard(self)

    def snapshot(self) -> list[Instance]:
        with self._instances_lock:
            return list(self._instances)

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.terminate()

    # ================================================================== tasks in
    def push(
        self,
        command: Callable | str,
        *,
        args: Sequence = (),
        kwargs: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        globals: Mapping[str, Any] | None = None,
        name: str | None = None,
        seed: int | None = None,
        seconds_timeout: float | None = None,
        scale: bool = True,
    ) -> str:
        """Queue one task and return its name.

        ``command`` is a callable, called with ``args`` and ``kwargs``, or a string of Python
        code run with ``data`` as its local names; a string's value is its last expression.
        ``globals`` are set in the worker's global namespace for the task. ``seed`` seeds
        ``random`` (and NumPy's global generator) first. A task that runs longer than
        ``seconds_timeout`` resolves with status ``"timeout"``.
        """
        if (kwargs is None and data is None and globals is None and seed is None and seconds_timeout is None
                and type(args) is tuple and (name is None or type(name) is str) and self._error is None):
            # The common call (a command pushed before, plain arguments): validated once already.
            cached = self._command_cache.get(id(command))
            if cached is not None and cached[0] is command and not self._terminated:
                for value in args:
                    if type(value) not in _SCALARS:
                        break
                else:
                    rest = pickle.dumps((args, None, None, None), PROTOCOL) if args else None
                    task = _Task(None, name, cached[2], cached[1], rest, None, None)
                    self._submit(task, scale)
                    return task.name
        task = self._make_task(command, args, kwargs, data, globals, name, seed, seconds_timeout, None)
        self._submit(task, scale)
        return task.name

    def _push_with_callback(self, callback: Callable[[Result], None], command, **options: Any) -> str:
        """Push like :meth:`push`; ``callback(result)`` runs in the controller's loop thread when
        the task resolves (keep it short), and the result does not come out of pop()/collect().
        For adapters such as the Executor."""
        scale = options.pop("scale", True)
        task = self._make_task(command, options.pop("args", ()), options.pop("kwargs", None), options.pop("data", None),
                               options.pop("globals", None), options.pop("name", None), options.pop("seed", None),
                               options.pop("seconds_timeout", None), None)
        if options:
            raise SettingError(f"unknown push options: {sorted(options)}")
        task.callback = callback
        self._submit(task, scale)
        return task.name

    def executor(self, **options: Any):
        """A :class:`concurrent.futures.Executor` that runs its calls as this controller's tasks."""
        from .executor import Executor

        return Executor(self, **options)

    async def push_async(self, command: Callable | str, **options: Any) -> Result:
        """Push a task and await its :class:`crew.Result` (``options`` as for :meth:`push`)."""
        from .executor import push_async

        return await push_async(self, command, **options)

    def _make_task(self, command, args, kwargs, data, globals_, name, seed, seconds_timeout, blob) -> _Task:
        self._raise_error()
        if self._terminated:
            raise CrewError(f"controller {self.name!r} was terminated; make a new one")
        if isinstance(command, str):
            if not command.strip():
                raise SettingError("command must be a callable or a non-empty string of Python code")
            shown = command
        elif callable(command):
            shown = getattr(command, "__qualname__", None) or repr(command)
            if data:
                raise SettingError("data applies only to string commands; pass args or kwargs to a callable")
        else:
            raise SettingError(f"command must be a callable or a string of Python code, not {command!r}")
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
            blob = self._command_bytes(command)
        rest = None
        if args or kwargs or data or globals_:
            parts = (
                tuple(args),
                dict(kwargs) if kwargs else None,
                dict(data) if data else None,
                dict(globals_) if globals_ else None,
            )
            try:
                rest = self._serializer.dumps(parts)
            except Exception:
                for label, part in zip(("args", "kwargs", "data", "globals"), parts):
                    try:
                        self._serializer.dumps(part)
                    except Exception as error:
                        raise SettingError(f"{label} cannot be serialized: {type(error).__name__}: {error}") from None
                raise
        return _Task(None, name, shown, blob, rest, seed, seconds_timeout)

    def _command_bytes(self, command) -> bytes:
        cached = self._command_cache.get(id(command))
        if cached is not None and cached[0] is command:
            return cached[1]
        try:
            blob, stable = self._serializer.dumps_command(command)
        except Exception as error:
            raise SettingError(f"command cannot be serialized: {type(error).__name__}: {error}") from None
        if stable:
            if len(self._command_cache) > 256:
                self._command_cache.clear()
            shown = command if isinstance(command, str) else (getattr(command, "__qualname__", None) or repr(command))
            self._command_cache[id(command)] = (command, blob, shown)
        return blob

    def _submit(self, task: _Task, scale: bool) -> None:
        if not self._started:
            self.start()
        with self._push_lock:
            if task.name is None:
                task.id = next(self._ids)
                task.name = f"task_{task.id}"
                while task.name in self._names:
                    task.name = f"task_{task.id}_{secrets.token_hex(2)}"
            elif task.name in self._names:
                raise SettingError(f"name {task.name!r} is already used by a task that is queued, running or not yet popped")
            else:
                task.id = next(self._ids)
            self._names.add(task.name)
            self._pushed += 1
            if (self._idle and not self._queue and not self._suspects and self._events.empty()
                    and self._state_lock.acquire(blocking=False)):
                # A worker waits and the loop thread is not busy: send the task from here, which
                # saves a thread hand-off on the way out.
                try:
                    self._tasks[task.id] = task
                    worker = next(iter(self._idle.values()), None)
                    if worker is None:
                        self._queue.append(task)
                    else:
                        self._send_tasks(worker, [task], self._queue)
                finally:
                    self._state_lock.release()
            else:
                self._notify(task)
        if scale:
            self._want_scale()

    # ================================================================== results out
    def pop(self, scale: bool = True) -> Result | None:
        """The oldest result not yet popped, or None."""
        self._raise_error()
        if scale:
            self._want_scale()
        with self._cond:
            if not self._done:
                return None
            name = next(iter(self._done))
            result = self._done.pop(name)
        self._names.discard(name)
        return result

    def collect(self, scale: bool = True, frame: bool = False) -> list[Result] | Any:
        """Every result not yet popped (an empty list when there is none); with ``frame=True``,
        a pandas DataFrame with one row per result and the result's fields as columns."""
        if frame:
            from ._frame import results_frame

            return results_frame(self.collect(scale=scale))
        self._raise_error()
        if scale:
            self._want_scale()
        with self._cond:
            results = list(self._done.values())
            self._done.clear()
        for result in results:
            self._names.discard(result.name)
        return results

    def wait(
        self, mode: str = "all", seconds_timeout: float | None = None, scale: bool = True, progress: bool = False
    ) -> bool:
        """Block until every task is resolved (``mode="all"``) or one result can be popped
        (``"one"``). Return False if ``seconds_timeout`` passed first. ``progress=True`` shows a
        live progress bar on a terminal."""
        validate.choice("mode", mode, ("all", "one"))
        if progress:
            from ._progress import Progress

            with Progress(self):
                return self.wait(mode, seconds_timeout, scale)
        if seconds_timeout is not None:
            seconds_timeout = validate.number("seconds_timeout", seconds_timeout)
        deadline = math.inf if seconds_timeout is None else time.monotonic() + seconds_timeout
        if scale:
            self._want_scale()
        with self._cond:
            while True:
                self._raise_error()
                if mode == "all" and self._pushed == self._resolved:
                    return True
                if mode == "one" and (self._done or self._pushed == self._resolved):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, self.client.seconds_interval * 4))

    def _wait_for(self, names: list[str], seconds_timeout: float | None = None) -> bool:
        deadline = math.inf if seconds_timeout is None else time.monotonic() + seconds_timeout
        with self._cond:
            for name in names:
                while name not in self._done:
                    self._raise_error()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(min(left, self.client.seconds_interval * 4))
        return True

    def walk(
        self,
        command: Callable | str,
        iterate: Mapping[str, Sequence],
        *,
        data: Mapping[str, Any] | None = None,
        globals: Mapping[str, Any] | None = None,
        names: Sequence[str] | None = None,
        seed: int | None = None,
        seconds_timeout: float | None = None,
        scale: bool = True,
    ) -> list[str]:
        """Push one task per element of the lists in ``iterate``, without waiting; return the names.

        Task ``i`` gets ``{key: values[i]}`` for each key of ``iterate``: as keyword arguments of
        a callable, or as local names (with ``data``) of a string command. With ``seed``, task ``i``
        gets ``seed + i``.
        """
        iterate = validate.mapping("iterate", iterate, allow_none=False)
        lengths = {len(values) for values in iterate.values()}
        if len(lengths) > 1:
            raise SettingError("iterate must hold lists of one length, not " + repr({k: len(v) for k, v in iterate.items()}))
        count = lengths.pop() if lengths else 0
        if names is not None:
            names = validate.strings("names", names)
            if len(names) != count or len(set(names)) != count:
                raise SettingError(f"names must be {count} distinct strings, one per task")
            taken = [name for name in names if name in self._names]
            if taken:
                raise SettingError(f"names {taken[:5]!r} are already used by tasks not yet popped")
        blob = self._command_bytes(command) if not isinstance(command, str) else None
        tasks = []
        for index in range(count):
            values = {key: values[index] for key, values in iterate.items()}
            if isinstance(command, str):
                merged = dict(data or {})
                merged.update(values)
                task = self._make_task(command, (), None, merged, globals, None if names is None else names[index],
                                       None if seed is None else seed + index, seconds_timeout, blob)
            else:
                task = self._make_task(command, (), values, None, globals, None if names is None else names[index],
                                       None if seed is None else seed + index, seconds_timeout, blob)
            tasks.append(task)
        for task in tasks:
            self._submit(task, scale=False)
        if scale:
            self.scale()
        return [task.name for task in tasks]

    def map(
        self,
        command: Callable | str,
        iterate: Mapping[str, Sequence],
        *,
        data: Mapping[str, Any] | None = None,
        globals: Mapping[str, Any] | None = None,
        names: Sequence[str] | None = None,
        seed: int | None = None,
        seconds_timeout: float | None = None,
        error: str = "stop",
        progress: bool = False,
    ) -> list[Result]:
        """Run one task per element of ``iterate`` (see :meth:`walk`), wait, and return their
        results in order. ``error``: ``"stop"`` raises :class:`crew.TaskError` for the first task
        that did not succeed, ``"warn"`` warns, ``"silent"`` says nothing."""
        validate.choice("error", error, ("stop", "warn", "silent"))
        pushed = self.walk(command, iterate, data=data, globals=globals, names=names, seed=seed,
                           seconds_timeout=seconds_timeout)
        if progress:
            from ._progress import Progress

            with Progress(self, total=len(pushed)):
                self._wait_for(pushed)
        else:
            self._wait_for(pushed)
        with self._cond:
            results = [self._done.pop(name) for name in pushed]
        for name in pushed:
            self._names.discard(name)
        failed = [result for result in results if result.status != "success"]
        if failed and error == "stop":
            raise TaskError(failed[0])
        if failed and error == "warn":
            warnings.warn(f"{len(failed)} of {len(results)} tasks did not succeed; first: {failed[0].error}", stacklevel=2)
        return results

    def cancel(self, names: str | Iterable[str] | None = None, all: bool = False) -> None:
        """Cancel tasks by name (or every unresolved task with ``all=True``).

        A queued task, or one sent ahead to a worker but not started, never runs; a running task
        is interrupted. Each resolves with status ``"cancel"`` (unless it finished first).
        """
        if names is None and not all:
            raise SettingError("cancel needs names or all=True")
        wanted = None if all else set(validate.strings("names", names))
        if self._started:
            self._notify(("cancel", wanted))

    # ================================================================== counts
    def unresolved(self) -> int:
        """Tasks pushed and not yet resolved."""
        return self._pushed - self._resolved

    def resolved(self) -> int:
        """Tasks resolved since the controller started (popped or not)."""
        return self._resolved

    def saturated(self) -> bool:
        """True when there are at least as many unresolved tasks as workers allowed."""
        return self.unresolved() >= self.launcher.workers

    def empty(self) -> bool:
        """True when nothing is unresolved and no result waits to be popped."""
        return self.unresolved() == 0 and not self._done

    def summary(self) -> list[dict[str, Any]]:
        """One row per worker place: tasks, seconds, errors, warnings, crashes, launches and state."""
        rows = []
        for slot in self._slots:
            instance = slot.instance
            rows.append({
                "controller": self.name,
                "worker": slot.index,
                "tasks": slot.tasks,
                "seconds": round(slot.seconds, 6),
                "errors": slot.errors,
                "warnings": slot.warnings,
                "crashes": slot.crashes,
                "launches": slot.launches,
                "failed_launches": slot.failed_launches,
                "state": instance.state if instance else "none",
                "pid": instance.pid if instance else None,
                "host": instance.host if instance else None,
                "reason": instance.reason if instance else None,
            })
        return rows

    # ================================================================== scaling
    def scale(self) -> int:
        """Launch the workers that the unresolved tasks need now; return how many were launched."""
        self._raise_error()
        if not self._started:
            self.start()
        launched = self._scale_round()
        self._scale_wanted.set()  # the background loop watches the launch from here on
        return launched

    def autoscale(self, enabled: bool = True) -> None:
        """Turn background auto-scaling on (the default) or off.

        When on, the controller re-checks every ``seconds_interval`` while tasks are unresolved:
        it relaunches workers that exited (idle, wall time, max tasks, crashes) and replaces
        launches that never dialled in.
        """
        self._autoscaling = validate.flag("enabled", enabled)
        if enabled:
            self._scale_wanted.set()

    def _want_scale(self) -> None:
        """Wake the scaler when unresolved tasks may need more workers than are connected."""
        connected = len(self._workers)
        if (self._started and connected < self.launcher.workers and self._pushed - self._resolved > connected
                and not self._scale_wanted.is_set()):
            self._scale_wanted.set()

    def _scaler(self) -> None:
        interval = self.launcher.seconds_interval
        while not self._terminated:
            busy = self._pushed != self._resolved
            self._scale_wanted.wait(interval if (busy and self._autoscaling) else None)
            if self._terminated:
                return
            self._scale_wanted.clear()
            # Throttle: at most one launch round per seconds_interval, backing off (up to a minute)
            # while launches keep failing.
            backoff = min(interval * 2 ** min(self._failed_in_row, 16), max(interval, 60.0))
            wait = self._last_round + backoff - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                self._scale_round()
            except BaseException as error:  # surfaced on the user's next call
                self._error = error
                self._wake()

    def _scale_round(self) -> int:
        with self._scale_lock:
            if self._terminated:
                return 0
            self._check_launches()
            with self._instances_lock:
                active = [i for i in self._instances if i.state in ("launching", "connected")]
                want = min(self.launcher.workers, self._pushed - self._resolved) - len(active)
                if want <= 0:
                    return 0
                used = {i.slot for i in active}
                free = [slot for slot in self._slots if slot.index not in used][:want]
                launch = self.launcher.next_launch()
                fresh = []
                for slot in free:
                    instance = Instance(launch=launch, slot=slot.index)
                    slot.instance = instance
                    slot.launches += 1
                    fresh.append(instance)
                    self._instances.append(instance)
            self._last_round = time.monotonic()
            try:
                handles = self.launcher.launch_workers(self.launcher.call(launch=launch), len(fresh))
            except Exception as error:
                with self._instances_lock:
                    for instance in fresh:
                        instance.state = "failed"
                        self._instances.remove(instance)
                        self._slots[instance.slot - 1].launches -= 1
                if isinstance(error, LaunchError):
                    raise
                raise LaunchError(f"{type(self.launcher).__name__} could not launch {len(fresh)} worker(s): "
                                  f"{type(error).__name__}: {error}") from error
            if isinstance(handles, list) and len(handles) == len(fresh):
                for instance, handle in zip(fresh, handles):
                    instance.handle = handle
            else:
                for instance in fresh:
                    instance.handle = handles
            log.debug("%s launched %d worker(s) in round %s", self.name, len(fresh), launch)
            return len(fresh)

    def _check_launches(self) -> None:
        """Count launches that never dialled in as failed, unless the platform still queues them."""
        now = time.monotonic()
        with self._instances_lock:
            waiting = [i for i in self._instances if i.state == "launching"]
        if not waiting:
            return
        if now - self._last_queue_check >= self.launcher.seconds_interval:
            self._last_queue_check = now
            handles = _distinct(i.handle for i in waiting if i.handle is not None)
            try:
                report = self.launcher.queued(handles)
            except Exception as error:  # the platform's status is advice, not a requirement
                log.warning("%s: could not ask the platform about queued workers: %s", self.name, error)
                report = None
            if report is not None:
                by_handle = {id(handle): status for handle, status in zip(handles, report)}
                counts = {id(handle): (status.count if status else 0) for handle, status in zip(handles, report)}
                for instance in waiting:
                    status = by_handle.get(id(instance.handle))
                    left = counts.get(id(instance.handle), 0)
                    instance.queued = left > 0
                    if instance.queued:
                        counts[id(instance.handle)] = left - 1
                        instance.launched = now  # seconds_launch counts from when it leaves the queue
                    instance.reason = status.reason if (status and instance.queued) else None
        exits = {}
        for handle in _distinct(i.handle for i in waiting if i.handle is not None):
            try:
                exits[id(handle)] = self.launcher.exit_status(handle)
            except Exception:
                exits[id(handle)] = None
        expired = []
        with self._instances_lock:
            for instance in waiting:
                ended = exits.get(id(instance.handle))
                if ended and instance.state == "launching":
                    log.warning("%s: a launched worker ended before it dialled in (%s)", self.name, ended)
                    instance.reason = f"ended before it dialled in ({ended})"
                if instance.state == "launching" and (ended or (
                        not instance.queued and now - instance.launched > self.launcher.seconds_launch)):
                    instance.state = "failed"
                    self._slots[instance.slot - 1].failed_launches += 1
                    self._instances.remove(instance)
                    expired.append(instance)
            live = {id(i.handle) for i in self._instances}
        dead = _distinct(i.handle for i in expired if i.handle is not None and id(i.handle) not in live)
        if dead:
            self.launcher.terminate_workers(dead)
        late = [i for i in expired if not i.reason]
        if late:
            log.warning("%s: %d launched worker(s) did not dial in within seconds_launch=%g s",
                        self.name, len(late), self.launcher.seconds_launch)
        if expired:
            before, self._failed_in_row = self._failed_in_row, self._failed_in_row + len(expired)
            if self._failed_in_row // _LAUNCH_FAILURES_MAX > before // _LAUNCH_FAILURES_MAX:
                reasons = {i.reason for i in expired if i.reason}
                reasons = reasons or {f"no dial-in within seconds_launch={self.launcher.seconds_launch:g} s"}
                raise LaunchError(
                    f"{self._failed_in_row} launches in a row failed before their workers dialled in "
                    f"({'; '.join(sorted(reasons))}); the controller keeps retrying, more slowly. "
                    "Check the workers' logs and the launcher's options."
                )

    # ================================================================== the loop thread
    def _on_connect(self, pipe) -> None:
        try:
            waker = pipe.listener is self._wake_listener
        except TypeError:  # pynng: a pipe NNG has already forgotten
            waker = False
        if waker:
            self._wake_pipes.add(pipe.id)
        else:
            self._notify(("connect", pipe))

    def _on_remove(self, pipe) -> None:
        if pipe.id in self._wake_pipes:
            self._wake_pipes.discard(pipe.id)
        else:
            self._notify(("remove", pipe))

    def _notify(self, item) -> None:
        """Hand an event to the loop thread, waking it if it sleeps on the socket."""
        self._events.put(item)
        if self._sleeping and not self._wake_sent:
            self._wake_sent = True
            try:
                # Never block here: this also runs in NNG's pipe callbacks, which socket close waits for.
                self._waker.send(b"", block=False)
            except Exception:  # full (the loop has wake frames to read anyway) or closed
                pass

    def _loop(self) -> None:
        sock = self.client.socket
        events = self._events
        get_nowait = events.get_nowait
        state = self._state_lock
        while True:
            resolved_before = self._resolved
            self._now = time.monotonic()
            message = None
            self._sleeping = True
            if events.empty():
                try:
                    message = sock.recv_msg()
                except pynng.Timeout:
                    pass
                except pynng.Closed:
                    return
                self._wake_sent = False
            self._sleeping = False
            with state:
                try:
                    while message is not None:
                        frame = message.bytes
                        if frame:  # empty frames only wake the loop (from the waker; from others: ignored)
                            self._frame(message.pipe, frame)
                        try:
                            message = sock.recv_msg(block=False)
                        except pynng.TryAgain:
                            message = None
                    while True:
                        try:
                            item = get_nowait()
                        except queue.Empty:
                            break
                        if item.__class__ is _Task:
                            self._tasks[item.id] = item
                            self._queue.append(item)
                        elif item[0] is _STOP:
                            self._shutdown()
                            return
                        else:
                            self._handle(item)
                    item = None  # keep no reference to the last event (e.g. a task's callback)
                    self._dispatch()
                    self._now = now = time.monotonic()
                    if now >= self._next_heartbeat:
                        self._heartbeat(now)
                except pynng.Closed:
                    return
                except Exception:  # never let one bad event stop the loop
                    log.exception("%s: error in the controller loop", self.name)
            if self._resolved != resolved_before:
                self._wake()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()
        for listener in self._listeners:
            with listener:
                listener.notify_all()

    def _frame(self, pipe, frame: bytes) -> None:
        worker = self._workers.get(pipe.id)
        if worker is None:
            self._hello(pipe, frame)
            return
        worker.heard = self._now
        head = frame[:1]
        try:
            if head == P.ACK:
                self._acknowledged(worker)
            elif head == P.PONG:
                pass
            elif head == P.RESULTS:
                self._results(worker, frame)
            elif head == P.RETURNED:
                self._returned(worker, frame)
            elif head == P.STARTED:
                worker.marked = struct.unpack(">q", frame[1:9])[0]
            elif head == P.GOODBYE:
                self._goodbye(worker, frame)
            else:
                raise ValueError(f"unknown frame kind {head!r}")
        except Exception as error:  # a worker that breaks the protocol is cut off; its tasks go back
            log.warning("%s: protocol error from worker %s (%s): %s; closing its connection",
                        self.name, worker.id, _peer(pipe), error)
            _close(pipe)

    def _handle(self, item: tuple) -> None:
        kind = item[0]
        if kind == "connect":
            if len(self._strangers) >= _STRANGERS_MAX:
                log.warning("%s: rejected a peer (%s): %d connections are already waiting to say hello",
                            self.name, _peer(item[1]), _STRANGERS_MAX)
                _close(item[1])
                return
            nonce = os.urandom(P.NONCE_BYTES)
            self._strangers[item[1].id] = (item[1], nonce, time.monotonic())
            try:
                item[1].send(P.CHALLENGE + nonce)
            except Exception:
                self._strangers.pop(item[1].id, None)
        elif kind == "remove":
            self._strangers.pop(item[1].id, None)
            self._idle.pop(item[1].id, None)
            worker = self._workers.pop(item[1].id, None)
            if worker is not None:
                self._lost(worker)
        elif kind == "cancel":
            self._cancel(item[1])

    # ---------------------------------------------------------------- workers arriving and leaving
    def _hello(self, pipe, frame: bytes) -> None:
        stranger = self._strangers.pop(pipe.id, None)
        reason = None
        if stranger is None:
            # A pipe already rejected, or one that closed before its connection event: drop quietly.
            log.debug("%s: dropped a frame from an unknown connection (%s)", self.name, _peer(pipe))
            _close(pipe)
            return
        if frame[:1] != P.HELLO or len(frame) > P.MAX_HELLO_BYTES:
            reason = "expected a hello frame"
        else:
            try:
                hello = P.decode_json(frame)
            except ValueError:
                hello, reason = None, "malformed hello"
            if hello is not None:
                if hello.get("version") != P.VERSION:
                    reason = f"protocol version {hello.get('version')!r}, expected {P.VERSION}"
                elif hello.get("controller") != self._id:
                    reason = "hello for another controller"
                elif not P.verify(self._secret, stranger[1], self._id, hello.get("mac")):
                    reason = "wrong secret"
        if reason is not None:
            log.warning("%s: rejected a peer (%s): %s", self.name, _peer(pipe), reason)
            _close(pipe)
            return
        pid = hello.get("pid") if isinstance(hello.get("pid"), int) else None
        host = str(hello.get("host"))[:255]
        instance = self._bind_instance(str(hello.get("launch")), pid, host)
        worker_id = f"{self.name}/{instance.slot if instance else '-'}/{pid}"
        budget = self.launcher.tasks_max
        worker = _Worker(pipe, worker_id, pid, host, instance, budget)
        settings = {
            "reset_globals": self.reset_globals,
            "reset_modules": self.reset_modules,
            "garbage_collection": self.garbage_collection,
            "serializer": self.client.serializer,
            "max_frame_bytes": self.client.max_frame_bytes,
        }
        if not self._send(worker, P.encode_json(P.WELCOME, {"worker": worker_id, "settings": settings})):
            return
        self._workers[pipe.id] = worker  # it gets tasks once it acknowledges the welcome
        log.debug("%s: worker %s connected from %s", self.name, worker_id, host)

    def _bind_instance(self, launch: str, pid: int | None, host: str) -> Instance | None:
        with self._instances_lock:
            candidates = [i for i in self._instances if i.launch == launch and i.state == "launching"]
            if not candidates:
                # A late worker from a launch counted as failed: give it a free place.
                used = {i.slot for i in self._instances if i.state in ("launching", "connected")}
                free = [slot for slot in self._slots if slot.index not in used]
                if not free:
                    return None
                instance = Instance(launch=launch, slot=free[0].index)
                free[0].instance = instance
                self._instances.append(instance)
                candidates = [instance]
            chosen = next((i for i in candidates if getattr(i.handle, "pid", None) == pid), candidates[0])
            chosen.state = "connected"
            self._failed_in_row = 0
            chosen.pid = pid
            chosen.host = host
            chosen.queued = False
            chosen.reason = None
            self._slots[chosen.slot - 1].instance = chosen
            return chosen

    def _goodbye(self, worker: _Worker, frame: bytes) -> None:
        self._idle.pop(worker.pipe.id, None)
        try:
            worker.leaving = str(P.decode_json(frame).get("reason"))
        except ValueError:
            worker.leaving = "unknown"
        self._requeue(worker, charge=False)
        self._end_instance(worker, "ended")
        self._send(worker, P.QUIT)
        self._want_scale()

    def _lost(self, worker: _Worker) -> None:
        if worker.leaving is None:
            self._requeue(worker, charge=True)
            self._end_instance(worker, "ended")
        self._want_scale()

    def _end_instance(self, worker: _Worker, state: str) -> None:
        instance = worker.instance
        if instance is None or instance.state == state:
            return
        with self._instances_lock:
            instance.state = state
            if instance in self._instances:
                self._instances.remove(instance)

    def _requeue(self, worker: _Worker, charge: bool) -> None:
        """Give a departed worker's unfinished tasks back to the queue; after a crash (``charge``),
        charge the task it was running.

        That task is known when the worker reported it as started (it does so for any task that
        runs over a millisecond) or held nothing else. Otherwise the worker may have died in any
        of the tasks it held (finished tasks' results can die with it): none is charged, and each
        becomes a suspect that runs alone on its next worker, where a crash is exact.
        """
        if not worker.outstanding:
            return
        tasks = list(worker.outstanding.values())
        worker.outstanding.clear()
        if charge:
            if worker.instance is not None:
                self._slots[worker.instance.slot - 1].crashes += 1
            culprit = next((task for task in tasks if task.id == worker.marked), None)
            if culprit is None and len(tasks) == 1:
                culprit = tasks[0]
            if culprit is None:
                for task in tasks:
                    task.suspect = True
            else:
                tasks.remove(culprit)
                culprit.crashes += 1
                culprit.suspect = False
                if culprit.crashes > self.crashes_max:
                    self._crashed(worker, culprit)
                else:
                    tasks.insert(0, culprit)
        for task in reversed(tasks):
            if task.id in self._cancelling:
                self._resolve_plain(task, "cancel", "cancelled", worker)
            elif task.suspect:
                self._suspects.appendleft(task)
            else:
                self._queue.appendleft(task)

    def _crashed(self, worker: _Worker, task: _Task) -> None:
        status = None
        if worker.instance is not None and worker.instance.handle is not None:
            try:
                status = self.launcher.exit_status(worker.instance.handle, timeout=1.0)
            except Exception:
                status = None
        message = (f"the worker (pid {worker.pid} on {worker.host}) exited while running the task"
                   + (f" ({status})" if status else "")
                   + f"; the task lost its worker {task.crashes} times, more than crashes_max={self.crashes_max}")
        if self.backup is not None and not self.backup._terminated:
            try:
                moved = _Task(None, task.name, task.command, task.blob, task.rest, task.seed, task.timeout)
                moved.callback = task.callback
                self.backup._submit(moved, scale=True)
                self._tasks.pop(task.id, None)
                self._names.discard(task.name)
                self._resolved += 1
                log.warning("%s: %s; moved it to backup controller %s", self.name, message, self.backup.name)
                return
            except Exception as error:
                message += f"; moving it to the backup failed: {error}"
        self._resolve_plain(task, "crash", message, worker)

    def _heartbeat(self, now: float) -> None:
        """Ping every worker; cut off workers silent for seconds_timeout and strangers that never
        said hello. Runs every seconds_timeout / 3."""
        timeout = self.client.seconds_timeout
        self._next_heartbeat = now + timeout / 3
        for worker in list(self._workers.values()):
            if now - worker.heard > timeout:
                log.warning("%s: worker %s sent nothing for %g s; dropping it", self.name, worker.id, timeout)
                _close(worker.pipe)  # its tasks go back when NNG reports the pipe removed
            elif not worker.inflight:  # a frame in flight gets an acknowledgement anyway
                self._send(worker, P.PING)
        self._expire_strangers(now)

    def _expire_strangers(self, now: float) -> None:
        for key, (pipe, _, since) in list(self._strangers.items()):
            if now - since > self.client.seconds_timeout:
                self._strangers.pop(key, None)
                log.warning("%s: rejected a peer (%s): no hello within %g s", self.name, _peer(pipe), self.client.seconds_timeout)
                _close(pipe)

    # ---------------------------------------------------------------- results
    def _results(self, worker: _Worker, frame: bytes) -> None:
        batch = pickle.loads(frame[1:])
        if type(batch) is not list or not all(
            type(row) is tuple and len(row) == 7 and type(row[0]) is int and row[1] in _STATUS_SET
            and type(row[6]) is float for row in batch
        ):
            raise ValueError("malformed results frame")
        slot = self._slots[worker.instance.slot - 1] if worker.instance is not None else None
        loads = self._serializer.loads
        outstanding = worker.outstanding
        tasks = self._tasks
        stealing = worker.stealing
        cancelling = self._cancelling
        ready: list[tuple[str, Result]] = []  # results for pop(), handed over under one lock
        total = 0.0
        errors = warned = 0
        for task_id, status, payload, error, trace, warns, seconds in batch:
            task = outstanding.pop(task_id, None)
            if task is None:
                continue
            if stealing:
                stealing.discard(task_id)
            if cancelling:
                cancelling.discard(task_id)
            value = exception = None
            if payload is not None:
                try:
                    if status == "success":
                        value = loads(payload)
                    else:
                        exception = loads(payload)
                except Exception as caught:
                    if status == "success":
                        status = "error"
                        error = f"the task's result could not be deserialized here: {type(caught).__name__}: {caught}"
            if exception is not None and trace and hasattr(exception, "add_note"):
                try:
                    exception.add_note(f"Remote traceback (worker {worker.id}):\n{trace}")
                except Exception:
                    pass
            total += seconds
            if status != "success":
                errors += 1
            if warns:
                warned += len(warns)
            result = Result(task.name, task.command, value, status, error, trace, warns or [], seconds,
                            task.seed, worker.id, worker.pid, worker.host, self.name, exception)
            if task.callback is None:
                tasks.pop(task_id, None)
                ready.append((task.name, result))
            else:
                ready.append((task, result))
        count = len(ready)
        if slot is not None:  # before the results are published, so a waiter sees them counted
            slot.tasks += count
            slot.seconds += total
            slot.errors += errors
            slot.warnings += warned
        plain = [pair for pair in ready if type(pair[0]) is str]
        if plain:
            with self._cond:
                self._done.update(plain)
            self._resolved += len(plain)
        if len(plain) != len(ready):
            for task, result in ready:
                if type(task) is not str:
                    self._finish(task, result)
        if count:
            mean = total / count
            worker.average = mean if worker.average is None else 0.5 * worker.average + 0.5 * mean
        self._mark_idle(worker)

    def _returned(self, worker: _Worker, frame: bytes) -> None:
        requested, returned = pickle.loads(frame[1:])
        if not all(type(ids) is list and all(type(i) is int for i in ids) for ids in (requested, returned)):
            raise ValueError("malformed returned frame")
        worker.stealing.difference_update(requested)
        for task_id in reversed(returned):
            task = worker.outstanding.pop(task_id, None)
            if task is None:
                continue
            if task_id in self._cancelling:
                self._cancelling.discard(task_id)
                self._resolve_plain(task, "cancel", "cancelled before it started", worker)
            elif task.suspect:
                self._suspects.appendleft(task)
            else:
                self._queue.appendleft(task)
        self._mark_idle(worker)

    def _resolve_plain(self, task: _Task, status: str, error: str | None, worker: _Worker | None) -> None:
        self._cancelling.discard(task.id)
        self._finish(task, Result(
            task.name, task.command, None, status, error, None, [], 0.0, task.seed,
            worker.id if worker else None, worker.pid if worker else None, worker.host if worker else None,
            self.name,
        ))

    def _finish(self, task: _Task, result: Result) -> None:
        """Resolve a task: its result goes to its callback if it has one, else to pop()."""
        self._tasks.pop(task.id, None)
        callback = task.callback
        if callback is None:
            with self._cond:
                self._done[task.name] = result
        else:
            task.callback = None
            self._names.discard(task.name)
        self._resolved += 1
        if callback is not None:
            try:
                callback(result)
            except Exception:
                log.exception("%s: a result callback failed", self.name)

    # ---------------------------------------------------------------- cancel
    def _cancel(self, names: set[str] | None) -> None:
        def wanted(task: _Task) -> bool:
            return names is None or task.name in names

        for source in ("_queue", "_suspects"):
            kept = collections.deque()
            for task in getattr(self, source):
                if wanted(task):
                    self._resolve_plain(task, "cancel", "cancelled before it started", None)
                else:
                    kept.append(task)
            setattr(self, source, kept)
        for worker in self._workers.values():
            ids = [task_id for task_id, task in worker.outstanding.items() if wanted(task)]
            if ids:
                self._cancelling.update(ids)
                self._send(worker, P.CANCEL + pickle.dumps((ids, True), PROTOCOL))

    # ---------------------------------------------------------------- dispatch
    def _send(self, worker: _Worker, frame: bytes) -> bool:
        """Send a frame to a worker, or queue it until the worker acknowledges the one in flight
        (NNG's polyamorous pair socket drops a frame sent to a pipe that is still busy)."""
        if worker.inflight:
            worker.pending.append(frame)
            return True
        try:
            worker.pipe.send(frame)
        except Exception as error:
            log.debug("%s: send to %s failed: %s", self.name, worker.id, error)
            return False
        worker.inflight = True
        self._idle.pop(worker.pipe.id, None)
        return True

    def _acknowledged(self, worker: _Worker) -> None:
        worker.inflight = False
        if worker.pending:
            self._send(worker, worker.pending.popleft())
        else:
            self._mark_idle(worker)

    def _dispatch(self) -> None:
        if self._suspects:
            self._dispatch_suspects()
        queue_ = self._queue
        if not queue_:
            self._steal()
            return
        ready = [w for w in self._workers.values()
                 if w.leaving is None and not w.inflight and w.budget > 0 and len(w.outstanding) < w.limit
                 and not (w.outstanding and next(iter(w.outstanding.values())).suspect)]
        if not ready:
            return
        ready.sort(key=lambda w: len(w.outstanding))
        share = -(-len(queue_) // len(ready))
        for worker in ready:
            if not queue_:
                break
            room = min(worker.limit - len(worker.outstanding), worker.budget, share)
            batch = []
            size = 0
            while queue_ and len(batch) < room and (size < _MAX_BATCH_BYTES or not batch):
                task = queue_.popleft()
                if task.id not in self._tasks:
                    continue  # resolved meanwhile (cancelled)
                batch.append(task)
                size += len(task.blob) + (len(task.rest) if task.rest else 0)
            if batch:
                self._send_tasks(worker, batch, queue_)

    def _dispatch_suspects(self) -> None:
        """Send each suspect task alone to a worker that holds nothing else."""
        for worker in list(self._workers.values()):
            if not self._suspects:
                return
            if worker.leaving is None and not worker.inflight and worker.budget > 0 and not worker.outstanding:
                task = self._suspects.popleft()
                if task.id in self._tasks:
                    self._send_tasks(worker, [task], self._suspects)

    def _send_tasks(self, worker: _Worker, batch: list[_Task], source: collections.deque) -> None:
        frame = P.TASKS + pickle.dumps([task.wire() for task in batch], PROTOCOL)
        outstanding = worker.outstanding
        for task in batch:
            outstanding[task.id] = task
        worker.budget -= len(batch)
        self._idle.pop(worker.pipe.id, None)
        if not self._send(worker, frame):
            for task in batch:
                outstanding.pop(task.id, None)
            worker.budget += len(batch)
            source.extendleft(reversed(batch))
            self._mark_idle(worker)

    def _mark_idle(self, worker: _Worker) -> None:
        if (not worker.outstanding and not worker.inflight and worker.leaving is None and worker.budget > 0
                and worker.pipe.id in self._workers):
            self._idle[worker.pipe.id] = worker

    def _steal(self) -> None:
        """Move tasks sent ahead to a busy worker over to a worker that has nothing to do."""
        if not self._idle or any(w.stealing for w in self._workers.values()):
            return
        idle = list(self._idle.values())
        for victim in sorted(self._workers.values(), key=lambda w: -len(w.outstanding)):
            spare = [task_id for task_id in list(victim.outstanding)[1:] if task_id not in victim.stealing]
            if len(spare) < 1 or not idle:
                break
            take = spare[len(spare) // 2:] if len(spare) > 1 else spare
            victim.stealing.update(take)
            self._send(victim, P.CANCEL + pickle.dumps((take, False), PROTOCOL))
            idle.pop()

    def _shutdown(self) -> None:
        for worker in list(self._workers.values()):
            try:
                worker.pipe.send(P.QUIT)
            except Exception:
                pass
        unresolved = list(self._tasks.values())
        self._queue.clear()
        self._suspects.clear()
        for task in unresolved:
            self._resolve_plain(task, "cancel", "the controller was terminated before the task finished", None)
        self._workers.clear()
        self._idle.clear()
        self._wake()

    # ================================================================== errors
    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def __repr__(self) -> str:
        return (f"Controller(name={self.name!r}, launcher={type(self.launcher).__name__}, "
                f"workers={self.launcher.workers}, unresolved={self.unresolved()})")


def _distinct(handles: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for handle in handles:
        seen.setdefault(id(handle), handle)
    return list(seen.values())


def _peer(pipe) -> str:
    try:
        address = pipe.remote_address
        return f"{address}"
    except Exception:
        return f"pipe {getattr(pipe, 'id', '?')}"


def _close(pipe) -> None:
    try:
        pipe.close()
    except Exception:
        pass


class _CallableModule(types.ModuleType):
    """This module, callable: ``crew.controller("slurm", **options)`` builds the controller of an
    installed launcher plugin (see :func:`crew.discovery.controller`)."""

    def __call__(self, name: str, /, **options: Any) -> Any:
        from .discovery import controller

        return controller(name, **options)


sys.modules[__name__].__class__ = _CallableModule


@atexit.register
def _terminate_all() -> None:
    for controller in list(_live):
        try:
            controller.terminate()
        except Exception:
            pass
