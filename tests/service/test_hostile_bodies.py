"""Issue 19, point 1: bodies sent before authentication, or without bound, are never read whole.

Each attack leaves its body unfinished: a server that reads it would wait for the rest, and the
test's short socket timeout would fail it. The defence answers from the headers alone.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.service.conftest import ServiceSetup


def _send_unfinished(url: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> bytes:
    """POST ``path`` with a chunked body of ``chunks`` that never ends; the answer's bytes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTransfer-Encoding: chunked\r\n"
        head += "Content-Type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        for chunk in chunks:
            try:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:  # the server answered and closed: read what it said
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer while the body was unfinished: {answer!r}")
            if not data:
                break
            answer += data
        return answer


def test_no_key_is_401_before_the_body_is_read(service: ServiceSetup) -> None:
    answer = _send_unfinished(service.url, "/v1/accounts/u1/connect", {}, [b"{" + b" " * 1000])
    assert answer.startswith(b"HTTP/1.1 401"), answer


def test_upload_without_key_is_401_before_the_body_is_read(service: ServiceSetup) -> None:
    answer = _send_unfinished(
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
    answer = _send_unfinished(
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
