"""Who is running an upload right now: one lease per upload row (``upload_leases``).

A process that sends an upload's parts holds its lease: its random holder id, pid and host, and
an expiry it pushes forward while it runs (a heartbeat). A second process that finds a live
lease held by someone else leaves the upload alone. A lease lapses when its expiry passes, or at
once when its holder was a process on this host that no longer exists (killed, not stopped), so
a crash never blocks the resume. ``vidauth uploads`` reads the leases to tell a running upload
from a stopped one.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Float, ForeignKey, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from vidauth.store.db import Database
from vidauth.store.models import Base

Clock = Callable[[], float]


class UploadLeaseRow(Base):
    """The live claim on one upload (migration 0012)."""

    __tablename__ = "upload_leases"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    holder: Mapped[str] = mapped_column(String(64))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[float] = mapped_column(Float)  # epoch seconds


@dataclass(frozen=True)
class Holder:
    """This process, as a lease names it."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=socket.gethostname)


@dataclass(frozen=True)
class Lease:
    """A lease as read from the store."""

    upload_id: int
    holder: str
    pid: int
    host: str
    expires_at: float


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` exists on this host (a permission error means it does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


class LeaseStore:
    """Take, renew, release and read upload leases (one short transaction per call)."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        db.migrate()
        self.db = db
        self.clock = clock

    def _lapsed(self, row: UploadLeaseRow, now: float) -> bool:
        if row.expires_at <= now:
            return True
        return row.host == socket.gethostname() and _process_gone(row.pid)

    def acquire(self, upload_id: int, holder: Holder, ttl: float) -> Lease | None:
        """Take (or renew) the lease on ``upload_id``; None when it is ours, else the live lease
        someone else holds."""
        now = self.clock()
        try:
            with self.db.write_session() as session:
                row = session.get(UploadLeaseRow, upload_id, with_for_update=True)
                if row is not None and row.holder != holder.id and not self._lapsed(row, now):
                    return Lease(row.upload_id, row.holder, row.pid, row.host, row.expires_at)
                if row is None:
                    session.add(
                        UploadLeaseRow(
                            upload_id=upload_id,
                            holder=holder.id,
                            pid=holder.pid,
                            host=holder.host,
                            expires_at=now + ttl,
                        )
                    )
                else:
                    row.holder, row.pid, row.host = holder.id, holder.pid, holder.host
                    row.expires_at = now + ttl
        except IntegrityError:  # another process inserted it first (PostgreSQL)
            taken = self.get(upload_id)
            if taken is not None and taken.holder != holder.id:
                return taken
            return self.acquire(upload_id, holder, ttl)
        return None

    def renew(self, holder: Holder, ttl: float) -> None:
        """Push the expiry of every lease ``holder`` holds."""
        with self.db.write_session() as session:
            session.execute(
                update(UploadLeaseRow)
                .where(UploadLeaseRow.holder == holder.id)
                .values(expires_at=self.clock() + ttl)
            )

    def release(self, holder: Holder, upload_id: int | None = None) -> None:
        """Drop ``holder``'s lease on ``upload_id`` (or all of them)."""
        query = delete(UploadLeaseRow).where(UploadLeaseRow.holder == holder.id)
        if upload_id is not None:
            query = query.where(UploadLeaseRow.upload_id == upload_id)
        with self.db.write_session() as session:
            session.execute(query)

    def get(self, upload_id: int) -> Lease | None:
        """The lease row of ``upload_id``, live or not."""
        with self.db.session() as session:
            row = session.get(UploadLeaseRow, upload_id)
            if row is None:
                return None
            return Lease(row.upload_id, row.holder, row.pid, row.host, row.expires_at)

    def live(self, upload_ids: Iterable[int]) -> dict[int, Lease]:
        """The live leases among ``upload_ids``: upload id → lease."""
        ids = list(upload_ids)
        if not ids:
            return {}
        now = self.clock()
        with self.db.session() as session:
            rows = list(
                session.scalars(select(UploadLeaseRow).where(UploadLeaseRow.upload_id.in_(ids)))
            )
            return {
                row.upload_id: Lease(row.upload_id, row.holder, row.pid, row.host, row.expires_at)
                for row in rows
                if not self._lapsed(row, now)
            }


__all__ = ["Holder", "Lease", "LeaseStore", "UploadLeaseRow"]
