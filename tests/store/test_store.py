"""The token store on SQLite and PostgreSQL: migrations, encryption, keys, atomic writes."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import database_url
from vidauth.config import Secret
from vidauth.errors import StoreError
from vidauth.oauth.token_response import token_set
from vidauth.service.migrate import SERVICE
from vidauth.store import Database, TokenSet, TokenStore
from vidauth.store.crypto import create_key_file
from vidauth.store.migrate import STORE, MigrationTree, alembic_config, current_revision


def _grant(store: TokenStore, access: str = "access-1", refresh: str | None = "refresh-1") -> int:
    info = store.save_grant(
        profile_key="panopto|https://p.example.com|c",
        subject="sub-1",
        username="alice",
        server="https://p.example.com",
        client_id="c",
        tokens=TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=time.time() + 3600,
            scope="openid api",
        ),
    )
    return info.id


@pytest.mark.parametrize("tree", [STORE, SERVICE], ids=["store", "service"])
def test_head_constant_matches_alembic(tree: MigrationTree, tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    head = ScriptDirectory.from_config(alembic_config(db.engine, tree)).get_current_head()
    assert head == tree.head
    db.migrate(tree)
    assert current_revision(db.engine, tree) == tree.head


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_round_trip_and_versioning(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = database_url(backend, tmp_path, request)
    store = TokenStore.open(Database(url), tmp_path, ())
    account_id = _grant(store)
    again = _grant(store, access="access-2", refresh="refresh-2")
    assert again == account_id  # same profile + subject → same account
    tokens = store.load_tokens(account_id)
    assert tokens is not None and tokens.access_token == "access-2"
    with store.lock_grant(account_id) as grant:
        assert grant.version == 2
        grant.replace(TokenSet(access_token="access-3", refresh_token="refresh-3"))
    assert store.load_tokens(account_id).refresh_token == "refresh-3"  # type: ignore[union-attr]
    [info] = store.list_accounts()
    assert info.username == "alice" and info.has_refresh_token
    store.delete_account(account_id)
    assert store.list_accounts() == [] and store.load_tokens(account_id) is None
    store.db.dispose()


def test_failed_write_leaves_previous_grant(tmp_path: Path) -> None:
    store = TokenStore.open(Database(f"sqlite:///{tmp_path / 'x.db'}"), tmp_path, ())
    account_id = _grant(store)
    with pytest.raises(RuntimeError), store.lock_grant(account_id) as grant:
        grant.replace(TokenSet(access_token="half-written", refresh_token="never-saved"))
        raise RuntimeError("crash between the write and the commit")
    assert store.load_tokens(account_id).access_token == "access-1"  # type: ignore[union-attr]


def test_key_rotation_with_multifernet(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    store = TokenStore.open(Database(db_url), tmp_path, (Secret(old),))
    account_id = _grant(store)
    rotated = TokenStore.open(Database(db_url), tmp_path, (Secret(new), Secret(old)))
    assert rotated.load_tokens(account_id).access_token == "access-1"  # type: ignore[union-attr]
    with pytest.raises(StoreError, match="cannot be decrypted"):
        TokenStore.open(Database(db_url), tmp_path, (Secret(new),)).load_tokens(account_id)


def test_generated_key_is_reused_and_never_replaced(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'x.db'}"
    store = TokenStore.open(Database(db_url), tmp_path, ())
    account_id = _grant(store)
    key = (tmp_path / "secret.key").read_bytes()
    assert TokenStore.open(Database(db_url), tmp_path, ()).load_tokens(account_id) is not None
    (tmp_path / "secret.key").unlink()
    with pytest.raises(StoreError, match="no key"):
        TokenStore.open(Database(db_url), tmp_path, ())
    assert not (tmp_path / "secret.key").exists()
    del key


def _make_key(home: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(create_key_file(Path(home)))


def test_concurrent_key_creation_agrees(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_make_key, args=(str(tmp_path), queue)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    keys = {queue.get(timeout=5) for _ in procs}
    assert len(keys) == 1
    assert (tmp_path / "secret.key").read_bytes().strip() in keys


def test_token_set_parses_string_expiry() -> None:
    tokens = token_set(
        {"access_token": "a", "token_type": "bearer", "expires_in": "86400"}, now=1000.0
    )
    assert tokens.expires_at == 87400.0
    assert "zq-secret-value" not in repr(
        TokenSet(access_token="zq-secret-value", refresh_token="zq-secret-value")
    )


# -- the refresh claim ----------------------------------------------------------------------


def _always(_tokens: TokenSet | None, _status: str) -> bool:
    return True


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_refresh_claim_is_exclusive_until_released(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = database_url(backend, tmp_path, request)
    store = TokenStore.open(Database(url), tmp_path, ())
    account_id = _grant(store)
    first = store.claim_refresh(account_id, "elsewhere:1:a", 60, _always)
    assert first.held and first.tokens is not None and first.tokens.refresh_token == "refresh-1"
    second = store.claim_refresh(account_id, "elsewhere:2:b", 60, _always)
    assert not second.held and second.busy_until is not None
    store.finish_refresh(
        account_id, "elsewhere:1:a", TokenSet(access_token="new", refresh_token="r2"), "refreshed"
    )
    third = store.claim_refresh(account_id, "elsewhere:2:b", 60, _always)
    assert third.held and third.tokens is not None and third.tokens.refresh_token == "r2"
    not_wanted = store.claim_refresh(account_id, "elsewhere:3:c", 60, lambda t, s: False)
    assert not not_wanted.held and not_wanted.busy_until is None
    store.db.dispose()


def test_refresh_claim_of_a_dead_process_or_a_lapsed_lease_is_taken_over(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    store = TokenStore.open(Database(f"sqlite:///{tmp_path / 'x.db'}"), tmp_path, ())
    account_id = _grant(store)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert store.claim_refresh(account_id, f"{socket.gethostname()}:{gone.pid}:x", 600, _always)
    assert store.claim_refresh(account_id, "other:1:y", 0.3, _always).held  # dead: taken over
    assert not store.claim_refresh(account_id, "other:2:z", 600, _always).held  # alive elsewhere
    time.sleep(0.6)
    assert store.claim_refresh(account_id, "other:2:z", 600, _always).held  # lease lapsed


# -- files at rest --------------------------------------------------------------------------


def test_home_and_database_are_private_from_creation(tmp_path: Path) -> None:
    import os

    home = tmp_path / "home"
    old = os.umask(0o022)
    try:
        store = TokenStore.open(Database(f"sqlite:///{home / 'vidauth.db'}"), home, ())
        _grant(store)
        files = [home / "vidauth.db", home / "vidauth.db-wal", home / "vidauth.db-shm"]
        assert all(f.exists() for f in files)
        assert home.stat().st_mode & 0o777 == 0o700
        assert {f.stat().st_mode & 0o777 for f in files} == {0o600}
        assert (home / "secret.key").stat().st_mode & 0o777 == 0o600
        store.db.dispose()
    finally:
        os.umask(old)


def test_too_open_home_and_database_are_tightened_and_reported(tmp_path: Path) -> None:
    import os

    from vidauth.store.db import file_mode_problems

    home = tmp_path / "home"
    db_path = home / "vidauth.db"
    store = TokenStore.open(Database(f"sqlite:///{db_path}"), home, ())
    _grant(store)
    store.db.dispose()
    os.chmod(home, 0o755)  # noqa: S103 - the mistake under test
    os.chmod(db_path, 0o644)
    problems = file_mode_problems(home, db_path)
    assert any("is 755" in p for p in problems) and any("is 644" in p for p in problems)
    again = TokenStore.open(Database(f"sqlite:///{db_path}"), home, ())
    again.list_accounts()
    assert file_mode_problems(home, db_path) == []
    again.db.dispose()
