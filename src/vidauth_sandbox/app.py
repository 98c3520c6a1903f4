"""The sandbox's FastAPI application: discovery, JWKS, token, revocation, userinfo, test hooks.

``create_app()`` returns a FastAPI app whose ``app.state.sandbox`` is the :class:`SandboxState`;
other sandbox routers (the REST API, S3) can be included in it and use
``SandboxState.authenticate_access_token`` to check bearer tokens.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response

from vidauth_sandbox.config import (
    AUTHORIZE_PATH,
    DISCOVERY_PATH,
    JWKS_PATH,
    OAUTH_PREFIX,
    REVOCATION_PATH,
    SUPPORTED_SCOPES,
    TOKEN_PATH,
    USERINFO_PATH,
    SandboxConfig,
)
from vidauth_sandbox.oauth_server import SandboxAuthorizationServer, user_info
from vidauth_sandbox.pages import build_router, incoming_request, issuer_for
from vidauth_sandbox.state import (
    LOST_ANSWER_HANG,
    LOST_ANSWER_KINDS,
    SandboxState,
    SandboxUser,
)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def discovery_document(base: str, issuer: str) -> dict[str, Any]:
    """The OpenID Connect discovery document, with endpoints under ``base`` (the site origin)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{base}{AUTHORIZE_PATH}",
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "revocation_endpoint": f"{base}{REVOCATION_PATH}",
        "userinfo_endpoint": f"{base}{USERINFO_PATH}",
        "jwks_uri": f"{base}{JWKS_PATH}",
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "password",
            "client_credentials",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
        ],
        "claims_supported": ["sub", "preferred_username", "name", "email", "auth_time", "nonce"],
        "request_parameter_supported": False,
    }


