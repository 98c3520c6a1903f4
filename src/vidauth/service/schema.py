"""Bring a store up to the service's schema (revision 0003) once per process."""

from __future__ import annotations

import threading

from vidauth.service.models import SERVICE_REVISION
from vidauth.store.db import Database

_lock = threading.Lock()
_ready: set[str] = set()


def ensure_service_schema(db: Database) -> None:
    """Migrate ``db`` to at least the service revision (safe across processes)."""
    with _lock:
        if db.url in _ready:
            return
        from vidauth.store.migrate import alembic_config, current_revision
        from vidauth.store.uploads import ensure_schema

        ensure_schema(db)
        if current_revision(db) != SERVICE_REVISION:
            from alembic import command

            with db._cross_process_migration_lock():
                if current_revision(db) != SERVICE_REVISION:
                    cfg = alembic_config(db)
                    with db.engine.begin() as conn:
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, "head")
        _ready.add(db.url)
