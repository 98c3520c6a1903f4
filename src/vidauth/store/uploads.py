"""Resumable uploads in the store: the ``uploads`` and ``upload_parts`` tables and their access.

A row is written as soon as Panopto hands out a sessionUpload, and a part row is committed as
each part is acknowledged, so a killed process can be resumed from what is recorded here (and
reconciled with S3 ListParts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from vidauth._times import rfc3339
from vidauth.store.db import Database
from vidauth.store.models import Base, utcnow


class UploadState:
    """The upload row's ``state`` (vidauth's view, not Panopto's numbers)."""

    UPLOADING = "uploading"  # parts going up (or interrupted: resumable)
    PROCESSING = "processing"  # State 1 sent; Panopto is processing
    COMPLETE = "complete"
    FAILED = "failed"  # Panopto could not process it (not resumable)
    CANCELLED = "cancelled"

    RESUMABLE = frozenset({UPLOADING, PROCESSING})


class UploadStep:
    """How far an upload in state ``uploading`` has got, recorded before each step is taken
    so that a resume (after ``kill -9``) starts where the last run stopped.

    ``created``: the sessionUpload exists; ``parts``: the multipart upload is open and parts
    go (each acknowledged part is a row of ``upload_parts``); ``completing``:
    CompleteMultipartUpload was sent, its answer not yet recorded; ``assembled``: the target
    answered it; ``manifest``: the manifest is there too; ``finishing``: State 1 is being sent
    (the point of no return). The upload's state then becomes ``processing``.
    """

    CREATED = "created"
    PARTS = "parts"
    COMPLETING = "completing"
    ASSEMBLED = "assembled"
    MANIFEST = "manifest"
    FINISHING = "finishing"
    """Past the point of no return: State 1 is being sent; a cancel is refused from here."""

    ORDER = (CREATED, PARTS, COMPLETING, ASSEMBLED, MANIFEST, FINISHING)

    @classmethod
    def reached(cls, step: str | None, at_least: str) -> bool:
        """Whether ``step`` is ``at_least`` or later (None counts as ``created``)."""
        return cls.ORDER.index(step or cls.CREATED) >= cls.ORDER.index(at_least)


class Upload(Base):
    """One file's upload to one sessionUpload."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    server: Mapped[str | None] = mapped_column(String(512))
    folder_id: Mapped[str] = mapped_column(String(64))
    session_upload_id: Mapped[str | None] = mapped_column(String(64), index=True)
    upload_target: Mapped[str | None] = mapped_column(String(1024))
    s3_upload_id: Mapped[str | None] = mapped_column(String(1024))
    object_key: Mapped[str] = mapped_column(String(1024))
    file_path: Mapped[str] = mapped_column(Text)
    file_size: Mapped[int] = mapped_column(BigInteger)
    file_mtime: Mapped[float] = mapped_column(Float)
    fingerprint: Mapped[str] = mapped_column(String(128))
    part_size: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    step: Mapped[str | None] = mapped_column(String(32))
    cancel_requested: Mapped[bool | None] = mapped_column(Boolean)
    session_id: Mapped[str | None] = mapped_column(String(64))
    viewer_url: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class UploadPart(Base):
    """An acknowledged part of an upload, with the ETag CompleteMultipartUpload needs."""

    __tablename__ = "upload_parts"

    upload_id: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    part_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    etag: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class UploadRecord:
    """A detached snapshot of an upload row plus its progress."""

    id: int
    account_id: int | None
    server: str | None
    folder_id: str
    session_upload_id: str | None
    upload_target: str | None
    s3_upload_id: str | None
    object_key: str
    file_path: str
    file_size: int
    file_mtime: float
    fingerprint: str
    part_size: int
    title: str
    description: str | None
    state: str
    step: str | None
    cancel_requested: bool | None
    session_id: str | None
    viewer_url: str | None
    message: str | None
    created_at: datetime
    updated_at: datetime
    bytes_done: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (for ``vidauth uploads --json``)."""
        return {
            "id": self.id,
            "upload_id": self.session_upload_id,
            "file": self.file_path,
            "size": self.file_size,
            "bytes_done": self.bytes_done,
            "progress": round(self.bytes_done / self.file_size, 4) if self.file_size else 1.0,
            "state": self.state,
            "folder_id": self.folder_id,
            "title": self.title,
            "session_id": self.session_id,
            "viewer_url": self.viewer_url,
            "message": self.message,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
        }


_FIELDS = [c.key for c in Upload.__table__.columns]


def _record(row: Upload, bytes_done: int = 0) -> UploadRecord:
    return UploadRecord(**{k: getattr(row, k) for k in _FIELDS}, bytes_done=bytes_done)


