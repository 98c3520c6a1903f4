"""The service's tables' revisions: a chain of their own, above the store's, recorded in
``alembic_version_service``. Their ids are those they had when one chain held every table, so
databases made then go on upgrading (:mod:`vidauth.store.migrate` splits their record once)."""

from __future__ import annotations

from pathlib import Path

from vidauth.store.db import Database
from vidauth.store.migrate import SERVICE_VERSION_TABLE, MigrationTree

SERVICE = MigrationTree(
    "service", Path(__file__).with_name("migrations"), SERVICE_VERSION_TABLE, head="0016"
)


def migrate_service(db: Database) -> None:
    """Bring the store's tables, then the service's, to their newest revisions."""
    db.migrate(SERVICE)
