"""An account is keyed by verified claims only: a forged access token cannot choose it."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from tests.conftest import SandboxSetup
from vidauth.client import Vidauth
from vidauth.config import load_settings
from vidauth_sandbox.state import SandboxUser

BOB = SandboxUser.named("bob")


def forged_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (``alg: none``), as anyone can write one."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class ForgingTransport(httpx.BaseTransport):
    """Real HTTP to the sandbox, but the token response's access token is replaced by an
    unsigned JWT naming bob (and, with ``drop_id_token``, the ID token removed)."""

    def __init__(self, *, drop_id_token: bool) -> None:
        self.inner = httpx.HTTPTransport()
        self.drop_id_token = drop_id_token

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/connect/token"):
            return response
        body = json.loads(response.read())
        if "access_token" in body:
            body["access_token"] = forged_jwt(
                {"sub": BOB.subject, "preferred_username": "bob", "iss": "forged"}
            )
        if self.drop_id_token:
            body.pop("id_token", None)
        return httpx.Response(
            response.status_code,
            headers={"Content-Type": "application/json"},
            content=json.dumps(body).encode(),
        )

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("drop_id_token", [False, True])
def test_forged_access_token_does_not_name_the_account(
    sandbox: SandboxSetup, drop_id_token: bool
) -> None:
    """Alice signs in; the access token claims to be bob's. With the ID token the account is
    alice's (validated claims win); without it, userinfo refuses the forged token and nothing
    trusted names anyone: the account is the profile's ``default`` one, never bob's."""
    settings = load_settings(**sandbox.flags())
    transport = ForgingTransport(drop_id_token=drop_id_token)
    with Vidauth(settings, transport=transport) as va:
        account = sandbox.login(va)
    assert account.subject != BOB.subject and account.username != "bob"
    if drop_id_token:
        assert (account.subject, account.username) == ("default", None)
    else:
        assert account.subject == SandboxUser.named("alice").subject
        # the ID token names nobody (as Panopto's) and userinfo refuses the forged token
        assert account.username is None
