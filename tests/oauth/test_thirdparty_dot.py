"""vidauth against a real Django OAuth Toolkit (what Omniport runs): PKCE, ID token, refresh
rotation, revocation — through the library and through the CLI with a vidauth.toml profile."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import run_vidauth_in_process as cli
from tests.oauth.test_thirdparty_common import (
    cli_login_no_browser,
    login_with_browser,
    refresh_is_refused,
    vidauth_for,
    write_profile,
)
from tests.thirdparty.servers import ThirdPartyServer, dot_server, free_port, run_dot_server

__all__ = ["dot_server"]


@pytest.fixture(scope="module")
def dot_cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThirdPartyServer]:
    """A second DOT with its own redirect port: vidauth's listener leaves the port in TIME_WAIT
    for a minute after a sign-in, and it binds without SO_REUSEADDR."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    with run_dot_server(tmp_path_factory.mktemp("dot_cli"), redirect_uri=redirect_uri) as s:
        yield s


def dot_profile(directory: Path, server: ThirdPartyServer, **extra: str) -> Path:
    return write_profile(
        directory,
        "dot",
        provider="dot",
        server=server.base_url,
        client_id=server.client_id,
        client_secret=extra.pop("client_secret", "env:VIDAUTH_TEST_DOT_SECRET"),
        redirect_uri=server.redirect_uri,
        scope=server.scope,
        **extra,
    )


def test_login_refresh_revoke_with_the_library(
    dot_server: ThirdPartyServer, clean_env: Path, tmp_path: Path, monkeypatch: object
) -> None:
    os.environ["VIDAUTH_TEST_DOT_SECRET"] = dot_server.client_secret
    try:
        dot_profile(clean_env, dot_server)
        with vidauth_for(tmp_path / "home", "dot") as va:
            assert va.profile.pkce  # DOT requires PKCE
            account = login_with_browser(va, dot_server)
            assert account.grant_type == "authorization_code" and account.has_refresh_token
            first = va.store.load_tokens(account.id)
            assert first is not None and first.id_token and first.refresh_token
            assert account.subject  # the validated ID token's sub
            manager = va.token_manager()
            refreshed = manager.tokens(min_validity=10**9)
            assert refreshed.access_token != first.access_token
            assert refreshed.refresh_token and refreshed.refresh_token != first.refresh_token
            assert refresh_is_refused(dot_server, first.refresh_token)  # rotated away
            va.logout(revoke=True)
            assert refresh_is_refused(dot_server, refreshed.refresh_token)  # revoked
    finally:
        del os.environ["VIDAUTH_TEST_DOT_SECRET"]


def test_cli_with_a_profile_doctor_login_token_logout(
    dot_cli_server: ThirdPartyServer, clean_env: Path, tmp_path: Path
) -> None:
    dot_server = dot_cli_server
    secret_file = tmp_path / "dot-secret"  # as a mounted Docker/Kubernetes secret
    secret_file.write_text(dot_server.client_secret + "\n")
    dot_profile(clean_env, dot_server, client_secret=f"file:{secret_file}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env["VIDAUTH_HOME"] = str(tmp_path / "home")

    doctor = cli("--profile", "dot", "doctor", "--json", cwd=clean_env, env=env)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    report = {c["name"]: c["status"] for c in json.loads(doctor.stdout)["checks"]}
    assert report["client"] == report["discovery"] == report["redirect URI"] == "ok"

    code, stderr = cli_login_no_browser(
        "--profile", "dot", "login", "--no-browser", "--timeout", "60",
        cwd=clean_env, env=env, act=lambda url: dot_server.browser_login(url),
    )  # fmt: skip
    assert code == 0, stderr
    assert "Signed in as" in stderr

    token = cli("--profile", "dot", "token", cwd=clean_env, env=env)
    assert token.returncode == 0 and token.stdout.strip(), token.stderr
    refreshed = cli(
        "--profile", "dot", "token", "--min-validity", "1000000000", cwd=clean_env, env=env
    )
    assert refreshed.returncode == 0, refreshed.stderr
    assert refreshed.stdout.strip() != token.stdout.strip()

    listed = cli("profiles", "--json", cwd=clean_env, env=env)
    assert f"file:{secret_file}" in listed.stdout

    logout = cli("--profile", "dot", "logout", "--revoke", cwd=clean_env, env=env)
    assert logout.returncode == 0, logout.stderr
    everything = stderr + token.stderr + refreshed.stderr + listed.stdout + logout.stderr
    assert dot_server.client_secret not in everything + doctor.stdout
    assert token.stdout.strip() not in everything
