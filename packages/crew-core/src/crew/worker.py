"""The worker: dials back to its controller, runs the tasks it is sent, returns their results.

Started by a launcher as ``python -m crew.worker URL --controller ID --launch N ...`` (or the
``crew-worker`` console script). The controller's secret comes from the ``CREW_SECRET``
environment variable or from ``--secret-file``, never from the command line.

It exits by itself when it has been idle for ``--seconds-idle``, after ``--seconds-wall`` or
``--tasks-max`` tasks, when a task overruns its timeout, and at once when its controller is gone.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import signal
import socket
import sys
import threading
import time
import warnings
from typing import Any, NoReturn, Optional, Union

import pynng

from . import _protocol as P
from ._channel import PART_BYTES, Buffer, ChannelError, Session, Wire, part_bytes, parts
from ._execute import FRAME_ROOM, Interrupted, Runner
from ._metrics import METRICS_SECONDS
from ._secret_file import note_failure, writer_gone
from ._serial import Serializer
from ._wire import receive, send

__all__ = ["main", "Worker"]

_ACK = P.encode(P.Ack())
_MARK_AFTER = 0.001  # seconds a task runs before the worker reports it as started

Outgoing = Union[Wire, P.ResultRecord]  # what the sender thread sends: a frame, or a result to batch


class Worker:
    """One worker process's state; :func:`main` builds and runs it.

    Threads: the main thread runs tasks (:meth:`run`); ``crew-receive`` reads frames and queues
    tasks; ``crew-send`` sends what piles up in the outbox as one frame; ``crew-mark`` reports a
    task as started; ``crew-heartbeat`` exits when the controller falls silent; ``crew-timeout``
    (started on first use) ends a task that overruns. ``lock`` guards the task queue and the
    running/stopping state; ``outbox_lock`` the outbox.
    """

    def __init__(self, options: argparse.Namespace, secret: str, certificate: Optional[str]):
        self.options = options
        self.secret = secret
        self.certificate = certificate
        self.serializer = Serializer(None)
        self.settings: dict[str, Any] = {}
        self.worker_id: Optional[str] = None
        self.tasks: collections.deque[P.TaskRecord] = collections.deque()
        self.mutex = threading.RLock()
        self.lock = threading.Condition(self.mutex)  # (the hot path enters the mutex itself: a C call)
        self.running: Optional[int] = None
        self.cancelled: Optional[int] = None
        self.stopping: Optional[str] = None
        self.welcomed = threading.Event()
        self.answered = False  # a hello was sent: a cut-off from now on is a refusal
        self.gone = threading.Event()
        self.outbox: list[Outgoing] = []
        self.outbox_lock = threading.Lock()
        self.outbox_ready = threading.Event()
        self.send_lock = threading.Lock()
        self.busy = threading.Event()
        self.seq = 0  # tasks started so far
        self.marked = 0  # seq of the last task reported as started
        self.deadline: Optional[tuple[int, float, float]] = None
        self.deadline_changed = threading.Condition()
        self._watchdog: Optional[threading.Thread] = None
        self.done = 0
        self.started = time.monotonic()
        self.last_active = time.monotonic()
        self.heard = time.monotonic()  # when the controller last sent anything
        self.socket = pynng.Pair1(recv_max_size=0)
        self.session: Optional[Session] = None  # the sealed channel, from the controller's challenge on
        self.seal_lock = threading.Lock()  # seal and send in one step: frames go out in numbered order
        self.part = PART_BYTES
        self.main_thread = threading.main_thread().ident
        self.runner = Runner(self.serializer, self.settings, self._arm, self._ended)

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        url = self.options.url
        if url.startswith("tls+"):
            host = url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
            self.socket.tls_config = pynng.TLSConfig(
                pynng.TLSConfig.MODE_CLIENT, ca_string=self.certificate, server_name=host,
                auth_mode=pynng.TLSConfig.AUTH_MODE_REQUIRED)
        self.socket.add_post_pipe_remove_cb(self._on_remove)
        self.socket.dial(url, block=False)
        for target, name in ((self._receive, "crew-receive"), (self._send, "crew-send"), (self._mark, "crew-mark"),
                             (self._watch_controller, "crew-heartbeat")):
            threading.Thread(target=target, name=name, daemon=True).start()
        if not self.welcomed.wait(self.options.seconds_timeout):
            _fail(self.options, f"no controller at {url} within {self.options.seconds_timeout:g} s", 3)

    def _on_remove(self, pipe: Any) -> None:
        if not self.welcomed.is_set() and not self.answered:
            # Cut off before any challenge (the controller's gate was full during a burst of
            # workers): NNG dials again, until seconds_timeout ends the wait in connect(). A worker
            # cut off after its hello was refused (a wrong secret, another controller): it leaves.
            return
        self.gone.set()
        if self.stopping is None:
            # The controller is gone (or cut us off): nobody can receive our results.
            _log("the controller closed the connection; exiting")
            os._exit(0)

    def _receive(self) -> None:
        while True:
            try:
                data = receive(self.socket)  # a large frame: a view of NNG's buffer, not a copy
            except pynng.exceptions.Closed:
                return
            frame = self._open(data)
            if frame is None:
                continue
            self.heard = time.monotonic()
            kind = type(frame)
            if kind is not P.Quit:
                # Acknowledged before the tasks are queued: sent after them, the acknowledgement
                # would hold up the first result (NNG sends one frame at a time on a pipe). The
                # controller sends the next frame only after it.
                self._transmit(_ACK)
            if kind is P.Tasks:
                with self.mutex:
                    if self.stopping is None:
                        self.tasks.extend(frame.tasks)  # type: ignore[union-attr]
                        self.lock.notify()
            else:
                self._control(frame)

    def _open(self, data: Buffer) -> Optional[P.Frame]:
        """The frame in ``data``, once the controller has proved it holds the secret; None for
        the handshake's own frames and for what comes before any challenge."""
        session = self.session
        if not self.welcomed.is_set():
            if data[:1] == b"c" and len(data) == 1 + P.NONCE_BYTES:
                self._answer(bytes(data[1:]))
                return None
            if session is None:
                _log("ignored a frame that came before any challenge")
                return None
        try:
            opened = session.open(data)  # type: ignore[union-attr]
            frame = None if opened is None else P.decode(opened)
        except (ChannelError, P.ProtocolError) as error:
            if not self.welcomed.is_set():
                _fail(self.options, f"the controller at {self.options.url} did not prove it holds the secret "
                                    f"({error}); refusing it", 3)
            _log(f"a frame from the controller failed its check ({error}); closing the connection")
            os._exit(3)
        if not self.welcomed.is_set() and not isinstance(frame, P.Welcome):
            _fail(self.options, f"the controller at {self.options.url} sent {type(frame).__name__} before its welcome", 3)
        return frame

    def _answer(self, challenge: bytes) -> None:
        """Answer a challenge: a hello with our own nonce and the proof over both."""
        nonce = os.urandom(P.NONCE_BYTES)
        ident = self.options.controller
        self.answered = True
        self.session = Session(self.secret, challenge, nonce, ident, False)
        hello = P.Hello(P.VERSION, ident, self.options.launch, os.getpid(), socket.gethostname(),
                        P.mac(self.secret, challenge, nonce, ident), nonce.hex())
        self.socket.send(P.encode(hello))

    def _transmit(self, frame: Wire) -> None:
        """Seal and send one frame, bytes or pieces (in parts when it is larger than the controller
        reads at once)."""
        with self.seal_lock:
            session: Session = self.session  # type: ignore[assignment]
            if type(frame) is bytes and len(frame) < self.part:
                self.socket.send(session.seal(frame))
                return
            for raw in parts(session.seal(frame) if isinstance(frame, bytes) else session.seal_pieces(frame), self.part):
                send(self.socket, raw)

    def _control(self, frame: P.Frame) -> None:
        """Handle a frame other than Tasks."""
        if isinstance(frame, P.Cancel):
            self._cancel(set(frame.ids), frame.interrupt)
        elif isinstance(frame, P.Welcome):
            self.worker_id = frame.worker
            self.settings.update(frame.settings)
            self.part = part_bytes(self.settings.get("max_frame_bytes") or 0)
            self.serializer = Serializer(self.settings.get("serializer"))
            self.runner.configure(self.serializer, self.settings)
            self.welcomed.set()
        elif isinstance(frame, P.Ping):
            self._post(P.encode(P.Pong()))
        elif isinstance(frame, P.Quit):
            self.gone.set()
            os._exit(0)

    def _cancel(self, ids: set[int], interrupt: bool) -> None:
        with self.lock:
            kept = [task for task in self.tasks if task.id not in ids]
            returned = [task.id for task in self.tasks if task.id in ids]
            self.tasks.clear()
            self.tasks.extend(kept)
            if interrupt and self.running in ids:
                self.cancelled = self.running
                threading.Thread(target=self._interrupt, args=(self.running,), name="crew-interrupt",
                                 daemon=True).start()
        self._post(P.encode(P.Returned(sorted(ids), returned)))

    def _interrupt(self, task_id: int) -> None:
        """Signal the main thread until the cancelled task stops running.

        A signal that arrives just before the main thread enters a blocking call (a sleep, a
        read) is noted but not acted on until that call returns, so one signal is not enough:
        repeat it, less and less often, while the task still runs."""
        pause = 0.002
        while self.cancelled == task_id and self.running == task_id:
            signal.pthread_kill(self.main_thread, signal.SIGUSR1)  # type: ignore[arg-type]
            time.sleep(pause)  # not a wait for an event: the main thread may be blocked in C
            pause = min(pause * 2, 0.5)

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        if self.cancelled is not None and self.cancelled == self.running:
            self.cancelled = None
            raise Interrupted()

    # ------------------------------------------------------------------ sending
    def _post(self, item: Outgoing) -> None:
        """Queue a frame or a result for the sender thread, which sends what piles up as one frame."""
        with self.outbox_lock:
            self.outbox.append(item)
        if not self.outbox_ready.is_set():
            self.outbox_ready.set()

    def _send(self) -> None:
        while True:
            self.outbox_ready.wait()
            self.outbox_ready.clear()
            self._flush()

    def _flush(self, *extra: P.ResultRecord) -> None:
        """Send everything queued, then ``extra`` results, in order."""
        with self.send_lock:
            with self.outbox_lock:
                items, self.outbox = self.outbox, []
            items.extend(extra)
            results: list[P.ResultRecord] = []
            for item in items:
                if isinstance(item, P.ResultRecord):
                    results.append(item)
                    continue
                if results:
                    self._send_results(results)
                    results = []
                self._transmit(item)
            if results:
                self._send_results(results)

    def _send_results(self, results: list[P.ResultRecord]) -> None:
        for batch in split_results(results, self.settings.get("max_frame_bytes") or 0):
            self._transmit(P.encode(P.Results(batch)))

    def _watch_controller(self) -> None:
        """Exit when the controller has sent nothing (not even its pings) for seconds_timeout:
        the connection is dead even if TCP has not noticed (a partition, a powered-off node)."""
        limit = self.options.seconds_timeout
        while True:
            time.sleep(limit / 4)
            if self.welcomed.is_set() and time.monotonic() - self.heard > limit and self.stopping is None:
                _log(f"nothing from the controller for {limit:g} s; exiting")
                os._exit(0)

    def _mark(self) -> None:
        """Report a task as started once it has run for a millisecond.

        Results of earlier tasks are sent first, and a reported task's own result is sent before
        the next task starts, so if the worker dies the controller knows which task it was running.
        """
        while True:
            self.busy.wait()
            seq, running = self.seq, self.running
            time.sleep(_MARK_AFTER)
            if running is not None and self.seq == seq and self.running == running and self.marked != seq:
                self.marked = seq
                self._post(P.encode(P.Started(running)))

    # ------------------------------------------------------------------ running tasks
    def run(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_interrupt)
        warnings.showwarning = self.runner.on_warning
        while True:
            task = self._next_task()
            if task is None:
                return
            try:
                result = self.runner.run(task)
            except Interrupted:  # cancelled in the instant before the task's own code began
                self.running = None
                result = P.ResultRecord(task.id, "cancel", None, "cancelled while running", None, None, 0.0)
            if self.marked == self.seq or not self.tasks:
                # A task reported as started, or nothing else to run: send the result now.
                self._flush(result)
            else:
                self._post(result)
            self.done += 1
            self.last_active = time.monotonic()
            if self.done >= self.options.tasks_max:
                return self._leave("tasks_max")
            if self.done >= self.options.tasks_timers and self.last_active - self.started >= self.options.seconds_wall:
                return self._leave("seconds_wall")

    def _next_task(self) -> Optional[P.TaskRecord]:
        """The next task to run, waiting for one; None once the worker has left (idle, wall time)."""
        idle, wall = self.options.seconds_idle, self.options.seconds_wall
        with self.mutex:
            while not self.tasks:
                now = time.monotonic()
                timers_on = self.done >= self.options.tasks_timers
                if timers_on and now - self.started >= wall:
                    self._leave("seconds_wall")
                    return None
                if timers_on and now - self.last_active >= idle:
                    self._leave("seconds_idle")
                    return None
                limit = None
                if timers_on:
                    limit = min(idle - (now - self.last_active), wall - (now - self.started))
                    limit = None if math.isinf(limit) else max(limit, 0.001)
                self.busy.clear()
                self.lock.wait(limit)
            task = self.tasks.popleft()
            self.seq += 1
            self.running = task.id
        if not self.busy.is_set():
            self.busy.set()
        return task

    def _ended(self) -> None:
        self.running = None

    def _leave(self, reason: str) -> None:
        with self.lock:
            self.stopping = reason
            self.tasks.clear()
        self._post(P.encode(P.Goodbye(reason)))
        # The controller answers with QUIT (or closes the pipe) once our last frames are in.
        self.gone.wait(self.options.seconds_timeout)
        os._exit(0)

    # ------------------------------------------------------------------ timeouts
    def _arm(self, task_id: Optional[int], timeout: Optional[float]) -> None:
        with self.deadline_changed:
            if task_id is None or timeout is None:
                self.deadline = None
            else:
                self.deadline = (task_id, time.monotonic() + timeout, timeout)
                if self._watchdog is None:
                    self._watchdog = threading.Thread(target=self._watch, name="crew-timeout", daemon=True)
                    self._watchdog.start()
            self.deadline_changed.notify()

    def _watch(self) -> None:
        with self.deadline_changed:
            while True:
                if self.deadline is None:
                    self.deadline_changed.wait()
                    continue
                task_id, due, timeout = self.deadline
                left = due - time.monotonic()
                if left > 0:
                    self.deadline_changed.wait(left)
                    continue
                # The task overran: report it, and leave (a running thread cannot be stopped safely).
                error = f"the task ran longer than its seconds_timeout of {timeout:g} s"
                with self.lock:
                    self.stopping = "timeout"
                    self.tasks.clear()
                self._post(P.ResultRecord(task_id, "timeout", None, error, None, None, float(timeout)))
                self._post(P.encode(P.Goodbye("timeout")))
                self.gone.wait(self.options.seconds_timeout)
                os._exit(0)


