"""The store's cache of discovery documents and JWKS: public JSON with an expiry, per URL."""

from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from vidauth.store.db import Database
from vidauth.store.models import DiscoveryCacheEntry


class StoredDocument:
    """One cached document as read from the store (``body`` None: the last fetch failed)."""

    __slots__ = ("body", "expires_at", "fetched_at", "url")

    def __init__(self, url: str, body: str | None, fetched_at: float, expires_at: float) -> None:
        self.url = url
        self.body = body
        self.fetched_at = fetched_at
        self.expires_at = expires_at


class StoreDiscoveryCache:
    """Discovery documents and JWKS kept in the store, shared by every process using it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, url: str) -> StoredDocument | None:
        """The cached entry for ``url`` (fresh or not), or None."""
        with self.db.session() as session:
            row = session.get(DiscoveryCacheEntry, url)
            if row is None:
                return None
            return StoredDocument(row.url, row.body, row.fetched_at, row.expires_at)

    def put(
        self, url: str, kind: str, body: str | None, *, fetched_at: float, expires_at: float
    ) -> None:
        """Store (or replace) the entry for ``url``; ``body`` None records a failed fetch."""
        for attempt in (1, 2):
            try:
                with self.db.write_session() as session:
                    row = session.get(DiscoveryCacheEntry, url)
                    if row is None:
                        row = DiscoveryCacheEntry(url=url, kind=kind)
                        session.add(row)
                    row.kind = kind
                    row.body = body
                    row.fetched_at = fetched_at
                    row.expires_at = expires_at
                return
            except IntegrityError:
                # Another process inserted the row first (PostgreSQL, no write lock up front):
                # the second attempt finds it and updates it.
                if attempt == 2:
                    raise

    def extend(self, url: str, expires_at: float) -> None:
        """Keep the entry (a stale document after a failed refetch) until ``expires_at``."""
        with self.db.write_session() as session:
            session.execute(
                update(DiscoveryCacheEntry)
                .where(DiscoveryCacheEntry.url == url)
                .values(expires_at=expires_at)
            )

    def claim_refetch(self, url: str, now: float, min_interval: float) -> bool:
        """True for the one caller allowed to refetch ``url`` now: none did within
        ``min_interval`` seconds (an atomic compare-and-set, so it holds across processes)."""
        with self.db.write_session() as session:
            if session.get(DiscoveryCacheEntry, url) is None:
                return True  # nothing cached: an ordinary fetch, not rate-limited
            result = session.execute(
                update(DiscoveryCacheEntry)
                .where(
                    DiscoveryCacheEntry.url == url,
                    or_(
                        DiscoveryCacheEntry.refetched_at.is_(None),
                        DiscoveryCacheEntry.refetched_at <= now - min_interval,
                    ),
                )
                .values(refetched_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def urls(self) -> list[str]:
        """Every cached URL (for tests and diagnostics)."""
        with self.db.session() as session:
            return list(session.scalars(select(DiscoveryCacheEntry.url)))
