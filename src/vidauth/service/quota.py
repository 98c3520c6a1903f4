"""Each tenant's share of the spool: bytes and uploads waiting, so one cannot fill the disk.

An upload the service received itself stays in ``VIDAUTH_UPLOAD_DIR`` until it ends — for days,
if it waits for the user's consent. Without a bound, one tenant's uploads could fill the disk
and every other tenant's next upload would fail with 507. So each tenant may hold at most
``VIDAUTH_TENANT_SPOOL_BYTES`` of spooled files and ``VIDAUTH_TENANT_WAITING_UPLOADS`` uploads
not yet finished; beyond that, its own uploads are refused (``spool_quota_exceeded``) while
other tenants' go on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from vidauth.service.context import ServiceContext
from vidauth.service.models import Job, JobState

QUOTA_ERROR = "spool_quota_exceeded"


@dataclass(frozen=True)
class Usage:
    """What a tenant holds now: bytes of spooled files, and uploads not finished."""

    spooled_bytes: int
    unfinished: int


def usage(ctx: ServiceContext, tenant: str) -> Usage:
    """The tenant's spooled bytes (files the service holds) and unfinished uploads."""
    unfinished = Job.state.not_in(tuple(JobState.FINAL))
    with ctx.db.session() as session:
        spooled = session.scalar(
            select(func.coalesce(func.sum(Job.bytes_total), 0)).where(
                Job.tenant == tenant, Job.owns_file.is_(True), unfinished
            )
        )
        count = session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant == tenant, unfinished)
        )
    return Usage(int(spooled or 0), int(count or 0))


def room(ctx: ServiceContext, tenant: str) -> tuple[int | None, str | None]:
    """(bytes this tenant may still spool, None) or (None, why it may not upload now)."""
    service = ctx.service
    now = usage(ctx, tenant)
    if now.unfinished >= service.tenant_waiting_uploads:
        return None, (
            f"your organisation has {now.unfinished} uploads not finished, the most the "
            "service holds at once (VIDAUTH_TENANT_WAITING_UPLOADS); wait for some to finish "
            "or cancel them"
        )
    left = service.tenant_spool_bytes - now.spooled_bytes
    if left <= 0:
        return None, quota_full(service.tenant_spool_bytes)
    return left, None


def quota_full(limit: int) -> str:
    """The one line of a tenant whose spool share is used up."""
    return (
        f"your organisation's uploads waiting in the service hold its whole share of "
        f"{limit} bytes (VIDAUTH_TENANT_SPOOL_BYTES); wait for some to finish or cancel them"
    )
