"""Issue 19, point 1: bodies sent before authentication, or without bound, are never read whole.

Each attack leaves its body unfinished: a server that reads it would wait for the rest, and the
test's short socket timeout would fail it. The defence answers from the headers alone.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.service.conftest import ServiceSetup
from tests.service.hostile_helpers import send_unfinished


def test_no_key_is_401_before_the_body_is_read(service: ServiceSetup) -> None:
    answer = send_unfinished(service.url, "/v1/accounts/u1/connect", {}, [b"{" + b" " * 1000])
    assert answer.startswith(b"HTTP/1.1 401"), answer


def test_upload_without_key_is_401_before_the_body_is_read(service: ServiceSetup) -> None:
    answer = send_unfinished(
        service.url,
        "/v1/uploads",
        {"Authorization": "Basic eDp5"},
        [b"--x\r\n" + b"a" * 1000],
    )
    assert answer.startswith(b"HTTP/1.1 401"), answer


def test_chunked_body_over_the_limit_is_413_as_it_crosses(
    make_service: Callable[..., ServiceSetup],
) -> None:
    service = make_service(run_worker=False, VIDAUTH_MAX_REQUEST_BYTES="4096")
    chunks = [b'{"expected_username": "' + b"a" * 2000] + [b"a" * 2000] * 4
    answer = send_unfinished(
        service.url,
        "/v1/accounts/u1/connect",
        {"Authorization": f"Bearer {service.key}"},
        chunks,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert b"too_large" in answer


def test_small_body_still_reaches_the_route(service: ServiceSetup) -> None:
    r = service.api.post("/v1/accounts/u1/connect", json={"expected_username": "alice"})
    assert r.status_code == 200, r.text
