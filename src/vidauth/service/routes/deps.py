"""What routes depend on (``Depends``): the service context, the caller, the checked user id.

Everything comes from ``request.app.state`` (set once by ``create_app``), so the routers hold no
state of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vidauth.service.api_models import USER_ID_SCHEMA
from vidauth.service.auth import Caller, KeyChecker
from vidauth.service.context import ServiceContext
from vidauth.service.jobs import JobQueue
from vidauth.service.routes.answers import ApiError
from vidauth.service.routes.checks import check_user_id

T = TypeVar("T")


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a worker thread (the store and Panopto calls block)."""
    return await anyio.to_thread.run_sync(fn, *args)


def _context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _queue(request: Request) -> JobQueue:
    queue: JobQueue = request.app.state.queue
    return queue


# Reads the header and declares the scheme in the OpenAPI document; the check is _caller's
# (401 with vidauth's error body, not FastAPI's 403).
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key the service's operator issued, as `Authorization: Bearer <key>`.",
)

Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _caller(request: Request, given: Bearer) -> Caller:
    """The API key's owner, from ``Authorization: Bearer <key>`` (401 without a valid key)."""
    key = given.credentials.strip() if given is not None else ""
    if not key:
        raise ApiError(401, "unauthorized", "send an API key: Authorization: Bearer <key>")
    keys: KeyChecker = request.app.state.api_keys
    found = await run_sync(keys.check, key)
    if found is None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    return found


def _path_user_id(
    # Documented in the schema, but checked here (400 with a clear line), not by FastAPI.
    external_user_id: Annotated[str, PathParam(json_schema_extra=USER_ID_SCHEMA)],
) -> str:
    return check_user_id(external_user_id)


# At module level: FastAPI resolves the (postponed) annotations in module globals.
Ctx = Annotated[ServiceContext, Depends(_context)]
Queue = Annotated[JobQueue, Depends(_queue)]
Auth = Annotated[Caller, Depends(_caller)]
UserId = Annotated[str, Depends(_path_user_id)]
