"""``/pages/uploads``: the page a signed link opens, showing one user's uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from vidauth.service import connect, pages
from vidauth.service.auth import key_is_live
from vidauth.service.jobs import JobView
from vidauth.service.models import JobState
from vidauth.service.routes.deps import Ctx, Queue, run_sync

router = APIRouter(include_in_schema=False)


@router.get("/pages/uploads")
async def uploads_page(ctx: Ctx, queue: Queue, t: str = "") -> HTMLResponse:
    """The user's uploads and their progress; 403 once the link expired or its key was
    revoked."""
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


def _page_row(job: JobView) -> dict[str, Any]:
    row = job.as_api()
    total = job.bytes_total or 0
    row["percent"] = int(100 * job.bytes_sent / total) if total else 0
    viewer = row.get("viewer_url") or ""
    if not viewer.startswith(("https://", "http://")):
        row["viewer_url"] = None
    return row
