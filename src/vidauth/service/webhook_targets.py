"""Which addresses a ``callback_url`` may reach, checked after DNS resolution.

A notification is a POST the service makes on a tenant's behalf, so a tenant must not be able
to aim it at the service's own network: loopback, private (RFC 1918, ULA), link-local (cloud
metadata at 169.254.169.254), shared (CGNAT), multicast, reserved and unspecified addresses —
and the same in IPv4-mapped IPv6 form — are refused unless ``VIDAUTH_WEBHOOK_ALLOW_NETWORKS``
names a network holding them (a backend on a private network is normal: say so explicitly).

The name is resolved and checked when the upload is submitted and again at each delivery, and
the delivery connects to the address that was checked (the host name still goes in ``Host``
and in TLS's SNI and certificate check), so a DNS answer that changes in between (DNS
rebinding) cannot redirect it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Exception):
    """The callback URL may not be reached; the message says why in one line."""


def parse_networks(value: str) -> tuple[Network, ...]:
    """``10.0.0.0/8,127.0.0.1/32`` → networks; ValueError naming the bad entry."""
    found: list[Network] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            found.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network (e.g. 10.0.0.0/8)") from None
    return tuple(found)


def _plain(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _embedded(address: IPAddress) -> list[IPAddress]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo server and client)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found: list[IPAddress] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def _public(address: IPAddress) -> bool:
    return not (
        not address.is_global
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def address_allowed(address: IPAddress, allow: Sequence[Network]) -> bool:
    """True for a global unicast address, or one inside an allowed network.

    IPv6 forms that tunnel to an IPv4 address (IPv4-mapped, 6to4 ``2002::/16``, Teredo
    ``2001::/32``) count as that address too, and site-local ``fec0::/10`` is refused: none of
    them may lead to loopback or a private network unless that network is allowed.
    """
    plain = _plain(address)
    if any(plain in net or address in net for net in allow):
        return True
    if not _public(plain):
        return False
    return all(_public(inner) for inner in _embedded(address))


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


@dataclass(frozen=True)
class Target:
    """Where to connect for a callback URL: the checked address and the original host."""

    url: str
    host: str
    address: IPAddress

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the host name."""
        parts = urlsplit(self.url)
        literal = (
            f"[{self.address}]"
            if isinstance(self.address, ipaddress.IPv6Address)
            else str(self.address)
        )
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    @property
    def host_header(self) -> str:
        """The ``Host`` header the URL implies."""
        return urlsplit(self.url).netloc.rsplit("@", 1)[-1]


def check_target(url: str, allow: Sequence[Network]) -> Target:
    """Resolve ``url``'s host and check every address; the Target to connect to, or
    TargetRefused. Every address must pass: a name that also resolves to a private address is
    refused, so the answer picked at connect time cannot matter."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise TargetRefused("it has no host")
    if parts.username or parts.password:
        raise TargetRefused("it must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("its port is not a number from 1 to 65535") from None
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError, ValueError):
        raise TargetRefused(f"its host {host[:80]!r} does not resolve") from None
    if not addresses:
        raise TargetRefused(f"its host {host[:80]!r} does not resolve")
    for address in addresses:
        if not address_allowed(address, allow):
            raise TargetRefused(
                f"its host resolves to {address}, a loopback, private, link-local or other "
                "non-public address; list its network in VIDAUTH_WEBHOOK_ALLOW_NETWORKS to allow it"
            )
    return Target(url, host, addresses[0])


class DeadlineExceeded(Exception):
    """The receiver did not answer (in full) within the delivery's total deadline."""


def post_pinned(
    client: httpx.Client,
    url: str,
    allow: Sequence[Network],
    content: bytes,
    headers: Mapping[str, str],
    deadline: float = 10.0,
    max_answer: int = 4096,
) -> tuple[int, str | None]:
    """POST to ``url`` after checking it again, connecting to the address just checked;
    answers (status, Retry-After header).

    The whole exchange (connect, send, the answer's headers and up to ``max_answer`` bytes of
    its body) ends within ``deadline`` seconds: httpx's timeouts count per read, so a receiver
    trickling its answer would hold the thread for ever; here the socket is shut down at the
    deadline (DeadlineExceeded). TargetRefused when the address is not allowed (any more);
    httpx errors as usual.
    """
    target = check_target(url, allow)
    # A fresh connection each time: its socket is the one the deadline can shut.
    sent = {**headers, "Host": target.host_header, "Connection": "close"}
    sockets: list[socket.socket] = []
    expired = threading.Event()

    def trace(event: str, info: Mapping[str, object]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = getattr(stream, "get_extra_info", lambda _n: None)("socket")
            if isinstance(sock, socket.socket):
                sockets.append(sock)
                if expired.is_set():
                    _shut(sock)

    def expire() -> None:
        expired.set()
        for sock in sockets:
            _shut(sock)

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()
    try:
        with client.stream(
            "POST",
            target.pinned_url,
            content=content,
            headers=sent,
            extensions={"sni_hostname": target.host, "trace": trace},
        ) as response:
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= max_answer:
                    break  # the rest is never read: closing drops the connection
            return response.status_code, response.headers.get("Retry-After")
    except httpx.HTTPError:
        if expired.is_set():
            raise DeadlineExceeded() from None
        raise
    finally:
        timer.cancel()


def _shut(sock: socket.socket) -> None:
    """Wake any thread blocked on ``sock`` (close() alone does not)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
