"""Upload jobs in the database: submit, read, cancel, and the workers' claim/lease protocol.

A worker claims one job at a time in a short transaction: on PostgreSQL with
``SELECT … FOR UPDATE SKIP LOCKED`` (so any number of workers on any number of machines can
claim concurrently without blocking each other), on SQLite under ``BEGIN IMMEDIATE``. The claim
sets ``lease_owner`` and ``lease_expires_at``; the worker renews the lease while it works. A job
whose lease lapsed (its worker died) is claimable again and resumes from its upload record.
Every write a worker makes is fenced by ``lease_owner``, so a worker that lost its lease cannot
overwrite its successor's progress.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, or_, select, update
from sqlalchemy.orm import Session

from vidauth._times import rfc3339
from vidauth.service import webhooks
from vidauth.service.context import ServiceContext
from vidauth.service.errors import CANCELLED, JobError, error_columns
from vidauth.service.models import Job, JobState
from vidauth.store.models import utcnow
from vidauth.store.uploads import Upload, UploadState, UploadStep


def new_job_id() -> str:
    """A public upload id: ``up_`` + 24 hex characters."""
    return "up_" + secrets.token_hex(12)


@dataclass(frozen=True)
class JobView:
    """A detached snapshot of a job row."""

    id: str
    tenant: str
    external_user_id: str
    file_path: str
    owns_file: bool
    folder: str
    folder_id: str | None
    title: str
    description: str | None
    callback_url: str | None
    state: str
    bytes_total: int
    bytes_sent: int
    record_id: int | None
    session_upload_id: str | None
    session_id: str | None
    viewer_url: str | None
    error: str | None
    attempts: int
    cancel_requested: bool
    lease_owner: str | None
    created_at: Any
    updated_at: Any
    api_key_id: int | None = None
    file_identity: str | None = None
    error_code: str | None = None

    def as_api(self) -> dict[str, Any]:
        """The API's answer about an upload (no paths, no lease details)."""
        return {
            "upload_id": self.id,
            "external_user_id": self.external_user_id,
            "state": self.state,
            "title": self.title,
            "folder": self.folder,
            "folder_id": self.folder_id,
            "bytes_sent": self.bytes_sent,
            "bytes_total": self.bytes_total,
            "session_id": self.session_id,
            "viewer_url": self.viewer_url,
            "error": self.error,
            "error_code": self.error_code,
            "cancel_requested": self.cancel_requested,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


_VIEW_FIELDS = list(JobView.__dataclass_fields__)


def _view(row: Job) -> JobView:
    return JobView(**{name: getattr(row, name) for name in _VIEW_FIELDS})


class JobQueue:
    """Data access for jobs (one short transaction per call; thread-safe)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.db = ctx.db

    # -- the API's side -------------------------------------------------------------------

    def submit(self, **fields: Any) -> JobView:
        """Insert a job (``state`` queued or waiting_for_consent)."""
        with self.db.session() as session:
            row = Job(
                bytes_sent=0, attempts=0, cancel_requested=False, next_attempt_at=0.0, **fields
            )
            session.add(row)
            session.flush()
            if row.state == JobState.WAITING_FOR_CONSENT:
                webhooks.enqueue(session, row, JobState.WAITING_FOR_CONSENT)
            return _view(row)

    def get(self, tenant: str, job_id: str) -> JobView | None:
        """A job of ``tenant``."""
        with self.db.session() as session:
            row = session.get(Job, job_id)
            return _view(row) if row is not None and row.tenant == tenant else None

    def list(
        self, tenant: str, external_user_id: str | None = None, limit: int = 100
    ) -> list[JobView]:
        """Jobs of ``tenant`` (optionally one user), newest first."""
        with self.db.session() as session:
            query = select(Job).where(Job.tenant == tenant)
            if external_user_id is not None:
                query = query.where(Job.external_user_id == external_user_id)
            query = query.order_by(Job.created_at.desc(), Job.id).limit(limit)
            return [_view(r) for r in session.scalars(query)]

    def request_cancel(self, tenant: str, job_id: str) -> JobView | None:
        """Cancel a job: at once when nobody runs it, else the worker stops it before Complete
        or State 1 (resumable state at Panopto is cleaned up). None when unknown.

        A job past the point of no return (State 1 is being sent or was: Panopto will publish
        it) is left as it is, ``cancel_requested`` false: :func:`too_late_to_cancel`. The
        decision and the worker's :meth:`pass_gate` lock the same job row, so a cancel that is
        accepted is kept.
        """
        with self.db.write_session() as session:
            row = self._lock(session, job_id)
            if row is None or row.tenant != tenant:
                return None
            if row.state in JobState.FINAL:
                return _view(row)
            if row.state == JobState.PROCESSING or self._past_no_return(session, row):
                return _view(row)
            row.cancel_requested = True
            row.updated_at = utcnow()
            idle = row.state == JobState.QUEUED and row.record_id is None
            if idle or row.state == JobState.WAITING_FOR_CONSENT:
                self._finish(session, row, JobState.CANCELLED, **error_columns(CANCELLED))
            return _view(row)

    def _upload_row(self, session: Session, record_id: int) -> Upload | None:
        query = select(Upload).where(Upload.id == record_id)
        if not self.db.is_sqlite:
            query = query.with_for_update()
        return session.scalars(query).first()

    def _past_no_return(self, session: Session, row: Job) -> bool:
        if row.record_id is None:
            return False
        upload = self._upload_row(session, row.record_id)
        return upload is not None and (
            upload.state in (UploadState.PROCESSING, UploadState.COMPLETE)
            or upload.step == UploadStep.FINISHING
        )

    def pass_gate(self, job_id: str, record_id: int, point: str) -> bool:
        """The worker's check before Complete (``point="complete"``) and before State 1
        (``"finish"``, the point of no return, then recorded on the upload): False when a
        cancel was asked, and the upload must stop."""
        with self.db.write_session() as session:
            row = self._lock(session, job_id)
            if row is None or row.cancel_requested:
                return False
            upload = self._upload_row(session, record_id)
            if upload is None or upload.cancel_requested:
                return False
            if point == "finish":
                upload.step = UploadStep.FINISHING
            return True

    def resume_waiting(self, tenant: str, external_user_id: str) -> int:
        """After the user connected again: their waiting jobs go back to the queue."""
        return self._move_all(
            tenant,
            external_user_id,
            JobState.WAITING_FOR_CONSENT,
            JobState.QUEUED,
            next_attempt_at=0.0,
        )

    def hold_queued(self, tenant: str, external_user_id: str) -> int:
        """After the user disconnected: their queued jobs wait for a new connection."""
        return self._move_all(
            tenant, external_user_id, JobState.QUEUED, JobState.WAITING_FOR_CONSENT
        )

    def _move_all(
        self, tenant: str, external_user_id: str, source: str, target: str, **values: Any
    ) -> int:
        """Move every job of one user from state ``source`` to ``target``; how many moved."""
        with self.db.session() as session:
            result = session.execute(
                update(Job)
                .where(
                    Job.tenant == tenant,
                    Job.external_user_id == external_user_id,
                    Job.state == source,
                )
                .values(state=target, updated_at=utcnow(), **values)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def counts(self) -> dict[str, int]:
        """Jobs per state (every tenant), for metrics."""
        with self.db.session() as session:
            rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
        return {state: int(n) for state, n in rows}

    def bytes_uploaded(self) -> int:
        """Bytes acknowledged by the upload target, over all jobs."""
        with self.db.session() as session:
            return int(session.scalar(select(func.coalesce(func.sum(Job.bytes_sent), 0))) or 0)

    # -- the workers' side ----------------------------------------------------------------

    def _lock(self, session: Session, job_id: str) -> Job | None:
        query = select(Job).where(Job.id == job_id)
        if not self.db.is_sqlite:
            query = query.with_for_update()
        return session.scalars(query).first()

    def claim(self, owner: str) -> JobView | None:
        """Take a runnable job under a new lease: queued and due, or running with a lapsed
        lease (its worker died).

        Fair between tenants: the job comes from the tenant with the fewest jobs running now,
        the oldest of that tenant's first; so one tenant's thousand queued uploads delay
        another tenant's next upload by one job, not by a thousand.
        """
        now = time.time()
        with self.db.write_session() as session:
            running = dict(
                session.execute(
                    select(Job.tenant, func.count())
                    .where(Job.state.in_(JobState.RUNNING), Job.lease_expires_at >= now)
                    .group_by(Job.tenant)
                ).all()
            )
            in_flight = case(running, value=Job.tenant, else_=0) if running else literal(0)
            query = (
                select(Job)
                .where(
                    or_(
                        and_(Job.state == JobState.QUEUED, Job.next_attempt_at <= now),
                        and_(Job.state.in_(JobState.RUNNING), Job.lease_expires_at < now),
                    )
                )
                .order_by(in_flight, Job.next_attempt_at, Job.created_at)
                .limit(1)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            row = session.scalars(query).first()
            if row is None:
                return None
            row.lease_owner = owner
            row.lease_expires_at = now + self.ctx.service.lease_seconds
            row.attempts = (row.attempts or 0) + 1
            if row.state == JobState.QUEUED:
                row.state = JobState.UPLOADING
            row.updated_at = utcnow()
            return _view(row)

    def renew(self, job_id: str, owner: str) -> tuple[bool, bool]:
        """Extend the lease: (still ours, cancel requested)."""
        with self.db.session() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner)
                .values(lease_expires_at=time.time() + self.ctx.service.lease_seconds)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False, False
            cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
            return True, bool(cancel)

    def update_owned(self, job_id: str, owner: str, **fields: Any) -> bool:
        """Set fields of a job we hold; False when the lease is no longer ours."""
        with self.db.session() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.lease_owner == owner)
                .values(updated_at=utcnow(), **fields)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def finish(self, job_id: str, owner: str, state: str, **fields: Any) -> bool:
        """End a job we hold in ``state`` (complete, failed, cancelled, waiting_for_consent)
        and queue its notification in the same transaction."""
        with self.db.write_session() as session:
            row = self._lock(session, job_id)
            if row is None or row.lease_owner != owner:
                return False
            self._finish(session, row, state, **fields)
            return True

    @staticmethod
    def _finish(session: Session, row: Job, state: str, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(row, key, value)
        row.state = state
        row.lease_owner = None
        row.lease_expires_at = None
        row.updated_at = utcnow()
        if state in JobState.FINAL:
            row.finished_at = utcnow()
        session.flush()
        webhooks.enqueue(session, row, state)

    def release(self, job_id: str, owner: str, delay: float, error: JobError | None) -> bool:
        """Give a job back to the queue to be retried after ``delay`` seconds."""
        return self.update_owned(
            job_id,
            owner,
            state=JobState.QUEUED,
            lease_owner=None,
            lease_expires_at=None,
            next_attempt_at=time.time() + delay,
            **error_columns(error),
        )


def too_late_to_cancel(job: JobView) -> bool:
    """Whether :meth:`JobQueue.request_cancel` refused: the job runs on, past the point of no
    return, and will be published."""
    return job.state not in JobState.FINAL and not job.cancel_requested
