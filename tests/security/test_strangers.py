"""What strangers can take from a controller (issue #15, 4.3 to 4.6).

Strangers sending large frames make the controller hold little whatever ``max_frame_bytes`` is;
idle strangers filling the waiting slots do not lock the controller's own workers out; an
authenticated but broken worker loses its tasks to others and never hangs the controller.
"""

import os
import pickle
import sys
import time
from pathlib import Path

import crew
import psutil
import pytest
from _crewfaults import eventually
from _peers import LogRecorder, Peer, controller_id, gated_controller, hello_frame, open_gate
from crew._channel import Session

FLOOD = str(Path(__file__).with_name("_flood.py"))
MiB = 2**20


def _peak_rss_while(processes) -> int:
    me, peak = psutil.Process(), 0
    while any(process.poll() is None for process in processes):
        peak = max(peak, me.memory_info().rss)
        time.sleep(0.005)  # sampling memory: no event says when it peaks
    return peak


def test_strangers_hold_little_memory_whatever_max_frame_bytes(workers, tmp_path):
    """Eight strangers each send a 100 MiB frame to a controller whose max_frame_bytes is the
    default 256 MiB (before: the controller grew by about 800 MiB)."""
    controller = gated_controller(workers, tmp_path, max_frame_bytes=2**28)
    before = psutil.Process().memory_info().rss
    floods = [workers.python(FLOOD, controller.client.url, "100") for _ in range(8)]
    peak = _peak_rss_while(floods)
    assert [flood.stdout.read().strip() for flood in floods] == ["dropped"] * 8, [f.stderr.read() for f in floods]
    assert peak - before < 64 * MiB, f"the controller grew by {(peak - before) / MiB:.0f} MiB"
    open_gate(controller, tmp_path)


def test_max_frame_bytes_is_a_helper_option(workers):
    controller = workers.controller(workers=1, max_frame_bytes=5 * MiB)
    assert controller.client.max_frame_bytes == 5 * MiB


def test_idle_strangers_do_not_lock_out_the_controllers_own_workers(workers, tmp_path):
    """64 peers connect and never speak (more keep coming): the controller's own worker still
    gets in and runs the queued tasks, long before the strangers' seconds_timeout (60 s)."""
    controller = gated_controller(workers, tmp_path, seconds_timeout=60)
    peers = [Peer(controller.client.url).__enter__() for _ in range(64)]
    try:
        started = time.monotonic()
        open(os.path.join(tmp_path, "gate"), "w").close()
        for _ in range(64):  # strangers keep dialling while the worker starts
            peers.append(Peer(controller.client.url).__enter__())
        assert controller.wait(seconds_timeout=30), "the controller's own worker was locked out"
        assert time.monotonic() - started < 30
        assert sorted(result.result for result in controller.collect()) == [0, 2, 4]
    finally:
        for peer in peers:
            peer.__exit__()


# ------------------------------------------------------------------ authenticated but broken
class Worker:
    """An authenticated peer that speaks the sealed protocol by hand."""

    def __init__(self, controller: crew.Controller):
        self.peer = Peer(controller.client.url).__enter__()
        secret = controller.launcher.environment["CREW_SECRET"]
        ident = controller_id(controller)
        challenge, mine = self.peer.challenge(), os.urandom(32)
        self.peer.send(hello_frame(secret, challenge, ident, mine=mine))
        self.session = Session(secret, challenge, mine, ident, False)
        assert self.recv()[:1] == b"w"
        self.send(b"a")

    def recv(self) -> bytes:
        frame = self.peer.recv()
        assert frame is not None, "the controller sent nothing"
        return self.session.open(frame)

    def send(self, frame: bytes) -> bool:
        return self.peer.send(self.session.seal(frame))

    def tasks(self) -> list:
        """Wait for a tasks frame (acknowledging every frame); return its records."""
        while True:
            frame = self.recv()
            self.send(b"a")
            if frame[:1] == b"t":
                return pickle.loads(frame[1:])


class Exit:
    """Unpickling it raises SystemExit."""

    def __reduce__(self):
        return (sys.exit, (3,))


@pytest.mark.parametrize("row", ["warnings", "system_exit"])
def test_a_broken_worker_loses_no_task(workers, tmp_path, row):
    controller = gated_controller(workers, tmp_path)
    with LogRecorder() as log:
        broken = Worker(controller)
        records = broken.tasks()
        first = records[0][0]
        if row == "warnings":
            bad = (first, "success", pickle.dumps(1), None, None, 5, 0.0)  # warnings=5
        else:
            bad = (first, "success", pickle.dumps(Exit()), None, None, None, 0.0)  # unpickling raises SystemExit
        broken.send(b"r" + pickle.dumps([bad]))
        eventually(lambda: broken.peer.removed.is_set() or controller.resolved() >= 1, 10, interval=0.02)
        if row == "warnings":
            assert broken.peer.dropped(), "a worker sending a malformed result was kept"
            assert log.count("protocol error from worker"), log.messages
        broken.peer.__exit__()
    open(os.path.join(tmp_path, "gate"), "w").close()
    assert controller.wait(seconds_timeout=30), "a task was lost"
    results = {result.name: result for result in controller.collect()}
    assert len(results) == 3
    if row == "system_exit":  # the loop survived; the task resolved with the reason
        assert [r.status for r in results.values()].count("error") == 1
        assert any("could not be deserialized" in (r.error or "") for r in results.values())
    else:
        assert all(result.ok for result in results.values())
    assert not log.count("error in the controller loop"), log.messages


def test_a_worker_that_ignores_a_hand_back_request_loses_its_tasks(workers, tmp_path):
    """It holds every task and never answers the request to hand some back: after
    seconds_timeout it is dropped and the controller's own worker runs them all."""
    controller = gated_controller(workers, tmp_path, seconds_timeout=2.0)
    hoarder = Worker(controller)
    first = hoarder.tasks()[0][0]  # answered at once, so that it looks fast and is sent the rest
    hoarder.send(b"r" + pickle.dumps([(first, "success", pickle.dumps(0), None, None, None, 1e-6)]))
    held = []
    while len(held) < 2:
        held += hoarder.tasks()
    started = time.monotonic()
    open(os.path.join(tmp_path, "gate"), "w").close()
    while not hoarder.peer.removed.is_set():  # answer pings and acknowledge, never hand back
        try:
            frame = hoarder.recv()
        except Exception:
            break
        hoarder.send(b"o" if frame[:1] == b"p" else b"a")
    assert controller.wait(seconds_timeout=30)
    assert sorted(result.result for result in controller.collect()) == [0, 2, 4]
    assert time.monotonic() - started < 15
    hoarder.peer.__exit__()
