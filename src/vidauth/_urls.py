"""The URL rule: HTTPS everywhere but loopback. The one place a configured URL is checked.

Light on purpose (no pydantic, no httpx; ``ipaddress`` only for IP literals and loopback
checks): the ``vidauth token`` fast path uses it too. Callers turn a :class:`UrlError` into
their own one-line message naming the setting.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class UrlError(ValueError):
    """Why a URL is refused: a phrase that reads after ``SETTING 'value': ``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (brackets allowed)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_valid_host(host: str) -> bool:
    """A DNS name or an IP literal."""
    if _is_dns_name(host):  # names and IPv4 literals alike
        return True
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _is_dns_name(host: str) -> bool:
    # RFC 1123 labels (plus "_", which real names carry): no regex, so that importing this
    # module stays cheap for the `vidauth token` fast path.
    if not 1 <= len(host) <= 253:
        return False
    labels = (host[:-1] if host.endswith(".") else host).split(".")
    for label in labels:
        if not 1 <= len(label) <= 63 or not set(label) <= _LABEL_CHARS:
            return False
        if label[0] == "-" or (len(label) > 1 and label[-1] in "-_"):
            return False
    return True


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


def checked_url(value: str, *, bare_host: bool = False, fragment: bool = True) -> SplitResult:
    """``value`` (stripped) split into parts, when it is a URL vidauth may use: a valid host and
    port, https (or plain http to loopback), and no ``#fragment`` unless ``fragment``.

    ``bare_host``: a value without ``://`` means ``https://value``. Raises :class:`UrlError`.
    """
    text = value.strip()
    if bare_host and "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UrlError("invalid port") from None
    if not parts.hostname or not is_valid_host(parts.hostname) or any(c.isspace() for c in text):
        raise UrlError("not a host name or URL" if bare_host else "not an absolute http(s) URL")
    problem = check_transport(text)
    if problem:
        raise UrlError(problem)
    if parts.fragment and not fragment:
        raise UrlError("must not contain a #fragment")
    return parts


def site_origin(value: str) -> str:
    """A site given as ``host``, ``host:port`` or any URL on it → ``https://host[:port]``
    (the scheme given, host lower-cased, path dropped). Raises :class:`UrlError`."""
    parts = checked_url(value, bare_host=True)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"
