"""A real Django OAuth Toolkit through the generic ``oidc`` preset: every endpoint from its
discovery document, which lists no revocation endpoint — so ``logout --revoke`` signs out
locally, exits 0 and says how to set ``revocation_url``."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers.processes import run_vidauth_in_process as cli
from tests.oauth.test_thirdparty_common import (
    login_with_browser,
    refresh_is_refused,
    vidauth_for,
    write_profile,
)
from tests.thirdparty.servers import ThirdPartyServer, dot_server

__all__ = ["dot_server"]


def test_dot_via_oidc_preset_logout_revoke_without_endpoint(
    dot_server: ThirdPartyServer, clean_env: Path, tmp_path: Path
) -> None:
    assert "revocation_endpoint" not in dot_server.metadata  # the premise
    assert dot_server.issuer
    write_profile(
        clean_env,
        "op",
        provider="oidc",
        issuer=dot_server.issuer,
        client_id=dot_server.client_id,
        client_secret=dot_server.client_secret,
        redirect_uri=dot_server.redirect_uri,
        scope=dot_server.scope,
    )
    home = tmp_path / "home"
    with vidauth_for(home, "op") as va:
        endpoints = va.profile.endpoints
        assert endpoints.token_url == dot_server.metadata["token_endpoint"]
        assert endpoints.jwks_uri == dot_server.jwks_uri
        assert endpoints.revocation_url is None
        account = login_with_browser(va, dot_server)  # the ID token validated
        assert account.subject and account.has_refresh_token
        tokens = va.store.load_tokens(account.id)
        assert tokens is not None and tokens.refresh_token
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env["VIDAUTH_HOME"] = str(home)
    logout = cli("--profile", "op", "logout", "--revoke", cwd=clean_env, env=env)
    assert logout.returncode == 0, logout.stderr
    line = logout.stderr.strip()
    assert "\n" not in line and "advertises no revocation endpoint" in line
    assert "revocation_url in [profiles.op]" in line
    assert dot_server.client_secret not in logout.stderr
    status = cli("--profile", "op", "status", cwd=clean_env, env=env)
    assert status.returncode == 3  # deleted locally
    assert not refresh_is_refused(dot_server, tokens.refresh_token)  # and, as said, not revoked
