"""The service app with its upload worker: the one place that wires the two together.

:mod:`vidauth.service.app` knows nothing of the worker; whoever serves HTTP and uploads in one
process (``vidauth serve`` without ``--no-worker``, the tests) builds the app here.
"""

from __future__ import annotations

from fastapi import FastAPI

from vidauth.service.app import create_app
from vidauth.service.context import ServiceContext
from vidauth.service.worker import Worker


def service_app(ctx: ServiceContext, *, run_worker: bool) -> FastAPI:
    """The service app; ``run_worker`` also runs a worker on threads for the app's lifetime."""
    if not run_worker:
        return create_app(ctx)
    return create_app(ctx, background=lambda: Worker(ctx).start())
