"""One HTTP client for everything: timeouts, retries with backoff + Retry-After, bearer auth.

Retries live in a transport (:class:`RetryTransport`) that follows the one
:class:`~vidauth.retry.RetryPolicy`, so every request made through :func:`build_client` is
covered. A request says how replayable it is in its ``extensions``:

- ``"idempotent"`` (default for GET/HEAD/PUT/DELETE/OPTIONS): retried on connection errors,
  timeouts, 429 and 5xx;
- ``"unsent"``: only when the server certainly did not act on it (the connection failed before
  the request went out, or a 429) — used for one-time authorization codes;
- ``"always"``: like idempotent, for POSTs that are safe to repeat (a refresh, sessionUpload);
- ``"never"``: not retried.
POSTs default to ``"never"``.
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Generator
from typing import Protocol

import httpx

from vidauth import _tls
from vidauth._urls import check_transport
from vidauth.errors import ConfigError, RemoteServiceError
from vidauth.retry import RETRYABLE_STATUS, RetryPolicy, may_replay, parse_retry_after

log = logging.getLogger("vidauth.http")

RETRY_EXTENSION = "vidauth_retry"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "vidauth/0.1 (+https://github.com/doubtfire-lms)"


def shared_ssl_context() -> ssl.SSLContext:
    """The process's one TLS client context, as httpx makes its default (certifi's roots, or
    ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). Loading the roots costs about 16 ms, once per
    process rather than once per client (a command that will connect starts it on a thread:
    :mod:`vidauth._tls`); a context is safe to share between clients and threads.

    Raises ConfigError when ``SSL_CERT_FILE`` names no loadable file of CA certificates."""
    try:
        return _tls.context()
    except OSError as exc:  # ssl.SSLError included
        roots = os.environ.get("SSL_CERT_FILE")
        if not roots:
            raise  # certifi's own file: a broken installation, not a setting
        reason = (
            "no CA certificate in PEM form in it"
            if isinstance(exc, ssl.SSLError)
            else (exc.strerror or type(exc).__name__).lower()
        )
        raise ConfigError(
            f"SSL_CERT_FILE={roots}: cannot load CA certificates ({reason}); it must name a "
            "PEM file of the CA certificates to trust, or be unset",
            variable="SSL_CERT_FILE",
            path=roots,
        ) from exc


def _mode(request: httpx.Request) -> str:
    mode = request.extensions.get(RETRY_EXTENSION)
    if isinstance(mode, str):
        return mode
    return (
        "idempotent" if request.method in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"} else "never"
    )


class RetryTransport(httpx.BaseTransport):
    """Wraps a transport and retries transient failures according to the request's mode."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._transport = transport or httpx.HTTPTransport(retries=0, verify=shared_ssl_context())
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        mode = _mode(request)
        budget = self.policy.start()
        while True:
            budget.begin()
            try:
                response = self._transport.handle_request(request)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                delay = budget.next_delay() if may_replay(mode, unsent=unsent) else None
                if delay is None:
                    raise
                log.warning(
                    "%s %s failed (%s); retrying in %.1fs",
                    request.method,
                    _safe_url(request),
                    type(exc).__name__,
                    delay,
                )
                self._sleep(delay)
                continue
            if response.status_code not in RETRYABLE_STATUS:
                return response
            unsent = response.status_code == 429
            if not may_replay(mode, unsent=unsent):
                return response
            delay = budget.next_delay(parse_retry_after(response.headers.get("Retry-After")))
            if delay is None:
                return response
            response.read()
            response.close()
            log.warning(
                "%s %s answered %d; retrying in %.1fs",
                request.method,
                _safe_url(request),
                response.status_code,
                delay,
            )
            self._sleep(delay)

    def close(self) -> None:
        self._transport.close()


def _safe_url(request: httpx.Request) -> str:
    """The URL without its query string (which may carry codes)."""
    url = request.url
    return f"{url.scheme}://{url.netloc.decode()}{url.path}"


class AccessTokenSource(Protocol):
    """Where BearerAuth gets tokens: the store-backed TokenManager implements this."""

    def access_token(self, min_validity: float | None = None) -> str: ...

    def refreshed_after_rejection(self, rejected: str) -> str: ...


class BearerAuth(httpx.Auth):
    """Sends a bearer token with enough life left; on 401/403 refreshes once and retries once."""

    def __init__(
        self,
        source: AccessTokenSource,
        min_validity: float = 300.0,
        reject_statuses: frozenset[int] = frozenset({401, 403}),
    ) -> None:
        self.source = source
        self.min_validity = min_validity
        self.reject_statuses = reject_statuses

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.source.access_token(self.min_validity)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code in self.reject_statuses:
            response.read()
            fresh = self.source.refreshed_after_rejection(token)
            request.headers["Authorization"] = f"Bearer {fresh}"
            yield request


def check_url(url: str, what: str) -> None:
    """Refuse plain http to anything but loopback."""
    problem = check_transport(url)
    if problem:
        raise ConfigError(f"{what} {url}: {problem}")


def _enforce_https(request: httpx.Request) -> None:
    problem = check_transport(str(request.url))
    if problem:
        raise ConfigError(f"refusing to send a request to {_safe_url(request)}: {problem}")


def build_client(
    policy: RetryPolicy | None = None,
    *,
    auth: httpx.Auth | None = None,
    base_url: str = "",
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout | float | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    """An httpx.Client with retries, timeouts, a user agent and the HTTPS-but-loopback rule."""
    all_headers = {"User-Agent": USER_AGENT}
    all_headers.update(headers or {})
    return httpx.Client(
        transport=RetryTransport(transport, policy),
        auth=auth,
        base_url=base_url,
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        headers=all_headers,
        event_hooks={"request": [_enforce_https]},
        follow_redirects=False,
    )


def raise_for_exhausted(response: httpx.Response, what: str) -> None:
    """After retries: a 429/5xx becomes RemoteServiceError (exit 4) naming what failed."""
    if response.status_code in RETRYABLE_STATUS:
        raise RemoteServiceError(
            f"{what} failed: {_safe_url(response.request)} answered HTTP {response.status_code} "
            "after retries; try again later"
        )


def transport_failure(exc: httpx.TransportError, what: str) -> RemoteServiceError:
    """A connection/timeout error after retries, as one line (exit 4)."""
    try:
        where = _safe_url(exc.request)
    except RuntimeError:
        where = "the server"
    return RemoteServiceError(
        f"{what} failed: could not reach {where} ({type(exc).__name__}) after retries; "
        "check the server name and your network"
    )


__all__ = [
    "RETRYABLE_STATUS",
    "RETRY_EXTENSION",
    "AccessTokenSource",
    "BearerAuth",
    "RetryPolicy",
    "RetryTransport",
    "build_client",
    "check_url",
    "parse_retry_after",
    "raise_for_exhausted",
    "shared_ssl_context",
    "transport_failure",
]
