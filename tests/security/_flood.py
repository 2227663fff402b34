"""A stranger in its own process: ``python _flood.py URL MEBIBYTES`` dials the controller, takes
its challenge, sends one frame of MEBIBYTES MiB, prints "dropped" once the controller has closed
the connection (or "kept" after 20 s), and exits."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "reliability")]

from _peers import Peer  # noqa: E402


def main(url: str, mebibytes: str) -> None:
    with Peer(url, seconds=20) as peer:
        peer.challenge()
        frame = bytearray(int(mebibytes) * 2**20)
        frame[0:1] = b"h"
        peer.send(bytes(frame))
        print("dropped" if peer.dropped() else "kept", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
