"""One HTTP client for everything: timeouts, retries with backoff + Retry-After, bearer auth.

Retries live in a transport (:class:`RetryTransport`), so every request made through
:func:`build_client` is covered. A request says how replayable it is in its ``extensions``:

- ``"idempotent"`` (default for GET/HEAD/PUT/DELETE/OPTIONS): retried on connection errors,
  timeouts, 429 and 5xx;
- ``"unsent"``: only when the server certainly did not act on it (the connection failed before
  the request went out, or a 429) — used for one-time authorization codes;
- ``"always"``: like idempotent, for POSTs that are safe to repeat (a refresh, sessionUpload);
- ``"never"``: not retried.
POSTs default to ``"never"``.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol

import httpx

from vidauth._urls import check_transport
from vidauth.errors import ConfigError, RemoteServiceError

log = logging.getLogger("vidauth.http")

RETRY_EXTENSION = "vidauth_retry"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
USER_AGENT = "vidauth/0.1 (+https://github.com/doubtfire-lms)"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total: float = 120.0
    max_retry_after: float = 120.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


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
        self._transport = transport or httpx.HTTPTransport(retries=0)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        mode = _mode(request)
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._transport.handle_request(request)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if not self._may_retry(mode, attempt, started, unsent=unsent):
                    raise
                delay = self.policy.backoff(attempt)
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
            if not self._may_retry(mode, attempt, started, unsent=unsent):
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = self.policy.backoff(attempt, retry_after)
            if time.monotonic() - started + delay > self.policy.max_total:
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

    def _may_retry(self, mode: str, attempt: int, started: float, *, unsent: bool) -> bool:
        if attempt >= self.policy.attempts or time.monotonic() - started > self.policy.max_total:
            return False
        if mode == "never":
            return False
        if mode == "unsent":
            return unsent
        return True

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
