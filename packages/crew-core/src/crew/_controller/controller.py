"""The public :class:`Controller`: the API over the controller's parts. No socket code here.

Threads (see docs/architecture.md for the whole picture):

- callers' threads run this class's methods: intake checks and encodes a push, the result store
  reserves its name, and the task reaches the loop thread through its event queue (or, when a
  worker is idle and the loop is free, goes straight out through the board: the fast lane);
- ``crew-loop`` (:mod:`crew._controller.loop`) talks to workers and owns the dispatch board;
- ``crew-scale`` (:mod:`crew._controller.scaler`) launches workers and watches their launches;
- NNG's pipe callbacks only post events to the loop.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .. import _secret_file, validate
from .._serial import Serializer
from .._wire import Wire, send
from ..client import Client
from ..errors import CrewError, SettingError
from ..launcher import Contact, Launcher, worker_environment
from ..results import Result
from .board import Board, Seat
from .crashes import crash_result
from .fleet import Fleet
from .gate import Gate
from .intake import Intake
from .loop import STOP, Loop, Settings
from .outcome import ERROR_MODES, check
from .scaler import Scaler
from .scaling import wanted
from .store import Listener, ResultStore
from .task import ResultCallback, StartCallback, Task
from .wakeup import Wakeup

if TYPE_CHECKING:  # pragma: no cover
    from ..executor import Executor

__all__ = ["Controller", "live"]

log = logging.getLogger("crew")
live: weakref.WeakSet[Controller] = weakref.WeakSet()
"""Controllers started and not yet terminated (ended at interpreter exit)."""


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

    def __init__(self, client: Client, launcher: Launcher, reset_globals: bool = True, reset_modules: bool = False,
                 garbage_collection: bool = False, crashes_max: int = 5, backup: Optional[Controller] = None):
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
        self.name: str = launcher.name or client.profile or f"crew-{secrets.token_hex(3)}"
        launcher.default_name(self.name)
        self._id = secrets.token_hex(8)
        self._secret = secrets.token_hex(32)
        self._serializer = Serializer(client.serializer)
        self._intake = Intake(self._serializer)
        self._store = ResultStore()
        self._fleet = Fleet(launcher.workers)
        self._board = Board(_transmit, self.crashes_max)
        self._scaler = Scaler(self.name, launcher, self._fleet, self._store.unresolved, self._store.fail,
                              lambda launch: _secret_file.failures(self._id, launch))
        self._loop: Optional[Loop] = None
        self._wakeup: Optional[Wakeup] = None
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._started = False
        self._terminated = False

    # ================================================================== life cycle
    def start(self) -> Controller:
        """Listen for workers and start the controller's threads. Launches no worker."""
        with self._start_lock:
            if self._terminated:
                raise CrewError(f"controller {self.name!r} was terminated; make a new one")
            if self._started:
                return self
            sock = self.client.start()
            secret_file = None
            if self.launcher.shared_filesystem:
                secret_file = _secret_file.write(self._id, {
                    **worker_environment(self._secret, self.client.certificate),
                    "CREW_CONTROLLER_PID": str(os.getpid()), "CREW_CONTROLLER_HOST": socket.gethostname()})
            contact = Contact(self.client.url, self._id, self._secret, self.client.certificate, self.name, secret_file)
            self.launcher.bind(contact, fleet=self._fleet)
            self._wakeup = Wakeup(sock, self._id)
            self._loop = Loop(sock, self._wakeup, self._board, Gate(self._id, self._secret, self.client.seconds_timeout),
                              self._store, self._fleet, self._loop_settings())
            sock.add_post_pipe_connect_cb(self._loop.on_connect)
            sock.add_post_pipe_remove_cb(self._loop.on_remove)
            sock.recv_timeout = int(self.client.seconds_interval * 1000)
            for target, label in ((self._loop.run, "crew-loop"), (self._scaler.run, "crew-scale")):
                thread = threading.Thread(target=target, name=f"{label}-{self.name}", daemon=True)
                thread.start()
                self._threads.append(thread)
            self._started = True
            live.add(self)
            return self

    def _loop_settings(self) -> Settings:
        welcome = {
            "reset_globals": self.reset_globals,
            "reset_modules": self.reset_modules,
            "garbage_collection": self.garbage_collection,
            "serializer": self.client.serializer,
            "max_frame_bytes": self.client.max_frame_bytes,
        }
        return Settings(self.name, welcome, self.client.seconds_timeout, self.launcher.tasks_max,
                        self._serializer.loads, self._want_scale, self._crashed)

    def validate(self) -> Controller:
        """Check that the controller's parts fit together; return the controller."""
        if self.backup is self:
            raise SettingError("backup must be another controller, not the controller itself")
        if self.launcher.tls is not None and self.launcher.tls != self.client.tls:
            raise SettingError("the launcher's tls differs from the client's")
        return self

    def terminate(self) -> None:
        """End every worker, close the connection, and resolve unfinished tasks as ``"cancel"``.

        Safe to call more than once; also runs when the interpreter exits.
        """
        with self._start_lock:
            if self._terminated:
                return
            self._terminated = True
        if self._started:
            self._stop_threads()
        try:
            handles = self._fleet.clear()
            if handles:
                self.launcher.terminate_workers(handles)
        finally:
            _secret_file.remove(self._id)
            self.launcher.close()
            live.discard(self)

    def _stop_threads(self) -> None:
        assert self._loop is not None and self._wakeup is not None
        self._loop.post(STOP)
        self._scaler.stop()
        me = threading.current_thread()
        for thread in self._threads:
            if thread is not me:
                thread.join(self.client.seconds_timeout)
        self.client.stop()
        self._wakeup.close()

    def __enter__(self) -> Controller:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.terminate()

    # ================================================================== tasks in
    def push(self, command: Union[Callable[..., Any], str], *, args: Sequence[Any] = (),
             kwargs: Optional[Mapping[str, Any]] = None, data: Optional[Mapping[str, Any]] = None,
             globals: Optional[Mapping[str, Any]] = None, name: Optional[str] = None, seed: Optional[int] = None,
             seconds_timeout: Optional[float] = None, scale: bool = True,
             callback: Optional[ResultCallback] = None, on_start: Optional[StartCallback] = None) -> str:
        """Queue one task and return its name.

        ``command`` is a callable, called with ``args`` and ``kwargs``, or a string of Python
        code run with ``data`` as its local names; a string's value is its last expression.
        ``globals`` are set in the worker's global namespace for the task. ``seed`` seeds
        ``random`` (and NumPy's global generator) first. A task that runs longer than
        ``seconds_timeout`` resolves with status ``"timeout"``. With ``callback``, the task's
        :class:`crew.Result` goes to ``callback(result)``, called in the controller's loop thread
        (keep it short), and not to :meth:`pop`/:meth:`collect` (for adapters such as the
        executor). With ``on_start``, ``on_start()`` is called in the loop thread when a worker
        reports the task started (a task still running 1 ms after it began; a shorter one may
        resolve unreported).
        """
        task = None
        if (kwargs is None and data is None and globals is None and seed is None and seconds_timeout is None
                and self._store.error is None):
            task = self._intake.quick(command, args, name)  # the common call, checked once already
        if task is None:
            self._store.raise_error()
            self._check_open()
            task = self._intake.task(command, args, kwargs, data, globals, name, seed, seconds_timeout)
        elif self._terminated:
            self._check_open()
        task.callback = callback
        task.on_start = on_start
        self._submit(task)
        if scale and len(self._board.seats) < self.launcher.workers:  # else no worker to add
            self._want_scale()
        return task.name  # type: ignore[return-value]

    @property
    def terminated(self) -> bool:
        """True once :meth:`terminate` was called."""
        return self._terminated

    def _check_open(self) -> None:
        if self._terminated:
            raise CrewError(f"controller {self.name!r} was terminated; make a new one")

    def _submit(self, task: Task) -> None:
        """Give a task its id and name and hand it to the loop (or straight to an idle worker)."""
        if not self._started:
            self.start()
        assert self._loop is not None
        task.id, task.name = self._store.reserve(task.name)
        board = self._board
        if board.can_send_at_once() and self._loop.events.empty() and board.lock.acquire(blocking=False):
            try:  # the fast lane: a worker waits and the loop is free; saves a thread hand-off
                board.send_at_once(task)
            finally:
                board.lock.release()
        else:
            self._loop.post(task)

    def adopt(self, task: Task) -> None:
        """Take a task another controller gave up on (it crashed there more than crashes_max
        times): it keeps its name, command, data and callback. Never blocks on this controller's
        loop; called from the other controller's loop thread."""
        self._check_open()
        self._submit(task)
        self._want_scale()

    def executor(self, **options: Any) -> Executor:
        """A :class:`concurrent.futures.Executor` that runs its calls as this controller's tasks."""
        from ..executor import Executor

        return Executor(self, **options)

    async def push_async(self, command: Union[Callable[..., Any], str], **options: Any) -> Result:
        """Push a task and await its :class:`crew.Result` (``options`` as for :meth:`push`)."""
        from ..executor import push_async

        return await push_async(self, command, **options)

    def walk(self, command: Union[Callable[..., Any], str], iterate: Mapping[str, Sequence[Any]], *,
             data: Optional[Mapping[str, Any]] = None, globals: Optional[Mapping[str, Any]] = None,
             names: Optional[Sequence[str]] = None, seed: Optional[int] = None,
             seconds_timeout: Optional[float] = None, scale: bool = True) -> list[str]:
        """Push one task per element of the lists in ``iterate``, without waiting; return the names.

        Task ``i`` gets ``{key: values[i]}`` for each key of ``iterate``: as keyword arguments of
        a callable, or as local names (with ``data``) of a string command. With ``seed``, task ``i``
        gets ``seed + i``.
        """
        self._store.raise_error()
        self._check_open()
        tasks = self._intake.walk(command, iterate, data, globals, names, seed, seconds_timeout, self._store.taken)
        for task in tasks:
            self._submit(task)
        if scale:
            self.scale()
        return [task.name or "" for task in tasks]

    def map(self, command: Union[Callable[..., Any], str], iterate: Mapping[str, Sequence[Any]], *,
            data: Optional[Mapping[str, Any]] = None, globals: Optional[Mapping[str, Any]] = None,
            names: Optional[Sequence[str]] = None, seed: Optional[int] = None,
            seconds_timeout: Optional[float] = None, error: str = "stop", progress: bool = False) -> list[Result]:
        """Run one task per element of ``iterate`` (see :meth:`walk`), wait, and return their
        results in order. ``error``: ``"stop"`` raises :class:`crew.TaskError` for the first task
        that did not succeed, ``"warn"`` warns, ``"silent"`` says nothing."""
        validate.choice("error", error, ("stop", "warn", "silent"))
        pushed = self.walk(command, iterate, data=data, globals=globals, names=names, seed=seed,
                           seconds_timeout=seconds_timeout)
        interval = self.client.seconds_interval * 4
        if progress:
            from .._progress import Progress

            with Progress(self, total=len(pushed)):
                self._store.wait_for(pushed, None, interval)
        else:
            self._store.wait_for(pushed, None, interval)
        return check(self._store.take(pushed), error)

    def cancel(self, names: Union[str, Iterable[str], None] = None, all: bool = False) -> None:
        """Cancel tasks by name (or every unresolved task with ``all=True``).

        A queued task, or one sent ahead to a worker but not started, never runs; a running task
        is interrupted. Each resolves with status ``"cancel"`` (unless it finished first).
        """
        if names is None and not all:
            raise SettingError("cancel needs names or all=True")
        wanted = None if all else set(validate.strings("names", names))
        if self._loop is not None:
            self._loop.post(("cancel", wanted))

    # ================================================================== results out
    def pop(self, scale: bool = True, error: str = "silent") -> Optional[Result]:
        """The oldest result not yet popped, or None.

        ``error``: ``"silent"`` (the default) returns any result; ``"warn"`` warns when it did
        not succeed; ``"stop"`` raises :class:`crew.TaskError` for it (the result is taken out
        of the controller first, and the error holds it as ``.result``)."""
        validate.choice("error", error, ERROR_MODES)
        self._store.raise_error()
        if scale:
            self._want_scale()
        result = self._store.pop()
        return None if result is None else check([result], error)[0]

    def collect(self, scale: bool = True, frame: bool = False, error: str = "silent") -> Any:
        """Every result not yet popped (an empty list when there is none); with ``frame=True``,
        a pandas DataFrame with one row per result and the result's fields as columns.
        ``error`` as for :meth:`pop`: with ``"stop"`` every result is taken out, then the first
        that did not succeed is raised as :class:`crew.TaskError`."""
        validate.choice("error", error, ERROR_MODES)
        if frame:
            from .._frame import results_frame

            return results_frame(self.collect(scale=scale, error=error))
        self._store.raise_error()
        if scale:
            self._want_scale()
        return check(self._store.collect(), error)

    def wait(self, mode: str = "all", seconds_timeout: Optional[float] = None, scale: bool = True,
             progress: bool = False) -> bool:
        """Block until every task is resolved (``mode="all"``) or one result can be popped
        (``"one"``). Return False if ``seconds_timeout`` passed first. ``progress=True`` shows a
        live progress bar on a terminal."""
        validate.choice("mode", mode, ("all", "one"))
        if progress:
            from .._progress import Progress

            with Progress(self):
                return self.wait(mode, seconds_timeout, scale)
        if seconds_timeout is not None:
            seconds_timeout = validate.number("seconds_timeout", seconds_timeout)
        if scale:
            self._want_scale()
        store = self._store
        if mode == "all":
            def ready() -> bool:
                return store.pushed == store.resolved
        else:
            def ready() -> bool:
                return bool(store.ready()) or store.pushed == store.resolved
        return store.wait(ready, seconds_timeout, self.client.seconds_interval * 4)

    def raise_error(self) -> None:
        """Raise, once, an error the controller's threads hit (e.g. workers could not launch).

        ``push``, ``pop``, ``collect`` and ``wait`` call it; adapters that wait by other means
        call it too."""
        self._store.raise_error()

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener()`` (no arguments) whenever tasks resolve or an error is reported.

        It runs in the controller's loop thread: keep it short (e.g. notify a condition)."""
        self._store.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._store.remove_listener(listener)

    # ================================================================== counts
    def unresolved(self) -> int:
        """Tasks pushed and not yet resolved."""
        return self._store.unresolved()

    def resolved(self) -> int:
        """Tasks resolved since the controller started (popped or not)."""
        return self._store.resolved

    def saturated(self) -> bool:
        """True when there are at least as many unresolved tasks as workers allowed."""
        return self.unresolved() >= self.launcher.workers

    def results_ready(self) -> int:
        """How many results wait to be popped."""
        return self._store.ready()

    def empty(self) -> bool:
        """True when nothing is unresolved and no result waits to be popped."""
        return self.unresolved() == 0 and not self._store.ready()

    def summary(self, by: str = "worker") -> list[dict[str, Any]]:
        """``by="worker"``: one row per worker place (tasks, seconds, errors, warnings, crashes,
        launches, state, pid, host, reason). ``by="controller"``: one row with R crew's columns:
        ``controller``, ``tasks`` (resolved), ``seconds`` (total run time), ``success``,
        ``error``, ``crash``, ``cancel``, ``timeout`` (tasks with each status) and ``warning``
        (tasks that warned)."""
        validate.choice("by", by, ("worker", "controller"))
        if by == "controller":
            return [self._store.totals(self.name)]
        return self._fleet.rows(self.name)

    def crashes(self, name: str) -> int:
        """How many times the task called ``name`` lost its worker (0 for a task that never did)."""
        return self._store.crashes(validate.text("name", name))

    # ================================================================== scaling
    def scale(self) -> int:
        """Launch the workers that the unresolved tasks need now; return how many were launched."""
        self._store.raise_error()
        if not self._started:
            self.start()
        launched = self._scaler.round()
        self._scaler.wanted.set()  # the background thread watches the launch from here on
        return launched

    def launch(self, n: int = 1) -> int:
        """Launch ``n`` workers now, whatever the tasks need (never more than ``workers`` alive in
        all); return how many were launched."""
        n = validate.integer("n", n, minimum=1)
        self._store.raise_error()
        if not self._started:
            self.start()
        return self._scaler.round(want=n)

    def descale(self) -> None:
        """Stop launching workers by itself (the same as ``autoscale(False)``); ``scale()`` and
        ``launch(n)`` still launch."""
        self.autoscale(False)

    def autoscale(self, enabled: bool = True) -> None:
        """Turn background auto-scaling on (the default) or off.

        When on, the controller re-checks every ``seconds_interval`` while tasks are unresolved:
        it relaunches workers that exited (idle, wall time, max tasks, crashes) and replaces
        launches that never dialled in.
        """
        self._scaler.autoscaling = validate.flag("enabled", enabled)
        if enabled:
            self._scaler.wanted.set()

    def _want_scale(self) -> None:
        """Wake the scaler when unresolved tasks may need more workers than are connected (a hint:
        read without a lock, as the scaler checks again)."""
        store = self._store
        if (self._started and wanted(self.launcher.workers, store.pushed - store.resolved, len(self._board.seats))
                and not self._scaler.wanted.is_set()):
            self._scaler.wanted.set()

    # ================================================================== crashes (the loop thread)
    def _crashed(self, task: Task, seat: Seat) -> Optional[Result]:
        """A task lost its worker more than crashes_max times: its crash result, or None when
        it moved to the backup controller."""
        return crash_result(task, seat, self.launcher, self.crashes_max, self.name, self.backup)

    def __repr__(self) -> str:
        return (f"Controller(name={self.name!r}, launcher={type(self.launcher).__name__}, "
                f"workers={self.launcher.workers}, unresolved={self.unresolved()})")


def _transmit(seat: Seat, frame: Wire) -> bool:
    try:
        send(seat.pipe, frame)
        return True
    except Exception as error:
        log.debug("send to %s failed: %s", seat.id, error)
        return False
