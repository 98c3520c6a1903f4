"""vidauth against panva's certified oidc-provider: discovery, signed ID tokens (validated against
the JWKS), refresh rotation, revocation, and the device flow (library and CLI)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import run_vidauth_in_process as cli
from tests.oauth.test_thirdparty_common import (
    BrowserThread,
    login_with_browser,
    refresh_is_refused,
    vidauth_for,
    write_profile,
)
from tests.thirdparty.servers import (
    ThirdPartyServer,
    free_port,
    oidc_provider_server,
    run_oidc_provider,
)
from vidauth.errors import AuthorizationDenied
from vidauth.oauth.device import DeviceAuthorization
from vidauth.oauth.oidc import validate_id_token

__all__ = ["oidc_provider_server"]


def oidc_profile(directory: Path, server: ThirdPartyServer) -> Path:
    assert server.issuer
    return write_profile(
        directory,
        "op",
        provider="oidc",
        issuer=server.issuer,
        client_id=server.client_id,
        client_secret="env:VIDAUTH_TEST_OP_SECRET",
        redirect_uri=server.redirect_uri,
        scope=server.scope,
    )


@pytest.fixture
def op_secret(oidc_provider_server: ThirdPartyServer) -> Iterator[None]:
    os.environ["VIDAUTH_TEST_OP_SECRET"] = oidc_provider_server.client_secret
    try:
        yield
    finally:
        del os.environ["VIDAUTH_TEST_OP_SECRET"]


def test_discovery_code_flow_id_token_refresh_revoke(
    oidc_provider_server: ThirdPartyServer, op_secret: None, clean_env: Path, tmp_path: Path
) -> None:
    server = oidc_provider_server
    oidc_profile(clean_env, server)
    with vidauth_for(tmp_path / "home", "op") as va:
        endpoints = va.profile.endpoints  # completed from discovery
        assert endpoints.token_url == server.token_url
        assert endpoints.device_authorization_url == server.device_authorization_url
        assert endpoints.jwks_uri and va.profile.pkce
        account = login_with_browser(va, server)
        assert account.subject == server.username  # the validated ID token's sub
        tokens = va.store.load_tokens(account.id)
        assert tokens is not None and tokens.id_token and tokens.refresh_token
        # the stored ID token really is signed by the provider and meant for this client
        claims = validate_id_token(
            tokens.id_token,
            client=va.http,
            jwks_uri=endpoints.jwks_uri,
            issuer=server.issuer or "",
            client_id=server.client_id,
            nonce=None,
        )
        assert claims["sub"] == server.username
        with pytest.raises(AuthorizationDenied, match="ID token failed validation"):
            validate_id_token(
                tokens.id_token,
                client=va.http,
                jwks_uri=endpoints.jwks_uri,
                issuer=server.issuer or "",
                client_id="someone-else",
                nonce=None,
            )
        refreshed = va.token_manager().tokens(min_validity=10**9)
        assert refreshed.refresh_token and refreshed.refresh_token != tokens.refresh_token
        va.logout(revoke=True)
        assert refresh_is_refused(server, refreshed.refresh_token)


def test_device_flow_with_the_library(
    oidc_provider_server: ThirdPartyServer, op_secret: None, clean_env: Path, tmp_path: Path
) -> None:
    server = oidc_provider_server
    oidc_profile(clean_env, server)
    browsers: list[BrowserThread] = []

    def announce(started: DeviceAuthorization) -> None:
        assert started.verification_uri_complete
        uri = started.verification_uri_complete
        browsers.append(BrowserThread(lambda: server.device_approve(uri, started.user_code)))

    with vidauth_for(tmp_path / "home", "op") as va:
        account = va.login_device(announce, sleep=lambda s: time.sleep(min(s, 1.0)))
        for browser in browsers:
            browser.check()
        assert account.subject == server.username and account.grant_type == "device_code"
        assert account.has_refresh_token
        refreshed = va.token_manager().tokens(min_validity=10**9)
        assert refreshed.access_token
        va.logout(revoke=True)
        assert refreshed.refresh_token and refresh_is_refused(server, refreshed.refresh_token)


@pytest.fixture(scope="module")
def op_cli_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThirdPartyServer]:
    """A second oidc-provider, so the CLI test's redirect port is its own."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/redirect"
    with run_oidc_provider(tmp_path_factory.mktemp("op_cli"), redirect_uri=redirect_uri) as s:
        yield s


def test_device_flow_through_the_cli(
    op_cli_server: ThirdPartyServer, clean_env: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    server = op_cli_server
    oidc_profile(clean_env, server)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(VIDAUTH_HOME=str(tmp_path / "home"), VIDAUTH_TEST_OP_SECRET=server.client_secret)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidauth", "--profile", "op", "login", "--device"],
        cwd=clean_env,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    uri = code = None
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("http") and uri is None:
            uri = line.strip()
        if "enter the code:" in line:
            code = line.split("enter the code:", 1)[1].strip()
            break
    assert uri and code, "".join(lines)
    server.device_approve(uri, code)  # typed in, as on another device
    rest = proc.stderr.read()
    assert proc.wait(60) == 0, "".join(lines) + rest
    assert f"Signed in as {server.username}" in rest
    token = cli("--profile", "op", "token", cwd=clean_env, env=env)
    assert token.returncode == 0 and token.stdout.strip()
    out = cli("--profile", "op", "logout", "--revoke", cwd=clean_env, env=env)
    assert out.returncode == 0, out.stderr
