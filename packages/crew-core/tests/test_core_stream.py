"""crew._stream, the ``unix`` transport: its framing over real Unix sockets, then a controller on it."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections import deque

import pynng
import pytest
from crew import _stream, _stream_listener, _wire
from crew.errors import SettingError
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture
def ends(tmp_path):
    """A listener and a dialer connected to it, and the list of pipes the listener reported."""
    listener = _stream_listener.Listener(recv_max_size=2**20)
    listener.recv_timeout = 5000
    connected, removed = [], []
    arrived = threading.Event()
    listener.add_post_pipe_connect_cb(lambda pipe: (connected.append(pipe), arrived.set()))
    listener.add_post_pipe_remove_cb(removed.append)
    listener.listen(str(tmp_path / "s.sock"))
    dialer = _stream.Dialer()
    dialer.dial(_stream.SCHEME + str(tmp_path / "s.sock"), block=True)
    _wire.send(dialer, b"hello")
    message = listener.recv_msg()
    assert message.bytes == b"hello" and connected == [message.pipe]
    yield listener, dialer, message.pipe, removed
    dialer.close()
    listener.close()


def _receive(dialer: _stream.Dialer) -> bytes:
    """The dialer's next message, waiting on its descriptor as the worker does."""
    waiting = select.poll()
    waiting.register(dialer.recv_fd, 1)
    while True:
        try:
            return bytes(dialer.receive(block=False))
        except pynng.TryAgain:
            assert waiting.poll(5000), "no message within 5 s"


def _send_quietly(dialer: _stream.Dialer, data: bytes) -> None:
    try:
        _wire.send(dialer, data)
    except pynng.Closed:  # the listener dropped us before it took it all
        pass


def test_messages_travel_both_ways_in_order(ends):
    listener, dialer, pipe, _ = ends
    for number in range(50):
        _wire.send(dialer, b"up %d" % number)
    assert [listener.recv_msg().bytes for _ in range(50)] == [b"up %d" % n for n in range(50)]
    _wire.send(pipe, [b"down ", memoryview(b"in pieces"), b""])
    _wire.send(pipe, b"")
    assert _receive(dialer) == b"down in pieces"
    assert _receive(dialer) == b""


def test_a_large_message_comes_as_a_read_only_view(ends):
    listener, dialer, pipe, _ = ends
    payload = os.urandom(2**19)
    sender = threading.Thread(target=_wire.send, args=(dialer, [b"x", memoryview(payload)]))
    sender.start()  # a worker's send blocks until the kernel has taken it all
    data = listener.recv_msg().bytes
    sender.join(5)
    assert isinstance(data, memoryview) and data.readonly and bytes(data) == b"x" + payload


def test_a_message_larger_than_the_socket_buffer_waits_for_room_without_blocking_the_sender(ends):
    listener, dialer, pipe, _ = ends
    payload = os.urandom(24 * 2**20)
    _wire.send(pipe, [b"big", memoryview(payload)])  # returns at once: the rest waits in the backlog
    assert pipe.backlog, "the kernel took 24 MiB at once: the test did not reach the backlog"
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(_receive(dialer)))
    reader.start()
    while pipe.backlog:  # the listener's thread writes the rest as room comes (EPOLLOUT)
        with pytest.raises(pynng.Timeout):
            listener.recv_timeout = 50
            listener.recv_msg()
    reader.join(10)
    assert received == [b"big" + payload]


def test_the_wake_pipe_returns_an_empty_message_from_another_thread(ends):
    listener, _, _, _ = ends
    listener.recv_timeout = -1
    threading.Timer(0.05, listener.wake).start()
    message = listener.recv_msg()
    assert message.pipe is None and message.bytes == b""
    with pytest.raises(pynng.TryAgain):
        listener.recv_msg(block=False)


def test_a_worker_that_goes_is_reported_removed_once(ends):
    listener, dialer, pipe, removed = ends
    dialer.close()
    with pytest.raises(pynng.Timeout):
        listener.recv_timeout = 200
        listener.recv_msg()
    assert removed == [pipe] and pipe.closed
    with pytest.raises(pynng.Closed):
        pipe.send(b"too late")


def test_closing_a_pipe_tells_the_worker(ends):
    listener, dialer, pipe, removed = ends
    lost = threading.Event()
    dialer.add_post_pipe_remove_cb(lambda _: lost.set())
    pipe.close()
    assert removed == [pipe]
    assert select.select([dialer.recv_fd], [], [], 5)[0], "the worker never saw its connection end"
    with pytest.raises(pynng.TryAgain):  # not Closed: it dials again, as NNG's dialer does
        dialer.receive(block=False)
    assert lost.is_set()


def test_a_peer_without_the_greeting_is_dropped(tmp_path):
    listener = _stream_listener.Listener()
    listener.recv_timeout = 5000
    removed = []
    listener.add_post_pipe_remove_cb(removed.append)
    listener.listen(str(tmp_path / "s.sock"))
    stranger = socket.socket(socket.AF_UNIX)
    stranger.connect(str(tmp_path / "s.sock"))
    stranger.sendall(b"GET / HTTP/1.0\r\n\r\n")
    with pytest.raises(pynng.Timeout):
        listener.recv_timeout = 300
        listener.recv_msg()
    assert len(removed) == 1
    try:
        assert stranger.recv(10) == b""  # closed
    except ConnectionResetError:  # closed with its bytes unread
        pass
    stranger.close()
    listener.close()
    assert not (tmp_path / "s.sock").exists()


