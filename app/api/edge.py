"""The app server's edge, for a `faceshot serve` reached directly (the office recipe serves the LAN itself).

uvicorn times out idle keep-alive connections but not a request's headers, and takes as many connections from one
address as it is sent: 1,100 half-sent headers from one client (no key needed) made every request fail until they
closed. Written here because uvicorn has no hook for either; the bundled nginx (docker/nginx.conf) does the same at
its own door. Also: the listening socket, bound before anything loads, so a busy port is one plain line.
"""

from __future__ import annotations

import collections
import errno
import ipaddress
import logging
import os
import socket
from functools import cache

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.peer import PEER

log = logging.getLogger("faceshot.serving")


class PortRefused(Exception):
    """The address cannot be listened on: the message says why and what to do."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The bound socket uvicorn will serve on (its workers inherit it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortRefused(f"port {port} on {host} is in use (another faceshot?); stop that process, or choose "
                              "another port with --port or FACESHOT_PORT.") from None
        if exc.errno == errno.EACCES:
            raise PortRefused(f"port {port} on {host} needs privileges this user lacks; use a port above 1023 "
                              "(or put the bundled proxy in front).") from None
        raise PortRefused(f"cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    sock.set_inheritable(True)
    return sock


@cache
def _limits() -> tuple[float, int, tuple]:
    """(header timeout, connections per address, exempt networks), read once per worker from its settings."""
    from app.core.config import get_settings

    settings = get_settings()
    trusted = os.environ.get("FORWARDED_ALLOW_IPS", "")
    exempt = tuple(ipaddress.ip_network(n.strip(), strict=False) for n in trusted.split(",")
                   if n.strip() and n.strip() != "*")
    if trusted.strip() == "*":  # only a proxy reaches this server (compose): the proxy holds its own limits
        exempt = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    return settings.header_timeout_s, settings.connections_per_address, exempt


def _exempt(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for each request's headers and a cap on one address's connections
    (a trusted proxy, FORWARDED_ALLOW_IPS, is not capped: every client comes through it)."""

    open_by_address: collections.Counter = collections.Counter()  # per worker: one event loop, no lock needed

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._header_deadline = None
        self._address = self.client[0] if self.client else None
        timeout, per_address, exempt = _limits()
        if self._address is not None:
            GuardedHttpProtocol.open_by_address[self._address] += 1
            if (GuardedHttpProtocol.open_by_address[self._address] > per_address
                    and not _exempt(self._address, exempt)):
                log.warning("refused a connection: %s has %d open (FACESHOT_CONNECTIONS_PER_ADDRESS=%d)",
                            self._address, GuardedHttpProtocol.open_by_address[self._address] - 1, per_address)
                transport.close()
                return
        self._arm(timeout)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # the connection's own peer, kept beside the client a trusted proxy may name (X-Forwarded-For rewrites
        # ``client``): proxy sign-in believes headers only from the proxy's own address (app/core/peer.py)
        self.scope[PEER] = self.client
        self._arm(_limits()[0])  # the next request on a kept-alive connection: its headers are timed too

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        if self._address is not None:
            GuardedHttpProtocol.open_by_address[self._address] -= 1
            if GuardedHttpProtocol.open_by_address[self._address] <= 0:
                del GuardedHttpProtocol.open_by_address[self._address]
            self._address = None
        super().connection_lost(exc)

    def _arm(self, timeout: float) -> None:
        if self._header_deadline is None and not self.transport.is_closing():
            self._header_deadline = self.loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_header_deadline", None) is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            log.info("closed a connection from %s: its request's headers did not arrive in time", self._address)
            self.transport.close()
