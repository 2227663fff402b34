"""The client: the network end of a controller, where workers dial in."""

from __future__ import annotations

import ipaddress
import os
import select
import socket as _socket
import tempfile
from typing import Union

import pynng

from . import validate
from ._channel import part_bytes
from ._stream import SCHEME as UNIX_SCHEME
from ._stream_listener import Listener
from .errors import CrewError, SettingError
from .tls import TLS

__all__ = ["Client", "local_address"]


TRANSPORTS = ("nng", "unix", "auto")
"""How workers reach the controller: NNG over TCP (any machine), Unix stream sockets (this machine),
or the latter when it can serve (see :class:`Client`)."""


class Client:
    """Owns the listener that workers dial.

    Arguments:
        host: an IP address, a host name, or a network interface name such as ``ib0``.
            None: the first non-loopback address of this machine (for workers elsewhere).
            ``"0.0.0.0"`` listens on all interfaces, and only when asked.
        port: TCP port; None or 0 picks a free one.
        tls: a :class:`crew.TLS`.
        serializer: name of a module with ``dumps``/``loads`` for tasks and results
            (None: cloudpickle); it must be importable on the workers too.
        profile: a label that tells this client's workers apart in logs (default: the
            controller's name).
        seconds_interval: how often waits re-check scaling while no result arrives.
        seconds_timeout: how long network operations may take.
        max_frame_bytes: the largest frame accepted from a worker (default 256 MiB; 0: no limit).
            Frames larger than 1 MiB travel in parts (joined only for authenticated workers),
            so a peer that has not authenticated can make the controller hold at most about
            1 MiB whatever this limit is.
        transport: ``"nng"`` (the default): NNG over TCP, for workers on any machine, with or
            without TLS. ``"unix"``: a Unix stream socket in a private temporary directory, for
            workers on this machine only (``host``, ``port`` and ``tls`` do not apply); the same
            handshake and sealed frames run over it, and it skips NNG's threads: a task's round
            trip takes about half the time. Linux only. ``"auto"``: ``"unix"`` when ``host`` is a
            loopback address, no ``port`` is given, ``tls`` is off and the platform has it
            (``local_controller``'s default), else ``"nng"``. The attribute ``transport`` holds
            the choice once made.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        tls: TLS | None = None,
        serializer: str | None = None,
        profile: str | None = None,
        seconds_interval: float = 0.25,
        seconds_timeout: float = 60.0,
        max_frame_bytes: int = 2**28,
        transport: str = "nng",
    ):
        self.host = validate.text("host", host, allow_none=True)
        self.port = validate.integer("port", port, minimum=0, maximum=65535, allow_none=True) or 0
        if tls is None:
            tls = TLS()
        if not isinstance(tls, TLS):
            raise SettingError(f"tls must be a crew.TLS, not {tls!r}")
        self.tls = tls
        self.serializer = validate.text("serializer", serializer, allow_none=True)
        if self.serializer is not None:
            import importlib

            try:
                module = importlib.import_module(self.serializer)
            except ImportError as error:
                raise SettingError(f"serializer must name an importable module, not {serializer!r}: {error}") from None
            if not (callable(getattr(module, "dumps", None)) and callable(getattr(module, "loads", None))):
                raise SettingError(f"serializer must name a module with dumps() and loads(), not {serializer!r}")
        self.profile = validate.text("profile", profile, allow_none=True)
        self.seconds_interval = validate.number("seconds_interval", seconds_interval, exclusive_minimum=True)
        self.seconds_timeout = validate.number("seconds_timeout", seconds_timeout, exclusive_minimum=True)
        self.max_frame_bytes = validate.integer("max_frame_bytes", max_frame_bytes, minimum=0)
        self.transport = _transport(validate.choice("transport", transport, TRANSPORTS), self.host, self.port, self.tls)
        self.socket: Union[pynng.Pair1, Listener, None] = None
        self.certificate: str | None = None
        self._address: str | None = None

    @property
    def started(self) -> bool:
        return self.socket is not None

    @property
    def url(self) -> str:
        """The address workers dial, e.g. ``tcp://10.0.0.5:41234`` or ``unix:///tmp/crew-k2x9/controller.sock``."""
        address = self._address  # set by start() before the socket
        if self.socket is None or address is None:
            raise CrewError("the client is not started")
        if self.transport == "unix":
            return UNIX_SCHEME + address
        scheme = "tls+tcp" if self.tls.enabled else "tcp"
        if ":" in address:
            address = f"[{address}]"
        return f"{scheme}://{address}:{self.port}"

    def start(self) -> Union[pynng.Pair1, Listener]:
        """Listen; return the socket (one socket, many workers)."""
        if self.socket is not None:
            return self.socket
        if self.transport == "unix":
            return self._start_unix()
        bind = resolve_host(self.host)
        self._address = bind if bind not in ("0.0.0.0", "::") else local_address()
        sock = pynng.Pair1(polyamorous=True, recv_max_size=receive_limit(self.max_frame_bytes))
        scheme = "tcp"
        if self.tls.enabled:
            key, cert = self.tls._materials(self._address)
            try:
                sock.tls_config = pynng.TLSConfig(
                    pynng.TLSConfig.MODE_SERVER,
                    own_key_string=key,
                    own_cert_string=cert,
                    passwd=self.tls.password if self.tls.mode == "custom" else None,
                    auth_mode=pynng.TLSConfig.AUTH_MODE_NONE,
                )
            except pynng.exceptions.NNGException as error:
                sock.close()
                raise SettingError(f"tls: cannot load the key and certificates ({error}); wrong password?") from None
            self.certificate = cert
            scheme = "tls+tcp"
        where = f"[{bind}]" if ":" in bind else bind
        try:
            listener = sock.listen(f"{scheme}://{where}:{self.port}")
        except pynng.exceptions.AddressInUse:
            sock.close()
            raise CrewError(f"port {self.port} is already in use on {bind}: pick another port (or None)") from None
        except pynng.exceptions.NNGException as error:
            sock.close()
            raise CrewError(f"cannot listen on {bind}:{self.port}: {error}") from None
        self.port = _socket.ntohs(listener.local_address.port)
        self.socket = sock
        return sock

    def _start_unix(self) -> Listener:
        listener = Listener(recv_max_size=receive_limit(self.max_frame_bytes))
        # A directory only we can enter, where a socket's path fits (at most 107 bytes on Linux).
        where = tempfile.gettempdir() if len(tempfile.gettempdir()) <= _LONGEST_TEMP else "/tmp"
        path = os.path.join(tempfile.mkdtemp(prefix="crew-", dir=where), "controller.sock")
        try:
            listener.listen(path)
        except OSError as error:
            listener.close()
            os.rmdir(os.path.dirname(path))
            raise CrewError(f"cannot listen on {path}: {error}") from None
        self._address = path
        self.socket = listener
        return listener

    def stop(self) -> None:
        """Close the listener and every connection. Safe to call twice."""
        sock, self.socket = self.socket, None
        if sock is not None:
            sock.close()
        if isinstance(sock, Listener) and sock.path:
            try:
                os.rmdir(os.path.dirname(sock.path))  # the socket file is gone with close()
            except OSError:
                pass

    def __repr__(self) -> str:
        where = self.url if self.socket is not None else (
            "unix" if self.transport == "unix" else f"{self.host or '<auto>'}:{self.port}")
        return f"Client({where})"


