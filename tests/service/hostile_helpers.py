"""Attackers shared by the ``test_hostile_*`` modules and the siege that runs them all at once:
raw sockets that send unfinished or trickled requests, and webhook receivers that answer the
way an attacker would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest


def send_unfinished(
    url: str,
    path: str,
    headers: dict[str, str],
    chunks: list[bytes],
    source: str | None = None,
) -> bytes:
    """POST ``path`` with a chunked body of ``chunks`` that never ends; the answer's bytes.
    ``source``: the client address to connect from (another loopback address than the
    honest clients', so as not to share their connection cap)."""
    parts = urlsplit(url)
    origin = (source, 0) if source else None
    with socket.create_connection(
        (parts.hostname, parts.port), timeout=5, source_address=origin
    ) as sock:
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
        while not _whole_answer(answer):
            try:
                data = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer while the body was unfinished: {answer!r}")
            if not data:
                break
            answer += data
        return answer


def _whole_answer(answer: bytes) -> bool:
    """Whether ``answer`` holds an HTTP answer's head and as much body as it announced (the
    body may come in a packet of its own)."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return True


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """Whether the server closes ``sock`` within ``seconds`` while we trickle ``trickle``."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < deadline:
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent : sent + 1])
            except OSError:
                return True
            sent += 1
        try:
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


class RawReceiver:
    """A TCP server on loopback; ``answer(conn)`` runs on a thread per connection."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.requests = 0
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        """The receiver's URL, for a ``callback_url``."""
        return f"http://127.0.0.1:{self.port}/hook"

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.requests += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                self.answer(conn)
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting."""
        self.stop.set()
        self.sock.close()


def ok(conn: socket.socket) -> None:
    """Answer 204 at once."""
    conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")


def trickle(stop: threading.Event) -> Callable[[socket.socket], None]:
    """Answer a byte every 0.2 s (8 s in all, every read within any read timeout)."""

    def answer(conn: socket.socket) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
            if stop.wait(0.2):
                return
            conn.sendall(bytes([byte]))

    return answer


def endless(conn: socket.socket) -> None:
    """Answer 200 with a body of 26 MB over 20 s: a reader that reads it all waits 20 s."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    block = b"x" * 65536
    for _ in range(400):
        conn.sendall(block)
        time.sleep(0.05)


def silent(stop: threading.Event) -> Callable[[socket.socket], None]:
    """Read the request, never answer (until ``stop``)."""

    def answer(conn: socket.socket) -> None:
        stop.wait(30)

    return answer
