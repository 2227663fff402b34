"""A real OpenSSH server on 127.0.0.1 for the whole session (tests/support/sshd_server.py)."""

from __future__ import annotations

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "tests" / "support"))

import sshd_server


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    server = sshd_server.start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()
