"""The browser-facing part of the sandbox: the authorize endpoint, login and consent pages.

``client_id`` and ``redirect_uri`` are checked first, before Authlib sees the request: when either
is wrong the person gets an error page and is *not* redirected (RFC 6749 §4.1.2.1). Other errors
(unsupported_response_type, invalid_scope, a bad PKCE challenge…) are redirected to the client by
Authlib. Forms carry a CSRF token bound to a per-browser cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vidauth_sandbox.config import AUTHORIZE_PATH, LOGIN_PATH, OAUTH_PREFIX
from vidauth_sandbox.oauth_server import EndUser, IncomingRequest, SandboxAuthorizationServer
from vidauth_sandbox.state import SandboxState

BROWSER_COOKIE = "vidauth_sandbox_browser"
SESSION_COOKIE = "vidauth_sandbox_session"

SCOPE_DESCRIPTIONS = {
    "openid": "know who you are (your user id)",
    "profile": "see your name",
    "email": "see your email address",
    "api": "use the Panopto API as you (folders, sessions, uploads)",
    "offline_access": "keep access while you are away (a refresh token)",
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def _html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    body = _templates.get_template(template).render(**context)
    return HTMLResponse(
        body,
        status_code=status,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def error_page(message: str, status: int = 400) -> HTMLResponse:
    """An HTML error page that does not redirect anywhere."""
    return _html("error.html", status=status, message=message)


def issuer_for(request: Request, state: SandboxState) -> str:
    """The issuer: fixed by SandboxServer, else derived from the request's base URL."""
    return state.issuer or str(request.base_url).rstrip("/") + OAUTH_PREFIX


async def incoming_request(request: Request, state: SandboxState, *, form: bool) -> IncomingRequest:
    """Read what Authlib needs from a Starlette request (the body only when ``form``)."""
    pairs: list[tuple[str, str]] = []
    if form:
        data = await request.form()
        pairs = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return IncomingRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        query=list(request.query_params.multi_items()),
        form=pairs,
        issuer=issuer_for(request, state),
    )


# -- CSRF ------------------------------------------------------------------------------


def _csrf_mac(state: SandboxState, browser: str, purpose: str, nonce: str) -> str:
    message = f"{browser}|{purpose}|{nonce}".encode()
    return hmac.new(state.csrf_secret, message, hashlib.sha256).hexdigest()


def make_csrf(state: SandboxState, browser: str, purpose: str) -> str:
    """A fresh CSRF token for one form, bound to this browser and this form's purpose."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_csrf_mac(state, browser, purpose, nonce)}"


def check_csrf(state: SandboxState, browser: str | None, purpose: str, token: str | None) -> bool:
    """Does ``token`` come from a form this server rendered for this browser?"""
    if not browser or not token or "." not in token:
        return False
    nonce, mac = token.split(".", 1)
    return hmac.compare_digest(mac, _csrf_mac(state, browser, purpose, nonce))


def _browser_id(request: Request) -> tuple[str, bool]:
    existing = request.cookies.get(BROWSER_COOKIE)
    if existing:
        return existing, False
    return secrets.token_urlsafe(24), True


def _set_browser_cookie(response: Response, browser: str) -> None:
    response.set_cookie(BROWSER_COOKIE, browser, path=OAUTH_PREFIX, httponly=True, samesite="lax")


# -- the pages -------------------------------------------------------------------------


def _precheck(state: SandboxState, query: dict[str, str]) -> str | None:
    """Why the request cannot be redirected back to the client, or None when it can."""
    client_id = query.get("client_id")
    redirect_uri = query.get("redirect_uri")
    client = state.find_client(client_id)
    if not client_id:
        return "The request has no client_id, so the redirect_uri cannot be trusted."
    if client is None:
        return (
            f"Unknown client_id '{client_id}': it is not registered with this server, so the "
            "redirect_uri cannot be trusted."
        )
    if not redirect_uri:
        return f"The request has no redirect_uri (client_id '{client_id}')."
    if redirect_uri not in client.redirect_uris:
        registered = ", ".join(client.redirect_uris) or "(none)"
        return (
            f"redirect_uri mismatch: '{redirect_uri}' is not registered for client_id "
            f"'{client_id}' (registered: {registered}). Exact match required."
        )
    return None


def _authorize_action(request: Request) -> str:
    query = urlencode(list(request.query_params.multi_items()))
    return f"{AUTHORIZE_PATH}?{query}"


def _end_user(state: SandboxState, request: Request) -> EndUser | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    found = state.session_user(session_id)
    if found is None or session_id is None:
        return None
    return EndUser(found[0], found[1], session_id)


def _consent_grant(
    server: SandboxAuthorizationServer, incoming: IncomingRequest, end_user: EndUser | None
) -> Any:
    """Authlib's validated grant, or a Response (redirect with the error, or an error page)."""
    try:
        return server.get_consent_grant(incoming, end_user=end_user)
    except OAuth2Error as error:
        if error.redirect_uri:
            return server.handle_error_response(None, error)
        return error_page(f"{error.error}: {error.description or 'invalid request'}")


