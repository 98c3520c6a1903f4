"""The ``signature_hosts`` table: migration equals model; upserts on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from tests.conftest import database_url
from vidauth.store import Database
from vidauth.store.signatures import SignatureHost, SignatureHostStore


def _database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    return Database(database_url(backend, tmp_path, request))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_migrated_table_equals_the_model(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = _database(backend, tmp_path, request)
    db.migrate()
    only_this = MetaData()
    SignatureHost.__table__.to_metadata(only_this)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _parent: (
                    kind != "table" or name == "signature_hosts"
                ),
            },
        )
        assert compare_metadata(context, only_this) == []
    db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_remember_get_replace_forget(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _database(backend, tmp_path, request)
    store = SignatureHostStore(db)
    assert store.get("upload.example.edu") is None
    store.remember("upload.example.edu", "s3v4")
    store.remember("127.0.0.1:9128", "unsigned")
    assert store.get("upload.example.edu") == "s3v4"
    store.remember("upload.example.edu", "s3")  # the platform switched again
    assert store.all() == {"upload.example.edu": "s3", "127.0.0.1:9128": "unsigned"}
    store.forget("upload.example.edu")
    assert store.get("upload.example.edu") is None and store.get("127.0.0.1:9128") == "unsigned"
    db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_writers_leave_one_row(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _database(backend, tmp_path, request)
    store = SignatureHostStore(db)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def write(scheme: str) -> None:
        barrier.wait()
        try:
            store.remember("racy.example.edu", scheme)
        except BaseException as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in ["s3", "s3v4", "unsigned"] * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert list(store.all()) == ["racy.example.edu"]
    assert store.get("racy.example.edu") in {"s3", "s3v4", "unsigned"}
    db.dispose()
