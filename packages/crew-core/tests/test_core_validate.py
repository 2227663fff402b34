"""crew.validate: the one settings checker every launcher uses. Each error names the argument."""

import math
import os
import pathlib

import crew
import pytest
from crew import validate


def rejects(function, name, value, *args, **kwargs):
    """Assert ``function(name, value)`` raises a SettingError whose message names ``name``."""
    with pytest.raises(crew.SettingError) as caught:
        function(name, value, *args, **kwargs)
    assert str(caught.value).startswith(f"{name} must be "), caught.value
    assert repr(value) in str(caught.value)
    return str(caught.value)


def test_setting_error_is_a_value_error():
    assert issubclass(crew.SettingError, ValueError)
    assert issubclass(crew.SettingError, crew.CrewError)


@pytest.mark.parametrize("value", [0, 1, 2.5, 10**6])
def test_number_accepts_non_negative_reals_as_floats(value):
    result = validate.number("seconds", value)
    assert result == value and isinstance(result, float)


@pytest.mark.parametrize("value", [-1, -0.001, True, False, "1", None, math.nan, [1], -math.inf])
def test_number_rejects(value):
    rejects(validate.number, "seconds", value)


def test_number_bounds():
    assert validate.number("x", 5, minimum=5) == 5.0
    message = rejects(validate.number, "x", 5, minimum=5, exclusive_minimum=True)
    assert "> 5" in message
    message = rejects(validate.number, "x", 11, maximum=10)
    assert "<= 10" in message
    assert validate.number("x", -3, minimum=None) == -3.0


def test_number_infinity_only_when_allowed():
    message = rejects(validate.number, "seconds_idle", math.inf)
    assert "finite" in message
    assert validate.number("seconds_idle", math.inf, allow_inf=True) == math.inf
    assert "math.inf allowed" in rejects(validate.number, "seconds_idle", -2, allow_inf=True)


def test_number_none_only_when_allowed():
    assert validate.number("x", None, allow_none=True) is None
    assert "or None" in rejects(validate.number, "x", "a", allow_none=True)


@pytest.mark.parametrize("value", [0, 3, 2**40])
def test_integer_accepts_whole_numbers(value):
    result = validate.integer("workers", value)
    assert result == value and type(result) is int


@pytest.mark.parametrize("value", [1.0, 1.5, "2", True, None, -1, math.inf])
def test_integer_rejects(value):
    rejects(validate.integer, "workers", value)


def test_integer_bounds_and_infinity():
    assert validate.integer("tasks_max", math.inf, minimum=1, allow_inf=True) == math.inf
    rejects(validate.integer, "tasks_max", 0, minimum=1, allow_inf=True)
    rejects(validate.integer, "port", 65536, maximum=65535)
    assert validate.integer("port", None, allow_none=True) is None


def test_text():
    assert validate.text("name", "a") == "a"
    rejects(validate.text, "name", "")
    rejects(validate.text, "name", "   ")
    rejects(validate.text, "name", 3)
    assert validate.text("name", "", allow_empty=True) == ""
    assert validate.text("name", None, allow_none=True) is None
    assert validate.text("queue", "gpu_1", pattern=r"\w+") == "gpu_1"
    assert r"matching \w+" in rejects(validate.text, "queue", "gpu 1", pattern=r"\w+")


def test_choice():
    assert validate.choice("mode", "all", ("all", "one")) == "all"
    message = rejects(validate.choice, "mode", "some", ("all", "one"))
    assert "one of 'all', 'one'" in message
    assert validate.choice("mode", None, ("all",), allow_none=True) is None
    rejects(validate.choice, "mode", ["all"], ("all", "one"))  # unhashable: rejected, not a TypeError


def test_flag():
    assert validate.flag("reset_globals", True) is True
    assert validate.flag("reset_globals", False) is False
    for value in (0, 1, "yes", None):
        rejects(validate.flag, "reset_globals", value)


def test_strings():
    assert validate.strings("names", "a") == ["a"]
    assert validate.strings("names", ("a", "b")) == ["a", "b"]
    assert validate.strings("names", None) == []
    assert validate.strings("names", None, allow_none=True) is None
    for value in ([1], {"a": "b"}, b"ab", 3):
        rejects(validate.strings, "names", value)


def test_mapping():
    assert validate.mapping("env", None) is None
    assert validate.mapping("env", None, allow_none=False) == {}
    source = {"A": "1"}
    copy = validate.mapping("env", source, values=str)
    assert copy == source and copy is not source
    rejects(validate.mapping, "env", {1: "a"})
    assert "of str" in rejects(validate.mapping, "env", {"A": 1}, values=str)
    rejects(validate.mapping, "env", [("A", "1")])


def test_path(tmp_path):
    assert validate.path("log_directory", tmp_path) == str(tmp_path)
    assert validate.path("log_directory", "relative") == os.path.abspath("relative")
    assert validate.path("log_directory", "~/x") == os.path.join(os.path.expanduser("~"), "x")
    assert validate.path("log_directory", pathlib.Path("a")) == os.path.abspath("a")
    assert validate.path("log_directory", None, allow_none=True) is None
    for value in ("", 3, None):
        rejects(validate.path, "log_directory", value)