def build_router(state: SandboxState, server: SandboxAuthorizationServer) -> APIRouter:
    """Routes for ``/connect/authorize`` (GET and POST) and the login form."""
    router = APIRouter()

    def show(request: Request, incoming: IncomingRequest) -> Response:
        problem = _precheck(state, dict(incoming.query))
        if problem:
            return error_page(problem)
        end_user = _end_user(state, request)
        grant = _consent_grant(server, incoming, end_user)
        if isinstance(grant, Response):
            return grant
        browser, new = _browser_id(request)
        if end_user is None:
            page = _html(
                "login.html",
                action=LOGIN_PATH,
                client_id=grant.client.get_client_id(),
                csrf_token=make_csrf(state, browser, "login"),
                return_url=_authorize_action(request),
                username="",
                error=None,
            )
        else:
            scopes = grant.request.scope.split()
            page = _html(
                "consent.html",
                action=_authorize_action(request),
                client_id=grant.client.get_client_id(),
                username=end_user.user.username,
                scopes=[(s, SCOPE_DESCRIPTIONS.get(s, s)) for s in scopes],
                csrf_token=make_csrf(state, browser, "consent"),
            )
        if new:
            _set_browser_cookie(page, browser)
        return page

    def decide(request: Request, incoming: IncomingRequest, form: dict[str, str]) -> Response:
        problem = _precheck(state, dict(incoming.query))
        if problem:
            return error_page(problem)
        browser = request.cookies.get(BROWSER_COOKIE)
        if not check_csrf(state, browser, "consent", form.get("csrf_token")):
            return error_page("The form expired or was not sent by this browser (CSRF check).")
        end_user = _end_user(state, request)
        if end_user is None:
            return RedirectResponse(_authorize_action(request), status_code=303)
        grant = _consent_grant(server, incoming, end_user)
        if isinstance(grant, Response):
            return grant
        decision = form.get("decision")
        if decision not in ("allow", "deny"):
            return error_page("Choose Allow or Deny.")
        response: Response = server.create_authorization_response(
            grant.request, grant_user=end_user if decision == "allow" else None, grant=grant
        )
        return response

    def login(request: Request, form: dict[str, str]) -> Response:
        return_url = form.get("return_url", "")
        if not return_url.startswith(f"{AUTHORIZE_PATH}?"):
            return error_page("The login form has no valid return_url.")
        browser = request.cookies.get(BROWSER_COOKIE)
        if not check_csrf(state, browser, "login", form.get("csrf_token")):
            return error_page("The form expired or was not sent by this browser (CSRF check).")
        username = form.get("username", "")
        user = state.check_password(username, form.get("password", ""))
        if user is None or browser is None:
            return _html(
                "login.html",
                action=LOGIN_PATH,
                client_id="the application",
                csrf_token=make_csrf(state, browser or "", "login"),
                return_url=return_url,
                username=username,
                error="Invalid user name or password.",
            )
        state.stats.count("logins")
        response = RedirectResponse(return_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            state.create_session(user.username),
            path=OAUTH_PREFIX,
            httponly=True,
            samesite="lax",
        )
        return response

    @router.get(AUTHORIZE_PATH)
    async def authorize_get(request: Request) -> Response:
        incoming = await incoming_request(request, state, form=False)
        return await run_in_threadpool(show, request, incoming)

    @router.post(AUTHORIZE_PATH)
    async def authorize_post(request: Request) -> Response:
        incoming = await incoming_request(request, state, form=False)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        return await run_in_threadpool(decide, request, incoming, form)

    @router.post(LOGIN_PATH)
    async def login_post(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        return await run_in_threadpool(login, request, form)

    return router
