"""The service's error answers: ``{"error": <code>, "detail": <one line>}`` and their handlers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from vidauth.errors import VidauthError
from vidauth.service.errors import http_status

log = logging.getLogger("vidauth.service")

# Newer FastAPI keeps an included router as one route of the app: this walks the routes inside.
# Older versions copy them into the app, and the app's own list is already flat.
_flat_routes = getattr(fastapi.routing, "iter_route_contexts", iter)


class ApiError(Exception):
    """An answer of ``status`` with ``{"error", "detail"}``."""

    def __init__(
        self, status: int, error: str, detail: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        #: More fields of the answer (e.g. the upload's ``state``).
        self.extra = dict(extra or {})


def error_response(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The answer ``{"error": error, "detail": detail}`` with ``status``."""
    return JSONResponse({"error": error, "detail": detail}, status, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.extra:
        body = {"error": exc.error, "detail": exc.detail, **exc.extra}
        return JSONResponse(body, exc.status, headers=headers)
    return error_response(exc.status, exc.error, exc.detail, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _invalid(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error_response(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")


async def _vidauth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VidauthError)
    log.warning("request failed: %s (%s)", exc, exc.code)
    return error_response(http_status(exc), str(exc.code), exc.message)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    log.warning("database error: %s", type(exc).__name__)
    return error_response(503, "database_unavailable", "the database did not answer; try again")


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error ``app`` can meet with vidauth's error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(VidauthError, _vidauth_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette's 405 names only the first
    route's, and FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in _flat_routes(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)
