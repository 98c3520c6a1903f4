"""Discovery as a person meets it: ``vidauth login`` (robot browser, loopback redirect) against a
sandbox that moved its JWKS or lost its discovery document, and ``logout --revoke`` where the
provider advertises no revocation endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SandboxSetup
from tests.helpers.processes import run_vidauth_in_process as vidauth
from tests.test_cli_e2e import robot_env
from vidauth_sandbox.config import JWKS_PATH, OAUTH_PREFIX

MOVED = f"{OAUTH_PREFIX}/keys/2026"


def _revocations(sandbox: SandboxSetup) -> int:
    return int(sandbox.server.state.stats_snapshot().get("revocations", 0))


def test_login_validates_the_id_token_from_a_moved_jwks(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(jwks_path=MOVED)
    assert httpx.get(f"{sandbox.server.url}{JWKS_PATH}").status_code == 404
    env = robot_env(sandbox, tmp_path)
    login = vidauth("-v", "login", "--timeout", "30", env=env)
    assert login.returncode == 0, login.stderr
    assert "Signed in as alice" in login.stderr
    assert sandbox.server.state.stats_snapshot()["jwks_requests"] == 1
    # a second command reads the cached document and keys: no new fetch
    assert vidauth("status", env=env).returncode == 0
    stats = sandbox.server.state.stats_snapshot()
    assert stats["discovery_requests"] == 1 and stats["jwks_requests"] == 1


def test_login_falls_back_to_the_preset_when_discovery_is_down(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(discovery_status=500)
    env = robot_env(sandbox, tmp_path, VIDAUTH_RETRY_ATTEMPTS="1")
    login = vidauth("-v", "login", "--timeout", "30", env=env)
    assert login.returncode == 0, login.stderr
    # without discovery `profile email` are not asked for: the account shows its subject
    assert "Signed in as 84611c10-" in login.stderr  # alice's subject
    assert "HTTP 500" in login.stderr and "using the Panopto preset's endpoints" in login.stderr
    quiet = vidauth("status", env=env)  # without -v nothing is said about it
    assert quiet.returncode == 0 and "preset" not in quiet.stderr


def _oidc_profile(directory: Path, sandbox: SandboxSetup) -> None:
    (directory / "vidauth.toml").write_text(
        "[profiles.op]\n"
        'provider = "oidc"\n'
        f'issuer = "{sandbox.server.issuer}"\n'
        f'client_id = "{sandbox.client_id}"\n'
        f'client_secret = "{sandbox.client_secret}"\n'
        f'redirect_uri = "{sandbox.redirect_uri}"\n'
        'scope = "openid api offline_access"\n'
        "pkce = false\n"
    )


def test_logout_revoke_without_a_revocation_endpoint_signs_out_locally(
    make_sandbox: Any, tmp_path: Path, clean_env: Path
) -> None:
    sandbox = make_sandbox(discovery_omit={"revocation_endpoint"})
    _oidc_profile(clean_env, sandbox)
    env = robot_env(sandbox, tmp_path)
    login = vidauth("--profile", "op", "login", "--timeout", "30", env=env)
    assert login.returncode == 0, login.stderr
    logout = vidauth("--profile", "op", "logout", "--revoke", env=env)
    assert logout.returncode == 0, logout.stderr
    lines = logout.stderr.strip().splitlines()
    assert len(lines) == 1, logout.stderr
    assert "advertises no revocation endpoint" in lines[0]
    assert "revocation_url in [profiles.op] of vidauth.toml" in lines[0]
    assert _revocations(sandbox) == 0
    status = vidauth("--profile", "op", "status", env=env)
    assert status.returncode == 3  # the local tokens are gone


def test_default_profile_says_where_revocation_url_can_be_set(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(discovery_omit={"revocation_endpoint"})
    env = robot_env(sandbox, tmp_path)
    assert vidauth("login", "--timeout", "30", env=env).returncode == 0
    logout = vidauth("logout", "--revoke", env=env)
    assert logout.returncode == 0, logout.stderr
    assert "advertises no revocation endpoint" in logout.stderr
    assert "revocation_url in a vidauth.toml profile" in logout.stderr
    assert _revocations(sandbox) == 0
    assert vidauth("status", env=env).returncode == 3


def test_logout_revoke_still_revokes_where_discovery_lists_it(
    sandbox: SandboxSetup, tmp_path: Path
) -> None:
    env = robot_env(sandbox, tmp_path)
    assert vidauth("login", "--timeout", "30", env=env).returncode == 0
    logout = vidauth("logout", "--revoke", env=env)
    assert logout.returncode == 0 and "revoked and deleted" in logout.stderr
    assert _revocations(sandbox) == 2  # refresh token and access token


def test_issuer_mismatch_is_one_line_exit_2(sandbox: SandboxSetup, tmp_path: Path) -> None:
    (Path.cwd() / "vidauth.toml").write_text(
        "[profiles.op]\n"
        'provider = "oidc"\n'
        f'issuer = "{sandbox.server.issuer}/"\n'
        f'client_id = "{sandbox.client_id}"\n'
    )
    result = vidauth("--profile", "op", "login", "--timeout", "5", env=robot_env(sandbox, tmp_path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "names issuer" in result.stderr
