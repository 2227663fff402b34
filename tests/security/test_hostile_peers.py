"""Hostile input on the controller's port (fuzzed with hypothesis).

A peer that has not proved it holds the secret gets no task, delivers no result, has none of its
bytes unpickled, and is dropped and logged; an authenticated peer that sends garbage cannot
crash or hang the controller. Afterwards the controller still runs every queued task.
"""

import json
import os
import pickle
import time
from pathlib import Path

import psutil
from _peers import (
    CHALLENGE,
    LIMIT,
    TASKS,
    WELCOME,
    Bomb,
    LogRecorder,
    Peer,
    controller_id,
    gated_controller,
    hello_frame,
    open_gate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FLOOD = str(Path(__file__).with_name("_flood.py"))
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# ------------------------------------------------------------------ recipes of hostile frames
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
KINDS = st.sampled_from([b"h", b"r", b"b", b"g", b"t", b"w", b"c", b"x", b"q", b"\x00", b"\xff"])
WRONG_VERSION = JSON.filter(lambda value: value != 1) | st.integers(2, 2**40)
WRONG_MAC = st.text("0123456789abcdef", min_size=64, max_size=64) | JSON
# Each recipe is a tag and arguments; _frame turns it into bytes once the nonce is known.
RECIPES = st.one_of(
    st.tuples(st.just("raw"), st.binary(max_size=300)),
    st.tuples(st.just("raw"), st.tuples(KINDS, st.binary(max_size=200)).map(b"".join)),
    st.tuples(st.just("json"), st.dictionaries(
        st.sampled_from(["version", "controller", "launch", "pid", "host", "mac"]) | st.text(max_size=8),
        JSON, max_size=7)),
    st.tuples(st.just("hello"), st.fixed_dictionaries({"version": WRONG_VERSION})),  # right secret, wrong version
    st.tuples(st.just("hello"), st.fixed_dictionaries({"mac": WRONG_MAC})),
    st.tuples(st.just("hello"), st.fixed_dictionaries({"controller": st.text(max_size=20)})),
    st.tuples(st.just("hello"), st.fixed_dictionaries({"mac": st.none()})),
    st.tuples(st.just("truncated"), st.integers(0, 150)),
    st.tuples(st.just("padded"), st.integers(4096, 6000)),  # a valid hello, too long
    st.tuples(st.just("oversized"), st.integers(LIMIT + 1, LIMIT + 4096)),
    st.tuples(st.just("bomb"), KINDS),
)


def _frame(recipe, secret, nonce, controller, marker) -> bytes:
    tag, argument = recipe
    if tag == "raw":
        return argument
    if tag == "json":
        return b"h" + json.dumps(argument).encode()
    if tag == "hello":
        if argument.get("controller") == controller:
            argument = {"controller": controller + "x"}
        return hello_frame(secret, nonce, controller, argument)
    valid = hello_frame(secret, nonce, controller)
    if tag == "truncated":
        return valid[: min(argument, len(valid) - 1)]
    if tag == "padded":
        return valid + b" " * (argument - len(valid) + 1)
    if tag == "oversized":
        return b"h" + b"\x00" * argument
    return argument + pickle.dumps(Bomb(marker))


def test_unauthenticated_peers_get_nothing_and_are_dropped(workers, tmp_path):
    controller = gated_controller(workers, tmp_path)
    secret = controller.launcher.environment["CREW_SECRET"]
    ident = controller_id(controller)
    marker = str(tmp_path / "unpickled")

    @FUZZ
    @given(recipes=st.lists(RECIPES, min_size=1, max_size=3))
    def attack(recipes):
        with LogRecorder() as log, Peer(controller.client.url) as peer:
            nonce = peer.challenge()
            for recipe in recipes:
                if not peer.send(_frame(recipe, secret, nonce, ident, marker)):
                    break
            assert peer.dropped(), "the controller kept talking to a peer that did not authenticate"
            if not any(tag == "oversized" for tag, _ in recipes):  # NNG itself drops frames over the limit
                deadline = time.monotonic() + 2
                while not log.count("rejected a peer (") and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert log.count("rejected a peer (127.0.0.1:"), log.messages
            assert not log.count("error in the controller loop"), log.messages
        assert all(frame[:1] == CHALLENGE for frame in peer.received), peer.received
        assert not os.path.exists(marker), "the controller unpickled bytes from a stranger"
        assert controller.resolved() == 0 and controller.unresolved() == 3

    attack()
    open_gate(controller, tmp_path)


def test_a_silent_peer_is_dropped_after_seconds_timeout(workers, tmp_path):
    controller = gated_controller(workers, tmp_path, seconds_timeout=1.0)
    with LogRecorder() as log, Peer(controller.client.url) as peer:
        peer.challenge()
        started = time.monotonic()
        assert peer.dropped()
        assert 0.9 <= time.monotonic() - started < 4
        assert log.count("no hello within"), log.messages
    assert all(frame[:1] == CHALLENGE for frame in peer.received)
    open_gate(controller, tmp_path)


def test_a_stranger_cannot_deliver_results(workers, tmp_path):
    """Frames a worker would send, from a peer that skipped the hello, are never read."""
    controller = gated_controller(workers, tmp_path)
    marker = str(tmp_path / "unpickled")
    fake = [(task_id, "success", pickle.dumps("forged"), None, None, None, 0.0) for task_id in range(1, 4)]
    for frame in (b"r" + pickle.dumps(fake), b"r" + pickle.dumps(Bomb(marker)), b"b" + pickle.dumps(([1], [1]))):
        with Peer(controller.client.url) as peer:
            peer.challenge()
            peer.send(frame)
            assert peer.dropped()
        assert controller.resolved() == 0 and not os.path.exists(marker)
    open_gate(controller, tmp_path)


# ------------------------------------------------------------------ authenticated, then garbage
PLAIN = st.recursive(
    st.none() | st.integers() | st.text(max_size=10) | st.binary(max_size=10) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
RESULT_ROWS = st.lists(st.tuples(
    st.integers(-3, 10), st.sampled_from(["success", "error", "crash", "cancel", "bogus"]),
    st.none() | st.binary(max_size=20) | PLAIN.map(pickle.dumps), st.none() | st.text(max_size=20),
    st.none() | st.text(max_size=20), st.none() | st.lists(st.text(max_size=5), max_size=2), st.floats(allow_nan=False),
), max_size=4)
GARBAGE = st.one_of(
    st.tuples(KINDS, st.binary(max_size=200)).map(b"".join),
    st.tuples(KINDS, PLAIN.map(pickle.dumps)).map(b"".join),
    RESULT_ROWS.map(lambda rows: b"r" + pickle.dumps(rows)),
    PLAIN.map(lambda value: b"b" + pickle.dumps(value)),
    JSON.map(lambda value: b"g" + json.dumps(value).encode()),
    st.integers(LIMIT + 1, LIMIT + 4096).map(lambda size: b"r" + b"\x00" * size),
)


def test_authenticated_garbage_cannot_break_the_controller(workers, tmp_path):
    controller = gated_controller(workers, tmp_path)
    controller.cancel(all=True)  # nothing to hand out: the peer is a worker now
    assert controller.wait(seconds_timeout=10)
    controller.collect()
    secret = controller.launcher.environment["CREW_SECRET"]
    ident = controller_id(controller)

    @FUZZ
    @given(frames=st.lists(GARBAGE, min_size=1, max_size=4))
    def attack(frames):
        with Peer(controller.client.url) as peer:
            peer.send(hello_frame(secret, peer.challenge(), ident))
            welcome = peer.recv()
            assert welcome is not None and welcome[:1] == WELCOME, welcome
            for frame in frames:
                if not peer.send(frame):
                    break
        assert not any(frame[:1] == TASKS for frame in peer.received)
        assert controller.unresolved() == 0

    attack()
    for index in range(3):
        controller.push("index * 2", data={"index": index}, name=f"queued_{index}")
    open_gate(controller, tmp_path)


def test_a_peer_that_sends_and_vanishes_leaves_no_error(workers, tmp_path):
    """Frames whose connection is already gone when the controller reads them are dropped quietly."""
    controller = gated_controller(workers, tmp_path)
    with LogRecorder() as log:
        for _ in range(200):
            with Peer(controller.client.url) as peer:
                peer.challenge()
                peer.send(b"\x00garbage")
        open_gate(controller, tmp_path)
    assert log.count("error in the controller loop") == 0, log.messages[:3]
    assert log.count("rejected a peer") >= 1


def _peak_rss_while(processes) -> int:
    me, peak = psutil.Process(), 0
    while any(process.poll() is None for process in processes):
        peak = max(peak, me.memory_info().rss)
        time.sleep(0.005)
    return peak


def test_the_frame_limit_bounds_what_a_stranger_can_make_the_controller_hold(workers, tmp_path):
    """max_frame_bytes is checked against a frame's header: a bigger frame is never buffered."""
    controller = gated_controller(workers, tmp_path)  # max_frame_bytes=LIMIT (1 MiB)
    before = psutil.Process().memory_info().rss
    floods = [workers.python(FLOOD, controller.client.url, "200") for _ in range(3)]
    peak = _peak_rss_while(floods)
    assert [flood.stdout.read().strip() for flood in floods] == ["dropped"] * 3, [f.stderr.read() for f in floods]
    assert peak - before < 32 * 2**20, f"the controller grew by {(peak - before) / 2**20:.0f} MiB"
    assert controller.resolved() == 0
    open_gate(controller, tmp_path)
