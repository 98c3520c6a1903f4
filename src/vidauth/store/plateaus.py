"""The parts in flight that filled the link to an upload host (the ``link_plateaus`` table).

An upload on a fast link with a long round trip needs many parts in flight, and finding the
number from a cold start takes several measurements of a second or more each. The number the
controller settled on (or had reached) is recorded per upload host, as the S3 signature is
(:mod:`vidauth.store.signatures`), so that the next upload to that host starts near it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from vidauth.store.db import Database
from vidauth.store.models import Base, utcnow
from vidauth.store.upsert import upsert_insert


class LinkPlateau(Base):
    """The parts in flight an upload host's link took."""

    __tablename__ = "link_plateaus"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    parts_in_flight: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PlateauStore:
    """Read and record the plateau per host (one upsert per call)."""

    def __init__(self, db: Database) -> None:
        db.migrate()
        self.db = db

    def get(self, host: str) -> int | None:
        """The parts in flight recorded for ``host`` (``host[:port]``, lower case), or None."""
        with self.db.session() as session:
            return session.scalar(
                select(LinkPlateau.parts_in_flight).where(LinkPlateau.host == host)
            )

    def remember(self, host: str, parts_in_flight: int) -> None:
        """Record ``parts_in_flight`` for ``host`` (replacing any earlier number)."""
        insert = upsert_insert(self.db)
        now = utcnow()
        statement = insert(LinkPlateau).values(
            host=host, parts_in_flight=parts_in_flight, updated_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[LinkPlateau.host],
            set_={"parts_in_flight": parts_in_flight, "updated_at": now},
        )
        with self.db.write_session() as session:
            session.execute(statement)

    def forget(self, host: str | None = None) -> None:
        """Forget the plateau of ``host``, or of every host (None): the next upload starts cold."""
        statement = delete(LinkPlateau)
        if host is not None:
            statement = statement.where(LinkPlateau.host == host)
        with self.db.write_session() as session:
            session.execute(statement)
