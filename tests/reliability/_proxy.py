"""A small TCP proxy on 127.0.0.1 whose connections a test can cut, and a launcher that sends
its workers through it."""

from __future__ import annotations

import shlex
import socket
import threading

from crew_local import LocalLauncher

__all__ = ["Proxy", "ProxyLauncher"]


class Proxy:
    """Forwards every connection made to ``127.0.0.1:port`` to ``127.0.0.1:target``."""

    def __init__(self, target: int):
        self.target = target
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._frozen: set[socket.socket] = set()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                downstream.close()
                continue
            with self._lock:
                self._pairs.append((downstream, upstream))
                self.accepted += 1
            for source, sink in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, sink), name="proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if source not in self._frozen:
                    sink.sendall(data)
        except OSError:
            pass
        _close(source, sink)

    def cut(self) -> int:
        """Close every connection open now (both ends); return how many were cut."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(*pair)
        return len(pairs)

    def freeze(self) -> int:
        """From now on drop every byte of the connections open now, yet keep them open (a silent
        network partition: no FIN, no RST); return how many were frozen."""
        with self._lock:
            pairs = list(self._pairs)
            for pair in pairs:
                self._frozen.update(pair)
        return len(pairs)

    def close(self) -> None:
        self._server.close()
        self.cut()


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


class ProxyLauncher(LocalLauncher):
    """A local launcher whose workers dial ``via`` (a URL) instead of the controller's own URL."""

    via: str | None = None

    def call(self, launch: str | None = None, secret_file: str | None = None) -> str:
        call = super().call(launch, secret_file)
        if self.via is None:
            return call
        direct = shlex.split(call)[3]  # python -m crew.worker URL ...
        return call.replace(direct, self.via, 1)
