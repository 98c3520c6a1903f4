"""Issue 19, point 2: slow clients cannot hold connections for ever.

The server here runs with ``serve``'s own uvicorn options (:func:`uvicorn_options`), limits set
low: a client trickling its headers, or stalling mid-body, is cut off; a client address gets a
bounded number of connections; ``X-Forwarded-For`` is believed only from a listed proxy.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.hostile_helpers import closed_within
from vidauth._serving import BackgroundServer

pytestmark = pytest.mark.slow  # real servers and sockets: not in the quick tier


async def _echo_client(scope: Any, receive: Any, send: Any) -> None:
    """An app that reads the whole body, then answers with the client's address."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False) and message["type"] == "http.request"
    body = (scope.get("client") or ("?", 0))[0].encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _settings(**limits: Any) -> Any:
    from vidauth.service.settings import ServiceSettings

    values = {
        "header_timeout": 0.5,
        "body_idle_timeout": 0.5,
        "max_connections_per_client": 3,
        "trusted_proxies": (),
    }
    values.update(limits)
    return ServiceSettings.model_construct(**values)


@pytest.fixture
def serve() -> Iterator[Any]:
    from vidauth.service.protection import uvicorn_options

    started: list[BackgroundServer] = []

    def start(**limits: Any) -> BackgroundServer:
        server = BackgroundServer(_echo_client, **uvicorn_options(_settings(**limits)))
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def test_headers_trickled_byte_by_byte_are_cut_off(serve: Any) -> None:
    server = serve()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        headers = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        assert closed_within(sock, 4, trickle=headers)


def test_a_silent_connection_is_cut_off(serve: Any) -> None:
    server = serve()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        assert closed_within(sock, 3)


def test_a_body_that_stalls_is_cut_off(serve: Any) -> None:
    server = serve()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 10)
        assert closed_within(sock, 3)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_body_sent_while_the_event_loop_stalled_is_not_cut_off(loop: str) -> None:
    """The event loop falls behind for longer than the idle timeout while a client keeps
    sending: its bytes wait in the kernel, unread. When the loop stalled in its I/O phase (as
    when its thread waits long for the interpreter lock mid-read), uvloop runs the due idle
    timer before it reads them again; the client is not to blame, and its upload goes on."""
    from vidauth.service.protection import GuardedHttp, uvicorn_options

    stalling = threading.Event()

    class StallsOnARequest(GuardedHttp):
        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if url == b"/stall":  # parsing a request: the loop's I/O phase
                stalling.set()
                time.sleep(1.2)

    options = {**uvicorn_options(_settings()), "http": StallsOnARequest, "loop": loop}
    server = BackgroundServer(_echo_client, **options).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n" + b"a" * 10)
            staller = threading.Thread(target=httpx.get, args=(f"{server.url}/stall",))
            staller.start()
            assert stalling.wait(10)
            sock.sendall(b"b" * 10)  # within the idle timeout (0.5 s), while the loop is stalled
            staller.join(10)  # the loop has resumed: the idle timer was due long before
            sock.sendall(b"c" * 10)  # the end of the body
            sock.settimeout(5)
            answer = b""
            while not answer.endswith(b"\r\n0\r\n\r\n") and (piece := sock.recv(4096)):
                answer += piece  # until the last chunk of the answer, or the connection closes
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"\r\n127.0.0.1\r\n" in answer, answer
    finally:
        server.stop()


def test_a_steady_body_and_normal_requests_are_served(serve: Any) -> None:
    server = serve()

    def steady() -> Iterator[bytes]:
        for _ in range(8):
            time.sleep(0.2)  # each piece within the idle timeout, the whole well over it
            yield b"x" * 100

    r = httpx.post(server.url, content=steady(), timeout=10)
    assert r.status_code == 200
    assert httpx.get(server.url).text == "127.0.0.1"


def test_connections_per_client_address_are_capped(serve: Any) -> None:
    server = serve(header_timeout=30.0)
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as extra:
            extra.settimeout(3)
            answer = extra.recv(4096)
            assert answer.startswith(b"HTTP/1.1 503"), answer
            assert b"too_many_connections" in answer
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(server.url).status_code == 200  # freed again


def test_x_forwarded_for_only_from_a_listed_proxy(serve: Any) -> None:
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    untrusted = serve()
    assert httpx.get(untrusted.url, headers=spoof).text == "127.0.0.1"
    proxied = serve(trusted_proxies=("127.0.0.1",))
    assert httpx.get(proxied.url, headers=spoof).text == "203.0.113.9"
