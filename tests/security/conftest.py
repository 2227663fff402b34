"""Fixtures of the security tests (the process tracking lives with the reliability tests)."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "reliability")]  # _peers, _crewfaults, in any import mode

from _crewfaults import tracked_workers  # noqa: E402

workers = pytest.fixture(tracked_workers, name="workers")
