"""Large task arguments (crew._serial): a bytes argument is lent to the frame, not copied, and
comes back equal; anything that can change after the push is copied when it is pushed."""

from __future__ import annotations

import array
import os

import pytest
from crew import _protocol as P
from crew._channel import flat
from crew._serial import Serializer


def through_a_frame(rest):
    """``rest`` as a worker gets it: encoded in a Tasks frame, decoded from a view."""
    wire = P.encode(P.Tasks([P.TaskRecord(1, b"f", rest, None, None)]))
    return P.decode(memoryview(bytearray(flat(wire))).toreadonly()).tasks[0].rest


def test_a_large_bytes_argument_is_lent_not_copied():
    payload = os.urandom(P.OUT_OF_BAND)
    rest = Serializer().dumps_arguments(((payload, 7), None, None, None))
    assert type(rest) is P.OutOfBand and len(rest.buffers) == 1 and rest.buffers[0].obj is payload
    assert len(rest.head) < 200 and len(rest) > P.OUT_OF_BAND
    args, kwargs, data, globals_ = Serializer().loads_arguments(through_a_frame(rest))
    assert args == (payload, 7) and type(args[0]) is bytes and (kwargs, data, globals_) == (None, None, None)


def test_keywords_data_and_globals_are_lent_too():
    payload = os.urandom(P.OUT_OF_BAND + 1)
    parts = ((), {"key": payload, "small": b"x"}, {"data": payload}, {"g": 1})
    rest = Serializer().dumps_arguments(parts)
    assert type(rest) is P.OutOfBand and len(rest.buffers) == 2
    assert Serializer().loads_arguments(through_a_frame(rest)) == parts


@pytest.mark.parametrize("make", [bytearray, lambda data: array.array("b", data)])
def test_what_can_change_is_copied_when_pushed(make):
    value = make(bytes(P.OUT_OF_BAND))
    rest = Serializer().dumps_arguments(((os.urandom(P.OUT_OF_BAND), value), None, None, None))
    value[0] = 1  # after the push: the task gets the value as it was pushed
    args = Serializer().loads_arguments(through_a_frame(rest))[0]
    assert args[1][0] == 0 and len(rest.buffers) == 1


def test_small_arguments_stay_plain_bytes_and_large_pickles_are_held_whole():
    assert type(Serializer().dumps_arguments(((1, b"x"), None, None, None))) is bytes
    rest = Serializer().dumps_arguments((("x" * P.OUT_OF_BAND,), None, None, None))
    assert type(rest) is P.OutOfBand and rest.buffers == ()
    assert Serializer().loads_arguments(through_a_frame(rest))[0] == ("x" * P.OUT_OF_BAND,)


def test_a_custom_serializer_gets_bytes_back():
    serializer = Serializer("pickle")  # a module with dumps and loads: its loads is given bytes, never a view
    payload = os.urandom(P.OUT_OF_BAND)
    rest = serializer.dumps_arguments(((payload,), None, None, None))
    assert type(rest) is P.OutOfBand and rest.buffers == ()
    assert serializer.loads_arguments(through_a_frame(rest))[0] == (payload,)


def test_a_push_with_a_large_bytes_argument_takes_the_lending_path():
    from crew._controller.intake import Intake

    intake = Intake(Serializer())
    intake.command_bytes(len)  # cached: the quick path applies
    assert type(intake.quick(len, (b"small",), None).rest) is bytes
    assert intake.quick(len, (bytes(P.OUT_OF_BAND),), None) is None  # to the full path, which lends it
    task = intake.task(len, (bytes(P.OUT_OF_BAND),))
    assert type(task.rest) is P.OutOfBand and len(task.rest.buffers) == 1 and task.size > P.OUT_OF_BAND
