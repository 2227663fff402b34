"""The loop: the ``crew-loop`` thread that talks to workers.

Each turn of :meth:`Loop.run` is a short list of named steps, as in CPython's process pool:
wait for a frame or a wake-up; handle every frame that arrived (hellos, results, hand-backs,
goodbyes); handle every event other threads posted (pushed tasks, cancels, connections opened
and closed, stop); dispatch queued tasks; ping workers when a heartbeat is due; publish what
resolved and run result callbacks.

Owner: the loop thread owns the gate (strangers) and, while it holds the board's lock, the dispatch
board. Other threads reach it only through :meth:`Loop.post` (a queue, then a wake-up); the
socket's pipe callbacks only post (NNG runs them on its threads; the ``unix`` transport's
:class:`crew._stream_listener.Listener`, on this thread, inside its receive).
"""

from __future__ import annotations

import logging
import queue
import select
import time
from typing import Any, Callable, Optional, Union

import pynng

from .. import _protocol as P
from .._stream_listener import Listener
from ..errors import CrewError
from ..results import Result
from .board import Board, Seat
from .dispatch import next_average
from .fleet import Fleet
from .gate import Gate
from .outcome import from_records, plain
from .store import ResultStore
from .task import Task
from .wakeup import Wakeup

__all__ = ["Loop", "STOP", "Settings"]

log = logging.getLogger("crew")

STOP = ("stop",)


class Settings:
    """What the loop needs to know of its controller (plain values and callables)."""

    def __init__(self, name: str, welcome: dict[str, Any], seconds_timeout: float, tasks_max: float,
                 loads: Callable[[bytes], Any], want_scale: Callable[[], None],
                 crashed: Callable[[Task, Seat], Optional[Result]]):
        self.name = name
        self.welcome = welcome  # the settings every worker is sent
        self.seconds_timeout = seconds_timeout
        self.tasks_max = tasks_max
        self.loads = loads
        self.want_scale = want_scale
        self.crashed = crashed  # a task crashed too often: its result, or None if moved to a backup


