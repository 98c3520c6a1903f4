"""Migration 0016 splits the job errors stored as ``"<code>: <detail>"`` into two columns, and
its downgrade packs them again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from tests.conftest import database_url
from vidauth.service.migrate import SERVICE
from vidauth.store import Database
from vidauth.store.migrate import alembic_config

# (id, error as written before 0016) → (error_code, error) after it
ROWS = {
    "coded": (
        "folder_not_found: no folder named 'X: Y'",
        ("folder_not_found", "no folder named 'X: Y'"),
    ),
    "plain": ("cancelled", (None, "cancelled")),
    "unknown_code": ("nonsense: a line", (None, "nonsense: a line")),
    "none": (None, (None, None)),
}


def _to(db: Database, revision: str, downgrade: bool = False) -> None:
    cfg = alembic_config(db.engine, SERVICE)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_old_packed_job_errors_are_split_and_packed_back(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = Database(database_url(backend, tmp_path, request))
    try:
        db.migrate()  # the store's tables, which the service's revisions build on
        _to(db, "0015")
        with db.engine.begin() as conn:
            for job_id, (error, _) in ROWS.items():
                conn.execute(
                    text(
                        "INSERT INTO service_jobs (id, tenant, external_user_id, file_path,"
                        " owns_file, folder, title, state, bytes_total, bytes_sent, error,"
                        " attempts, cancel_requested, next_attempt_at, created_at, updated_at)"
                        " VALUES (:id, 't', 'u', '/f', false, 'F', 'T', 'failed', 1, 0, :error,"
                        " 1, false, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": job_id, "error": error},
                )
        _to(db, "0016")
        with db.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, error_code, error FROM service_jobs")).all()
        split = {job_id: (code, error) for job_id, code, error in rows}
        assert split == {job_id: after for job_id, (_, after) in ROWS.items()}

        _to(db, "0015", downgrade=True)
        with db.engine.connect() as conn:
            packed = dict(conn.execute(text("SELECT id, error FROM service_jobs")).all())
        assert packed == {job_id: before for job_id, (before, _) in ROWS.items()}
    finally:
        db.dispose()