_LONGEST_TEMP = 107 - len("/crew-12345678/controller.sock")
"""The longest temporary directory a socket path fits under; beyond it the socket goes in /tmp."""


def _transport(transport: str, host: str | None, port: int, tls: TLS) -> str:
    """The transport ``transport`` names, with ``"auto"`` decided; refuses what cannot work."""
    if transport == "auto":
        loopback = host in ("localhost", "127.0.0.1", "::1") or (host or "").startswith("127.")
        unix = loopback and not port and not tls.enabled and hasattr(select, "epoll")
        return "unix" if unix else "nng"
    if transport == "unix" and tls.enabled:
        raise SettingError("tls does not apply to transport='unix' (workers on this machine only); "
                           "use transport='nng' for TLS, or drop tls")
    if transport == "unix" and not hasattr(select, "epoll"):
        raise SettingError("transport='unix' needs Linux (select.epoll); use transport='nng'")
    return transport


def receive_limit(max_frame_bytes: int) -> int:
    """The largest raw frame the listener reads: one part (see :mod:`crew._channel`), never more
    than a whole frame under ``max_frame_bytes`` needs."""
    return part_bytes(max_frame_bytes) + 1 + _PROTOCOL_HEADER


_PROTOCOL_HEADER = 64
"""Room for NNG's own header on each message (the pair protocol's hop count is 4 bytes), which
NNG counts against the receive limit."""


def resolve_host(host: str | None) -> str:
    """An address to listen on, from an address, a host name or an interface name."""
    if host is None:
        return local_address()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    import psutil

    interfaces = psutil.net_if_addrs()
    if host in interfaces:
        for entry in interfaces[host]:
            if entry.family == _socket.AF_INET:
                return str(entry.address)
        for entry in interfaces[host]:
            if entry.family == _socket.AF_INET6:
                return str(entry.address).split("%", 1)[0]
        raise SettingError(f"host: interface {host!r} has no IP address")
    try:
        return _socket.gethostbyname(host)
    except OSError:
        known = ", ".join(sorted(interfaces))
        raise SettingError(
            f"host must be an IP address, a host name or an interface name ({known}), not {host!r}"
        ) from None


def local_address() -> str:
    """The first non-loopback IPv4 address of this machine (127.0.0.1 if it has none)."""
    import psutil

    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family == _socket.AF_INET and not entry.address.startswith("127."):
                return str(entry.address)
    return "127.0.0.1"
