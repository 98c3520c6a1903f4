"""The lean ``vidauth token`` answers exactly what the full command would, or defers."""

from __future__ import annotations

import pytest

from tests.conftest import SandboxSetup
from vidauth._fastpath import _server, cached_token
from vidauth.config import normalize_server


@pytest.mark.parametrize(
    "server",
    [
        "deakin.au.panopto.com",
        "https://deakin.au.panopto.com",
        "https://deakin.au.panopto.com/",
        "example.com:8443",
        "Deakin.au.panopto.com",
        "http://127.0.0.1:9",
        "https://x/Panopto",
        "-bad",
        "a..b",
        "",
    ],
)
def test_server_key_agrees_or_defers(server: str) -> None:
    fast = _server(server)
    if fast is not None:
        assert fast == normalize_server(server)


def test_fastpath_matches_full_path(sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sandbox is plain http on loopback, which the fast path leaves to the full path
    monkeypatch.setenv("PANOPTO_SERVER", sandbox.server.url)
    monkeypatch.setenv("PANOPTO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("VIDAUTH_HOME", str(sandbox.home))
    with sandbox.vidauth() as va:
        sandbox.login(va)
    assert cached_token() is None


def test_fastpath_reads_the_store(sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same store and key as the full path, seen through an https profile key."""
    import time

    from vidauth.store import Database, TokenSet, TokenStore

    home = sandbox.home
    store = TokenStore.open(Database(f"sqlite:///{home / 'vidauth.db'}"), home, ())

    def store_token(value: str, lifetime: float) -> None:
        store.save_grant(
            profile_key="panopto|https://panopto.example.com|client-1",
            subject="s",
            username="u",
            server="https://panopto.example.com",
            client_id="client-1",
            tokens=TokenSet(access_token=value, expires_at=time.time() + lifetime),
        )

    store_token("tok-123456", 3600)
    monkeypatch.setenv("PANOPTO_SERVER", "panopto.example.com")
    monkeypatch.setenv("PANOPTO_CLIENT_ID", "client-1")
    monkeypatch.setenv("VIDAUTH_HOME", str(home))
    assert cached_token() == "tok-123456"
    store_token("tok-expiring", 30)
    assert cached_token() is None  # fewer than 60 s left: the full path refreshes
    monkeypatch.setenv("VIDAUTH_PROFILE", "other")
    assert cached_token() is None
