"""The S3 signature scheme that worked, per upload host (the ``signature_hosts`` table).

Panopto's upload targets have accepted different signature schemes over time. When vidauth
has had to find out which one a host takes, it records the answer here so that later uploads,
and resumed ones, start with it and send no refused request.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from vidauth.store.db import Database
from vidauth.store.models import Base, utcnow
from vidauth.store.upsert import upsert_insert


class SignatureHost(Base):
    """The signature scheme (``s3v4``, ``s3`` or ``unsigned``) an upload host accepted."""

    __tablename__ = "signature_hosts"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    signature: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignatureHostStore:
    """Read and record the scheme per host (thread- and process-safe: one upsert per call)."""

    def __init__(self, db: Database) -> None:
        db.migrate()
        self.db = db

    def get(self, host: str) -> str | None:
        """The scheme recorded for ``host`` (``host[:port]``, lower case), or None."""
        with self.db.session() as session:
            return session.scalar(select(SignatureHost.signature).where(SignatureHost.host == host))

    def remember(self, host: str, signature: str) -> None:
        """Record that ``host`` accepts ``signature`` (replacing any earlier answer)."""
        insert = upsert_insert(self.db)
        now = utcnow()
        statement = insert(SignatureHost).values(host=host, signature=signature, updated_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[SignatureHost.host],
            set_={"signature": signature, "updated_at": now},
        )
        with self.db.write_session() as session:
            session.execute(statement)

    def forget(self, host: str) -> None:
        """Drop what is recorded for ``host``."""
        with self.db.write_session() as session:
            session.execute(delete(SignatureHost).where(SignatureHost.host == host))

    def all(self) -> dict[str, str]:
        """Every recorded host and its scheme."""
        with self.db.session() as session:
            return dict(session.execute(select(SignatureHost.host, SignatureHost.signature)).all())
