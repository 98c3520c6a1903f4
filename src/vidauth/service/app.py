"""The FastAPI application of ``vidauth serve``.

Routes under ``/v1`` need ``Authorization: Bearer <API key>`` and act only on the key's tenant;
the connect start page, the OAuth callback, the pages and the health endpoints do not;
``/metrics`` needs ``VIDAUTH_METRICS_TOKEN``. Errors are JSON
``{"error": <code>, "detail": <one line>}``.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio.to_thread
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from vidauth._times import rfc3339
from vidauth._urls import check_transport
from vidauth.errors import ErrorCode, UsageError, VidauthError
from vidauth.logs import install_redaction
from vidauth.panopto.files import check_media_file
from vidauth.service import connect, idempotency, pages, quota, shared_files
from vidauth.service.api_models import (
    USER_ID_SCHEMA,
    AccountStatus,
    ConnectLink,
    ConnectRequest,
    PageLink,
    Upload,
    UploadAccepted,
    UploadList,
    error_responses,
)
from vidauth.service.auth import Caller, KeyChecker, key_is_live
from vidauth.service.context import ServiceContext
from vidauth.service.docs import add_docs
from vidauth.service.errors import http_status
from vidauth.service.ingest import IngestError, receive_form
from vidauth.service.jobs import JobQueue, JobView, new_job_id, too_late_to_cancel
from vidauth.service.metrics import Metrics
from vidauth.service.models import JobState
from vidauth.service.settings import ServiceSettings
from vidauth.service.text_fields import character_problem, control_character_problem
from vidauth.service.webhook_secrets import key_secret
from vidauth.service.webhook_targets import TargetRefused, check_target
from vidauth.service.worker import Worker, remove_owned_file

log = logging.getLogger("vidauth.service")

MAX_ID_LENGTH = 255
_UPLOAD_ID = re.compile(r"up_[0-9a-f]{24}")


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


def _error(
    status: int, error: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status, headers=headers)


UPLOAD_FIELDS = frozenset(
    ("file", "path", "external_user_id", "folder", "title", "description", "callback_url")
)

_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["external_user_id", "folder"],
                    "oneOf": [{"required": ["file"]}, {"required": ["path"]}],
                    "additionalProperties": False,
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The video (or give `path`).",
                        },
                        "path": {
                            "type": "string",
                            "pattern": r"\S",
                            "description": "A file under VIDAUTH_SHARED_DIR instead of `file`.",
                        },
                        "external_user_id": {"type": "string", **USER_ID_SCHEMA},
                        "folder": {
                            "type": "string",
                            "pattern": r"\S",
                            "description": "Folder id or exact name.",
                        },
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "callback_url": {
                            "type": "string",
                            "description": "Receives signed completion/failure POSTs.",
                        },
                    },
                }
            }
        },
    }
}


class RequestLimit:
    """ASGI middleware: bodies are read only from callers that may send them, and bounded.

    Every ``/v1`` request without ``Authorization: Bearer <key>`` is answered 401 before a byte
    of its body is read. Every body but the upload's is read here, up to ``max_bytes``
    (Content-Length or not: a chunked body is counted as it comes), and 413 once it is over.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") and not _has_bearer(scope):
            response = _error(
                401,
                "unauthorized",
                "send an API key: Authorization: Bearer <key>",
                {"WWW-Authenticate": "Bearer", "Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if scope["method"] == "POST" and path == "/v1/uploads":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        messages: list[Any] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Any:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        response = _error(
            413,
            "too_large",
            f"request bodies are limited to {self.max_bytes} bytes",
            {"Connection": "close"},
        )
        await response(scope, receive, send)


def _has_bearer(scope: Any) -> bool:
    """Whether the request carries ``Authorization: Bearer <something>``."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.partition(b" ")
            return scheme.lower() == b"bearer" and bool(credentials.strip())
    return False


def _check_user_id(external_user_id: str) -> str:
    """The id without surrounding spaces; 400 unless it is what USER_ID_SCHEMA documents."""
    value = external_user_id.strip()
    if not value or len(external_user_id) > MAX_ID_LENGTH:
        raise ApiError(
            400,
            "invalid_request",
            f"external_user_id must be 1 to {MAX_ID_LENGTH} printable characters",
        )
    _check_text("external_user_id", external_user_id)
    return value


def _check_text(name: str, value: str) -> None:
    """400 naming the field unless ``value`` passes the one rule for text (text_fields)."""
    problem = character_problem(name, value)
    if problem:
        raise ApiError(400, "invalid_request", problem)


def _optional_text(name: str, value: str | None, limit: int) -> str | None:
    """``value`` without surrounding spaces; 400 naming the field unless it is 1 to ``limit``
    printable characters (the one rule for text, text_fields)."""
    if value is None:
        return None
    value = value.strip(" ")
    _check_text(name, value)
    if not value or len(value) > limit:
        raise ApiError(400, "invalid_request", f"{name} must be 1 to {limit} printable characters")
    return value


def _check_upload_id(upload_id: str) -> None:
    """404 for anything that cannot be an upload id (NUL, any odd character, any length)."""
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")


# Reads the header and declares the scheme in the OpenAPI document; the check is _caller's
# (401 with vidauth's error body, not FastAPI's 403).
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key the service's operator issued, as `Authorization: Bearer <key>`.",
)


async def _caller(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The API key's owner, from ``Authorization: Bearer <key>`` (401 without a valid key)."""
    key = bearer.credentials.strip() if bearer is not None else ""
    if not key:
        raise ApiError(401, "unauthorized", "send an API key: Authorization: Bearer <key>")
    keys: KeyChecker = request.app.state.api_keys
    found = await anyio.to_thread.run_sync(keys.check, key)
    if found is None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    return found


# At module level: FastAPI resolves the (postponed) annotations in module globals.
Auth = Annotated[Caller, Depends(_caller)]


def _path_user_id(
    # Documented in the schema, but checked here (400 with a clear line), not by FastAPI.
    external_user_id: Annotated[str, PathParam(json_schema_extra=USER_ID_SCHEMA)],
) -> str:
    return _check_user_id(external_user_id)


UserId = Annotated[str, Depends(_path_user_id)]


def create_app(ctx: ServiceContext, *, run_worker: bool = False) -> FastAPI:
    """The service app; ``run_worker`` also runs a worker on threads for the app's lifetime."""
    keys = KeyChecker(ctx.db)
    queue = JobQueue(ctx)
    metrics = Metrics(ctx)
    service = ctx.service

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # After the server configured its logging: its handlers get the filter too.
        install_redaction()
        worker = Worker(ctx).start() if run_worker else None
        _app.state.worker = worker
        try:
            yield
        finally:
            if worker is not None:
                await anyio.to_thread.run_sync(worker.stop)

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

    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.extra:
            body = {"error": exc.error, "detail": exc.detail, **exc.extra}
            return JSONResponse(body, exc.status, headers=headers)
        return _error(exc.status, exc.error, exc.detail, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _error(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(VidauthError)
    async def _vidauth_error(_request: Request, exc: VidauthError) -> JSONResponse:
        log.warning("request failed: %s (%s)", exc, exc.code)
        return _error(http_status(exc), str(exc.code), exc.message)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(_request: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database error: %s", type(exc).__name__)
        return _error(503, "database_unavailable", "the database did not answer; try again")

    app.add_middleware(RequestLimit, max_bytes=service.max_request_bytes)
    idempotency_keys = idempotency.install(app, ctx.db)

    # -- auth -----------------------------------------------------------------------------------

    app.state.api_keys = keys

    def run_sync(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        return anyio.to_thread.run_sync(fn, *args)

    # -- accounts -------------------------------------------------------------------------------

    @app.post(
        "/v1/accounts/{external_user_id}/connect",
        tags=["accounts"],
        response_model=ConnectLink,
        responses=error_responses(400, 401, 413, 422, 503),
    )
    async def connect_account(
        user: UserId, who: Auth, body: Annotated[ConnectRequest | None, Body()] = None
    ) -> dict[str, Any]:
        """A link the user opens in their browser to connect their Panopto account (valid 10
        minutes, once). Its page names the user (``display_name``, else the id) and lets
        whoever it was forwarded to turn it down. With ``expected_username``, only that
        Panopto user can connect."""
        expected = _optional_text(
            "expected_username", body.expected_username if body else None, 255
        )
        display_name = _optional_text("display_name", body.display_name if body else None, 200)
        url, expires_at = await run_sync(
            connect.start_connect, ctx, who.tenant, user, expected, who.key_id, display_name
        )
        return {"connect_url": url, "authorize_url": url, "expires_at": rfc3339(expires_at)}

    @app.get(
        "/v1/accounts/{external_user_id}",
        tags=["accounts"],
        response_model=AccountStatus,
        responses=error_responses(400, 401, 422, 503),
    )
    async def get_account(user: UserId, who: Auth) -> dict[str, Any]:
        """connected | needs_reconsent | not_connected, with scopes and expiry (never a token)."""
        result: dict[str, Any] = await run_sync(connect.account_status, ctx, who.tenant, user)
        return result

    @app.delete(
        "/v1/accounts/{external_user_id}",
        tags=["accounts"],
        response_model=AccountStatus,
        responses=error_responses(400, 401, 404, 422, 503),
    )
    async def delete_account(user: UserId, who: Auth) -> dict[str, Any]:
        """Revoke the user's tokens at Panopto and delete them."""
        found = await run_sync(connect.disconnect, ctx, who.tenant, user)
        if not found:
            raise ApiError(404, "not_found", f"{user!r} has no Panopto connection")
        return {"external_user_id": user, "status": connect.NOT_CONNECTED}

    @app.post(
        "/v1/accounts/{external_user_id}/uploads-page",
        tags=["accounts"],
        response_model=PageLink,
        responses=error_responses(400, 401, 413, 422),
    )
    async def uploads_page_link(user: UserId, who: Auth) -> dict[str, Any]:
        """A signed, expiring link to a page showing the user's uploads and their progress."""
        token, expires_at = pages.make_page_token(
            ctx.page_key, who.tenant, user, service.page_link_seconds, who.key_id
        )
        return {
            "url": f"{service.public_url}/pages/uploads?t={token}",
            "expires_at": rfc3339(expires_at),
        }

    # -- the OAuth callback and pages -----------------------------------------------------------

    secure_cookie = service.public_url.startswith("https://")
    # The path the browser sees (VIDAUTH_PUBLIC_URL may carry a prefix a proxy strips).
    cookie_path = urlsplit(service.callback_url).path

    # The paths the browser sees, for the start page's forms.
    start_path = urlsplit(service.public_url + connect.START_PATH).path
    decline_path = start_path + DECLINE_SUFFIX

    @app.get(connect.START_PATH, include_in_schema=False)
    async def connect_start_page(s: str = "") -> Response:
        """Whom the link is for, with "Continue to Panopto" and "This link is not for me":
        nothing is used up, so a mail scanner fetching the link does no harm."""
        page = await run_sync(connect.describe_start_link, ctx, s)
        if isinstance(page, str):
            return _start_error(page)
        html = pages.render(
            "connect_start.html",
            who=page.name,
            expected_username=page.expected_username,
            start=s,
            start_path=start_path,
            decline_path=decline_path,
        )
        return HTMLResponse(html, headers=_START_HEADERS)

    @app.post(connect.START_PATH, include_in_schema=False)
    async def connect_start(request: Request) -> Response:
        """Continue to Panopto: bind the sign-in to this browser (a cookie), once."""
        started = await run_sync(connect.open_start_link, ctx, await _posted_start(request))
        if isinstance(started, str):
            return _start_error(started)
        response = RedirectResponse(
            started.authorize_url, status_code=303, headers={"Cache-Control": "no-store"}
        )
        response.set_cookie(
            started.cookie_name,
            started.cookie_value,
            max_age=started.max_age,
            path=cookie_path,
            secure=secure_cookie,
            httponly=True,
            samesite="lax",
        )
        return response

    @app.post(connect.START_PATH + DECLINE_SUFFIX, include_in_schema=False)
    async def connect_decline(request: Request) -> Response:
        """ "This link is not for me": end the link; nothing is connected."""
        refused = await run_sync(connect.decline_start_link, ctx, await _posted_start(request))
        if refused is not None:
            return _start_error(refused)
        html = pages.render(
            "connect_result.html",
            status="declined",
            message="Nothing was connected, and this link no longer works. Please tell "
            "whoever sent it to you that it reached the wrong person.",
            username=None,
        )
        return HTMLResponse(html, headers=_START_HEADERS)

    @app.get(service.callback_path, include_in_schema=False)
    async def oauth_callback(request: Request) -> Response:
        params = {k: v for k, v in request.query_params.items() if len(v) <= 4096}
        cookies = {k: v for k, v in request.cookies.items() if k.startswith(connect.COOKIE_PREFIX)}
        outcome: connect.ConnectOutcome = await run_sync(
            connect.finish_connect, ctx, params, cookies
        )
        response = _callback_answer(service, outcome)
        state = params.get("state")
        if state:
            response.delete_cookie(
                connect.cookie_name(state),
                path=cookie_path,
                secure=secure_cookie,
                httponly=True,
                samesite="lax",
            )
        return response

    @app.get("/pages/uploads", include_in_schema=False)
    async def uploads_page(t: str = "") -> HTMLResponse:
        found = pages.read_page_token(ctx.page_key, t)
        issuer = pages.page_token_key_id(t) if found is not None else None
        if issuer is not None and not await run_sync(key_is_live, ctx.db, issuer):
            found = None  # the link ends with the API key that handed it out
        if found is None:
            html = pages.render(
                "error.html",
                title="Link expired",
                message="This link is not valid any more: open the uploads page again from "
                "your application.",
            )
            return HTMLResponse(html, 403)
        tenant, user = found
        jobs: list[JobView] = await run_sync(queue.list, tenant, user)
        status = await run_sync(connect.account_status, ctx, tenant, user)
        rows = [_page_row(job) for job in jobs]
        busy = any(row["state"] not in JobState.FINAL for row in rows)
        html = pages.render(
            "uploads.html",
            uploads=rows,
            account_status=status["status"],
            refresh=pages.REFRESH_SECONDS if busy else None,
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    # -- uploads --------------------------------------------------------------------------------

    @app.post(
        "/v1/uploads",
        status_code=202,
        tags=["uploads"],
        openapi_extra={**_UPLOAD_FORM, **idempotency.OPENAPI_EXTRA},
        response_model=UploadAccepted,
        responses={
            **error_responses(400, 401, 409, 413, 415, 503, 507),
            **idempotency.RESPONSES,
        },
    )
    async def create_upload(request: Request, who: Auth) -> Response:
        """Queue an upload: the video in field ``file`` (streamed to disk) or ``path``."""
        key = idempotency.request_key(request)  # a bad key is refused before the body is read
        # The tenant's share of the spool, before a byte is read: one tenant cannot fill it.
        left, refused = await run_sync(quota.room, ctx, who.tenant)
        if refused is not None or left is None:
            raise ApiError(507, quota.QUOTA_ERROR, refused or "")
        job_id = new_job_id()
        job_dir = service.upload_dir / job_id
        try:
            await run_sync(lambda: job_dir.mkdir(parents=True, exist_ok=False))
        except OSError as exc:
            raise _storage_error(exc) from None
        keep = False
        try:
            try:
                form = await receive_form(
                    request,
                    job_dir,
                    min(service.max_upload_bytes, left),
                    UPLOAD_FIELDS,
                    control_character_problem,
                    hash_file=key is not None,
                )
            except IngestError as exc:
                if exc.status == 413 and left < service.max_upload_bytes:
                    # over the tenant's share rather than over the size limit
                    raise ApiError(
                        507, quota.QUOTA_ERROR, quota.quota_full(service.tenant_spool_bytes)
                    ) from None
                raise ApiError(exc.status, exc.error, exc.detail) from None
            except ClientDisconnect:
                raise ApiError(400, "invalid_request", "the client went away mid-upload") from None
            except OSError as exc:
                raise _storage_error(exc) from None

            async def accept() -> Response:
                nonlocal keep
                job = await run_sync(_submit, ctx, queue, who, job_id, form)
                keep = job.owns_file
                return JSONResponse(
                    {"upload_id": job.id, "state": job.state},
                    202,
                    headers={"Location": f"/v1/uploads/{job.id}"},
                )

            return await idempotency_keys.once(key, who.tenant, job_id, form, accept)
        finally:
            if not keep:
                await run_sync(lambda: shutil.rmtree(job_dir, ignore_errors=True))

    @app.get(
        "/v1/uploads",
        tags=["uploads"],
        response_model=UploadList,
        responses=error_responses(400, 401, 422, 503),
    )
    async def list_uploads(
        who: Auth,
        external_user_id: Annotated[str | None, Query(json_schema_extra=USER_ID_SCHEMA)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """The tenant's uploads, newest first (optionally one user's)."""
        user = _check_user_id(external_user_id) if external_user_id is not None else None
        jobs: list[JobView] = await run_sync(queue.list, who.tenant, user, limit)
        return {"uploads": [job.as_api() for job in jobs]}

    @app.get(
        "/v1/uploads/{upload_id}",
        tags=["uploads"],
        response_model=Upload,
        responses=error_responses(401, 404, 422, 503),
    )
    async def get_upload(upload_id: str, who: Auth) -> dict[str, Any]:
        """State, progress, and where the video can be watched once complete."""
        _check_upload_id(upload_id)
        job = await run_sync(queue.get, who.tenant, upload_id)
        if job is None:
            raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")
        result: dict[str, Any] = job.as_api()
        return result

    @app.delete(
        "/v1/uploads/{upload_id}",
        tags=["uploads"],
        response_model=Upload,
        responses=error_responses(401, 404, 409, 422, 503),
    )
    async def cancel_upload(upload_id: str, who: Auth) -> dict[str, Any]:
        """Cancel an upload (a running one stops within seconds)."""
        _check_upload_id(upload_id)
        job = await run_sync(queue.request_cancel, who.tenant, upload_id)
        if job is None:
            raise ApiError(404, "not_found", f"no upload {upload_id[:60]!r}")
        if job.state == JobState.COMPLETE:
            raise ApiError(
                409,
                "already_complete",
                "the upload has finished; delete the session in Panopto instead",
            )
        if too_late_to_cancel(job):
            raise ApiError(
                409,
                "too_late_to_cancel",
                f"the upload is past the point of no return (state {job.state}): Panopto "
                "will publish it; delete the session in Panopto instead",
                {"state": job.state, "upload": job.as_api()},
            )
        if job.state == JobState.CANCELLED:
            await run_sync(remove_owned_file, job)
        result: dict[str, Any] = job.as_api()
        return result

    # -- health and metrics ---------------------------------------------------------------------

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        def ping() -> None:
            with ctx.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        try:
            await run_sync(ping)
        except Exception as exc:
            return _error(503, "database_unavailable", type(exc).__name__)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Response:
        expected = service.metrics_token
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
        body = await run_sync(metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


DECLINE_SUFFIX = "/decline"
# The start page has buttons that act: no other site may frame it (clickjacking).
_START_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}


def _start_error(message: str) -> HTMLResponse:
    """The page of a start link that cannot be used (unknown, used, expired, key revoked)."""
    html = pages.render("connect_result.html", status="error", message=message, username=None)
    return HTMLResponse(html, 400, headers={"Cache-Control": "no-store"})


async def _posted_start(request: Request) -> str:
    """``s`` of the start page's form (urlencoded; RequestLimit has bounded the body), or ""
    when there is none, or more than one."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return ""
    body = await request.body()
    try:
        fields = parse_qs(body.decode("ascii"), max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return ""
    values = fields.get("s", [])
    return values[0] if len(values) == 1 else ""


def _callback_answer(service: ServiceSettings, outcome: connect.ConnectOutcome) -> Response:
    """The callback's answer: a redirect to VIDAUTH_CONNECT_RETURN_URL, or vidauth's page."""
    if service.connect_return_url:
        query = {"status": outcome.status}
        if outcome.external_user_id:
            query["external_user_id"] = outcome.external_user_id
        sep = "&" if "?" in service.connect_return_url else "?"
        return RedirectResponse(
            f"{service.connect_return_url}{sep}{urlencode(query)}",
            status_code=303,
            headers={"Cache-Control": "no-store"},
        )
    html = pages.render(
        "connect_result.html",
        status=outcome.status,
        message=outcome.message,
        username=outcome.username,
        return_url=None,
    )
    status = 200 if outcome.status == "connected" else 400
    return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})


def _storage_error(exc: OSError) -> ApiError:
    """The answer when the upload directory fails (full disk: 507; anything else: 503)."""
    log.error("writing an upload failed: %s", exc.strerror or type(exc).__name__)
    if exc.errno == errno.ENOSPC:
        return ApiError(
            507, "insufficient_storage", "the service's upload directory is full; try again later"
        )
    return ApiError(
        503, "storage_unavailable", "the service cannot store uploads right now; try again later"
    )


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this path (Starlette's 405 names only the first
    route's, and FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _page_row(job: JobView) -> dict[str, Any]:
    row = job.as_api()
    total = job.bytes_total or 0
    row["percent"] = int(100 * job.bytes_sent / total) if total else 0
    viewer = row.get("viewer_url") or ""
    if not viewer.startswith(("https://", "http://")):
        row["viewer_url"] = None
    return row


def _submit(ctx: ServiceContext, queue: JobQueue, who: Caller, job_id: str, form: Any) -> JobView:
    """Check the form and queue the job (runs on a thread)."""
    service = ctx.service
    fields: dict[str, str] = form.fields
    user = _check_user_id(fields.get("external_user_id", ""))
    folder = fields.get("folder", "").strip()
    if not folder:
        raise ApiError(400, "invalid_request", "folder is required: a folder id or exact name")
    for name, value in fields.items():  # the form checked them already; keep the rule here
        if name != "path":  # shared_files' own check: the same rule, the same one answer
            _check_text(name, value)
    callback_url = fields.get("callback_url", "").strip() or None
    if callback_url:
        _check_callback_url(ctx, who, callback_url)
    shared = fields.get("path", "").strip()
    if form.file_path is not None and shared:
        raise ApiError(400, "invalid_request", "send either file or path, not both")
    identity: str | None = None
    if form.file_path is not None:
        path: Path = form.file_path
        owns = True
        name = form.filename or path.name
        try:
            path = check_media_file(path, name=Path(name).name)
        except UsageError as exc:
            status = 415 if exc.code == ErrorCode.FILE_NOT_MEDIA else 400
            raise ApiError(status, "invalid_file", exc.message) from None
        size = path.stat().st_size
    elif shared:
        checked = _shared_file(service.shared_dir, who.tenant, shared)
        path, identity, size = checked.path, checked.identity, checked.size
        owns = False
        name = path.name
    else:
        raise ApiError(400, "invalid_request", "send the video in field file, or give path")
    status = connect.account_status(ctx, who.tenant, user)["status"]
    if status == connect.NOT_CONNECTED:
        raise ApiError(
            409,
            "not_connected",
            f"{user!r} has not connected Panopto: POST /v1/accounts/{{id}}/connect first",
        )
    title = fields.get("title", "").strip() or Path(name).stem or "Untitled"
    _check_text("title", title)  # derived from the file name when not given
    return queue.submit(
        id=job_id,
        tenant=who.tenant,
        external_user_id=user,
        file_path=str(path),
        owns_file=owns,
        folder=folder[:1024],
        title=title[:1000],
        description=fields.get("description") or None,
        callback_url=callback_url,
        state=(JobState.QUEUED if status == connect.CONNECTED else JobState.WAITING_FOR_CONSENT),
        bytes_total=size,
        api_key_id=who.key_id,
        file_identity=identity,
    )


def _check_callback_url(ctx: ServiceContext, who: Caller, url: str) -> None:
    """400 unless notifications can be signed for this key and sent to ``url``'s address."""
    problem = check_transport(url)
    if problem:
        raise ApiError(400, "invalid_request", f"callback_url: {problem}")
    if not key_secret(ctx, who.key_id):
        raise ApiError(
            400,
            "invalid_request",
            "callback_url needs a webhook secret for this API key: the service's operator gives "
            "the key one, or sets VIDAUTH_WEBHOOK_SECRET on the service",
        )
    try:
        check_target(url, ctx.service.webhook_allow_networks)
    except TargetRefused as exc:
        raise ApiError(400, "invalid_request", f"callback_url: {exc}") from None


def _shared_file(shared_dir: Path | None, tenant: str, given: str) -> shared_files.SharedFile:
    """The checked file under the tenant's shared directory; one answer for every refusal."""
    if shared_dir is None:
        raise ApiError(
            400, "invalid_request", "path uploads need VIDAUTH_SHARED_DIR on the service"
        )
    try:
        return shared_files.check(shared_dir, tenant, given)
    except shared_files.SharedFileError as exc:
        raise ApiError(400, "invalid_file", str(exc)) from None
