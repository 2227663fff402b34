"""The wire format: every frame survives encode/decode unchanged; malformed bytes are refused."""

from __future__ import annotations

import pickle
import struct

import pytest
from crew import _protocol as P
from crew._channel import flat
from hypothesis import given, settings
from hypothesis import strategies as st

ids = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=40)
maybe_bytes = st.one_of(st.none(), st.binary(max_size=64))

task_records = st.builds(P.TaskRecord, ids, st.binary(max_size=64), maybe_bytes,
                         st.one_of(st.none(), st.integers(0, 2**40)),
                         st.one_of(st.none(), st.floats(0.001, 1e6)))
result_records = st.builds(P.ResultRecord, ids, st.sampled_from(sorted(P.STATUSES)), maybe_bytes,
                           st.one_of(st.none(), text), st.one_of(st.none(), text),
                           st.one_of(st.none(), st.lists(text, max_size=3)),
                           st.floats(0, 1e6, allow_nan=False))
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text),
                           lambda inner: st.dictionaries(text, inner, max_size=3), max_leaves=6)

frames = st.one_of(
    st.builds(P.Challenge, st.binary(min_size=P.NONCE_BYTES, max_size=P.NONCE_BYTES)),
    st.builds(P.Hello, st.just(P.VERSION), text, text, st.one_of(st.none(), st.integers(1, 2**31)),
              st.text(max_size=200), st.text(alphabet="0123456789abcdef", max_size=64)),
    st.builds(P.Welcome, text, st.dictionaries(text, json_values, max_size=4)),
    st.builds(P.Tasks, st.lists(task_records, max_size=5)),
    st.builds(P.Cancel, st.lists(ids, max_size=5), st.booleans()),
    st.builds(P.Results, st.lists(result_records, max_size=5)),
    st.builds(P.Returned, st.lists(ids, max_size=5), st.lists(ids, max_size=5)),
    st.builds(P.Goodbye, text),
    st.builds(P.Started, ids),
    st.sampled_from([P.Quit(), P.Ping(), P.Pong(), P.Ack()]),
)


@given(frames)
def test_every_frame_round_trips(frame):
    assert P.decode(P.encode(frame)) == frame


@given(st.binary(max_size=200))
def test_garbage_is_refused_with_a_protocol_error(data):
    try:
        P.decode(data)
    except P.ProtocolError:
        pass  # the only error decode may raise


@pytest.mark.parametrize("rows", [
    [(1, "success", None, None, None, 5, 0.1)],  # warnings not a list
    [(1, "odd", None, None, None, None, 0.1)],  # unknown status
    [(1, "success", None, None, None, None, 1)],  # seconds not a float
    [("1", "success", None, None, None, None, 0.1)],  # id not an int
    [(1, "success", None, None, None, None)],  # a field short
    "not a list",
])
def test_a_malformed_result_frame_is_refused_whole(rows):
    with pytest.raises(P.ProtocolError):
        P.decode(b"r" + pickle.dumps(rows))


def test_a_strangers_hello_is_never_unpickled():
    with pytest.raises(P.ProtocolError, match="expected a hello"):
        P.decode_hello(P.encode(P.Tasks([])))
    with pytest.raises(P.ProtocolError, match="expected a hello"):
        P.decode_hello(b"h" + b"x" * P.MAX_HELLO_BYTES)
    hello = P.decode_hello(b'h{"version": 1, "pid": "7", "host": 5}')
    assert hello.pid is None and hello.host == "5" and hello.mac is None


def test_the_mac_binds_secret_nonces_and_controller():
    proof = P.mac("secret", b"n" * 32, b"w" * 32, "c1")
    assert P.verify("secret", b"n" * 32, b"w" * 32, "c1", proof)
    assert not P.verify("other", b"n" * 32, b"w" * 32, "c1", proof)
    assert not P.verify("secret", b"m" * 32, b"w" * 32, "c1", proof)
    assert not P.verify("secret", b"n" * 32, b"v" * 32, "c1", proof)
    assert not P.verify("secret", b"n" * 32, b"w" * 32, "c2", proof)
    assert not P.verify("secret", b"n" * 32, b"w" * 32, "c1", None)


def blob(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


sizes = st.one_of(st.integers(0, 64), st.integers(P.OUT_OF_BAND - 2, P.OUT_OF_BAND + 300))
out_of_band = st.builds(P.OutOfBand, sizes.map(blob), st.lists(sizes.map(blob), max_size=3).map(tuple))
big_rests = st.one_of(st.none(), st.binary(max_size=64), out_of_band)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.builds(P.TaskRecord, ids, st.binary(max_size=64), big_rests, st.none(), st.none()), max_size=4))
def test_tasks_with_large_arguments_round_trip_with_them_out_of_band(tasks):
    wire = P.encode(P.Tasks(tasks))
    if any(type(task.rest) is P.OutOfBand for task in tasks):
        assert type(wire) is list and wire[0][:1] == b"T"
    decoded = P.decode(memoryview(bytearray(flat(wire))).toreadonly())  # a view of an unhashable buffer, as NNG's
    assert decoded == P.Tasks(tasks)


def test_a_lent_buffer_is_not_copied_into_the_frame():
    held = bytearray(P.OUT_OF_BAND)
    wire = P.encode(P.Tasks([P.TaskRecord(1, b"f", P.OutOfBand(b"head", (memoryview(held),)), None, None)]))
    held[:5] = b"later"  # the frame's buffer is the argument's memory, not a copy of it
    assert P.decode(flat(wire)).tasks[0].rest.buffers[0][:5] == b"later"


def test_an_out_of_band_value_is_never_pickled_in_band():
    with pytest.raises(TypeError):
        pickle.dumps(P.OutOfBand(b"x"))


def test_a_large_results_frame_is_its_kind_and_its_pickle():
    record = P.ResultRecord(1, "success", bytes(2**17), None, None, None, 0.5)
    wire = P.encode(P.Results([record]))
    assert type(wire) is list and wire[0] == b"r" and len(wire) == 2
    assert P.decode(memoryview(flat(wire))) == P.Results([record])


@pytest.mark.parametrize("data", [
    b"T" + struct.pack(">IQ", 1, 10**9),  # a pickle longer than the frame
    b"T" + struct.pack(">IQ", 2**31, 0),  # more buffers than the frame could hold
    b"T" + struct.pack(">IQQ", 1, 0, 5) + b"abc",  # a buffer longer than what is left
    b"T" + struct.pack(">IQQ", 0, 1, 5) + b".xx",  # bytes after the last buffer
    b"T\x00",
    b"T" + struct.pack(">IQ", 0, 12) + pickle.dumps([(1, b"f", ("head", []), None, None)])[:12],  # a head not bytes
])
def test_a_malformed_frame_with_buffers_is_refused(data):
    with pytest.raises(P.ProtocolError):
        P.decode(data)
