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
import select
import signal
import socket
import threading
import time
import warnings
from typing import Any, Optional, Union

import pynng

from . import _protocol as P
from ._channel import PART_BYTES, Buffer, ChannelError, Session, Wire, part_bytes, parts
from ._execute import Interrupted, Runner, split_results
from ._serial import Serializer
from ._stream import SCHEME as UNIX_SCHEME
from ._stream import Dialer
from ._wire import receive, send
from ._worker_setup import fail, log, parser, read_secret

__all__ = ["main", "Worker"]

_ACK = P.encode(P.Ack())
_MARK_AFTER = 0.001  # seconds a task runs before the worker reports it as started

Outgoing = Union[Wire, P.ResultRecord]  # what the sender thread sends: a frame, or a result to batch


class Worker:
    """One worker process's state; :func:`main` builds and runs it.

    Threads: the main thread runs tasks (:meth:`run`) and, while it has none, reads frames itself
    (a task that comes to an idle worker starts on the thread that read it: no hand-off);
    ``crew-receive`` reads frames once a task has run for a millisecond (``relay``, set by
    ``crew-mark``; for shorter tasks frames wait until the main thread reads again), and when the
    worker leaves; whichever reads, reads and handles a whole frame (``receive_lock``);
    ``crew-send`` sends what piles up in the outbox as one frame; ``crew-mark`` reports a task as
    started; ``crew-heartbeat`` exits when the controller falls silent; ``crew-timeout`` (started
    on first use) ends a task that overruns. ``mutex`` guards the task queue, the running/stopping
    state and ``polling``; ``outbox_lock`` the outbox.
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
        self.relay = threading.Event()  # crew-receive reads frames (the main thread is busy)
        self.relay.set()  # until the welcome: the main thread waits in connect()
        self.receive_lock = threading.Lock()
        self.polling = False  # the main thread waits for a frame or a nudge (guarded by mutex)
        self._nudge_out, self._nudge_in = os.pipe()  # wakes the main thread when crew-receive queued tasks
        self.seq = 0  # tasks started so far
        self.marked = 0  # seq of the last task reported as started
        self.deadline: Optional[tuple[int, float, float]] = None
        self.deadline_changed = threading.Condition()
        self._watchdog: Optional[threading.Thread] = None
        self.done = 0
        self.started = time.monotonic()
        self.last_active = time.monotonic()
        self.heard = time.monotonic()  # when the controller last sent anything
        self.socket: Union[pynng.Pair1, Dialer] = (
            Dialer() if options.url.startswith(UNIX_SCHEME) else pynng.Pair1(recv_max_size=0))
        self.readable = select.poll()  # the main thread's wait: a frame on the socket, or a nudge
        self.readable.register(self.socket.recv_fd, select.POLLIN)
        self.readable.register(self._nudge_out, select.POLLIN)
        self.relay_readable = select.poll()  # crew-receive's wait: a frame on the socket
        self.relay_readable.register(self.socket.recv_fd, select.POLLIN)
        self.session: Optional[Session] = None  # the sealed channel, from the controller's challenge on
        self.seal_lock = threading.Lock()  # seal and send in one step: frames go out in numbered order
        self.part = PART_BYTES
        self.main_thread = threading.main_thread().ident
        self.runner = Runner(self.serializer, self.settings, self._arm, self._ended)

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        url = self.options.url
        if url.startswith("tls+") and isinstance(self.socket, pynng.Pair1):
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
            fail(self.options, f"no controller at {url} within {self.options.seconds_timeout:g} s", 3)

    def _on_remove(self, pipe: Any) -> None:
        if not self.welcomed.is_set() and not self.answered:
            # Cut off before any challenge (the controller's gate was full during a burst of
            # workers): NNG dials again, until seconds_timeout ends the wait in connect(). A worker
            # cut off after its hello was refused (a wrong secret, another controller): it leaves.
            return
        self.gone.set()
        if self.stopping is None:
            # The controller is gone (or cut us off): nobody can receive our results.
            log("the controller closed the connection; exiting")
            os._exit(0)

    def _receive(self) -> None:
        """crew-receive: read frames while the main thread cannot (it runs a task, or is leaving)."""
        while True:
            self.relay.wait()
            self.relay_readable.poll()
            if self.relay.is_set() and not self._take():
                return

    def _take(self) -> bool:
        """Read and handle the frame waiting on the socket, if it is still there; False once the
        socket is closed."""
        with self.receive_lock:
            try:
                data = receive(self.socket, block=False)  # a large frame: a view of the receive buffer, not a copy
            except pynng.exceptions.TryAgain:  # the other reader took it
                return True
            except pynng.exceptions.Closed:
                return False
            frame = self._open(data)
            if frame is None:
                return True
            self.heard = time.monotonic()
            kind = type(frame)
            if kind is P.Tasks:
                self._queue(frame.tasks)  # type: ignore[union-attr]
            elif kind is not P.Quit:
                self._transmit(_ACK)  # the controller sends the next frame only after this
                self._control(frame)
            else:
                self._control(frame)
            return True

    def _queue(self, tasks: list[P.TaskRecord]) -> None:
        """Queue a Tasks frame's tasks, and acknowledge the frame.

        An idle worker starts the first task at once and sends no acknowledgement: the task's
        Started or its result (whichever is sent first) tells the controller the frame came. A
        busy one acknowledges before queueing: after, the acknowledgement would hold up a result
        (NNG sends one frame at a time on a pipe), and each send costs some 50 us."""
        with self.mutex:
            if self.stopping is None and self.running is None and not self.tasks:
                self.tasks.extend(tasks)
                self._nudge()
                return
        self._transmit(_ACK)
        with self.mutex:
            if self.stopping is None:
                self.tasks.extend(tasks)
                self._nudge()

    def _nudge(self) -> None:
        """Wake the main thread if it waits for a frame (called with ``mutex`` held)."""
        if self.polling:
            self.polling = False
            os.write(self._nudge_in, b"!")

    def _open(self, data: Buffer) -> Optional[P.Frame]:
        """The frame in ``data``, once the controller has proved it holds the secret; None for
        the handshake's own frames and for what comes before any challenge."""
        session = self.session
        if not self.welcomed.is_set():
            if data[:1] == b"c" and len(data) == 1 + P.NONCE_BYTES:
                self._answer(bytes(data[1:]))
                return None
            if session is None:
                log("ignored a frame that came before any challenge")
                return None
        try:
            opened = session.open(data)  # type: ignore[union-attr]
            frame = None if opened is None else P.decode(opened)
        except (ChannelError, P.ProtocolError) as error:
            if not self.welcomed.is_set():
                fail(self.options, f"the controller at {self.options.url} did not prove it holds the secret "
                                    f"({error}); refusing it", 3)
            log(f"a frame from the controller failed its check ({error}); closing the connection")
            os._exit(3)
        if not self.welcomed.is_set() and not isinstance(frame, P.Welcome):
            fail(self.options, f"the controller at {self.options.url} sent {type(frame).__name__} before its welcome", 3)
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
        with self.mutex:
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
                log(f"nothing from the controller for {limit:g} s; exiting")
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
            with self.mutex:
                if self.busy.is_set() and not self.polling and not self.relay.is_set():
                    self.relay.set()  # a task runs on: crew-receive reads what comes meanwhile
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
        """The next task to run, reading frames until one comes; None once the worker has left
        (idle, wall time)."""
        idle, wall = self.options.seconds_idle, self.options.seconds_wall
        while True:
            with self.mutex:
                if self.tasks:
                    task = self.tasks.popleft()
                    self.seq += 1
                    self.running = task.id
                    break
                now = time.monotonic()
                timers_on = self.done >= self.options.tasks_timers
                leaving = None
                if timers_on and now - self.started >= wall:
                    leaving = "seconds_wall"
                elif timers_on and now - self.last_active >= idle:
                    leaving = "seconds_idle"
                limit = -1
                if timers_on:
                    seconds = min(idle - (now - self.last_active), wall - (now - self.started))
                    limit = -1 if math.isinf(seconds) else max(math.ceil(seconds * 1000), 1)
                if leaving is None:
                    self.busy.clear()
                    self.relay.clear()
                    self.polling = True
            if leaving is not None:
                # Without mutex: crew-receive takes it to queue a Tasks frame that crossed our
                # goodbye, and must then read the controller's answer.
                self._leave(leaving)
                return None
            self._read(limit)
        if not self.busy.is_set():
            self.busy.set()
        return task

    def _read(self, milliseconds: int) -> None:
        """Wait up to ``milliseconds`` (-1: no limit) for a frame, and handle it on this thread."""
        events = self.readable.poll(milliseconds)
        with self.mutex:
            self.polling = False
        for fd, _ in events:
            if fd == self._nudge_out:
                os.read(self._nudge_out, 64)
            elif not self._take():  # the socket is closed
                self.gone.wait(self.options.seconds_timeout)
                os._exit(0)

    def _ended(self) -> None:
        self.running = None

    def _leave(self, reason: str) -> None:
        with self.mutex:
            self.stopping = reason
            self.tasks.clear()
        self.relay.set()  # crew-receive reads the controller's answer
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
                with self.mutex:
                    self.stopping = "timeout"
                    self.tasks.clear()
                self._post(P.ResultRecord(task_id, "timeout", None, error, None, None, float(timeout)))
                self._post(P.encode(P.Goodbye("timeout")))
                self.gone.wait(self.options.seconds_timeout)
                os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m crew.worker`` and ``crew-worker``."""
    options = parser().parse_args(argv)
    secret, certificate = read_secret(options)
    worker = Worker(options, secret, certificate)
    worker.connect()
    if options.metrics:
        from ._metrics import start_sampler

        start_sampler(options.metrics, worker.worker_id, options.metrics_seconds)
    worker.run()


if __name__ == "__main__":
    main()
