"""URL rules: HTTPS everywhere but loopback."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (brackets allowed)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_valid_host(host: str) -> bool:
    """A DNS name or an IP literal."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(host))


def check_transport(url: str) -> str | None:
    """Why ``url`` is not allowed (plain http to a non-loopback host, odd scheme), else None."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return None if parts.hostname else "it has no host"
    if parts.scheme == "http":
        if is_loopback_host(parts.hostname):
            return None
        return "plain http is allowed only to loopback hosts (localhost, 127.0.0.1, ::1); use https"
    return "it must start with https://"