def test_a_message_over_the_limit_drops_the_peer(ends):
    listener, dialer, pipe, removed = ends
    threading.Thread(target=_send_quietly, args=(dialer, b"x" * (2**20 + 1))).start()
    with pytest.raises(pynng.Timeout):
        listener.recv_timeout = 300
        listener.recv_msg()
    assert removed == [pipe]


def test_the_socket_file_and_its_directory_are_their_owners_only():
    from crew import Client

    client = Client(transport="unix")
    listener = client.start()
    try:
        assert client.url == _stream.SCHEME + listener.path
        assert os.stat(listener.path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(listener.path)).st_mode & 0o777 == 0o700
    finally:
        client.stop()
    assert not os.path.exists(os.path.dirname(listener.path))


def test_a_temporary_directory_too_long_for_a_socket_path_falls_back_to_tmp(tmp_path, monkeypatch):
    import tempfile

    from crew import Client

    deep = tmp_path / ("d" * 100)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    client = Client(transport="unix")
    listener = client.start()
    try:
        assert listener.path.startswith("/tmp/crew-") and len(listener.path) <= 107
    finally:
        client.stop()


def test_a_dialer_keeps_trying_until_the_listener_is_there(tmp_path):
    path = str(tmp_path / "late.sock")
    dialer = _stream.Dialer()
    dialer.dial(_stream.SCHEME + path)  # nothing listens yet: it dials again in the background
    assert not dialer.connected.is_set()
    listener = _stream_listener.Listener()
    listener.recv_timeout = 10000
    listener.listen(path)
    try:
        assert dialer.connected.wait(10), "the dialer never connected"
        _wire.send(dialer, b"late")
        assert listener.recv_msg().bytes == b"late"
    finally:
        dialer.close()
        listener.close()
    assert not dialer.connected.is_set()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=3000), max_size=12), st.lists(st.integers(1, 997), min_size=1, max_size=8))
def test_the_reader_rebuilds_messages_however_the_bytes_are_cut(messages, cuts):
    """Whatever sizes the bytes arrive in, the reader yields exactly the messages sent."""
    ours, theirs = socket.socketpair()
    try:
        stream = b"".join(_stream.HEADER.pack(len(m)) + m for m in messages)
        reader = _stream.Reader(ours, 0, greeting=False)
        got: list[bytes] = []
        position, turn = 0, 0
        while position < len(stream):
            size = cuts[turn % len(cuts)]
            theirs.sendall(stream[position:position + size])
            position, turn = position + size, turn + 1
            while (data := reader.read()) is not None:
                got.append(bytes(data))
        assert got == messages
    finally:
        ours.close()
        theirs.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.data())
def test_what_is_left_after_a_partial_send_is_the_rest_of_the_message(pieces, data):
    """After sendmsg took ``sent`` bytes of a message's buffers, the backlog holds exactly the
    rest, in order, with no empty buffer at its head (a flush of it always makes progress)."""
    buffers = _stream.framed(pieces)
    whole = b"".join(bytes(buffer) for buffer in buffers)
    assert whole == _stream.HEADER.pack(sum(map(len, pieces))) + b"".join(pieces)
    sent = data.draw(st.integers(0, len(whole)))
    backlog = deque(buffers)
    _stream.consume(backlog, sent)
    assert b"".join(bytes(buffer) for buffer in backlog) == whole[sent:]
    assert not backlog or len(backlog[0]) > 0


def test_transport_is_validated_and_unix_refuses_tls():
    from crew import TLS, Client

    with pytest.raises(SettingError, match="transport must be one of"):
        Client(transport="ipc")
    with pytest.raises(SettingError, match="tls does not apply to transport='unix'"):
        Client(transport="unix", tls=TLS(mode="automatic"))


def test_a_controller_on_the_unix_transport_runs_tasks_crashes_and_large_payloads(tmp_path):
    import crew_local

    with crew_local.local_controller(workers=2, transport="unix", crashes_max=2) as controller:
        path = _stream.path_of(controller.client.url)
        for number in range(20):
            controller.push(pow, args=(number, 2), name=f"square-{number}")
        controller.push(os._exit, args=(3,), name="crash")
        controller.push(bytes, args=(3 * 2**20,), name="large")
        controller.wait(mode="all", seconds_timeout=60)
        results = {result.name: result for result in controller.collect()}
        assert [results[f"square-{n}"].result for n in range(20)] == [n * n for n in range(20)]
        assert results["crash"].status == "crash"
        assert results["large"].result == bytes(3 * 2**20)
        pids = {result.pid for result in results.values() if result.pid}
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("options, chosen", [
    ({}, "unix"),
    ({"host": "localhost"}, "unix"),
    ({"port": 5555}, "nng"),  # a port asks for TCP
    ({"host": None}, "nng"),  # this machine's address: workers elsewhere may dial it
    ({"host": "0.0.0.0"}, "nng"),
    ({"tls": "automatic"}, "nng"),
])
def test_auto_takes_the_unix_socket_only_where_every_worker_can_reach_it(options, chosen):
    from crew import TLS, Client

    options = {"host": "127.0.0.1", **options}
    if "tls" in options:
        options["tls"] = TLS(mode=options["tls"])
    assert Client(transport="auto", **options).transport == chosen
    assert Client(**options).transport == "nng"  # the client's own default
