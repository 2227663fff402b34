"""The worker: dials back to its controller, runs the tasks it is sent, returns their results.

Started by a launcher as ``python -m crew.worker URL --controller ID --launch N ...`` (or the
``crew-worker`` console script). The controller's secret comes from the ``CREW_SECRET``
environment variable or from ``--secret-file``, never from the command line.

It exits by itself when it has been idle for ``--seconds-idle``, after ``--seconds-wall`` or
``--tasks-max`` tasks, when a task overruns its timeout, and at once when its controller is gone.
"""

from __future__ import annotations

import argparse
import ast
import collections
import gc
import math
import os
import pickle
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import warnings

import pynng

from . import _protocol as P
from ._serial import PROTOCOL, Serializer

__all__ = ["main"]

_CACHE_SIZE = 64
_MARK_AFTER = 0.001  # seconds a task runs before the worker reports it as started
_FRAME_ROOM = 64 * 1024  # bytes kept free in a frame for everything but a result's payload


class _Interrupted(BaseException):
    """Raised inside a running task that the controller cancelled."""


class _Source:
    """A string command compiled once: statements, then the value of the last expression."""

    __slots__ = ("body", "last", "text")

    def __init__(self, text: str):
        self.text = text
        tree = ast.parse(text, mode="exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        self.body = compile(tree, "<crew task>", "exec")
        self.last = compile(last, "<crew task>", "eval") if last is not None else None

    def __call__(self, scope: dict):
        exec(self.body, scope)
        return eval(self.last, scope) if self.last is not None else None


class Worker:
    """One worker process's state; :func:`main` builds and runs it."""

    def __init__(self, options: argparse.Namespace, secret: str, certificate: str | None):
        self.options = options
        self.secret = secret
        self.certificate = certificate
        self.serializer = Serializer(None)
        self.settings: dict = {}
        self.worker_id: str | None = None
        self.tasks: collections.deque = collections.deque()
        self.lock = threading.Condition()
        self.running: int | None = None
        self.cancelled: int | None = None
        self.stopping: str | None = None
        self.welcomed = threading.Event()
        self.gone = threading.Event()
        self.outbox: list = []
        self.outbox_lock = threading.Lock()
        self.outbox_ready = threading.Event()
        self.send_lock = threading.Lock()
        self.busy = threading.Event()
        self.seq = 0  # tasks started so far
        self.marked = 0  # seq of the last task reported as started
        self.namespace: dict = {"__name__": "__crew__", "__builtins__": __builtins__}
        self.commands: collections.OrderedDict = collections.OrderedDict()
        self.warnings: list[str] = []
        self.deadline: tuple[int, float] | None = None
        self.deadline_changed = threading.Condition()
        self.done = 0
        self.started = time.monotonic()
        self.last_active = time.monotonic()
        self.heard = time.monotonic()  # when the controller last sent anything
        self.socket = pynng.Pair1(recv_max_size=0)
        self.main_thread = threading.main_thread().ident

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        url = self.options.url
        if url.startswith("tls+"):
            host = url.split("://", 1)[1].rsplit(":", 1)[0].strip("[]")
            config = pynng.TLSConfig(
                pynng.TLSConfig.MODE_CLIENT,
                ca_string=self.certificate,
                server_name=host,
                auth_mode=pynng.TLSConfig.AUTH_MODE_REQUIRED,
            )
            self.socket.tls_config = config
        self.socket.add_post_pipe_remove_cb(self._on_remove)
        self.socket.dial(url, block=False)
        threading.Thread(target=self._receive, name="crew-receive", daemon=True).start()
        threading.Thread(target=self._send, name="crew-send", daemon=True).start()
        threading.Thread(target=self._mark, name="crew-mark", daemon=True).start()
        threading.Thread(target=self._watch_controller, name="crew-heartbeat", daemon=True).start()
        if not self.welcomed.wait(self.options.seconds_timeout):
            _log(f"no controller at {url} within {self.options.seconds_timeout:g} s; exiting")
            os._exit(3)

    def _on_remove(self, pipe) -> None:
        self.gone.set()
        if self.stopping is None:
            # The controller is gone (or cut us off): nobody can receive our results.
            _log("the controller closed the connection; exiting")
            os._exit(0)

    def _receive(self) -> None:
        while True:
            try:
                frame = self.socket.recv()
            except pynng.exceptions.Closed:
                return
            self.heard = time.monotonic()
            kind = frame[:1]
            if kind != P.CHALLENGE and kind != P.QUIT:
                self.socket.send(P.ACK)  # the controller sends the next frame only after this
            if kind == P.TASKS:
                batch = pickle.loads(frame[1:])
                with self.lock:
                    if self.stopping is None:
                        self.tasks.extend(batch)
                        self.lock.notify()
            elif kind == P.CANCEL:
                ids, interrupt = pickle.loads(frame[1:])
                self._cancel(set(ids), interrupt)
            elif kind == P.CHALLENGE:
                nonce = frame[1:]
                hello = {
                    "version": P.VERSION,
                    "controller": self.options.controller,
                    "launch": self.options.launch,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "mac": P.mac(self.secret, nonce, self.options.controller),
                }
                self.socket.send(P.encode_json(P.HELLO, hello))
            elif kind == P.WELCOME:
                message = P.decode_json(frame)
                self.worker_id = message["worker"]
                self.settings = message["settings"]
                self.serializer = Serializer(self.settings.get("serializer"))
                self.welcomed.set()
            elif kind == P.PING:
                self._post(P.PONG)
            elif kind == P.QUIT:
                self.gone.set()
                os._exit(0)

    def _cancel(self, ids: set, interrupt: bool) -> None:
        with self.lock:
            kept = [task for task in self.tasks if task[0] not in ids]
            returned = [task[0] for task in self.tasks if task[0] in ids]
            self.tasks.clear()
            self.tasks.extend(kept)
            if interrupt and self.running in ids:
                self.cancelled = self.running
                signal.pthread_kill(self.main_thread, signal.SIGUSR1)
        self._post(P.RETURNED + pickle.dumps((list(ids), returned), PROTOCOL))

    def _on_interrupt(self, signum, frame) -> None:
        if self.cancelled is not None and self.cancelled == self.running:
            self.cancelled = None
            raise _Interrupted()

    # ------------------------------------------------------------------ sending
    def _post(self, item) -> None:
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

    def _flush(self, *extra) -> None:
        """Send everything queued, then ``extra`` results, in order."""
        with self.send_lock:
            with self.outbox_lock:
                items, self.outbox = self.outbox, []
            items.extend(extra)
            results = []
            for item in items:
                if isinstance(item, tuple):
                    results.append(item)
                    continue
                if results:
                    self._send_results(results)
                    results = []
                self.socket.send(item)
            if results:
                self._send_results(results)

    def _send_results(self, results: list) -> None:
        limit = self.settings.get("max_frame_bytes") or 0
        batches = [results]
        if limit and len(results) > 1:
            # Keep every frame under the controller's limit: split where the payloads add up.
            batches, current, size = [], [], 0
            for result in results:
                grown = size + len(result[2] or b"") + len(result[4] or "") + _FRAME_ROOM
                if current and grown > limit:
                    batches.append(current)
                    current, size = [], 0
                current.append(result)
                size += len(result[2] or b"") + len(result[4] or "") + _FRAME_ROOM
            batches.append(current)
        for batch in batches:
            self.socket.send(P.RESULTS + pickle.dumps(batch, PROTOCOL))

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
                self._post(P.STARTED + struct.pack(">q", running))

    # ------------------------------------------------------------------ running tasks
    def run(self) -> None:
        signal.signal(signal.SIGUSR1, self._on_interrupt)
        warnings.showwarning = self._on_warning
        settings = self.settings
        timers_after = self.options.tasks_timers
        idle = self.options.seconds_idle
        wall = self.options.seconds_wall
        tasks_max = self.options.tasks_max
        while True:
            with self.lock:
                while not self.tasks:
                    now = time.monotonic()
                    timers_on = self.done >= timers_after
                    if timers_on and now - self.started >= wall:
                        return self._leave("seconds_wall")
                    if timers_on and now - self.last_active >= idle:
                        return self._leave("seconds_idle")
                    limit = None
                    if timers_on:
                        limit = min(idle - (now - self.last_active), wall - (now - self.started))
                        limit = None if math.isinf(limit) else max(limit, 0.001)
                    self.busy.clear()
                    self.lock.wait(limit)
                task = self.tasks.popleft()
                self.seq += 1
                self.running = task[0]
            if not self.busy.is_set():
                self.busy.set()
            result = self._execute(task, settings)
            if self.marked == self.seq or not self.tasks:
                # A task reported as started, or nothing else to run: send the result now.
                self._flush(result)
            else:
                self._post(result)
            self.done += 1
            self.last_active = time.monotonic()
            if self.done >= tasks_max:
                return self._leave("tasks_max")
            if self.done >= timers_after and self.last_active - self.started >= wall:
                return self._leave("seconds_wall")

    def _leave(self, reason: str) -> None:
        with self.lock:
            self.stopping = reason
            self.tasks.clear()
        self._post(P.encode_json(P.GOODBYE, {"reason": reason}))
        # The controller answers with QUIT (or closes the pipe) once our last frames are in.
        self.gone.wait(self.options.seconds_timeout)
        os._exit(0)

    def _command(self, blob: bytes):
        command = self.commands.get(blob)
        if command is None:
            command = self.serializer.loads(blob)
            if isinstance(command, str):
                command = _Source(command)
            self.commands[blob] = command
            if len(self.commands) > _CACHE_SIZE:
                self.commands.popitem(last=False)
        return command

    def _execute(self, task: tuple, settings: dict) -> tuple:
        task_id, blob, rest, seed, timeout = task
        self.warnings = []
        value = exception = error = trace = None
        status = "success"
        modules = set(sys.modules) if settings.get("reset_modules") else None
        names = set(self.namespace) if settings.get("reset_globals", True) else None
        restore = globals_ = None
        start = time.perf_counter()
        try:
            command = self._command(blob)
            args, kwargs, data, globals_ = self.serializer.loads(rest) if rest else ((), None, None, None)
            if seed is not None:
                _seed(seed)
            if globals_:
                self.namespace.update(globals_)
                if not isinstance(command, _Source):
                    restore = _inject(command, globals_)
            if timeout is not None:
                self._arm(task_id, timeout)
            if isinstance(command, _Source):
                # With reset_globals, names the code sets live in a scratch copy; without, they stay.
                scope = dict(self.namespace) if names is not None else self.namespace
                if data:
                    scope.update(data)
                value = command(scope)
            else:
                value = command(*args, **(kwargs or {}))
        except _Interrupted:
            status, error = "cancel", "cancelled while running"
        except BaseException as caught:  # a task's failure never ends the worker
            status = "error"
            error = f"{type(caught).__name__}: {caught}"
            trace = "".join(traceback.format_exception(type(caught), caught, caught.__traceback__.tb_next))
            exception = caught
        finally:
            self.running = None
            if timeout is not None:
                self._arm(None, None)
        seconds = time.perf_counter() - start
        if restore is not None:
            restore()
        if names is not None and len(self.namespace) != len(names):
            for key in [key for key in self.namespace if key not in names]:
                del self.namespace[key]
        if modules is not None:
            for key in [key for key in sys.modules if key not in modules]:
                del sys.modules[key]
        if settings.get("garbage_collection"):
            gc.collect()
        payload = None
        if status == "success":
            try:
                payload = self.serializer.dumps(value)
            except Exception as caught:
                status = "error"
                error = f"the task's result could not be serialized: {type(caught).__name__}: {caught}"
            limit = settings.get("max_frame_bytes") or 0
            if payload is not None and limit and len(payload) > limit - _FRAME_ROOM:
                status = "error"
                error = (f"the task's result is {len(payload)} bytes serialized, more than the controller "
                         f"accepts (max_frame_bytes={limit})")
                payload = None
        elif exception is not None:
            try:
                payload = self.serializer.dumps(exception)
            except Exception:
                payload = None
        return (task_id, status, payload, error, trace, self.warnings or None, seconds)

    def _on_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        self.warnings.append(f"{category.__name__}: {message}")

    # ------------------------------------------------------------------ timeouts
    def _arm(self, task_id: int | None, timeout: float | None) -> None:
        with self.deadline_changed:
            if task_id is None:
                self.deadline = None
            else:
                self.deadline = (task_id, time.monotonic() + timeout, timeout)
                if not getattr(self, "_watchdog", None):
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
                self._post((task_id, "timeout", None, error, None, None, timeout))
                self._post(P.encode_json(P.GOODBYE, {"reason": "timeout"}))
                self.gone.wait(self.options.seconds_timeout)
                os._exit(0)


def _inject(command, values: dict):
    """Set names in a callable's global namespace; return a function that undoes it."""
    target = getattr(command, "__globals__", None)
    if target is None:
        return None
    missing = object()
    saved = {key: target.get(key, missing) for key in values}
    target.update(values)

    def restore():
        for key, old in saved.items():
            if old is missing:
                target.pop(key, None)
            else:
                target[key] = old

    return restore


_numpy = None


def _seed(seed: int) -> None:
    global _numpy
    random.seed(seed)
    if _numpy is None:
        try:
            import numpy

            _numpy = numpy
        except ImportError:
            _numpy = False
    if _numpy:
        _numpy.random.seed(seed % 2**32)


def _log(message: str) -> None:
    print(f"crew.worker[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def _read_secret(options: argparse.Namespace) -> tuple[str, str | None]:
    values = dict(os.environ)
    if options.secret_file:
        with open(options.secret_file) as handle:
            text = handle.read()
        key = None
        for line in text.splitlines():
            if "=" in line and line.split("=", 1)[0].isupper():
                key, value = line.split("=", 1)
                values[key] = value
            elif key is not None:
                values[key] += "\n" + line
    secret = values.get("CREW_SECRET")
    if not secret:
        raise SystemExit("crew.worker: no secret: set CREW_SECRET or pass --secret-file")
    return secret, values.get("CREW_TLS_CERTIFICATE")


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

        start_sampler(options.metrics, worker.worker_id)
    worker.run()


if __name__ == "__main__":
    main()
