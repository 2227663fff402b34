"""crew._wire: frames to and from NNG messages, over an in-process pynng pair."""

from __future__ import annotations

import gc

import pynng
import pytest
from crew import _wire


@pytest.fixture
def pair():
    listener = pynng.Pair1(recv_timeout=5000)
    listener.listen("inproc://crew-test-wire")
    dialer = pynng.Pair1(recv_timeout=5000)
    dialer.dial("inproc://crew-test-wire", block=True)
    yield listener, dialer
    dialer.close()
    listener.close()


def test_a_small_message_comes_as_bytes(pair):
    listener, dialer = pair
    _wire.send(dialer, b"small frame")
    data = _wire.receive(listener)
    assert type(data) is bytes and data == b"small frame"


def test_pieces_arrive_as_one_message_and_a_large_one_as_a_read_only_view(pair):
    listener, dialer = pair
    pieces = [b"t", bytes(range(256)) * 300, memoryview(b"x" * _wire.LARGE)]
    _wire.send(dialer, pieces)
    data = _wire.receive(listener)
    assert isinstance(data, memoryview) and data.readonly
    assert bytes(data) == b"".join(bytes(piece) for piece in pieces)
    with pytest.raises(TypeError):
        data[0] = 1  # type: ignore[index]
    part = data[1:10]
    del data
    gc.collect()
    assert bytes(part) == bytes(range(9))  # a view keeps NNG's buffer alive
    del part
    gc.collect()
    _wire.send(dialer, b"after")  # the socket still works once the buffer is freed
    assert _wire.receive(listener) == b"after"
