"""The loopback redirect listener of native-app sign-in (RFC 8252 §7.3).

It binds loopback addresses only, answers only the redirect path, and accepts a redirect only
when its ``state`` matches (constant-time). Wrong or missing state, stray paths and favicon
requests get an error page and the listener keeps waiting.
"""

from __future__ import annotations

import errno
import hmac
import html
import os
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from vidauth._urls import is_loopback_host
from vidauth.errors import ConfigError, ErrorCode
from vidauth.logs import register_secret


@dataclass(frozen=True)
class RedirectResult:
    """What came back to the redirect URI with a valid state."""

    code: str | None
    error: str | None = None
    error_description: str | None = None
    scope: str | None = None


def parse_redirect(query: str, expected_state: str) -> RedirectResult | str:
    """A RedirectResult, or the reason (a str) the redirect is not acceptable."""
    params = parse_qs(query, keep_blank_values=True)

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    if any(len(params.get(name, ())) > 1 for name in ("state", "code", "error")):
        return "the redirect repeats a parameter"
    state = one("state")
    if state is None:
        return "the redirect has no state parameter"
    if not hmac.compare_digest(
        state.encode("utf-8", "surrogatepass"), expected_state.encode("utf-8")
    ):
        return "the redirect's state does not match this sign-in"
    error = one("error")
    if error:
        return RedirectResult(code=None, error=error, error_description=one("error_description"))
    code = one("code")
    if not code:
        return "the redirect carries neither a code nor an error"
    register_secret(code)
    return RedirectResult(code=code, scope=one("scope"))


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:36rem;
margin:4rem auto;padding:0 1rem;color:#222}}h1{{font-size:1.4rem}}.ok{{color:#0a6b2a}}
.err{{color:#a4161a}}</style>
</head><body><h1 class="{cls}">{title}</h1><p>{body}</p></body></html>"""


def render_page(title: str, body: str, ok: bool) -> bytes:
    """A small self-contained HTML page (escaped)."""
    return _PAGE.format(
        title=html.escape(title), body=html.escape(body), cls="ok" if ok else "err"
    ).encode("utf-8")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "vidauth"
    sys_version = ""

    def do_GET(self) -> None:
        listener = self.server.listener
        parts = urlsplit(self.path)
        if parts.path != listener.path:
            self._send(
                404,
                render_page("Not found", "This address only receives sign-in redirects.", ok=False),
            )
            return
        outcome = parse_redirect(parts.query, listener.expected_state)
        if isinstance(outcome, str):
            listener.rejected += 1
            self._send(
                400,
                render_page(
                    "Sign-in not accepted",
                    f"{outcome}. Start the sign-in again from vidauth.",
                    ok=False,
                ),
            )
            return
        if outcome.error:
            page = render_page(
                "Sign-in refused",
                f"{outcome.error}: "
                f"{outcome.error_description or 'no details given'}. You can "
                "close this window.",
                ok=False,
            )
            self._send(200, page)
        else:
            self._send(
                200,
                render_page(
                    "Signed in",
                    "vidauth received your sign-in. You can "
                    "close this window and return to the terminal.",
                    ok=True,
                ),
            )
        listener.deliver(outcome)

    def do_POST(self) -> None:
        self._send(405, render_page("Not allowed", "Only GET redirects are accepted.", ok=False))

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # The request line carries the one-time code: never log it.
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # On POSIX, SO_REUSEADDR only lets us bind over connections lingering in TIME_WAIT from the
    # previous sign-in; a second live listener on the port still fails. On Windows the same flag
    # would let another process share the port, so it stays off there.
    allow_reuse_address = os.name == "posix"

    def __init__(
        self, address: tuple[str, int], family: socket.AddressFamily, listener: LoopbackListener
    ) -> None:
        self.address_family = family
        self.listener = listener
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


class LoopbackListener:
    """Listens on the redirect URI's loopback host and port until a valid redirect arrives."""

    def __init__(self, redirect_uri: str, expected_state: str) -> None:
        parts = urlsplit(redirect_uri)
        if not is_loopback_host(parts.hostname):
            raise ConfigError(
                f"the redirect URI {redirect_uri} is not a loopback address, so this machine "
                "cannot receive it",
                code=ErrorCode.REDIRECT_NOT_LOOPBACK,
                redirect_uri=redirect_uri,
            )
        self.redirect_uri = redirect_uri
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path or "/"
        self.expected_state = expected_state
        self.rejected = 0
        self._result: RedirectResult | None = None
        self._done = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def _addresses(self) -> list[tuple[str, socket.AddressFamily]]:
        host = self.host.strip("[]")
        if host == "localhost" or host.endswith(".localhost"):
            return [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return [(host, family)]

    def start(self) -> LoopbackListener:
        """Bind and serve; ConfigError (exit 2) when the port is taken."""
        for index, (address, family) in enumerate(self._addresses()):
            try:
                server = _Server((address, self.port), family, self)
            except OSError as exc:
                if index > 0 and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    continue  # no IPv6 loopback on this machine: IPv4 is enough
                self.stop()
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"port {self.port} is already in use, so the sign-in redirect cannot be "
                        f"received: stop the program using it (another sign-in?) or use "
                        f"another port in PANOPTO_REDIRECT_URI (and register that exact URI with "
                        f"the API client)"
                    ) from None
                raise ConfigError(
                    f"cannot listen on {address}:{self.port}: {exc.strerror}"
                ) from None
            self._servers.append(server)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="vidauth-loopback",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def deliver(self, result: RedirectResult) -> None:
        """Accept the first valid redirect (later ones are ignored)."""
        if not self._done.is_set():
            self._result = result
            self._done.set()

    def wait(self, timeout: float) -> RedirectResult | None:
        """The redirect, or None on timeout."""
        self._done.wait(timeout)
        return self._result

    def stop(self) -> None:
        """Stop serving and free the port."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self) -> LoopbackListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
