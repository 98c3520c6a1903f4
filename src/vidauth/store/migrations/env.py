"""Alembic environment of the store's revisions (recorded in ``alembic_version``).

``target_metadata`` must hold every table of the store, or ``alembic revision --autogenerate``
would propose dropping the ones it cannot see. The store's tables are declared in several modules
on one ``Base``; importing them here keeps the list in one place. Tables of the layers above (the
service's) have their own revisions and are left out of the comparison.
``tests/store/test_migrations.py`` checks the list is complete.
"""

from __future__ import annotations

# Imported for their side effect: each registers its tables on Base.metadata.
import vidauth.store.host_calls
import vidauth.store.leases
import vidauth.store.plateaus
import vidauth.store.signatures
import vidauth.store.uploads  # noqa: F401
from vidauth.store.migrate import STORE, run_environment
from vidauth.store.models import Base

STORE_TABLES = frozenset(Base.metadata.tables)

run_environment(Base.metadata, STORE.version_table, STORE_TABLES.__contains__)
