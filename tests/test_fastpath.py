"""The lean ``vidauth token`` answers exactly what the full command would, or defers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SandboxSetup
from vidauth._fastpath import (
    LATEST_GRANT_SQL,
    VARIABLES,
    cached_token,
    compiled_token_query,
    default_profile_key,
)
from vidauth.config import EnvSettings, load_settings
from vidauth.errors import ConfigError


@pytest.mark.parametrize(
    "server",
    [
        "deakin.au.panopto.com",
        "https://deakin.au.panopto.com",
        "https://deakin.au.panopto.com/",
        "example.com:8443",
        "Deakin.au.panopto.com",
        "http://127.0.0.1:9",
        "http://[::1]:8080/x",
        "https://x/Panopto",
        "http://deakin.au.panopto.com",
        "-bad",
        "a..b",
        "exa mple.com",
        "",
    ],
)
def test_profile_key_agrees_or_defers(server: str) -> None:
    env = {"PANOPTO_SERVER": server, "PANOPTO_CLIENT_ID": "c", "PANOPTO_CLIENT_SECRET": "s"}
    fast = default_profile_key(env)
    try:
        full = load_settings(env_file=False, **{k.lower(): v for k, v in env.items()}).profile()
    except ConfigError:
        assert fast is None
    else:
        assert fast == full.key


def test_query_is_the_one_sqlalchemy_compiles_from_the_tables() -> None:
    assert compiled_token_query() == LATEST_GRANT_SQL


def test_reads_only_settings_the_full_path_knows() -> None:
    assert {name.lower() for name in VARIABLES} <= set(EnvSettings.model_fields)


def test_fastpath_matches_full_path(sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sandbox.env().items():
        if name.startswith(("PANOPTO_", "VIDAUTH_")):
            monkeypatch.setenv(name, value)
    with sandbox.vidauth() as va:
        sandbox.login(va)
        full = va.token_manager().access_token(60)
    assert cached_token() == full
    monkeypatch.setenv("PANOPTO_REDIRECT_URI", "http://example.com/redirect")
    assert cached_token() is None  # the full path refuses this redirect URI: so does this one
    monkeypatch.delenv("PANOPTO_REDIRECT_URI")
    monkeypatch.setenv("VIDAUTH_SECRET_KEY", " , ")
    assert cached_token() is None  # set but empty: an error on the full path


def test_fastpath_reads_the_store(sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same store and key as the full path, seen through an https profile key."""
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
    monkeypatch.setenv("PANOPTO_CLIENT_SECRET", "secret-1")
    monkeypatch.setenv("VIDAUTH_HOME", str(home))
    assert cached_token() == "tok-123456"
    store_token("tok-expiring", 30)
    assert cached_token() is None  # fewer than 60 s left: the full path refreshes
    monkeypatch.setenv("VIDAUTH_PROFILE", "other")
    assert cached_token() is None


def test_fastpath_imports_neither_sqlalchemy_nor_pydantic(
    sandbox: SandboxSetup, tmp_path: Path
) -> None:
    """Its speed comes from what it does not import; the whole process is checked."""
    from vidauth.store import Database, TokenSet, TokenStore

    home = sandbox.home
    store = TokenStore.open(Database(f"sqlite:///{home / 'vidauth.db'}"), home, ())
    store.save_grant(
        profile_key="panopto|https://panopto.example.com|client-1",
        subject="s",
        username="u",
        server="https://panopto.example.com",
        client_id="client-1",
        tokens=TokenSet(access_token="tok-fast", expires_at=time.time() + 3600),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(
        PANOPTO_SERVER="panopto.example.com",
        PANOPTO_CLIENT_ID="client-1",
        PANOPTO_CLIENT_SECRET="secret-1",
        VIDAUTH_HOME=str(home),
    )
    code = (
        "import sys\n"
        "from vidauth._fastpath import cached_token\n"
        "print(cached_token(), sorted(m for m in ('sqlalchemy', 'pydantic', 'typer') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.stdout.split() == ["tok-fast", "[]"], done.stderr