def fault_response(status: int) -> Response:
    """An injected token-endpoint failure, shaped like a proxy's answer (HTML, no JSON)."""
    headers = dict(NO_STORE)
    if status in (429, 503):
        headers["Retry-After"] = "0"
    body = (
        f"<html><head><title>{status}</title></head><body><h1>{status}</h1>"
        "<p>Injected failure (vidauth sandbox)</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=headers)


def _max_age(seconds: int | None) -> dict[str, str]:
    return {} if seconds is None else {"Cache-Control": f"public, max-age={seconds}"}


async def _hold_back(request: Request, seconds: float) -> None:
    """Wait ``seconds`` before answering, or until the client has gone."""
    until = time.monotonic() + seconds
    while time.monotonic() < until and not await request.is_disconnected():
        await asyncio.sleep(min(0.05, max(0.0, until - time.monotonic())))


def _bearer_error(status: int, error: str | None, description: str) -> JSONResponse:
    challenge = (
        "Bearer" if error is None else f'Bearer error="{error}", error_description="{description}"'
    )
    body = {"error": error or "invalid_request", "error_description": description}
    return JSONResponse(
        body, status_code=status, headers={"WWW-Authenticate": challenge, **NO_STORE}
    )


def create_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> FastAPI:
    """The sandbox authorization server as a FastAPI app (``state`` wins over ``config``)."""
    state = state or SandboxState(config)
    server = SandboxAuthorizationServer(state)
    app = FastAPI(title="vidauth sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state
    app.state.oauth_server = server
    app.include_router(build_router(state, server))

    @app.get(DISCOVERY_PATH)
    def discovery(request: Request) -> Response:
        state.stats.count("discovery_requests")
        knobs = state.config
        if knobs.discovery_status is not None:
            return fault_response(knobs.discovery_status)
        issuer = issuer_for(request, state)
        base = issuer.removesuffix(OAUTH_PREFIX)
        doc = discovery_document(base, issuer)
        doc["jwks_uri"] = f"{base}{knobs.jwks_path}"
        for name in knobs.discovery_omit:
            doc.pop(name, None)
        return JSONResponse(doc, headers=_max_age(knobs.discovery_max_age))

    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        fault = state.take_token_failure()
        if fault is not None:
            state.stats.count("injected_failures")
            return fault_response(fault)
        hostile, body = state.take_hostile_body()
        if hostile:
            state.stats.count("hostile_answers")
            text = body if isinstance(body, str) else json.dumps(body)
            return Response(text, media_type="application/json", headers=NO_STORE)
        incoming = await incoming_request(request, state, form=True)
        grant_type = dict(incoming.form).get("grant_type") or "(none)"
        state.stats.token_request(grant_type)
        response: Response = await run_in_threadpool(server.create_token_response, incoming)
        error = None
        if response.status_code != 200:
            try:
                error = json.loads(bytes(response.body)).get("error")
            except (ValueError, AttributeError):
                error = None
        state.stats.token_result(grant_type, response.status_code, error)
        lost = state.take_lost_answer()
        if lost is not None:  # processed (a refresh token rotated), and the answer never arrives
            state.stats.count("lost_answers")
            if lost == "timeout":
                await _hold_back(request, LOST_ANSWER_HANG)
                return fault_response(504)
            return fault_response(502)
        if state.token_delay > 0:
            await _hold_back(request, state.token_delay)
        return response

    @app.post(REVOCATION_PATH)
    async def revocation(request: Request) -> Response:
        incoming = await incoming_request(request, state, form=True)
        state.stats.count("revocations")
        response: Response = await run_in_threadpool(
            server.create_endpoint_response, "revocation", incoming
        )
        return response

    @app.api_route(USERINFO_PATH, methods=["GET", "POST"])
    def userinfo(request: Request) -> JSONResponse:
        state.stats.count("userinfo_calls")
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return _bearer_error(401, None, "A bearer token is required.")
        record = state.access_token_info(value.strip())
        if record is None:
            return _bearer_error(
                401, "invalid_token", "The access token is invalid, expired or revoked."
            )
        if record.username is None or "openid" not in record.scope.split():
            return _bearer_error(403, "insufficient_scope", "The token lacks the openid scope.")
        claims = user_info(SandboxUser.named(record.username), record.scope)
        return JSONResponse(dict(claims), headers=NO_STORE)

    @app.get("/sandbox/stats")
    def stats() -> JSONResponse:
        return JSONResponse(state.stats_snapshot())

    @app.post("/sandbox/faults")
    async def faults(request: Request) -> JSONResponse:
        try:
            data = await request.json()
            statuses = [int(s) for s in data.get("token", [])]
            lost = [str(k) for k in data.get("lose_answer", [])]
            hostile = list(data.get("hostile_body", []))
            delay = data.get("token_delay")
            if delay is not None and not 0 <= float(delay) <= 3600:
                raise ValueError("token_delay must be between 0 and 3600 seconds")
            if any(not 400 <= s <= 599 for s in statuses):
                raise ValueError(f"not HTTP error statuses: {statuses}")
            if any(k not in LOST_ANSWER_KINDS for k in lost):
                raise ValueError(f"lose_answer kinds are {LOST_ANSWER_KINDS}: {lost}")
            state.inject_token_failures(statuses)
            state.lose_token_answers(lost)
            state.hostile_token_answers(hostile)
            if delay is not None:
                state.token_delay = float(delay)
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
        queued = {"token": statuses, "lose_answer": lost, "hostile_body": len(hostile)}
        return JSONResponse({"queued": queued, "token_delay": state.token_delay})

    @app.get(OAUTH_PREFIX + "/{path:path}")
    def jwks(path: str) -> Response:
        # Registered after every other /Panopto/oauth2 GET route: it answers only the JWKS
        # path the configuration names (moveable, see SandboxConfig.jwks_path), else 404.
        if f"{OAUTH_PREFIX}/{path}" != state.config.jwks_path:
            return JSONResponse({"error": "not_found"}, status_code=404)
        state.stats.count("jwks_requests")
        return JSONResponse(state.public_jwks(), headers=_max_age(state.config.jwks_max_age))

    return app