def split_results(results: list[P.ResultRecord], limit: int) -> list[list[P.ResultRecord]]:
    """Results in batches whose frames stay under the controller's ``limit`` (0: no limit)."""
    if not limit or len(results) <= 1:
        return [results]
    batches: list[list[P.ResultRecord]] = []
    current: list[P.ResultRecord] = []
    size = 0
    for result in results:
        weight = len(result.payload or b"") + len(result.error or "") + FRAME_ROOM
        if current and size + weight > limit:
            batches.append(current)
            current, size = [], 0
        current.append(result)
        size += weight
    batches.append(current)
    return batches


def _log(message: str) -> None:
    print(f"crew.worker[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def _read_secret(options: argparse.Namespace) -> tuple[str, str | None]:
    values = dict(os.environ)
    if options.secret_file:
        try:
            with open(options.secret_file) as handle:
                text = handle.read()
        except OSError as error:
            _fail(options, f"cannot read the secret file {options.secret_file}: {error.strerror}")
        key = None
        for line in text.splitlines():
            if line.startswith("CREW_") and "=" in line and line.split("=", 1)[0].isidentifier():
                key, value = line.split("=", 1)
                values[key] = value
            elif key is not None:
                values[key] += "\n" + line
        _check_writer(options, values)
    secret = values.get("CREW_SECRET")
    if not secret:
        _fail(options, "no secret: set CREW_SECRET or pass --secret-file")
    return str(secret), values.get("CREW_TLS_CERTIFICATE")


def _check_writer(options: argparse.Namespace, values: dict[str, str]) -> None:
    """Refuse a secret file whose controller, on this very host, is gone (e.g. SIGKILLed): the
    file outlives it, and whoever binds the controller's port next must get nothing from us."""
    if writer_gone(values):
        _fail(options, f"the controller (pid {values['CREW_CONTROLLER_PID']}) that wrote the secret file is gone")


def _fail(options: argparse.Namespace, message: str, code: int = 2) -> NoReturn:
    """Exit before serving: say why on stderr and, beside the secret file, for the controller."""
    _log(message)
    if options.secret_file:
        note_failure(options.secret_file, str(options.launch), message)
    sys.stdout.flush()
    os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crew-worker", description="Run a crew worker.")
    parser.add_argument("url", help="the controller's address, e.g. tcp://10.0.0.5:5555")
    parser.add_argument("--controller", required=True, help="id of the controller to serve")
    parser.add_argument("--launch", default="0", help="id of the scaling round that launched this worker")
    parser.add_argument("--seconds-timeout", type=float, default=60.0)
    parser.add_argument("--seconds-idle", type=float, default=math.inf)
    parser.add_argument("--seconds-wall", type=float, default=math.inf)
    parser.add_argument("--tasks-max", type=float, default=math.inf)
    parser.add_argument("--tasks-timers", type=int, default=0)
    parser.add_argument("--metrics", default=None, help="folder for CPU and memory samples")
    parser.add_argument("--metrics-seconds", type=float, default=METRICS_SECONDS,
                        help="seconds between two CPU and memory samples")
    parser.add_argument("--secret-file", default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m crew.worker`` and ``crew-worker``."""
    options = _parser().parse_args(argv)
    secret, certificate = _read_secret(options)
    worker = Worker(options, secret, certificate)
    worker.connect()
    if options.metrics:
        from ._metrics import start_sampler

        start_sampler(options.metrics, worker.worker_id, options.metrics_seconds)
    worker.run()


if __name__ == "__main__":
    main()
