"""Two hosts on this machine: network namespaces joined by a veth pair, with faults on the link.

:class:`Hosts` makes namespaces ``<tag>-a`` (the controller's host) and ``<tag>-b`` (the workers'
host), joined by the veth pair ``<tag>a`` / ``<tag>b`` on a /30 of 10.x.y.0 chosen at random.
Faults are injected on host b only: packet loss by an nftables table in b's namespace
(``numgen random mod 100 < percent drop`` on input and output), a partition by taking b's end of
the link down. :meth:`Hosts.close` ends every process still in the namespaces (by pid, from
``ip netns pids``) and deletes both namespaces, which removes the veth pair and the nftables
table with them.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import signal
import subprocess
import time

__all__ = ["Hosts", "missing_tools"]

LOSS_TABLE = "crew_loss"


def missing_tools() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip`` or ``nft``), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install iproute2 nftables)"
    return None


def _run(*words: str, stdin: str | None = None) -> str:
    done = subprocess.run(words, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(words)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class Hosts:
    """The controller's host ``a`` and the workers' host ``b``; use as a context manager."""

    def __init__(self) -> None:
        tag = f"crw{secrets.token_hex(3)}"
        self.a, self.b = f"{tag}-a", f"{tag}-b"
        self.link_a, self.link_b = f"{tag}a", f"{tag}b"
        net = f"10.{random.randint(64, 250)}.{random.randint(0, 255)}"
        self.address_a, self.address_b = f"{net}.1", f"{net}.2"
        self.made: list[str] = []

    def __enter__(self) -> Hosts:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(self) -> None:
        for namespace in (self.a, self.b):
            _run("ip", "netns", "add", namespace)
            self.made.append(namespace)
        _run("ip", "link", "add", self.link_a, "netns", self.a, "type", "veth", "peer", "name", self.link_b, "netns", self.b)
        for namespace, link, address in ((self.a, self.link_a, self.address_a), (self.b, self.link_b, self.address_b)):
            _run("ip", "-n", namespace, "addr", "add", f"{address}/30", "dev", link)
            _run("ip", "-n", namespace, "link", "set", link, "up")
            _run("ip", "-n", namespace, "link", "set", "lo", "up")

    # ------------------------------------------------------------------ faults on host b
    def loss(self, percent: int) -> None:
        """Drop ``percent`` % of b's packets, each way, at random."""
        rule = f"numgen random mod 100 < {int(percent)} drop"
        ruleset = (
            f"table inet {LOSS_TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; policy accept; {rule}; }}\n"
            f"  chain output {{ type filter hook output priority 0; policy accept; {rule}; }}\n"
            "}\n"
        )
        _run("ip", "netns", "exec", self.b, "nft", "-f", "-", stdin=ruleset)

    def no_loss(self) -> None:
        _run("ip", "netns", "exec", self.b, "nft", "delete", "table", "inet", LOSS_TABLE)

    def loss_rules(self) -> str:
        """b's nftables ruleset (empty when no loss is set)."""
        return _run("ip", "netns", "exec", self.b, "nft", "list", "ruleset")

    def link(self, up: bool) -> None:
        """Take b's end of the link down (a partition: nothing is closed, nothing passes) or up."""
        _run("ip", "-n", self.b, "link", "set", self.link_b, "up" if up else "down")

    # ------------------------------------------------------------------ processes
    def pids(self, namespace: str) -> list[int]:
        """Processes now in ``namespace``."""
        if namespace not in self.made:
            return []
        return [int(word) for word in _run("ip", "netns", "pids", namespace).split()]

    def close(self) -> list[int]:
        """Kill (by pid) what still runs in the namespaces, then delete them; return the pids killed."""
        killed: list[int] = []
        for namespace in list(self.made):
            for pid in self.pids(namespace):
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        while any(self.pids(namespace) for namespace in self.made) and time.monotonic() < deadline:
            time.sleep(0.05)
        for namespace in list(self.made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
            self.made.remove(namespace)
        return killed
