"""The dialect's ``INSERT … ON CONFLICT`` (an upsert), its dialect imported only when used.

SQLAlchemy's PostgreSQL dialect costs 20-50 ms to import; a command on the default SQLite
store (``vidauth upload``, on its way to the first byte) never needs it.
"""

from __future__ import annotations

from typing import Any

from vidauth.store.db import Database


def upsert_insert(db: Database) -> Any:
    """``insert`` of the database's dialect (SQLite's or PostgreSQL's), which has
    ``on_conflict_do_update``."""
    if db.is_sqlite:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert
