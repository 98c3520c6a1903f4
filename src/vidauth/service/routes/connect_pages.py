"""The browser's side of connecting an account: the start page a connect link opens (continue
or decline) and the OAuth callback Panopto sends the browser back to."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from vidauth.service import connect, pages
from vidauth.service.routes.deps import Ctx, run_sync
from vidauth.service.settings import ServiceSettings

DECLINE_SUFFIX = "/decline"
# The start page has buttons that act: no other site may frame it (clickjacking).
_START_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
}

router = APIRouter(include_in_schema=False)


@router.get(connect.START_PATH)
async def connect_start_page(ctx: Ctx, s: str = "") -> Response:
    """Whom the link is for, with "Continue to Panopto" and "This link is not for me":
    nothing is used up, so a mail scanner fetching the link does no harm."""
    page = await run_sync(connect.describe_start_link, ctx, s)
    if isinstance(page, str):
        return _start_error(page)
    # The paths the browser sees (VIDAUTH_PUBLIC_URL may carry a prefix a proxy strips).
    start_path = urlsplit(ctx.service.public_url + connect.START_PATH).path
    html = pages.render(
        "connect_start.html",
        who=page.name,
        expected_username=page.expected_username,
        start=s,
        start_path=start_path,
        decline_path=start_path + DECLINE_SUFFIX,
    )
    return HTMLResponse(html, headers=_START_HEADERS)


@router.post(connect.START_PATH)
async def connect_start(request: Request, ctx: Ctx) -> Response:
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
        path=_cookie_path(ctx.service),
        secure=_secure_cookie(ctx.service),
        httponly=True,
        samesite="lax",
    )
    return response


@router.post(connect.START_PATH + DECLINE_SUFFIX)
async def connect_decline(request: Request, ctx: Ctx) -> Response:
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


async def oauth_callback(request: Request, ctx: Ctx) -> Response:
    """Where Panopto sends the browser back: finish the connection and say how it went."""
    params = {k: v for k, v in request.query_params.items() if len(v) <= 4096}
    cookies = {k: v for k, v in request.cookies.items() if k.startswith(connect.COOKIE_PREFIX)}
    outcome: connect.ConnectOutcome = await run_sync(connect.finish_connect, ctx, params, cookies)
    response = _callback_answer(ctx.service, outcome)
    state = params.get("state")
    if state:
        response.delete_cookie(
            connect.cookie_name(state),
            path=_cookie_path(ctx.service),
            secure=_secure_cookie(ctx.service),
            httponly=True,
            samesite="lax",
        )
    return response


def callback_router(callback_path: str) -> APIRouter:
    """The OAuth callback at VIDAUTH_CALLBACK_PATH (a setting, so not a fixed route)."""
    callback = APIRouter(include_in_schema=False)
    callback.add_api_route(callback_path, oauth_callback, methods=["GET"])
    return callback


def _cookie_path(service: ServiceSettings) -> str:
    """The callback's path as the browser sees it (VIDAUTH_PUBLIC_URL may carry a prefix)."""
    return urlsplit(service.callback_url).path


def _secure_cookie(service: ServiceSettings) -> bool:
    return service.public_url.startswith("https://")


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
