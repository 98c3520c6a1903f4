"""Single-flight refresh: 8 threads + 4 processes, one store, exactly one token request."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import SandboxSetup
from tests.oauth.test_signin_e2e import _count
from vidauth.store.models import Token

HELPER = Path(__file__).resolve().parents[1] / "helpers" / "refresh_worker.py"
ROOT = Path(__file__).resolve().parents[2]


def _expire_now(va: Any, account_id: int) -> None:
    """Make the stored access token look expired, as an hour passing would."""
    with va.store.db.write_session() as session:
        session.execute(update(Token).where(Token.account_id == account_id).values(expires_at=0))


def _race(
    sandbox: SandboxSetup,
    database_url: str | None,
    token_delay: float = 0.0,
    *,
    min_validity: float = 60.0,
    lifetime: int | None = None,
) -> None:
    extra = {"vidauth_database_url": database_url} if database_url else {}
    if lifetime is not None:
        sandbox.server.state.config.access_token_lifetime = lifetime
    with sandbox.vidauth(**extra) as va:
        account = sandbox.login(va)
        _expire_now(va, account.id)
        sandbox.server.state.token_delay = token_delay  # waiters poll the claim meanwhile
        refreshes_before = _count(sandbox.server.state.stats_snapshot(), "refresh_token")
        env = sandbox.env(PYTHONPATH=str(ROOT))
        if database_url:
            env["VIDAUTH_DATABASE_URL"] = database_url
        procs = [
            subprocess.Popen(
                [sys.executable, str(HELPER), str(min_validity)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        # One start line for all 12 once every process has imported and connected, however
        # long that took on a loaded machine (a fixed delay let a late process first look
        # after the refresh, and rightly refresh again).
        for p in procs:
            assert p.stdout is not None and p.stdin is not None
            assert p.stdout.readline().strip() == "ready", p.communicate(timeout=60)[1]
        start_at = time.time() + 0.5
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start_at}\n")
            p.stdin.flush()
        results: list[str] = []
        errors: list[BaseException] = []

        def thread_caller() -> None:
            try:
                manager = va.token_manager()
                time.sleep(max(0.0, start_at - time.time()))
                results.append(manager.access_token(min_validity))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=thread_caller) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            results.append(out.strip())
        assert not errors, errors
        assert len(results) == 12
        assert len(set(results)) == 1, "every caller must receive the same new token"
        stored = va.store.load_tokens(account.id)
        assert stored is not None and stored.access_token == results[0]
        assert va.store.account_status(account.id) == "active"
    refreshes = _count(sandbox.server.state.stats_snapshot(), "refresh_token") - refreshes_before
    assert refreshes == 1


def test_one_refresh_for_12_callers_sqlite(sandbox: SandboxSetup) -> None:
    _race(sandbox, None)


@pytest.mark.postgres
def test_one_refresh_for_12_callers_postgres(sandbox: SandboxSetup, postgres_url: str) -> None:
    _race(sandbox, postgres_url)


def test_one_refresh_for_12_callers_while_the_endpoint_is_slow_sqlite(
    sandbox: SandboxSetup,
) -> None:
    _race(sandbox, None, token_delay=1.5)


@pytest.mark.postgres
def test_one_refresh_for_12_callers_while_the_endpoint_is_slow_postgres(
    sandbox: SandboxSetup, postgres_url: str
) -> None:
    _race(sandbox, postgres_url, token_delay=1.5)


def test_one_refresh_when_callers_ask_for_longer_than_tokens_live(sandbox: SandboxSetup) -> None:
    """Tokens live 20 s and every caller asks for 60 s of validity: the first refresh serves
    them all. (Each waiter used to refresh again after the one before it, rotating the grant
    once per caller.) The refresh takes 3 s, so that every caller has looked at the stale
    token before it ends, even on a loaded machine: a caller that first looks at the new
    token finds it too short for 60 s and rightly refreshes again."""
    _race(sandbox, None, token_delay=3.0, min_validity=60.0, lifetime=20)
