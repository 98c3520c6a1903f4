"""A password sign-in for a client not allowed offline access (IdentityServer's invalid_scope)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vidauth.cli import run
from vidauth.config import Secret
from vidauth.errors import OAuthError, SignInRequired


@pytest.fixture
def strict(make_sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    sandbox = make_sandbox(password_offline_access=False)
    for name, value in sandbox.flags().items():
        monkeypatch.setenv(name.upper(), str(value))
    return sandbox


def test_invalid_scope_asks_once_more_without_offline_access(strict: Any) -> None:
    with strict.vidauth() as va:
        account = va.login_password("alice", Secret("alice-sandbox-password"))
        assert not account.has_refresh_token and account.username == "alice"
        assert "offline_access" not in (account.scope or "").split()
        stats = strict.server.state.stats_snapshot()
        assert stats["token_requests"]["password"] == 2  # once refused, once without it
        # nothing renews it: once the access token is spent, sign in again
        with pytest.raises(SignInRequired):
            va.token_manager().tokens(min_validity=10**9)


def test_a_wrong_password_is_not_asked_twice(strict: Any) -> None:
    with strict.vidauth() as va, pytest.raises(OAuthError) as info:
        va.login_password("alice", Secret("wrong"))
    assert info.value.error == "invalid_grant"
    assert strict.server.state.stats_snapshot()["token_requests"]["password"] == 1


def test_the_cli_says_when_the_sign_in_ends(
    strict: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALICE_PW", "alice-sandbox-password")
    assert run(["login", "--username", "alice", "--password", "env:ALICE_PW"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("Signed in as alice")
    assert len(err) == 2 and err[1].startswith("No refresh token was granted")
    assert "ends at" in err[1]
    assert run(["status", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["accounts"]
    assert row["refreshable"] is False and row["ends_at"] == row["expires_at"]
    assert run(["status"]) == 0
    assert "no: ends" in capsys.readouterr().out
