"""What each upload host answered to the optional S3 calls (the ``upload_host_calls`` table).

Every public client of Panopto's upload target uses only CreateMultipartUpload, UploadPart,
CompleteMultipartUpload and AbortMultipartUpload; whether the target answers anything else
(ListParts) is unknown. vidauth tries such a call at most once per host and records here
whether it worked (``ok``) or was refused (``refused``, with the S3 error), so that later
uploads, in this process or another, do not ask again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, select
from sqlalchemy.orm import Mapped, mapped_column

from vidauth.store.db import Database
from vidauth.store.models import Base, utcnow
from vidauth.store.upsert import upsert_insert

OK = "ok"
REFUSED = "refused"


class UploadHostCall(Base):
    """The answer of one upload host to one optional S3 call."""

    __tablename__ = "upload_host_calls"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    call: Mapped[str] = mapped_column(String(32), primary_key=True)
    answer: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HostCallStore:
    """Read and record the answers per (host, call) (one upsert per call)."""

    def __init__(self, db: Database) -> None:
        db.migrate()
        self.db = db

    def get(self, host: str, call: str) -> str | None:
        """``ok``, ``refused`` or None (never tried) for ``call`` on ``host``."""
        with self.db.session() as session:
            return session.scalar(
                select(UploadHostCall.answer).where(
                    UploadHostCall.host == host, UploadHostCall.call == call
                )
            )

    def remember(self, host: str, call: str, answer: str, detail: str | None = None) -> None:
        """Record ``answer`` for ``call`` on ``host`` (replacing any earlier one)."""
        insert = upsert_insert(self.db)
        now = utcnow()
        statement = insert(UploadHostCall).values(
            host=host, call=call, answer=answer, detail=detail, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[UploadHostCall.host, UploadHostCall.call],
            set_={"answer": answer, "detail": detail, "updated_at": now},
        )
        with self.db.write_session() as session:
            session.execute(statement)

    def all(self) -> list[tuple[str, str, str, str | None]]:
        """Every recorded (host, call, answer, detail), by host."""
        with self.db.session() as session:
            rows = session.execute(
                select(
                    UploadHostCall.host,
                    UploadHostCall.call,
                    UploadHostCall.answer,
                    UploadHostCall.detail,
                ).order_by(UploadHostCall.host, UploadHostCall.call)
            ).all()
            return [(h, c, a, d) for h, c, a, d in rows]
