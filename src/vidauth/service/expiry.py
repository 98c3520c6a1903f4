"""Uploads that wait for consent do not hold the spool for ever.

An upload whose user has not connected (or re-connected) Panopto waits, its file spooled. After
``VIDAUTH_CONSENT_WAIT_SECONDS`` (7 days) it fails with ``not_signed_in``: its spooled file is
deleted and the tenant is told by webhook (``upload.failed``), as for any other failure.
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from vidauth.errors import ErrorCode
from vidauth.service import webhooks
from vidauth.service.context import ServiceContext
from vidauth.service.errors import JobError
from vidauth.service.models import Job, JobState
from vidauth.store.models import utcnow

log = logging.getLogger("vidauth.service")


def expire_waiting(ctx: ServiceContext, limit: int = 100) -> int:
    """Fail uploads that waited for consent longer than allowed; answers how many."""
    wait = ctx.service.consent_wait_seconds
    cutoff = utcnow() - timedelta(seconds=wait)
    days = wait / 86400
    detail = (
        f"the user did not connect Panopto within {days:g} days, so the spooled video was "
        "deleted; upload it again once they have connected"
    )
    owned: list[str] = []
    with ctx.db.write_session() as session:
        query = (
            select(Job)
            .where(Job.state == JobState.WAITING_FOR_CONSENT, Job.created_at < cutoff)
            .order_by(Job.created_at)
            .limit(limit)
        )
        if not ctx.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = list(session.scalars(query))
        for row in rows:
            row.state = JobState.FAILED
            for column, value in JobError.of(ErrorCode.NOT_SIGNED_IN, detail).columns().items():
                setattr(row, column, value)
            row.finished_at = utcnow()
            row.updated_at = utcnow()
            row.lease_owner = None
            webhooks.enqueue(session, row, JobState.FAILED)
            if row.owns_file:
                owned.append(row.file_path)
    for path in owned:
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    if rows:
        log.info("%d uploads waited for consent too long and failed", len(rows))
    return len(rows)


class ExpiryTimer:
    """Runs :func:`expire_waiting` at most once per ``every`` seconds (from a worker loop)."""

    def __init__(self, ctx: ServiceContext, every: float = 60.0) -> None:
        self.ctx = ctx
        self.every = every
        self._next = 0.0

    def tick(self) -> None:
        """Expire what is due, if the last run was long enough ago."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every
            expire_waiting(self.ctx)
