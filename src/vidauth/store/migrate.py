"""Alembic, driven from code: the schema is upgraded when a store is opened.

Each owner of tables keeps its own chain of revisions and its own version table: the store's
(:data:`STORE`, in ``store/migrations``, recorded in ``alembic_version``) and, above it, the
service's (:data:`vidauth.service.migrate.SERVICE`), which its caller hands to
:meth:`vidauth.store.db.Database.migrate`. The store never imports the layers above it.

Works on an SQLAlchemy ``Engine``, so that :mod:`vidauth.store.db` (which calls it) and this
module do not import each other."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine


@dataclass(frozen=True)
class MigrationTree:
    """One owner's chain of Alembic revisions and the table recording how far a database got.

    ``head`` is the newest revision; a test checks it equals Alembic's, so opening an
    up-to-date database needs no Alembic import at all."""

    name: str
    directory: Path
    version_table: str
    head: str


STORE = MigrationTree(
    "store", Path(__file__).with_name("migrations"), "alembic_version", head="0014"
)

# Until the service's revisions had a chain of their own, one chain in ``alembic_version``
# held both. A database stamped from it is split once (see _split_legacy_versions).
_LEGACY_CHAIN = tuple(f"{n:04d}" for n in range(1, 16))
_LEGACY_SERVICE_REVISIONS = frozenset({"0003", "0005", "0008", "0013", "0015"})
_LEGACY_SERVICE_TABLE = "service_jobs"  # there from the first service revision on
SERVICE_VERSION_TABLE = "alembic_version_service"


def alembic_config(engine: Engine, tree: MigrationTree = STORE) -> Config:
    """An Alembic Config for ``tree``'s revisions on ``engine``'s database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(tree.directory))
    url = engine.url.render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(engine: Engine, tree: MigrationTree = STORE) -> str | None:
    """The revision of ``tree`` stamped in the database, or None when it has none yet."""
    with engine.connect() as conn:
        return _stamped(conn, tree.version_table)


def _stamped(conn: Connection, version_table: str) -> str | None:
    if not inspect(conn).has_table(version_table):
        return None
    return conn.execute(text(f"SELECT version_num FROM {version_table}")).scalar()  # noqa: S608


def upgrade_to_head(engine: Engine, tree: MigrationTree = STORE) -> None:
    """Run the revisions of ``tree`` the database has not seen yet."""
    if current_revision(engine, tree) == tree.head:
        return
    from alembic import command

    cfg = alembic_config(engine, tree)
    with engine.begin() as conn:
        _split_legacy_versions(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _split_legacy_versions(conn: Connection) -> None:
    """Once, for a database stamped from the single chain: ``alembic_version`` keeps the
    store's last revision applied, and the service's version table gets the service's.

    The revision ids did not change, so each chain goes on from where that database was."""
    schema = inspect(conn)
    if schema.has_table(SERVICE_VERSION_TABLE) or not schema.has_table(_LEGACY_SERVICE_TABLE):
        return
    stamped = _stamped(conn, STORE.version_table)
    if stamped not in _LEGACY_CHAIN:
        return
    applied = _LEGACY_CHAIN[: _LEGACY_CHAIN.index(stamped) + 1]
    store = [rev for rev in applied if rev not in _LEGACY_SERVICE_REVISIONS][-1]
    service = [rev for rev in applied if rev in _LEGACY_SERVICE_REVISIONS][-1]
    conn.execute(text("UPDATE alembic_version SET version_num = :rev"), {"rev": store})
    table = Table(
        SERVICE_VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{SERVICE_VERSION_TABLE}_pkc"),
    )
    table.create(conn)
    conn.execute(table.insert().values(version_num=service))


def run_environment(metadata: MetaData, version_table: str, owns: Callable[[str], bool]) -> None:
    """The body of a tree's Alembic ``env.py``: online migrations on the connection vidauth
    hands over in ``config.attributes`` (or one made from the URL), recording them in
    ``version_table``; ``owns`` names the tables autogenerate compares (the others belong to
    another tree)."""
    from alembic import context
    from sqlalchemy import create_engine

    def include_object(_obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        return type_ != "table" or (name is not None and owns(name))

    options: dict[str, Any] = {
        "target_metadata": metadata,
        "render_as_batch": True,
        "version_table": version_table,
        "include_object": include_object,
    }
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
