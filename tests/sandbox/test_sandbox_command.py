"""``vidauth sandbox``'s flags for the Panopto behaviours a test or a developer may want to
turn: the State-1 answer, names in ID tokens, offline access for password grants.

The sandbox runs as a user runs it (a process of its own, started with the flags); vidauth's
own commands then talk to it over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.helpers.ports import free_port
from tests.helpers.processes import stop_or_explain
from tests.panopto.conftest import MiB, write_random
from tests.thirdparty.servers import RedirectCatcher
from vidauth_sandbox.browser import complete_browser_login
from vidauth_sandbox.config import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DISCOVERY_PATH,
    TOKEN_PATH,
)

pytestmark = pytest.mark.slow

COMMAND = [sys.executable, "-m", "vidauth"]
FLAGS = [
    *("--state1-answer", "204", "--processing-delay", "0.2"),
    *("--id-token-names", "--strict-offline-access"),
]


@pytest.fixture
def redirect_uri() -> Iterator[str]:
    """A page on loopback for the authorization code to land on."""
    uri = f"http://127.0.0.1:{free_port()}/cb"
    with RedirectCatcher(uri):
        yield uri


@pytest.fixture
def sandbox_url(tmp_path: Path, redirect_uri: str) -> Iterator[str]:
    store = str(tmp_path / "store")
    proc = subprocess.Popen(
        [
            *COMMAND,
            "sandbox",
            "--port",
            "0",
            "--storage",
            store,
            "--redirect-uri",
            redirect_uri,
            *FLAGS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().split()[-1]
    finally:
        proc.send_signal(signal.SIGINT)
        stop_or_explain(proc)


def _password_grant(url: str, scope: str) -> httpx.Response:
    return httpx.post(
        f"{url}{TOKEN_PATH}",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "alice-sandbox-password",
            "scope": scope,
        },
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        timeout=10,
    )


def test_bad_flag_values_are_refused_in_one_line() -> None:
    bad = subprocess.run(
        [*COMMAND, "sandbox", "--port", "0", "--state1-answer", "json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "vidauth: --state1-answer json: choose empty, 204, object"


def _id_token_claims(url: str, redirect_uri: str) -> dict[str, str]:
    """Sign in as alice with the authorization code flow; the ID token's claims."""
    from authlib.common.security import generate_token

    query = httpx.QueryParams(
        response_type="code",
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri=redirect_uri,
        scope="openid profile",
        state=generate_token(24),
        nonce=generate_token(24),
    )
    discovery = httpx.get(f"{url}{DISCOVERY_PATH}", timeout=10).json()
    landed = complete_browser_login(f"{discovery['authorization_endpoint']}?{query}")
    token = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": landed.url.params["code"],
            "redirect_uri": redirect_uri,
        },
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
        timeout=10,
    )
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"], timeout=10).json())
    claims: dict[str, str] = jwt.decode(token.json()["id_token"], keys).claims
    return claims


def test_the_flags_reach_the_running_sandbox(
    sandbox_url: str, redirect_uri: str, tmp_path: Path
) -> None:
    refused = _password_grant(sandbox_url, "openid offline_access")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_scope"
    claims = _id_token_claims(sandbox_url, redirect_uri)
    assert claims["preferred_username"] == "alice"

    # vidauth itself against it: a password sign-in without a refresh token, and an upload
    # whose State-1 PUT is answered 204 No Content.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PANOPTO_", "VIDAUTH_"))}
    env.update(
        PANOPTO_SERVER=sandbox_url,
        PANOPTO_CLIENT_ID=DEFAULT_CLIENT_ID,
        PANOPTO_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        VIDAUTH_HOME=str(tmp_path / "home"),
        ALICE_PW="alice-sandbox-password",
    )

    def vidauth(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )

    login = vidauth("login", "--username", "alice", "--password", "env:ALICE_PW")
    assert login.returncode == 0, login.stderr
    assert "No refresh token was granted" in login.stderr
    video = write_random(tmp_path / "clip.mp4", 6 * MiB, seed=3)
    upload = vidauth("upload", str(video), "--folder", "SIT102 Labs")
    assert upload.returncode == 0, upload.stderr
    assert "complete; session" in upload.stdout
