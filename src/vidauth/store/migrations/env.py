"""Alembic environment: runs on the connection vidauth hands over in ``config.attributes``.

``target_metadata`` must hold every table a migration creates, or ``alembic revision
--autogenerate`` would propose dropping the ones it cannot see. The tables are declared in three
modules on one ``Base``; importing them here (and nowhere else in the store) keeps the store's
import graph free of the service. ``tests/store/test_migrations.py`` checks the list is complete.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

# Imported for their side effect: each registers its tables on Base.metadata.
import vidauth.service.models
import vidauth.store.host_calls
import vidauth.store.leases
import vidauth.store.plateaus
import vidauth.store.signatures
import vidauth.store.uploads  # noqa: F401
from vidauth.store.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Online migrations only: on the given connection, or one made from the URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
