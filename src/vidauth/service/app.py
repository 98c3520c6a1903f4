"""The FastAPI application of ``vidauth serve``.

Routes under ``/v1`` need ``Authorization: Bearer <API key>`` and act only on the key's tenant;
the connect start page, the OAuth callback, the pages and the health endpoints do not;
``/metrics`` needs ``VIDAUTH_METRICS_TOKEN``. Errors are JSON
``{"error": <code>, "detail": <one line>}``. The routes are in :mod:`vidauth.service.routes`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import anyio.to_thread
from fastapi import FastAPI

from vidauth.logs import install_redaction
from vidauth.service import idempotency
from vidauth.service.auth import KeyChecker
from vidauth.service.context import ServiceContext
from vidauth.service.docs import add_docs
from vidauth.service.jobs import JobQueue
from vidauth.service.metrics import Metrics
from vidauth.service.request_limit import RequestLimit
from vidauth.service.routes import include_routes
from vidauth.service.routes.answers import add_error_handlers


class Background(Protocol):
    """Work that runs beside the app (the upload worker) until stopped."""

    def stop(self) -> None:
        """Stop, waiting for the work in hand."""


def create_app(
    ctx: ServiceContext, *, background: Callable[[], Background] | None = None
) -> FastAPI:
    """The service app; ``background`` is started with it and stopped when it ends (whoever
    runs the upload worker beside the app passes it, see :mod:`vidauth.service.runner`)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # After the server configured its logging: its handlers get the filter too.
        install_redaction()
        running = background() if background is not None else None
        try:
            yield
        finally:
            if running is not None:
                await anyio.to_thread.run_sync(running.stop)

    app = FastAPI(
        title="vidauth",
        version="1",
        summary="Connect users' Panopto accounts and upload videos on their behalf.",
        lifespan=lifespan,
        docs_url=None,  # served offline by add_docs, below
        redoc_url=None,
    )
    add_docs(app)
    app.state.ctx = ctx
    app.state.api_keys = KeyChecker(ctx.db)
    app.state.queue = JobQueue(ctx)
    app.state.metrics = Metrics(ctx)
    add_error_handlers(app)
    app.add_middleware(RequestLimit, max_bytes=ctx.service.max_request_bytes)
    app.state.idempotency_keys = idempotency.install(app, ctx.db)
    include_routes(app, ctx.service.callback_path)
    return app
