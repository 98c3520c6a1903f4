"""``/v1/accounts/{external_user_id}``: connect a user's Panopto account, see it, remove it,
and hand out the link to their uploads page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from vidauth._times import rfc3339
from vidauth.service import connect, pages
from vidauth.service.api_models import (
    AccountStatus,
    ConnectLink,
    ConnectRequest,
    PageLink,
    error_responses,
)
from vidauth.service.routes.answers import ApiError
from vidauth.service.routes.checks import optional_text
from vidauth.service.routes.deps import Auth, Ctx, UserId, run_sync

router = APIRouter(tags=["accounts"])


@router.post(
    "/v1/accounts/{external_user_id}/connect",
    response_model=ConnectLink,
    responses=error_responses(400, 401, 413, 422, 503),
)
async def connect_account(
    user: UserId, who: Auth, ctx: Ctx, body: Annotated[ConnectRequest | None, Body()] = None
) -> dict[str, Any]:
    """A link the user opens in their browser to connect their Panopto account (valid 10
    minutes, once). Its page names the user (``display_name``, else the id) and lets
    whoever it was forwarded to turn it down. With ``expected_username``, only that
    Panopto user can connect."""
    expected = optional_text("expected_username", body.expected_username if body else None, 255)
    display_name = optional_text("display_name", body.display_name if body else None, 200)
    url, expires_at = await run_sync(
        connect.start_connect, ctx, who.tenant, user, expected, who.key_id, display_name
    )
    return {"connect_url": url, "authorize_url": url, "expires_at": rfc3339(expires_at)}


@router.get(
    "/v1/accounts/{external_user_id}",
    response_model=AccountStatus,
    responses=error_responses(400, 401, 422, 503),
)
async def get_account(user: UserId, who: Auth, ctx: Ctx) -> dict[str, Any]:
    """connected | needs_reconsent | not_connected, with scopes and expiry (never a token)."""
    result: dict[str, Any] = await run_sync(connect.account_status, ctx, who.tenant, user)
    return result


@router.delete(
    "/v1/accounts/{external_user_id}",
    response_model=AccountStatus,
    responses=error_responses(400, 401, 404, 422, 503),
)
async def delete_account(user: UserId, who: Auth, ctx: Ctx) -> dict[str, Any]:
    """Revoke the user's tokens at Panopto and delete them."""
    found = await run_sync(connect.disconnect, ctx, who.tenant, user)
    if not found:
        raise ApiError(404, "not_found", f"{user!r} has no Panopto connection")
    return {"external_user_id": user, "status": connect.NOT_CONNECTED}


@router.post(
    "/v1/accounts/{external_user_id}/uploads-page",
    response_model=PageLink,
    responses=error_responses(400, 401, 413, 422),
)
async def uploads_page_link(user: UserId, who: Auth, ctx: Ctx) -> dict[str, Any]:
    """A signed, expiring link to a page showing the user's uploads and their progress."""
    service = ctx.service
    token, expires_at = pages.make_page_token(
        ctx.page_key, who.tenant, user, service.page_link_seconds, who.key_id
    )
    return {
        "url": f"{service.public_url}/pages/uploads?t={token}",
        "expires_at": rfc3339(expires_at),
    }
