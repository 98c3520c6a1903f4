"""``/healthz``, ``/readyz`` (the database answers) and ``/metrics`` (Prometheus, behind
VIDAUTH_METRICS_TOKEN): none of them in the API's schema."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from vidauth.service.metrics import Metrics
from vidauth.service.routes.answers import ApiError, error_response
from vidauth.service.routes.deps import Bearer, Ctx, run_sync

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Ctx) -> JSONResponse:
    """The database answers too (503 naming the error's type when it does not)."""

    def ping() -> None:
        with ctx.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await run_sync(ping)
    except Exception as exc:
        return error_response(503, "database_unavailable", type(exc).__name__)
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def prometheus(request: Request, ctx: Ctx, bearer: Bearer) -> Response:
    """Prometheus' text format, for the holder of VIDAUTH_METRICS_TOKEN."""
    expected = ctx.service.metrics_token
    if not expected:
        raise ApiError(
            403,
            "metrics_disabled",
            "metrics are off: set VIDAUTH_METRICS_TOKEN and scrape with "
            "Authorization: Bearer <token>",
        )
    given = bearer.credentials.strip() if bearer is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "unauthorized", "send the metrics token: Authorization: Bearer")
    metrics: Metrics = request.app.state.metrics
    body = await run_sync(metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
