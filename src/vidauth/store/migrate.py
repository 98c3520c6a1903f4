"""Alembic, driven from code: the schema is upgraded when a store is opened.

Works on an SQLAlchemy ``Engine``, so that :mod:`vidauth.store.db` (which calls it) and this
module do not import each other."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The newest revision; a test checks it equals Alembic's head, so opening an up-to-date store
# needs no Alembic import at all.
HEAD_REVISION = "0016"


def alembic_config(engine: Engine) -> Config:
    """An Alembic Config pointing at the packaged migrations and ``engine``'s database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = engine.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for a new database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_to_head(engine: Engine) -> None:
    """Run the migrations the database has not seen yet."""
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
