"""Fixtures of the reliability tests."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _crewfaults, in any import mode

from _crewfaults import tracked_workers

workers = pytest.fixture(tracked_workers, name="workers")
