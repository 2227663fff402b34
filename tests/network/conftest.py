"""Fixtures of the network tests: two hosts (network namespaces) joined by a veth pair.

They need root, ``ip`` and ``nft``. Without them the tests skip, except in CI (``CI`` set), where
tests/run.sh installs iproute2 and nftables and a missing part fails the tests.
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for _hosts, in any import mode

from _hosts import Hosts, missing_tools


@pytest.fixture
def hosts():
    """A :class:`Hosts` (namespaces a and b); afterwards nothing of it is left."""
    reason = missing_tools()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the network tests cannot run in CI: {reason}")
        pytest.skip(reason)
    with Hosts() as made:
        yield made
    names = {made.a, made.b}
    left = [line for line in os.popen("ip netns list").read().splitlines() if line.split()[0] in names]
    assert not left, f"namespaces left behind: {left}"
