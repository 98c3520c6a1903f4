"""Running the sandbox: :class:`SandboxServer` (a background thread) and :func:`run_sandbox`."""

from __future__ import annotations

import threading
from typing import TextIO

from fastapi import FastAPI

from vidauth._serving import BackgroundServer
from vidauth_sandbox.app import create_app
from vidauth_sandbox.config import (
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERS,
    OAUTH_PREFIX,
    SandboxConfig,
)
from vidauth_sandbox.state import SandboxState


class SandboxServer:
    """The sandbox authorization server on loopback, served by uvicorn on a thread.

    ``app`` exists before ``start()`` so other routers can be included first; ``url`` and
    ``issuer`` are known once ``start()`` returns (port 0 picks a free port)::

        with SandboxServer() as sandbox:
            httpx.get(f"{sandbox.issuer}/.well-known/openid-configuration")
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(self.config)
        self.app: FastAPI = create_app(state=self.state)
        # A test or a developer's Ctrl-C must not wait on a client that keeps a connection
        # open: after 3 s uvicorn closes what is left (its default waits for ever).
        self._server = BackgroundServer(
            self.app, host=self.config.host, port=self.config.port, timeout_graceful_shutdown=3
        )

    @property
    def url(self) -> str:
        """Base URL (the "Panopto site"), e.g. ``http://127.0.0.1:54321``."""
        return self._server.url

    @property
    def issuer(self) -> str:
        """The OpenID issuer, ``{url}/Panopto/oauth2``."""
        return f"{self.url}{OAUTH_PREFIX}"

    def start(self) -> SandboxServer:
        """Bind, serve, and wait until ready."""
        self._server.start()
        self.state.issuer = self.issuer
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread."""
        self._server.stop()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(server: SandboxServer) -> str:
    """What a developer needs to point a client at a running sandbox.

    Shows the default client's secret only when it is the public, well-known sandbox default.
    """
    lines = [
        f"Sandbox running at {server.url}",
        f"  issuer:    {server.issuer}",
        f"  discovery: {server.issuer}/.well-known/openid-configuration",
    ]
    for client in server.config.clients:
        kind = "public" if client.client_secret is None else "confidential"
        lines.append(f"  client:    {client.client_id} ({kind})")
        if client.client_secret == DEFAULT_CLIENT_SECRET:
            lines.append(f"  secret:    {client.client_secret} (public sandbox default)")
        for uri in client.redirect_uris:
            lines.append(f"  redirect:  {uri}")
    # The default users' passwords are public, like the default secret: print them, so that
    # someone who installed vidauth with pipx (and has no README) can sign in.
    for name, password in server.config.users.items():
        shown = password if DEFAULT_USERS.get(name) == password else "(set in its configuration)"
        lines.append(f"  user:      {name}  password: {shown}")
    return "\n".join(lines)


def run_sandbox(config: SandboxConfig, out: TextIO | None = None) -> None:
    """Serve the sandbox until Ctrl-C, after printing its URL, issuer, client and redirect URI."""
    serve_until_interrupted(SandboxServer(config), describe_extra=(), out=out)


def serve_until_interrupted(
    server: SandboxServer, describe_extra: tuple[str, ...] = (), out: TextIO | None = None
) -> None:
    """Start ``server``, print what a developer needs, and serve until Ctrl-C."""
    import sys

    stream = out or sys.stdout
    _stop_on_interrupt_and_term()
    server.start()
    print(describe(server), file=stream, flush=True)
    for line in describe_extra:
        print(line.format(url=server.url), file=stream, flush=True)
    print("Press Ctrl-C to stop.", file=stream, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _stop_on_interrupt_and_term() -> None:
    """SIGINT and SIGTERM stop the sandbox, whatever was inherited: a shell starts background
    jobs with SIGINT ignored, and Python then installs no KeyboardInterrupt handler."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