class UploadStore:
    """Data access for uploads (thread-safe: one short transaction per call)."""

    def __init__(self, db: Database) -> None:
        db.migrate()
        self.db = db

    def create(self, **fields: Any) -> UploadRecord:
        """Insert an upload row; answer its snapshot."""
        with self.db.write_session() as session:
            row = Upload(**fields)
            session.add(row)
            session.flush()
            return _record(row)

    def get(self, upload_id: int) -> UploadRecord | None:
        """One upload by row id, with progress."""
        with self.db.session() as session:
            row = session.get(Upload, upload_id)
            return None if row is None else _record(row, self._done(session, upload_id))

    def by_session_upload(self, session_upload_id: str) -> UploadRecord | None:
        """One upload by its sessionUpload ID."""
        with self.db.session() as session:
            row = session.scalars(
                select(Upload).where(Upload.session_upload_id == session_upload_id)
            ).first()
            return None if row is None else _record(row, self._done(session, row.id))

    def find(self, ident: str) -> UploadRecord | None:
        """One upload by row id (digits) or sessionUpload ID."""
        return self.get(int(ident)) if ident.isdigit() else self.by_session_upload(ident)

    def update(self, upload_id: int, **fields: Any) -> None:
        """Set fields of an upload row."""
        with self.db.write_session() as session:
            row = session.get(Upload, upload_id)
            if row is None:
                return
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = utcnow()

    def _locked(self, session: Any, upload_id: int) -> Upload | None:
        query = select(Upload).where(Upload.id == upload_id)
        if not self.db.is_sqlite:
            query = query.with_for_update()
        return session.scalars(query).first()

    def request_cancel(self, upload_id: int) -> bool:
        """Ask the process running the upload to stop and not publish it: True when that is a
        promise (the upload has not passed the point of no return), False when it is too late
        (State 1 is being sent or was: it will be published). One transaction on the row, so
        that :meth:`pass_point_of_no_return` and this never both succeed."""
        with self.db.write_session() as session:
            row = self._locked(session, upload_id)
            if row is None:
                return True
            if row.state in (UploadState.PROCESSING, UploadState.COMPLETE) or (
                row.step == UploadStep.FINISHING
            ):
                return False
            row.cancel_requested = True
            row.updated_at = utcnow()
            return True

    def cancel_requested_of(self, upload_id: int) -> bool:
        """Whether a cancel was asked for the upload."""
        with self.db.session() as session:
            return bool(
                session.scalar(select(Upload.cancel_requested).where(Upload.id == upload_id))
            )

    def pass_point_of_no_return(self, upload_id: int) -> bool:
        """Record step ``finishing`` unless a cancel was asked (then False: do not send
        State 1). One transaction on the row (see :meth:`request_cancel`)."""
        with self.db.write_session() as session:
            row = self._locked(session, upload_id)
            if row is None or row.cancel_requested:
                return False
            row.step = UploadStep.FINISHING
            row.updated_at = utcnow()
            return True

    def find_resumable(
        self, account_id: int | None, folder_id: str, file_path: str
    ) -> UploadRecord | None:
        """The newest unfinished upload of this file to this folder by this account."""
        with self.db.session() as session:
            row = session.scalars(
                select(Upload)
                .where(
                    Upload.account_id == account_id,
                    Upload.folder_id == folder_id,
                    Upload.file_path == file_path,
                    Upload.state.in_(UploadState.RESUMABLE),
                )
                .order_by(Upload.id.desc())
            ).first()
            return None if row is None else _record(row, self._done(session, row.id))

    def find_completed(
        self,
        *,
        account_id: int | None,
        server: str | None,
        folder_id: str,
        title: str,
        file_size: int,
        file_mtime: float,
        fingerprint: str,
    ) -> UploadRecord | None:
        """The newest completed upload of this very file (size, mtime, fingerprint) to this
        folder under this title, by this account on this server: rerunning it would make a
        second session with the same video."""
        with self.db.session() as session:
            row = session.scalars(
                select(Upload)
                .where(
                    Upload.account_id == account_id,
                    Upload.server == server,
                    Upload.folder_id == folder_id,
                    Upload.title == title,
                    Upload.file_size == file_size,
                    Upload.file_mtime == file_mtime,
                    Upload.fingerprint == fingerprint,
                    Upload.state == UploadState.COMPLETE,
                )
                .order_by(Upload.id.desc())
            ).first()
            return None if row is None else _record(row, self._done(session, row.id))

    def list_uploads(self, account_id: int | None = None, limit: int = 200) -> list[UploadRecord]:
        """Uploads, newest first, with progress."""
        with self.db.session() as session:
            query = select(Upload).order_by(Upload.id.desc()).limit(limit)
            if account_id is not None:
                query = query.where(Upload.account_id == account_id)
            rows = list(session.scalars(query))
            done = dict(
                session.execute(
                    select(UploadPart.upload_id, func.sum(UploadPart.size))
                    .where(UploadPart.upload_id.in_([r.id for r in rows]))
                    .group_by(UploadPart.upload_id)
                ).all()
            )
            return [_record(r, int(done.get(r.id) or 0)) for r in rows]

    def parts(self, upload_id: int) -> dict[int, tuple[str, int]]:
        """Recorded parts: number → (ETag, size)."""
        with self.db.session() as session:
            rows = session.execute(
                select(UploadPart.part_number, UploadPart.etag, UploadPart.size).where(
                    UploadPart.upload_id == upload_id
                )
            ).all()
            return {n: (etag, size) for n, etag, size in rows}

    def add_part(self, upload_id: int, number: int, etag: str, size: int) -> None:
        """Record (or replace) an acknowledged part; committed at once."""
        with self.db.write_session() as session:
            row = session.get(UploadPart, (upload_id, number))
            if row is None:
                session.add(
                    UploadPart(upload_id=upload_id, part_number=number, etag=etag, size=size)
                )
            else:
                row.etag, row.size = etag, size

    def replace_parts(self, upload_id: int, parts: dict[int, tuple[str, int]]) -> None:
        """Make the recorded parts exactly ``parts`` (after reconciling with ListParts)."""
        with self.db.write_session() as session:
            session.execute(delete(UploadPart).where(UploadPart.upload_id == upload_id))
            session.add_all(
                UploadPart(upload_id=upload_id, part_number=n, etag=etag, size=size)
                for n, (etag, size) in parts.items()
            )

    @staticmethod
    def _done(session: Any, upload_id: int) -> int:
        total = session.scalar(
            select(func.sum(UploadPart.size)).where(UploadPart.upload_id == upload_id)
        )
        return int(total or 0)
