"""Slow and greedy clients, at the HTTP layer: limits uvicorn does not have on its own.

uvicorn closes idle keep-alive connections, but it waits for ever for a request's headers and
for the rest of a body. :class:`GuardedHttp` (uvicorn's httptools protocol, extended) closes a
connection whose headers have not all arrived within ``VIDAUTH_HEADER_TIMEOUT`` seconds, and
one whose body stalls for ``VIDAUTH_BODY_IDLE_TIMEOUT`` seconds while the service is waiting
for it (not while the service itself has paused reading, nor while bytes the client sent wait
unread because the event loop fell behind), and refuses (503) connections beyond
``VIDAUTH_MAX_CONNECTIONS_PER_CLIENT`` from one address. Addresses of trusted proxies
(``VIDAUTH_TRUSTED_PROXIES``) are exempt from that cap: the proxy must cap its own clients;
only their ``X-Forwarded-For`` is believed.
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
import termios
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vidauth.service.settings import ServiceSettings

_BODY = b'{"error":"too_many_connections","detail":"too many connections from this address"}'
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol with a header timeout, a body idle timeout and a cap on
    connections per client address (class-wide settings: :meth:`configure`)."""

    header_timeout: ClassVar[float] = 10.0
    body_idle_timeout: ClassVar[float] = 30.0
    max_per_client: ClassVar[int] = 64
    exempt: ClassVar[frozenset[str]] = frozenset()
    _open: ClassVar[dict[str, int]] = {}

    @classmethod
    def configure(
        cls,
        header_timeout: float,
        body_idle_timeout: float,
        max_per_client: int,
        exempt: frozenset[str] = frozenset(),
    ) -> None:
        """Set the limits for every connection accepted from now on."""
        cls.header_timeout = header_timeout
        cls.body_idle_timeout = body_idle_timeout
        cls.max_per_client = max_per_client
        cls.exempt = exempt

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard: asyncio.TimerHandle | None = None
        self._counted: str | None = None
        host = self.client[0] if self.client else None
        if host is not None and host not in self.exempt:
            count = self._open.get(host, 0) + 1
            self._open[host] = count
            self._counted = host
            if count > self.max_per_client:
                transport.write(_REFUSED)
                transport.close()
                return
        self._arm(self.header_timeout)  # until the first request's headers are in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            left = self._open.get(self._counted, 1) - 1
            if left > 0:
                self._open[self._counted] = left
            else:
                self._open.pop(self._counted, None)
            self._counted = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_idle_timeout)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        # Cheaper than re-arming a timer per chunk: the timer looks at this when it fires.
        self._active_at = self.loop.time()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._active_at = self.loop.time()
        self._guard = self.loop.call_later(seconds, self._expired, seconds)

    def _disarm(self) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None:
            guard.cancel()
            self._guard = None

    def _expired(self, seconds: float) -> None:
        self._guard = None
        if self.flow is not None and self.flow.read_paused:
            self._arm(seconds)  # the service is not reading: the client is not to blame
            return
        idle = self.loop.time() - self._active_at
        if idle >= seconds and self._bytes_waiting():
            # The client did send; the loop has not read it yet (it stalled for the whole idle
            # time, and uvloop runs due timers before it reads): that is activity.
            self._active_at, idle = self.loop.time(), 0.0
        if idle < seconds:  # data came meanwhile: wait out the rest of the idle time
            self._guard = self.loop.call_later(seconds - idle, self._expired, seconds)
            return
        if not self.transport.is_closing():
            self.transport.close()

    def _bytes_waiting(self) -> bool:
        """Whether bytes have arrived on the connection that the loop has not read yet."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):
            return False
        return int.from_bytes(waiting, sys.byteorder) > 0


def uvicorn_options(service: ServiceSettings) -> dict[str, Any]:
    """uvicorn.Config options for the service's limits (and configure :class:`GuardedHttp`)."""
    proxies = service.trusted_proxies
    GuardedHttp.configure(
        service.header_timeout,
        service.body_idle_timeout,
        service.max_connections_per_client,
        frozenset(p for p in proxies if "/" not in p),
    )
    return {
        "http": GuardedHttp,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": list(proxies) if proxies else [],
    }
