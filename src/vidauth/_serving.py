"""Run an ASGI app with uvicorn in a background thread, for the sandbox, the demo and tests."""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

import uvicorn

from vidauth.errors import UsageError


class BackgroundServer:
    """An ASGI app served by uvicorn on a thread; ``url`` is known once ``start()`` returns.

    Binds the socket itself (port 0 picks a free one) so the port is known before uvicorn starts
    and there is no race between choosing a port and listening on it.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, **uvicorn_options: Any):
        self.app = app
        self.host = host
        self._requested_port = port
        self._options = uvicorn_options
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.port = port

    @property
    def url(self) -> str:
        """Base URL such as ``http://127.0.0.1:53211`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        """Bind, start serving and wait until uvicorn reports it is ready."""
        sock = listen_socket(self.host, self._requested_port)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level=self._options.pop("log_level", "warning"),
            access_log=False,
            lifespan=self._options.pop("lifespan", "auto"),
            timeout_keep_alive=self._options.pop("timeout_keep_alive", 30),
            **self._options,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="vidauth-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port), bound before anything starts;
    a :class:`UsageError` naming the cause and the fix when it cannot be."""
    try:
        family, kind, _proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError, OverflowError):
        raise UsageError(
            f"--host {host!r} is not an address: use 127.0.0.1, 0.0.0.0 or one of this "
            "machine's addresses"
        ) from None
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            detail = f"{where} is in use: stop what listens there, or choose another --port"
        elif exc.errno == errno.EACCES:
            detail = f"not allowed to listen on {where}: choose a --port above 1023"
        elif exc.errno == errno.EADDRNOTAVAIL:
            detail = f"{host} is not an address of this machine: use 127.0.0.1 or 0.0.0.0"
        else:
            detail = f"cannot listen on {where}: {exc.strerror or exc}"
        raise UsageError(detail) from None
    return sock
