"""Workers authenticate their controller, and the channel is bound (issue #15, 4.1 and 4.2).

A fake controller that takes a worker's port gets a hello but nothing run: the worker unpickles
nothing until its controller has proved it holds the secret. A relay between a real worker and
the live controller passes the handshake through but cannot inject or alter a frame after it.
"""

import os
import pickle
import threading

import pynng
from _crewfaults import eventually
from _peers import WELCOME, Bomb, LogRecorder, call_by_hand, gated_controller, open_gate

TASKS, RESULTS = b"t", b"r"


def _fake_worker(workers, controller, url):
    """A real worker of ``controller`` (its secret file) that dials ``url`` instead."""
    call = call_by_hand(controller, launch="by-hand").replace(controller.client.url, url)
    return workers.spawn(call.replace("--seconds-timeout 60", "--seconds-timeout 5"))


def _listen():
    import socket as _socket

    sock = pynng.Pair1(recv_timeout=10_000, send_timeout=10_000)
    listener = sock.listen("tcp://127.0.0.1:0")
    return sock, f"tcp://127.0.0.1:{_socket.ntohs(listener.local_address.port)}"


def _bomb_tasks(marker: str) -> bytes:
    return TASKS + pickle.dumps([(1, pickle.dumps(Bomb(marker)), None, None, None)])


def test_a_fake_controller_gets_nothing_run(workers, tmp_path):
    """The fake answers the hello with a welcome and a task, as the old protocol allowed: the
    worker refuses it, exits, and never unpickles the task."""
    controller = gated_controller(workers, tmp_path)
    marker = str(tmp_path / "ran")
    fake, url = _listen()
    with fake:
        worker = _fake_worker(workers, controller, url)
        challenge = os.urandom(32)
        fake.send(b"c" + challenge)
        hello = fake.recv()
        assert hello[:1] == b"h"
        fake.send(WELCOME + b'{"worker":"fake","settings":{}}')
        fake.send(_bomb_tasks(marker))
        assert worker.wait(timeout=30) == 3, worker.stdout.read()
    assert b"did not prove it holds the secret" in worker.stdout.read()
    assert not os.path.exists(marker), "the worker unpickled a task from a fake controller"
    open_gate(controller, tmp_path)


def test_a_task_before_any_challenge_is_not_unpickled(workers, tmp_path):
    controller = gated_controller(workers, tmp_path)
    marker = str(tmp_path / "ran")
    fake, url = _listen()
    with fake:
        worker = _fake_worker(workers, controller, url)
        fake.send(_bomb_tasks(marker))  # no challenge at all
        fake.send(b"c" + os.urandom(32))
        assert fake.recv()[:1] == b"h"  # the worker still only answers challenges
        fake.send(_bomb_tasks(marker))  # not sealed with the session key
        assert worker.wait(timeout=30) == 3, worker.stdout.read()
    assert not os.path.exists(marker), "the worker unpickled a task from a fake controller"
    open_gate(controller, tmp_path)


class Relay:
    """Listens where a worker dials and passes frames to and from the live controller; after
    the handshake it alters the worker's results or injects forged ones."""

    def __init__(self, controller_url: str, mode: str):
        self.mode = mode
        self.front, self.url = _listen()
        self.back = pynng.Pair1(recv_timeout=500, send_timeout=5000)
        self.back.dial(controller_url, block=True)
        self.front.recv_timeout = 500
        self.injected = self.altered = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pass, args=(self.front, self.back, True), daemon=True),
                        threading.Thread(target=self._pass, args=(self.back, self.front, False), daemon=True)]
        for thread in self.threads:
            thread.start()

    def _pass(self, source, target, from_worker: bool) -> None:
        while not self.stop.is_set():
            try:
                frame = source.recv()
            except pynng.Timeout:
                continue
            except pynng.Closed:
                return
            if from_worker and frame[:1] == RESULTS and self.mode == "alter":
                rows = [(1, "success", pickle.dumps("FORGED"), None, None, None, 0.0)]
                frame = RESULTS + pickle.dumps(rows) + frame[-24:]  # keep the worker's number and tag
                self.altered += 1
            try:
                target.send(frame)
            except (pynng.Closed, pynng.Timeout):
                return
            if not from_worker and frame[:1] == WELCOME and self.mode == "inject":
                forged = [(task, "success", pickle.dumps("FORGED"), None, None, None, 0.0) for task in (1, 2, 3)]
                self.back.send(RESULTS + pickle.dumps(forged))
                self.back.send(RESULTS + pickle.dumps(forged) + os.urandom(24))
                self.injected += 2

    def close(self) -> None:
        self.stop.set()
        self.front.close()
        self.back.close()
        for thread in self.threads:
            thread.join(5)


def _relayed(workers, tmp_path, mode: str):
    controller = gated_controller(workers, tmp_path)
    relay = Relay(controller.client.url, mode)
    try:
        with LogRecorder() as log:
            _fake_worker(workers, controller, relay.url)
            eventually(lambda: relay.injected or relay.altered, 20, interval=0.05)
            eventually(lambda: log.count("protocol error from worker"), 10, interval=0.05)
    finally:
        relay.close()
    results = open_gate(controller, tmp_path)
    assert all(result.result != "FORGED" for result in results)
    return log


def test_a_relay_cannot_inject_results(workers, tmp_path):
    log = _relayed(workers, tmp_path, "inject")
    assert log.count("wrong tag") or log.count("too short"), log.messages


def test_a_relay_cannot_alter_results(workers, tmp_path):
    log = _relayed(workers, tmp_path, "alter")
    assert log.count("wrong tag"), log.messages
