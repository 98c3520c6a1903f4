"""The service's routes, one router per concern; :func:`include_routes` adds them all.

The routers hold no state: their dependencies (:mod:`.deps`) read the service context, the job
queue and the key checker from ``request.app.state``, which ``create_app`` fills.
"""

from __future__ import annotations

from fastapi import FastAPI

from vidauth.service.routes import accounts, connect_pages, health, uploads, uploads_page


def include_routes(app: FastAPI, callback_path: str) -> None:
    """Every route of the service; the OAuth callback at ``callback_path``."""
    app.include_router(accounts.router)
    app.include_router(connect_pages.router)
    app.include_router(connect_pages.callback_router(callback_path))
    app.include_router(uploads_page.router)
    app.include_router(uploads.router)
    app.include_router(health.router)