class Loop:
    """See the module docstring."""

    def __init__(self, sock: Union[pynng.Socket, Listener], wakeup: Wakeup, board: Board, gate: Gate, store: ResultStore,
                 fleet: Fleet, settings: Settings):
        self.sock = sock
        self.wakeup = wakeup
        self.board = board
        self.gate = gate
        gate.max_frame_bytes = settings.welcome.get("max_frame_bytes") or 0  # what a worker may send in parts
        self.store = store
        self.fleet = fleet
        self.settings = settings
        self.events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: list[Result] = []  # resolved this turn, for pop()
        self._callbacks: list[tuple[Task, Result]] = []  # resolved this turn, for a callback
        self._moved: list[str] = []  # names of tasks moved to a backup controller this turn
        self._began: list[Task] = []  # tasks reported started this turn, with an on_start callback
        self._next_heartbeat = 0.0
        # Workers came or went this turn: wake the scaler once what the turn resolved (e.g. the
        # crash of the task a lost worker held) is published, so it does not launch for it.
        self._rescale = False
        self._ending: list[Any] = []  # instances of workers lost this turn, ended after publishing
        self._asked: dict[int, float] = {}  # seat key -> since when it has not answered a hand-back request
        self._by_pipe: dict[Any, Seat] = {}  # the seats by their pynng Pipe object (reading pipe.id calls NNG)
        # Readable while a frame waits on the socket: asked before a non-blocking receive, whose
        # "try again" (an exception, and the GIL let go and taken back) costs 20 us in a turn.
        self._waiting = select.poll()
        self._waiting.register(sock.recv_fd, select.POLLIN)
        self.now = time.monotonic()

    # ------------------------------------------------------------------ from other threads
    def post(self, item: Any) -> None:
        """Hand an event (a Task, or a tuple) to the loop thread and wake it. Never blocks."""
        self.events.put(item)
        wakeup = self.wakeup
        if wakeup.sleeping and not wakeup.sent:  # (checked again inside; saves a call when awake)
            wakeup.wake()

    def on_connect(self, pipe: Any) -> None:
        if not self.wakeup.owns(pipe):
            self.post(("connect", pipe))

    def on_remove(self, pipe: Any) -> None:
        if pipe.id in self.wakeup.pipes:
            self.wakeup.pipes.discard(pipe.id)
        else:
            self.post(("remove", pipe))

    # ------------------------------------------------------------------ the thread
    def run(self) -> None:
        while True:
            message = self._wait()
            if message is STOP:
                return
            with self.board.lock:
                try:
                    if self._turn(message):
                        return
                except pynng.Closed:
                    return
                except BaseException as error:  # never let one bad event stop the loop
                    self._failed("error in the controller loop", error)
            try:
                self._publish()
            except BaseException as error:
                self._failed("error publishing results", error)
            if self._rescale:
                self._rescaled()

    def _rescaled(self) -> None:
        """After publishing: end the instances of workers lost this turn, then wake the scaler. In
        this order the scaler never sees a worker gone while the task it crashed still counts as
        unresolved (it would launch a worker for a task that needs none)."""
        self._rescale = False
        ending, self._ending = self._ending, []
        for instance in ending:
            self.fleet.end(instance)
        self.settings.want_scale()

    def _failed(self, what: str, error: BaseException) -> None:
        """Log an error of the loop and hand it to the user (raised from wait, pop, push)."""
        log.error("%s: %s", self.settings.name, what, exc_info=(type(error), error, error.__traceback__))
        failure = CrewError(f"{self.settings.name}: {what}: {type(error).__name__}: {error}")
        failure.__cause__ = error
        self.store.fail(failure)

    def _wait(self) -> Any:
        """The first frame to arrive, or None (woken, or timed out)."""
        self.now = time.monotonic()
        if not self.events.empty():
            return None
        self.wakeup.sleeping = True
        try:
            return self.sock.recv_msg()
        except pynng.Timeout:
            return None
        except pynng.Closed:
            return STOP
        finally:
            self.wakeup.sent = False
            self.wakeup.sleeping = False

    def _turn(self, message: Any) -> bool:
        """One turn with the board held; True when the loop must end."""
        while message is not None:
            data = message.bytes  # each read of a message's bytes is two calls into NNG and a copy
            if data:  # empty frames only wake the loop
                self._frame(message.pipe, data)
            message = None
            if self._waiting.poll(0):
                try:
                    message = self.sock.recv_msg(block=False)
                except pynng.TryAgain:
                    pass
        if self._events():
            return True
        self.board.dispatch()
        self.now = now = time.monotonic()
        if now >= self._next_heartbeat:
            self._heartbeat(now)
        self._collect()
        return False

    def _events(self) -> bool:
        get = self.events.get_nowait
        while True:
            try:
                item = get()
            except queue.Empty:
                return False
            if item.__class__ is Task:
                self.board.add(item)
            elif item is STOP:
                self._shutdown()
                return True
            elif item[0] == "connect":
                self._connect(item[1])
            elif item[0] == "remove":
                self._remove(item[1])
            elif item[0] == "cancel":
                self.board.cancel(item[1])
            del item  # keep no reference to the last event (e.g. a task's callback)

    # ------------------------------------------------------------------ connections
    def _connect(self, pipe: Any) -> None:
        refused, evicted = self.gate.admit(pipe)
        if evicted is not None:
            log.warning("%s: rejected a peer (%s): no hello while %d others waited", self.settings.name,
                        peer(evicted), self.gate.capacity)
            close(evicted)
        if refused:
            log.warning("%s: rejected a peer (%s): %s", self.settings.name, peer(pipe), refused)
            close(pipe)

    def _remove(self, pipe: Any) -> None:
        key = pipe.id
        self.gate.forget(key)
        self._asked.pop(key, None)
        seat, crashed = self.board.lost(key)
        if seat is not None:
            self._by_pipe.pop(seat.pipe, None)
        if seat is None:
            return
        if crashed:
            self.fleet.count_crash(seat.instance)
        if seat.leaving is None:
            self._ending.append(seat.instance)  # once this turn's results are published
        self._rescale = True

    def _hello(self, pipe: Any, data: bytes) -> None:
        hello, session, reason = self.gate.hello(pipe, data)
        if hello is None:
            if reason is None:  # a pipe already turned away, or closed before its connect event
                log.debug("%s: dropped a frame from an unknown connection (%s)", self.settings.name, peer(pipe))
            else:
                log.warning("%s: rejected a peer (%s): %s", self.settings.name, peer(pipe), reason)
            close(pipe)
            return
        instance = self.fleet.bind(hello.launch, hello.pid, hello.host)
        worker_id = f"{self.settings.name}/{instance.slot if instance else '-'}/{hello.pid}"
        seat = Seat(pipe.id, pipe, worker_id, hello.pid, hello.host, instance, self.settings.tasks_max, self.now)
        seat.session = session  # every frame from now on is sealed (the welcome is the first)
        if self.board.send(seat, P.encode(P.Welcome(worker_id, self.settings.welcome))):
            self.board.join(seat)  # it gets tasks once it acknowledges the welcome
            self._by_pipe[pipe] = seat
            self._rescale = True  # a launch backoff ends when a worker dials in
            log.debug("%s: worker %s connected from %s", self.settings.name, worker_id, hello.host)

    # ------------------------------------------------------------------ frames
    def _frame(self, pipe: Any, data: bytes) -> None:
        seat = self._by_pipe.get(pipe)
        if seat is None:
            seat = self.board.seats.get(pipe.id)
        if seat is None:
            self._hello(pipe, data)
            return
        seat.heard = self.now
        try:
            opened = seat.session.open(data)
            if opened is None:  # a part of a larger frame
                return
            frame = P.decode(opened)
            kind = type(frame)
            if kind is P.Ack:
                self.board.acknowledged(seat)
            elif kind is P.Results:
                self._results_in(seat, frame)  # type: ignore[arg-type]
            elif kind is P.Started:
                began = self.board.started(seat, frame.task_id)  # type: ignore[union-attr]
                if began is not None:
                    self._began.append(began)
            elif kind is P.Returned:
                self.board.returned(seat, frame)  # type: ignore[arg-type]
            elif kind is P.Goodbye:
                self._goodbye(seat, frame.reason)  # type: ignore[union-attr]
            elif kind is not P.Pong:
                raise P.ProtocolError(f"a worker may not send {kind.__name__}")
        except Exception as error:  # a worker that breaks the protocol (or a relay) is cut off; its tasks go back
            log.warning("%s: protocol error from worker %s (%s): %s; closing its connection",
                        self.settings.name, seat.id, peer(pipe), error)
            close(pipe)

    def _results_in(self, seat: Seat, frame: P.Results) -> None:
        done = self.board.results(seat, frame.results)
        if not done:
            return
        resolved, totals = from_records(done, seat, self.settings.name, self.settings.loads)
        results, callbacks = self._results, self._callbacks
        for task, result in resolved:
            if task.callback is None:
                results.append(result)
            else:
                callbacks.append((task, result))
        self.fleet.count_results(seat.instance, totals.tasks, totals.seconds, totals.errors, totals.warnings)
        seat.average = next_average(seat.average, totals.seconds / totals.tasks)

    def _goodbye(self, seat: Seat, reason: str) -> None:
        self.board.goodbye(seat, reason)
        self.fleet.end(seat.instance)
        self.board.send(seat, P.encode(P.Quit()))
        self._rescale = True

    # ------------------------------------------------------------------ upkeep
    def _heartbeat(self, now: float) -> None:
        """Ping every worker; cut off workers silent for seconds_timeout and strangers that never
        said hello. Runs every seconds_timeout / 3."""
        timeout = self.settings.seconds_timeout
        self._next_heartbeat = now + timeout / 3
        for seat in list(self.board.seats.values()):
            if now - seat.heard > timeout:
                log.warning("%s: worker %s sent nothing for %g s; dropping it", self.settings.name, seat.id, timeout)
                close(seat.pipe)  # its tasks go back when NNG reports the pipe removed
            elif not seat.inflight:  # a frame in flight gets an acknowledgement anyway
                self.board.send(seat, P.encode(P.Ping()))
            self._hand_back_bound(seat, now, timeout)
        for pipe in self.gate.expired(now):
            log.warning("%s: rejected a peer (%s): no hello within %g s", self.settings.name, peer(pipe), timeout)
            close(pipe)

    def _hand_back_bound(self, seat: Seat, now: float, timeout: float) -> None:
        """Cut off a worker that has not answered a request to hand tasks back for seconds_timeout:
        its tasks go to others (as after a crash)."""
        if not seat.stealing:
            self._asked.pop(seat.key, None)
            return
        since = self._asked.setdefault(seat.key, now)
        if now - since > timeout:
            log.warning("%s: worker %s did not hand back %d tasks within %g s; dropping it", self.settings.name,
                        seat.id, len(seat.stealing), timeout)
            self._asked.pop(seat.key, None)
            close(seat.pipe)

    def _collect(self) -> None:
        """Turn what the board resolved (cancels, exhausted crashes) into results."""
        board, name = self.board, self.settings.name
        while board.charged:
            task = board.charged.pop()
            self.store.crashed(task.name or "", task.crashes)
        while board.cancelled:
            task, why, seat = board.cancelled.pop()
            self._resolved(task, plain(task, "cancel", why, seat, name))
        while board.exhausted:
            task, seat = board.exhausted.pop()
            result = self.settings.crashed(task, seat)
            if result is None:
                self._moved.append(task.name or "")
            else:
                self._resolved(task, result)

    def _resolved(self, task: Task, result: Result) -> None:
        (self._results.append(result) if task.callback is None else self._callbacks.append((task, result)))

    def _publish(self) -> None:
        """After the board is released: publish results, then run result callbacks."""
        if self._began:
            self._run_started()
        results, callbacks, moved = self._results, self._callbacks, self._moved
        if not (results or callbacks or moved):
            return
        self._results, self._callbacks, self._moved = [], [], []
        released: list[tuple[str, Optional[Result]]] = [(task.name or "", result) for task, result in callbacks]
        released += [(name, None) for name in moved]
        self.store.publish(results, released)
        for task, result in callbacks:
            callback, task.callback, task.on_start = task.callback, None, None
            try:
                callback(result)  # type: ignore[misc]
            except Exception:
                log.exception("%s: a result callback failed", self.settings.name)

    def _run_started(self) -> None:
        """After the board is released: tell those who asked that their task started."""
        began, self._began = self._began, []
        for task in began:
            on_start = task.on_start
            if on_start is None:
                continue
            try:
                on_start()
            except Exception:
                log.exception("%s: a start callback failed", self.settings.name)

    def _shutdown(self) -> None:
        for seat in list(self.board.seats.values()):
            try:
                seat.pipe.send(seat.session.seal(P.encode(P.Quit())))
            except Exception:
                pass
        self._collect()  # what the board resolved this turn (e.g. cancels) first
        self._by_pipe.clear()
        for task in self.board.clear():
            self._resolved(task, plain(task, "cancel", "the controller was terminated before the task finished",
                                       None, self.settings.name))
        self._publish()


def peer(pipe: Any) -> str:
    try:
        return f"{pipe.remote_address}"
    except Exception:
        return f"pipe {getattr(pipe, 'id', '?')}"


def close(pipe: Any) -> None:
    try:
        pipe.close()
    except Exception:
        pass
