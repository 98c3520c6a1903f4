"""Alembic, driven from code: the schema is upgraded when a store is opened."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

    from vidauth.store.db import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision; a test checks it equals Alembic's head, so opening an up-to-date store
# needs no Alembic import at all.
HEAD_REVISION = "0015"


def alembic_config(db: Database) -> Config:
    """An Alembic Config pointing at the packaged migrations and ``db``'s URL."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def current_revision(db: Database) -> str | None:
    """The revision stamped in the database, or None for a new database."""
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(db: Database) -> None:
    """Run the migrations the database has not seen yet."""
    if current_revision(db) == HEAD_REVISION:
        return
    from alembic import command

    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
