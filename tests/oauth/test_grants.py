"""Grants without a browser against the sandbox: client credentials, password, Panopto's ID
provider (with automatic regrant), and the one retry policy through the CLI (exit 4)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import SandboxSetup
from tests.helpers.processes import run_vidauth_in_process
from vidauth.cli import run
from vidauth.config import Secret
from vidauth.errors import ConfigError, OAuthError, RemoteServiceError, SignInRequired
from vidauth.oauth import grants
from vidauth.profiles import resolve_reference
from vidauth_sandbox import id_provider_password as sandbox_id_provider_password

APP_KEY = "sandbox-application-key"


def stats(sandbox: SandboxSetup) -> dict[str, object]:
    return httpx.get(f"{sandbox.server.url}/sandbox/stats").json()  # type: ignore[no-any-return]


def test_id_provider_password_is_panoptos_formula() -> None:
    expected = base64.b64encode(hashlib.sha256(b"netid\\john|my-app-key").digest()).decode()
    assert grants.id_provider_password("NetID\\John", "My-App-Key") == expected
    assert expected == sandbox_id_provider_password("NetID\\john", "my-app-key")


def test_client_credentials_regrants_on_expiry(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = va.login_client_credentials()
        assert account.subject == f"client:{sandbox.client_id}"
        assert account.grant_type == "client_credentials" and not account.has_refresh_token
        assert account.scope == "api"  # user-only scopes dropped for an application token
        manager = va.token_manager()
        first = manager.access_token()
        # "expired": ask for more validity than it has; no refresh token, so it is fetched again
        again = manager.tokens(min_validity=10**9)
        assert again.access_token != first and again.refresh_token is None
    snapshot = stats(sandbox)
    assert json.dumps(snapshot).count("client_credentials") >= 1


def test_password_grant_identifies_the_user(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va:
        account = va.login_password("alice", Secret("alice-sandbox-password"))
        assert account.username == "alice" and account.grant_type == "password"
        assert account.has_refresh_token  # offline_access was asked for
        with pytest.raises(OAuthError) as info:
            va.login_password("alice", Secret("wrong"))
        assert info.value.error == "invalid_grant" and "wrong" not in info.value.message


def test_id_provider_grant_regrants_from_the_profiles_key_reference(
    sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDAUTH_TEST_APP_KEY", APP_KEY)
    with sandbox.vidauth(panopto_application_key="env:VIDAUTH_TEST_APP_KEY") as va:
        key = resolve_reference("env:VIDAUTH_TEST_APP_KEY", "--application-key")
        account = va.login_password("NetID\\john", application_key=key)
        assert account.grant_type == "id_provider" and account.username == "NetID\\john"
        assert not account.has_refresh_token  # no offline_access: the key renews it
        manager = va.token_manager()
        first = manager.access_token()
        renewed = manager.tokens(min_validity=10**9)
        assert renewed.access_token != first
        # the key is read again at renewal time: gone from the environment = sign in again
        monkeypatch.delenv("VIDAUTH_TEST_APP_KEY")
        with pytest.raises(ConfigError, match="VIDAUTH_TEST_APP_KEY is not set"):
            manager.tokens(min_validity=10**9)
    # a profile that names no key cannot renew
    with sandbox.vidauth() as va, pytest.raises(SignInRequired, match="application_key"):
        va.token_manager().tokens(min_validity=10**9)


def test_id_provider_user_needs_prefix(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth() as va, pytest.raises(ConfigError, match="prefix"):
        va.login_password("john", application_key=Secret(APP_KEY))


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli_env(sandbox: SandboxSetup, monkeypatch: pytest.MonkeyPatch) -> SandboxSetup:
    for name, value in sandbox.flags().items():
        monkeypatch.setenv(name.upper(), str(value))
    return sandbox


def test_cli_client_credentials_then_token(
    cli_env: SandboxSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["login", "--client-credentials"]) == 0
    assert f"client:{cli_env.client_id}" in capsys.readouterr().err
    assert run(["token", "--min-validity", "1000000000"]) == 0  # regranted
    assert capsys.readouterr().out.strip()
    assert run(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["accounts"][0]["grant"] == "client_credentials"


def test_cli_password_from_reference_never_literal(
    cli_env: SandboxSetup,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert run(["login", "--username", "alice", "--password", "alice-sandbox-password"]) == 2
    err = capsys.readouterr().err
    assert "env:NAME or file:PATH" in err and "alice-sandbox-password" not in err
    monkeypatch.setenv("ALICE_PW", "alice-sandbox-password")
    assert run(["login", "--username", "alice", "--password", "env:ALICE_PW"]) == 0
    assert "Signed in as alice" in capsys.readouterr().err
    pw_file = tmp_path / "pw"
    pw_file.write_text("alice-sandbox-password\n")
    assert run(["login", "--username", "alice", "--password", f"file:{pw_file}"]) == 0
    assert run(["login", "--client-credentials", "--device"]) == 2
    assert run(["login", "--password", "env:ALICE_PW"]) == 2
    capsys.readouterr()
    assert run(["login", "--username", " ", "--password", "env:ALICE_PW"]) == 2
    assert "--username is empty" in capsys.readouterr().err


def test_cli_password_prompt_hides_input(
    cli_env: SandboxSetup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    asked: dict[str, object] = {}

    def fake_prompt(text: str, **kwargs: object) -> str:
        asked.update(kwargs, text=text)
        return "alice-sandbox-password"

    monkeypatch.setattr(typer, "prompt", fake_prompt)
    assert run(["login", "--username", "alice"]) == 0
    assert asked["hide_input"] is True
    assert "alice-sandbox-password" not in "".join(capsys.readouterr())


def test_cli_id_provider_login_and_renewal(
    cli_env: SandboxSetup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PANOPTO_APP_KEY", APP_KEY)
    args = ["login", "--username", "NetID\\john", "--application-key", "env:PANOPTO_APP_KEY"]
    assert run(args) == 0
    assert "application_key" in capsys.readouterr().err  # how to make renewal automatic
    monkeypatch.setenv("PANOPTO_APPLICATION_KEY", "env:PANOPTO_APP_KEY")
    assert run(["token", "--min-validity", "1000000000"]) == 0
    assert run(["login", "--username", "NetID\\john", "--application-key", APP_KEY]) == 2


# -- the one retry policy --------------------------------------------------------------------


def test_html_502_is_retried_not_a_json_crash(sandbox: SandboxSetup) -> None:
    with sandbox.vidauth(vidauth_retry_attempts=3) as va:
        va.login_client_credentials()
        sandbox.server.state.inject_token_failures([502])
        assert va.token_manager().tokens(min_validity=10**9).access_token
        sandbox.server.state.inject_token_failures([502, 502, 502])
        with pytest.raises(RemoteServiceError, match="HTTP 502 after retries") as info:
            va.token_manager().tokens(min_validity=10**9)
        assert info.value.exit_code == 4


def test_cli_token_exits_4_when_retries_run_out(sandbox: SandboxSetup) -> None:
    # A client-credentials regrant is safe to resend (nothing rotates); a strict-rotation
    # refresh is not, and is tested in test_refresh_hardening.py.
    with sandbox.vidauth() as va:
        va.login_client_credentials()
    httpx.post(f"{sandbox.server.url}/sandbox/faults", json={"token": [503] * 10})
    env = sandbox.env(VIDAUTH_RETRY_ATTEMPTS="3")
    result = run_vidauth_in_process("token", "--min-validity", "1000000000", env=env)
    assert result.returncode == 4, result.stderr
    assert "503 after retries" in result.stderr and result.stdout == ""
    assert stats(sandbox)["injected_failures"] == 3  # exactly VIDAUTH_RETRY_ATTEMPTS tries


def test_cli_closed_port_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import free_port

    port = free_port()
    monkeypatch.setenv("PANOPTO_SERVER", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("PANOPTO_CLIENT_ID", "x")
    monkeypatch.setenv("PANOPTO_CLIENT_SECRET", "closed-port-secret")
    monkeypatch.setenv("VIDAUTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIDAUTH_RETRY_ATTEMPTS", "2")
    assert run(["login", "--client-credentials"]) == 4
    err = capsys.readouterr().err
    assert "could not reach" in err and "after retries" in err
    assert "closed-port-secret" not in err
