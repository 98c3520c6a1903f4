"""Retries with backoff and Retry-After; one-time requests are not replayed."""

from __future__ import annotations

import ssl

import httpx
import pytest

from vidauth.errors import ConfigError
from vidauth.http import (
    RETRY_EXTENSION,
    RetryPolicy,
    RetryTransport,
    build_client,
    parse_retry_after,
    shared_ssl_context,
)


class Flaky:
    """A fake server: answers the given statuses (or raises) in order, then 200."""

    def __init__(self, *outcomes: int | type[Exception], headers: dict[str, str] | None = None):
        self.outcomes = list(outcomes)
        self.calls = 0
        self.headers = headers or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, int):
                return httpx.Response(outcome, headers=self.headers, text="<html>busy</html>")
            raise outcome("boom", request=request)
        return httpx.Response(200, json={"ok": True})


def client_for(server: Flaky, sleeps: list[float], **policy: float) -> httpx.Client:
    transport = RetryTransport(
        httpx.MockTransport(server),
        RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=sleeps.append,
    )
    return httpx.Client(transport=transport)


def test_retries_5xx_and_connection_errors_with_growing_backoff() -> None:
    server = Flaky(503, httpx.ConnectError, 502, 500)
    sleeps: list[float] = []
    response = client_for(server, sleeps, base_delay=1.0, max_delay=100).get("https://x.test/")
    assert response.status_code == 200 and server.calls == 5
    assert len(sleeps) == 4
    for attempt, delay in enumerate(sleeps, start=1):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling


def test_honours_retry_after() -> None:
    server = Flaky(429, headers={"Retry-After": "7"})
    sleeps: list[float] = []
    assert client_for(server, sleeps).get("https://x.test/").status_code == 200
    assert sleeps == [7.0]


def test_gives_up_after_attempts() -> None:
    server = Flaky(503, 503, 503, 503)
    sleeps: list[float] = []
    response = client_for(server, sleeps, attempts=3).get("https://x.test/")
    assert response.status_code == 503 and server.calls == 3


def test_unsent_mode_never_replays_after_the_server_saw_it() -> None:
    server = Flaky(502)
    sleeps: list[float] = []
    client = client_for(server, sleeps)
    response = client.post("https://x.test/token", extensions={RETRY_EXTENSION: "unsent"})
    assert response.status_code == 502 and server.calls == 1
    server2 = Flaky(httpx.ConnectError, 429)
    response = client_for(server2, sleeps).post(
        "https://x.test/token", extensions={RETRY_EXTENSION: "unsent"}
    )
    assert response.status_code == 200 and server2.calls == 3


def test_read_timeout_not_replayed_in_unsent_mode() -> None:
    server = Flaky(httpx.ReadTimeout)
    with pytest.raises(httpx.ReadTimeout):
        client_for(server, []).post("https://x.test/token", extensions={RETRY_EXTENSION: "unsent"})
    assert server.calls == 1


def test_post_not_retried_by_default() -> None:
    server = Flaky(503)
    assert client_for(server, []).post("https://x.test/").status_code == 503
    assert server.calls == 1


def test_total_time_bound() -> None:
    server = Flaky(429, 429, headers={"Retry-After": "500"})
    response = client_for(server, [], max_total=10).get("https://x.test/")
    assert response.status_code == 429 and server.calls == 1


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 10) == 10
    assert parse_retry_after("soon") is None


def test_plain_http_refused_except_loopback() -> None:
    client = build_client(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with pytest.raises(ConfigError, match="only to loopback"):
        client.get("http://example.com/")
    assert client.get("http://127.0.0.1:1/").status_code == 200


def test_one_policy_from_the_retry_settings(tmp_path: object) -> None:
    from vidauth.config import load_settings
    from vidauth.retry import RetryPolicy as Policy

    settings = load_settings(
        env_file=False, vidauth_retry_attempts=3, vidauth_retry_max_seconds=7.5
    )
    policy = Policy.from_settings(settings.retry)
    assert (policy.attempts, policy.max_total) == (3, 7.5)


def test_a_budget_ends_at_the_attempts_or_the_time_bound() -> None:
    from vidauth.retry import RetryPolicy as Policy

    budget = Policy(attempts=3, base_delay=0.01, max_delay=0.01).start()
    delays = []
    while True:
        budget.begin()
        delay = budget.next_delay()
        if delay is None:
            break
        delays.append(delay)
    assert len(delays) == 2 and budget.attempt == 3
    slow = Policy(attempts=10, max_total=5.0).start()
    slow.begin()
    assert slow.next_delay(retry_after=6.0) is None  # waiting would end past the bound
    assert slow.next_delay(retry_after=1.0) == 1.0


def test_durable_retries_use_the_same_backoff_with_their_own_ceiling() -> None:
    from vidauth.retry import RetryPolicy as Policy

    policy = Policy(base_delay=1.0, max_delay=2.0)
    assert 16 <= policy.backoff(6, max_delay=60.0) <= 32
    assert 30 <= policy.backoff(20, max_delay=60.0) <= 60
    assert policy.backoff(20) <= 2.0
    assert policy.backoff(3, retry_after=9.0, max_delay=60.0) == 9.0


def test_every_client_shares_one_tls_context_that_verifies() -> None:
    """Loading the CA roots costs about 20 ms: once per process, and never with checks off."""
    context = shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the roots are loaded
    with build_client() as one, build_client() as two:
        for client in (one, two):
            transport = client._transport
            assert isinstance(transport, RetryTransport)
            assert transport._transport._pool._ssl_context is context  # type: ignore[attr-defined]
