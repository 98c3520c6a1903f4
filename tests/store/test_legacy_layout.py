"""A database made when one Alembic chain held every table (store and service, revisions 0001 to
0015 in ``alembic_version``) upgrades to the split layout with nothing lost, whichever layer
opens it first: its record is split once, and each chain goes on from where it was.

``data/legacy_0015_schema.sql`` is the SQLite schema that chain built at 0015, dumped before the
service's revisions moved to ``vidauth/service/migrations``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.conftest import database_url
from tests.store.test_migrations import every_model, schema_differences
from vidauth.service.migrate import SERVICE, migrate_service
from vidauth.store import Database
from vidauth.store.migrate import STORE, current_revision

LEGACY_SCHEMA = Path(__file__).with_name("data") / "legacy_0015_schema.sql"

ACCOUNT = (
    "INSERT INTO accounts (id, profile_key, subject, username, client_id, grant_type, status,"
    " created_at, last_login_at) VALUES (7, 'p', 'sub-7', 'alice', 'c', 'authorization_code',"
    " 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
JOB = (
    "INSERT INTO service_jobs (id, tenant, external_user_id, file_path, owns_file, folder, title,"
    " state, bytes_total, bytes_sent, error, attempts, cancel_requested, next_attempt_at,"
    " created_at, updated_at) VALUES ('job-1', 't', 'u', '/f', false, 'F', 'T', 'failed', 1, 0,"
    " 'folder_not_found: no folder named F', 1, false, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def _legacy_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(LEGACY_SCHEMA.read_text())
        conn.execute(ACCOUNT)
        conn.execute(JOB)
    return f"sqlite:///{path}"


def _legacy_postgres(url: str) -> str:
    """The same state on PostgreSQL: the tables the single chain had built at 0015 (the
    revisions are unchanged), stamped the way it stamped them."""
    db = Database(url)
    try:
        db.migrate()
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
        from alembic import command

        from vidauth.store.migrate import alembic_config

        cfg = alembic_config(db.engine, SERVICE)
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0014'"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0015")
        with db.engine.begin() as conn:
            conn.execute(text("DROP TABLE alembic_version_service"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0015'"))
            conn.execute(text(ACCOUNT))
            conn.execute(text(JOB))
    finally:
        db.dispose()
    return url


@pytest.mark.parametrize("first", ["store", "service"])
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_database_of_the_single_chain_upgrades_with_nothing_lost(
    backend: str, first: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = _legacy_sqlite(tmp_path)
    else:
        url = _legacy_postgres(database_url(backend, tmp_path, request))
    db = Database(url)
    try:
        if first == "store":  # the command line opens it first: the store's tables only
            db.migrate()
            assert current_revision(db.engine, STORE) == STORE.head
            assert current_revision(db.engine, SERVICE) == "0015"
        migrate_service(db)
        assert current_revision(db.engine, STORE) == STORE.head
        assert current_revision(db.engine, SERVICE) == SERVICE.head
        with db.engine.connect() as conn:
            account = conn.execute(text("SELECT subject, username FROM accounts")).all()
            job = conn.execute(text("SELECT id, error_code, error FROM service_jobs")).all()
            schema = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert schema_differences(schema, every_model()) == []
        assert account == [("sub-7", "alice")]
        assert job == [("job-1", "folder_not_found", "no folder named F")]
    finally:
        db.dispose()
